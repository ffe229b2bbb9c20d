// Argument checks shared by the binding files. Every array that reaches a kernel passes through
// here: a wrong type, dtype, shape, layout or value raises a Python TypeError / ValueError that names
// the argument, before anything is written.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "arg_rules.h"
#include "common.h"

namespace ee::bind {

namespace py = pybind11;

inline std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t k = 0; k < shape.size(); ++k) {
        s += std::to_string(shape[k]);
        if (shape.size() == 1 || k + 1 < shape.size()) s += ",";
        if (k + 1 < shape.size()) s += " ";
    }
    return s + ")";
}

inline std::vector<int64_t> shape_of(const py::array& a) {
    std::vector<int64_t> s(static_cast<size_t>(a.ndim()));
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s[static_cast<size_t>(k)] = a.shape(k);
    return s;
}

// `obj` must be a numpy.ndarray (no conversion: in-place kernels must write to the caller's memory).
inline py::array as_ndarray(py::handle obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    return py::reinterpret_borrow<py::array>(obj);
}

enum class Kind { f32, f64 };

// dtype must be float32 or float64 (native byte order); returns which.
inline bool native_float(const py::dtype& dt, py::ssize_t size) {
    return dt.kind() == 'f' && dt.itemsize() == size && dt.byteorder() != '>' && !dt.has_fields();
}

inline Kind float_kind(const py::array& a, const char* name) {
    const py::dtype dt = a.dtype();
    if (native_float(dt, 4)) return Kind::f32;
    if (native_float(dt, 8)) return Kind::f64;
    throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

inline void require_dtype(const py::array& a, Kind kind, const char* name, const char* like) {
    if (float_kind(a, name) != kind)
        throw py::type_error(std::string(name) + ": expected the dtype of " + like + " (" +
                             (kind == Kind::f32 ? "float32" : "float64") + "), got " +
                             std::string(py::str(a.dtype())));
}

inline void require_f64(const py::array& a, const char* name) {
    if (!native_float(a.dtype(), 8))
        throw py::type_error(std::string(name) + ": expected dtype float64, got " +
                             std::string(py::str(a.dtype())));
}

inline void require_contiguous(const py::array& a, const char* name) {
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + ": expected a C-contiguous array");
    if (a.itemsize() > 0 && reinterpret_cast<uintptr_t>(a.data()) % static_cast<uintptr_t>(a.itemsize()) != 0)
        throw py::value_error(std::string(name) + ": expected an aligned array");
}

inline void require_writeable(const py::array& a, const char* name) {
    if (!a.writeable()) throw py::value_error(std::string(name) + ": the array is read-only");
}

inline void require_shape(const py::array& a, const std::vector<int64_t>& shape, const char* name) {
    const auto s = shape_of(a);
    if (s != shape)
        throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
                              shape_str(s));
}

inline void require_1d(const py::array& a, const char* name) {
    if (a.ndim() != 1)
        throw py::value_error(std::string(name) + ": expected a 1-D array, got shape " +
                              shape_str(shape_of(a)));
}

inline void require_finite_scalar(double v, const char* name) {
    if (!std::isfinite(v)) throw py::value_error(std::string(name) + ": expected a finite number");
}

inline void require_finite(const double* p, int64_t n, const char* name) {
    for (int64_t k = 0; k < n; ++k)
        if (!std::isfinite(p[k]))
            throw py::value_error(std::string(name) + ": expected finite values, element " +
                                  std::to_string(k) + " is " + std::to_string(p[k]));
}

// A valid grid (ee::rules::grid_error), as the kernels' GridSpec.
inline ee::GridSpec make_grid(double x_min, double x_max, int64_t nx, double y_min, double y_max, int64_t ny) {
    const std::string e = ee::rules::grid_error(x_min, x_max, static_cast<double>(nx), y_min, y_max,
                                               static_cast<double>(ny));
    if (!e.empty()) throw py::value_error(e);
    return ee::GridSpec{x_min, x_max, nx, y_min, y_max, ny};
}

// sigma > 0, cutoff >= sigma, and a window of at most 2^26 lattice points (ee::rules::hill_error).
inline void check_hill(const ee::GridSpec& g, double sigma, double cutoff) {
    const std::string e = ee::rules::hill_error(g, sigma, cutoff);
    if (!e.empty()) throw py::value_error(e);
}

// dt > 0, gamma in [0, 1], kT >= 0 (ee::rules::langevin_error).
inline void check_langevin_scalars(double dt, double gamma, double kT) {
    const std::string e = ee::rules::langevin_error(dt, gamma, kT);
    if (!e.empty()) throw py::value_error(e);
}

}  // namespace ee::bind
