// Bindings of the CPU Langevin kernel and its counter-based normals.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "cpu_isa.h"
#include "langevin.h"

namespace py = pybind11;
using namespace ee::bind;

namespace {

template <class T>
void run_langevin(py::array& theta, py::array& v, const py::array& grad, const T* bound, T b0,
                  int64_t n, const ee::LangevinParams& p) {
    T* th = static_cast<T*>(theta.mutable_data());
    T* vv = static_cast<T*>(v.mutable_data());
    const T* g = static_cast<const T*>(grad.data());
    py::gil_scoped_release release;
    ee::langevin_cpu<T>(th, vv, g, bound, b0, n, p);
}

void langevin(py::handle theta_obj, py::handle v_obj, py::handle grad_obj, py::handle bound_obj,
              double dt, double gamma, double kT, uint64_t seed, uint64_t step) {
    py::array theta = as_ndarray(theta_obj, "theta");
    const Kind kind = float_kind(theta, "theta");
    require_contiguous(theta, "theta");
    require_writeable(theta, "theta");
    const auto shape = shape_of(theta);
    py::array v = as_ndarray(v_obj, "v"), grad = as_ndarray(grad_obj, "grad");
    require_dtype(v, kind, "v", "theta");
    require_dtype(grad, kind, "grad", "theta");
    require_shape(v, shape, "v");
    require_shape(grad, shape, "grad");
    require_contiguous(v, "v");
    require_contiguous(grad, "grad");
    require_writeable(v, "v");
    check_langevin_scalars(dt, gamma, kT);
    const int64_t n = static_cast<int64_t>(theta.size());
    // theta and v are both written in place: they must not share memory (the public API refuses it
    // too); grad is only read, element by element before each element is written, so it may be either
    {
        const auto* t0 = static_cast<const char*>(theta.data());
        const auto* v0 = static_cast<const char*>(v.data());
        const int64_t bytes = n * static_cast<int64_t>(theta.itemsize());
        if (n > 0 && t0 < v0 + bytes && v0 < t0 + bytes)
            throw py::value_error("v: expected an array that does not share memory with theta");
    }
    const ee::LangevinParams p{dt, gamma, kT, seed, step};
    if (py::isinstance<py::array>(bound_obj)) {
        py::array b = as_ndarray(bound_obj, "bound");
        require_dtype(b, kind, "bound", "theta");
        require_shape(b, shape, "bound");
        require_contiguous(b, "bound");
        // every bound must be > 0 (inf allowed: no wall)
        if (kind == Kind::f32) {
            const float* pb = static_cast<const float*>(b.data());
            for (int64_t k = 0; k < n; ++k)
                if (!(pb[k] > 0.0f)) throw py::value_error("bound: expected values > 0, element " + std::to_string(k) + " is not");
            run_langevin<float>(theta, v, grad, pb, 0.0f, n, p);
        } else {
            const double* pb = static_cast<const double*>(b.data());
            for (int64_t k = 0; k < n; ++k)
                if (!(pb[k] > 0.0)) throw py::value_error("bound: expected values > 0, element " + std::to_string(k) + " is not");
            run_langevin<double>(theta, v, grad, pb, 0.0, n, p);
        }
        return;
    }
    double b0;
    try {
        b0 = bound_obj.cast<double>();
    } catch (const py::cast_error&) {
        throw py::type_error("bound: expected a number or an array like theta");
    }
    if (!(b0 > 0.0)) throw py::value_error("bound: expected a number > 0 (inf for no wall)");
    if (kind == Kind::f32)
        run_langevin<float>(theta, v, grad, nullptr, static_cast<float>(b0), n, p);
    else
        run_langevin<double>(theta, v, grad, nullptr, b0, n, p);
}

py::array normal(uint64_t seed, uint64_t step, int64_t n, const std::string& dtype) {
    if (n < 0) throw py::value_error("n: expected a count >= 0");
    if (dtype == "float64") {
        py::array_t<double> out(n);
        double* p = out.mutable_data();
        py::gil_scoped_release release;
        ee::normal_cpu<double>(seed, step, n, p);
        return std::move(out);
    }
    if (dtype == "float32") {
        py::array_t<float> out(n);
        float* p = out.mutable_data();
        py::gil_scoped_release release;
        ee::normal_cpu<float>(seed, step, n, p);
        return std::move(out);
    }
    throw py::type_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
}

}  // namespace

void register_langevin(py::module_& m) {
    m.def("langevin", &langevin, py::arg("theta"), py::arg("v"), py::arg("grad"), py::arg("bound"),
          py::arg("dt"), py::arg("gamma"), py::arg("kT"), py::arg("seed"), py::arg("step"),
          "Reflecting-boundary Langevin step in place (docs/design.md contract 4).");
    m.def("normal", &normal, py::arg("seed"), py::arg("step"), py::arg("n"), py::arg("dtype") = "float64",
          "The counter-based standard normals of elements 0 .. n-1 at (seed, step).");
    m.attr("cpu_isa") = ee::cpu_isa_name();
    m.def("core_clock_ghz", [](long n) { return ee::core_clock_ghz(n); }, py::arg("n") = 20000000,
          "This core's clock now, GHz, timed over n dependent integer additions (one a cycle).");
}
