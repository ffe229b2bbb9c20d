// The CPU kernels of two torch operators of the WLMD step, registered in C++ (TORCH_LIBRARY_IMPL):
// entropyeng::landscape_step and entropyeng::langevin. Their schemas are defined in Python
// (entropyeng/ops.py); this library only adds CPU kernels, so that a compiled step calls the csrc
// kernels through torch's dispatcher with no Python in between (the Python kernels of the same
// operators cost 15-20 us a call, this one ~2 us).
//
// A binding: argument checks (TORCH_CHECK, a Python error naming the argument) and the hand-over
// of data pointers to csrc; no maths. Built only when torch's headers are found at build time (see
// CMakeLists.txt), into a library whose file name carries the torch version it was built against:
// entropyeng/ops.py loads it only under that version.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "arg_rules.h"
#include "landscape.h"
#include "langevin.h"

namespace {

using at::Tensor;

void require_cpu_contiguous(const Tensor& t, const char* name) {
    TORCH_CHECK_VALUE(t.defined(), name, ": expected a tensor");
    TORCH_CHECK_VALUE(t.device().is_cpu(), name, ": expected a CPU tensor, got one on ", t.device());
    TORCH_CHECK_VALUE(t.is_contiguous(), name, ": expected a contiguous tensor");
}

// The grid as the operators take it, [x_min, x_max, nx, y_min, y_max, ny], by the rule every binding
// applies (arg_rules.h).
ee::GridSpec grid_of(c10::ArrayRef<double> grid) {
    TORCH_CHECK_VALUE(grid.size() == 6, "grid: expected [x_min, x_max, nx, y_min, y_max, ny], got ", grid.size(),
                      " numbers");
    const std::string e = ee::rules::grid_error(grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]);
    TORCH_CHECK_VALUE(e.empty(), "grid: ", e);  // (the operator's argument is the list)
    return ee::rules::grid_spec(grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]);
}

// A 1-D float64 contiguous view of t (a copy only when t is strided or of another dtype).
Tensor points(const Tensor& t, int64_t n, const char* name) {
    TORCH_CHECK_VALUE(t.defined() && t.device().is_cpu(), name, ": expected a CPU tensor");
    TORCH_CHECK_VALUE(t.dim() == 1, name, ": expected a 1-D tensor, got ", t.dim(), " dimensions");
    TORCH_CHECK_VALUE(n < 0 || t.size(0) == n, name, ": expected the length of x, ", n, ", got ", t.size(0));
    TORCH_CHECK_VALUE(at::isFloatingType(t.scalar_type()), name, ": expected a floating-point tensor");
    return t.to(at::kDouble).contiguous();
}

// dS at (x, y) before this step's hills, then the hills of `height` and the histogram counts of
// `weight` (csrc landscape_step_cpu). A point that is not finite contributes nothing (dS = 0 there).
Tensor landscape_step(const Tensor& S, const Tensor& H, c10::ArrayRef<double> grid, const Tensor& x,
                      const Tensor& y, const Tensor& height, const Tensor& weight, double sigma, double cutoff) {
    const ee::GridSpec g = grid_of(grid);
    require_cpu_contiguous(S, "S");
    require_cpu_contiguous(H, "H");
    TORCH_CHECK_VALUE(S.scalar_type() == at::kDouble || S.scalar_type() == at::kFloat,
                      "S: expected float32 or float64, got ", S.scalar_type());
    TORCH_CHECK_VALUE(H.scalar_type() == at::kDouble, "H: expected float64, got ", H.scalar_type());
    for (const auto& [t, name] : {std::pair<const Tensor&, const char*>{S, "S"}, {H, "H"}})
        TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == g.nx && t.size(1) == g.ny, name, ": expected shape (",
                          g.nx, ", ", g.ny, "), got ", t.sizes());
    TORCH_CHECK_VALUE(S.data_ptr() != H.data_ptr(), "H: expected another tensor than S");
    const std::string hill = ee::rules::hill_error(g, sigma, cutoff);
    TORCH_CHECK_VALUE(hill.empty(), hill);
    const Tensor px = points(x, -1, "x");
    const int64_t n = px.size(0);
    const Tensor py = points(y, n, "y"), ph = points(height, n, "height"), pw = points(weight, n, "weight");
    const double* h = ph.data_ptr<double>();
    const double* w = pw.data_ptr<double>();
    for (int64_t k = 0; k < n; ++k)
        TORCH_CHECK_VALUE(std::isfinite(h[k]) && std::isfinite(w[k]), "height, weight: expected finite numbers");
    Tensor out = at::empty({2, n}, px.options());
    double* o = out.data_ptr<double>();
    if (S.scalar_type() == at::kFloat)
        ee::landscape_step_cpu(S.data_ptr<float>(), H.data_ptr<double>(), g, px.data_ptr<double>(),
                               py.data_ptr<double>(), h, w, n, sigma, cutoff, o, o + n);
    else
        ee::landscape_step_cpu(S.data_ptr<double>(), H.data_ptr<double>(), g, px.data_ptr<double>(),
                               py.data_ptr<double>(), h, w, n, sigma, cutoff, o, o + n);
    return out;
}

// One reflecting-boundary Langevin step in place (csrc langevin_cpu), the noise counter at
// step + step_offset (step: a one-element integer tensor, read here).
void langevin(const Tensor& theta, const Tensor& v, const Tensor& grad, const Tensor& bound, double dt, double gamma,
              double kT, int64_t seed, const Tensor& step, int64_t step_offset) {
    require_cpu_contiguous(theta, "theta");
    const auto dtype = theta.scalar_type();
    TORCH_CHECK_VALUE(dtype == at::kDouble || dtype == at::kFloat, "theta: expected float32 or float64, got ",
                      dtype);
    const int64_t n = theta.numel();
    for (const auto& [t, name] : {std::pair<const Tensor&, const char*>{v, "v"}, {grad, "grad"}, {bound, "bound"}}) {
        require_cpu_contiguous(t, name);
        TORCH_CHECK_VALUE(t.scalar_type() == dtype, name, ": expected the dtype of theta, ", dtype, ", got ",
                          t.scalar_type());
        TORCH_CHECK_VALUE(t.numel() == n, name, ": expected ", n, " elements (those of theta), got ", t.numel());
    }
    TORCH_CHECK_VALUE(theta.data_ptr() != v.data_ptr(), "v: expected another tensor than theta");
    const std::string scalars = ee::rules::langevin_error(dt, gamma, kT);
    TORCH_CHECK_VALUE(scalars.empty(), scalars);
    TORCH_CHECK_VALUE(step.defined() && step.device().is_cpu() && step.numel() == 1 &&
                          at::isIntegralType(step.scalar_type(), /*includeBool=*/false),
                      "step: expected a one-element integer CPU tensor");
    const int64_t s = step.item<int64_t>() + step_offset;
    TORCH_CHECK_VALUE(s >= 0, "step: expected step + step_offset >= 0, got ", s);
    const ee::LangevinParams p{dt, gamma, kT, static_cast<uint64_t>(seed), static_cast<uint64_t>(s)};
    if (dtype == at::kFloat)
        ee::langevin_cpu<float>(theta.data_ptr<float>(), v.data_ptr<float>(), grad.data_ptr<float>(),
                                bound.data_ptr<float>(), 0.0f, n, p);
    else
        ee::langevin_cpu<double>(theta.data_ptr<double>(), v.data_ptr<double>(), grad.data_ptr<double>(),
                                 bound.data_ptr<double>(), 0.0, n, p);
}

}  // namespace

TORCH_LIBRARY_IMPL(entropyeng, CPU, m) {
    m.impl("landscape_step", &landscape_step);
    m.impl("langevin", &langevin);
}
