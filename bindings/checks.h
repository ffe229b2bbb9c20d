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

#include "common.h"

namespace ee_bind {

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

// A valid grid: finite limits with x_min < x_max, y_min < y_max, at least 3 cells per axis.
inline ee::GridSpec make_grid(double x_min, double x_max, int64_t nx, double y_min, double y_max,
                              int64_t ny) {
    require_finite_scalar(x_min, "x_min");
    require_finite_scalar(x_max, "x_max");
    require_finite_scalar(y_min, "y_min");
    require_finite_scalar(y_max, "y_max");
    if (!(x_max > x_min)) throw py::value_error("x_max: expected x_max > x_min");
    if (!(y_max > y_min)) throw py::value_error("y_max: expected y_max > y_min");
    if (nx < 3) throw py::value_error("nx: expected at least 3 cells, got " + std::to_string(nx));
    if (ny < 3) throw py::value_error("ny: expected at least 3 cells, got " + std::to_string(ny));
    ee::GridSpec g{x_min, x_max, nx, y_min, y_max, ny};
    if (!(g.dx() > 0.0) || !(g.dy() > 0.0) || !std::isfinite(g.dx()) || !std::isfinite(g.dy()))
        throw py::value_error("grid: the cell widths are not positive finite numbers");
    return g;
}

// sigma > 0, cutoff >= sigma, and a window of at most 2^26 lattice points.
inline void check_hill(const ee::GridSpec& g, double sigma, double cutoff) {
    if (!(sigma > 0.0) || !std::isfinite(sigma))
        throw py::value_error("sigma: expected a finite number > 0, got " + std::to_string(sigma));
    if (!(cutoff >= sigma) || !std::isfinite(cutoff))
        throw py::value_error("cutoff: expected a finite number >= sigma, got " + std::to_string(cutoff));
    const double cells = (2.0 * cutoff / g.dx() + 3.0) * (2.0 * cutoff / g.dy() + 3.0);
    if (!(cells <= 67108864.0))
        throw py::value_error("cutoff: a hill would span more than 2^26 lattice cells (cutoff " +
                              std::to_string(cutoff) + " on cells of " + std::to_string(g.dx()) +
                              " x " + std::to_string(g.dy()) + ")");
}

}  // namespace ee_bind
