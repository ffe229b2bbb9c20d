// Bindings of the CPU landscape kernels: deposit, gradient, smooth.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "checks.h"
#include "landscape.h"

namespace py = pybind11;
using namespace ee::bind;

namespace {

void deposit(py::handle S_obj, double x_min, double x_max, int64_t nx, double y_min, double y_max,
             int64_t ny, py::handle x_obj, py::handle y_obj, py::handle h_obj, double sigma,
             double cutoff) {
    const ee::GridSpec g = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    py::array S = as_ndarray(S_obj, "S");
    const Kind kind = float_kind(S, "S");
    require_shape(S, {nx, ny}, "S");
    require_contiguous(S, "S");
    require_writeable(S, "S");
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y"), h = as_ndarray(h_obj, "height");
    for (auto [a, name] : {std::pair<py::array*, const char*>{&x, "x"}, {&y, "y"}, {&h, "height"}}) {
        require_f64(*a, name);
        require_1d(*a, name);
        require_contiguous(*a, name);
    }
    const int64_t n = x.shape(0);
    if (y.shape(0) != n) throw py::value_error("y: expected the length of x, " + std::to_string(n));
    if (h.shape(0) != n) throw py::value_error("height: expected the length of x, " + std::to_string(n));
    const auto* px = static_cast<const double*>(x.data());
    const auto* py_ = static_cast<const double*>(y.data());
    const auto* ph = static_cast<const double*>(h.data());
    require_finite(px, n, "x");
    require_finite(py_, n, "y");
    require_finite(ph, n, "height");
    check_hill(g, sigma, cutoff);
    py::gil_scoped_release release;
    if (kind == Kind::f32)
        ee::deposit_cpu(static_cast<float*>(S.mutable_data()), g, px, py_, ph, n, sigma, cutoff);
    else
        ee::deposit_cpu(static_cast<double*>(S.mutable_data()), g, px, py_, ph, n, sigma, cutoff);
}

py::tuple gradient(py::handle S_obj, double x_min, double x_max, int64_t nx, double y_min,
                   double y_max, int64_t ny, py::handle x_obj, py::handle y_obj) {
    const ee::GridSpec g = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    py::array S = as_ndarray(S_obj, "S");
    const Kind kind = float_kind(S, "S");
    require_shape(S, {nx, ny}, "S");
    require_contiguous(S, "S");
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y");
    require_f64(x, "x");
    require_f64(y, "y");
    require_1d(x, "x");
    require_1d(y, "y");
    require_contiguous(x, "x");
    require_contiguous(y, "y");
    const int64_t n = x.shape(0);
    if (y.shape(0) != n) throw py::value_error("y: expected the length of x, " + std::to_string(n));
    const auto* px = static_cast<const double*>(x.data());
    const auto* py_ = static_cast<const double*>(y.data());
    require_finite(px, n, "x");
    require_finite(py_, n, "y");
    py::array_t<double> gx(n), gy(n);
    double* pgx = gx.mutable_data();
    double* pgy = gy.mutable_data();
    {
        py::gil_scoped_release release;
        if (kind == Kind::f32)
            ee::gradient_cpu(static_cast<const float*>(S.data()), g, px, py_, n, pgx, pgy);
        else
            ee::gradient_cpu(static_cast<const double*>(S.data()), g, px, py_, n, pgx, pgy);
    }
    return py::make_tuple(gx, gy);
}

// The landscape work of one WLMD step (csrc landscape_step_cpu); out: (2, n) float64, written.
void landscape_step(py::handle S_obj, py::handle H_obj, double x_min, double x_max, int64_t nx, double y_min,
                    double y_max, int64_t ny, py::handle x_obj, py::handle y_obj, py::handle h_obj,
                    py::handle w_obj, double sigma, double cutoff, py::handle out_obj) {
    const ee::GridSpec g = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    py::array S = as_ndarray(S_obj, "S"), H = as_ndarray(H_obj, "H");
    const Kind kind = float_kind(S, "S");
    for (auto [a, name] : {std::pair<py::array*, const char*>{&S, "S"}, {&H, "H"}}) {
        require_shape(*a, {nx, ny}, name);
        require_contiguous(*a, name);
        require_writeable(*a, name);
    }
    require_f64(H, "H");
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y"), h = as_ndarray(h_obj, "height"),
              w = as_ndarray(w_obj, "weight"), out = as_ndarray(out_obj, "out");
    for (auto [a, name] : {std::pair<py::array*, const char*>{&x, "x"}, {&y, "y"}, {&h, "height"}, {&w, "weight"}}) {
        require_f64(*a, name);
        require_1d(*a, name);
        require_contiguous(*a, name);
    }
    const int64_t n = x.shape(0);
    for (auto [a, name] : {std::pair<py::array*, const char*>{&y, "y"}, {&h, "height"}, {&w, "weight"}})
        if (a->shape(0) != n) throw py::value_error(std::string(name) + ": expected the length of x, " + std::to_string(n));
    require_f64(out, "out");
    require_shape(out, {2, n}, "out");
    require_contiguous(out, "out");
    require_writeable(out, "out");
    const auto* ph = static_cast<const double*>(h.data());
    const auto* pw = static_cast<const double*>(w.data());
    require_finite(ph, n, "height");
    require_finite(pw, n, "weight");
    check_hill(g, sigma, cutoff);
    auto* po = static_cast<double*>(out.mutable_data());
    const auto* px = static_cast<const double*>(x.data());
    const auto* py_ = static_cast<const double*>(y.data());
    auto* pH = static_cast<double*>(H.mutable_data());
    py::gil_scoped_release release;
    if (kind == Kind::f32)
        ee::landscape_step_cpu(static_cast<float*>(S.mutable_data()), pH, g, px, py_, ph, pw, n, sigma, cutoff, po,
                               po + n);
    else
        ee::landscape_step_cpu(static_cast<double*>(S.mutable_data()), pH, g, px, py_, ph, pw, n, sigma, cutoff, po,
                               po + n);
}

py::array smooth(py::handle S_obj, double sigma_x, double sigma_y) {
    py::array S = as_ndarray(S_obj, "S");
    const Kind kind = float_kind(S, "S");
    if (S.ndim() != 2) throw py::value_error("S: expected a 2-D array, got shape " + shape_str(shape_of(S)));
    require_contiguous(S, "S");
    for (auto [s, name] : {std::pair<double, const char*>{sigma_x, "sigma_bins[0]"}, {sigma_y, "sigma_bins[1]"}})
        if (!(s >= 0.0) || !(s <= 1.0e5))
            throw py::value_error(std::string(name) + ": expected a number in [0, 1e5] (bins), got " +
                                  std::to_string(s));
    const int64_t nx = S.shape(0), ny = S.shape(1);
    if (sigma_x > std::max<double>(nx, 100.0) || sigma_y > std::max<double>(ny, 100.0))
        throw py::value_error("sigma_bins: a filter wider than its axis (" + std::to_string(sigma_x) + ", " +
                              std::to_string(sigma_y) + " bins on " + std::to_string(nx) + " x " +
                              std::to_string(ny) + " cells) averages the whole axis");
    std::vector<double> work(static_cast<size_t>(nx * ny));
    py::array out = kind == Kind::f32 ? py::array(py::array_t<float>({nx, ny}))
                                      : py::array(py::array_t<double>({nx, ny}));
    {
        py::gil_scoped_release release;
        if (kind == Kind::f32)
            ee::smooth_cpu(static_cast<const float*>(S.data()), static_cast<float*>(out.mutable_data()),
                           work.data(), nx, ny, sigma_x, sigma_y);
        else
            ee::smooth_cpu(static_cast<const double*>(S.data()), static_cast<double*>(out.mutable_data()),
                           work.data(), nx, ny, sigma_x, sigma_y);
    }
    return out;
}

}  // namespace

void register_landscape(py::module_& m) {
    m.def("deposit", &deposit, py::arg("S"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"),
          py::arg("y_min"), py::arg("y_max"), py::arg("ny"), py::arg("x"), py::arg("y"),
          py::arg("height"), py::arg("sigma"), py::arg("cutoff"),
          "Deposit Gaussian hills into S (nx, ny) in place; x, y, height: float64 1-D arrays.");
    m.def("gradient", &gradient, py::arg("S"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"),
          py::arg("y_min"), py::arg("y_max"), py::arg("ny"), py::arg("x"), py::arg("y"),
          "(dS/dx, dS/dy) at the points (x, y): float64 1-D arrays.");
    m.def("landscape_step", &landscape_step, py::arg("S"), py::arg("H"), py::arg("x_min"), py::arg("x_max"),
          py::arg("nx"), py::arg("y_min"), py::arg("y_max"), py::arg("ny"), py::arg("x"), py::arg("y"),
          py::arg("height"), py::arg("weight"), py::arg("sigma"), py::arg("cutoff"), py::arg("out"),
          "One WLMD step's landscape work: out[:, k] = dS at point k (0 if not finite), then the hills and "
          "H counts (non-finite points skipped).");
    m.def("smooth", &smooth, py::arg("S"), py::arg("sigma_x"), py::arg("sigma_y"),
          "Separable Gaussian filter (sigma in bins, truncated at 4 sigma, edge mode 'nearest').");
}
