// Argument parsing shared by the WLMC bindings (CPU chain and CUDA walkers): every array is checked
// here, because a bad label or size would make the C++ read out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "checks.h"
#include "mlp.h"
#include "wlmc.h"
#include "wlmc_walker.h"
#include "wlmc_walkers_image.h"

namespace ee::bind {

namespace py = pybind11;

inline const double* f64_array(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
    py::array a = as_ndarray(obj, name);
    require_f64(a, name);
    require_shape(a, shape, name);
    require_contiguous(a, name);
    return static_cast<const double*>(a.data());
}

inline ee::DataSet make_set(py::handle X, py::handle t, const ee::MlpSpec& spec, const char* xname, const char* tname) {
    py::array Xa = as_ndarray(X, xname);
    if (Xa.ndim() != 2) throw py::value_error(std::string(xname) + ": expected a 2-D (features, rows) array");
    ee::DataSet d;
    d.n = Xa.shape(1);
    if (d.n < 1) throw py::value_error(std::string(xname) + ": expected at least one row");
    const double* px = f64_array(X, xname, {spec.sizes[0], d.n});
    d.X.assign(px, px + spec.sizes[0] * d.n);
    require_finite(px, spec.sizes[0] * d.n, xname);
    const int64_t K = spec.sizes.back();
    if (spec.loss == ee::Loss::mse) {
        const double* pt = f64_array(t, tname, {K, d.n});
        require_finite(pt, K * d.n, tname);
        d.targets.assign(pt, pt + K * d.n);
    } else {
        const double* pt = f64_array(t, tname, {d.n});
        for (int64_t i = 0; i < d.n; ++i) {
            const double v = pt[i];
            const bool ok = spec.loss == ee::Loss::bce ? (v == 0.0 || v == 1.0)
                                                       : (v >= 0.0 && v < static_cast<double>(K) && v == std::floor(v));
            if (!ok)
                throw py::value_error(std::string(tname) + ": label " + std::to_string(i) + " is " + std::to_string(v) +
                                      (spec.loss == ee::Loss::bce ? ", expected 0 or 1"
                                                                  : ", expected a class index in [0, " + std::to_string(K) + ")"));
        }
        d.targets.assign(pt, pt + d.n);
    }
    return d;
}

// Everything a chain needs, checked: sizes, codes, parameters (n_walkers x P) inside their box, data
// with valid labels, the grid.
struct ChainArgs {
    ee::MlpSpec spec;
    std::vector<double> params, bounds;
    ee::DataSet train, test;
    ee::GridSpec grid{};
};

inline ChainArgs parse_chain_args(std::vector<int64_t> sizes, std::vector<int> acts, std::vector<bool> bias, int loss,
                                  int metric, py::handle params, py::handle X_train, py::handle t_train,
                                  py::handle X_test, py::handle t_test, py::handle bounds, double x_min, double x_max,
                                  int64_t nx, double y_min, double y_max, int64_t ny, double step, int64_t walkers) {
    if (sizes.size() < 2) throw py::value_error("sizes: expected at least an input and an output size");
    const size_t L = sizes.size() - 1;
    if (acts.size() != L) throw py::value_error("acts: expected one activation per layer");
    if (bias.size() != L) throw py::value_error("bias: expected one flag per layer");
    for (int64_t s : sizes)
        if (s < 1 || s > (1 << 20)) throw py::value_error("sizes: expected layer sizes in [1, 2^20]");
    for (int a : acts)
        if (a < 0 || a > 3) throw py::value_error("acts: unknown activation code");
    if (loss < 0 || loss > 2) throw py::value_error("loss: unknown loss code");
    if (metric < 0 || metric > 1) throw py::value_error("metric: unknown metric code");
    ee::MlpSpec spec;
    spec.sizes = sizes;
    for (int a : acts) spec.acts.push_back(static_cast<ee::Act>(a));
    spec.bias = bias;
    spec.loss = static_cast<ee::Loss>(loss);
    spec.metric = static_cast<ee::Metric>(metric);
    if (spec.loss == ee::Loss::bce && sizes.back() != 1) throw py::value_error("loss: 'bce' needs one output");
    if (spec.loss == ee::Loss::ce && sizes.back() < 2) throw py::value_error("loss: 'ce' needs at least two outputs");
    if (spec.loss == ee::Loss::mse && spec.metric == ee::Metric::accuracy)
        throw py::value_error("metric: 'accuracy' needs a classification loss ('bce' or 'ce')");
    int64_t P = 0;
    for (size_t l = 0; l < L; ++l) P += sizes[l] * sizes[l + 1] + (bias[l] ? sizes[l + 1] : 0);
    if (walkers < 1) throw py::value_error("walkers: expected at least one walker");
    const bool flat = py::isinstance<py::array>(params) && py::reinterpret_borrow<py::array>(params).ndim() == 1;
    const double* pp = f64_array(params, "params",
                                 walkers == 1 && flat ? std::vector<int64_t>{P} : std::vector<int64_t>{walkers, P});
    require_finite(pp, walkers * P, "params");
    const double* pb = f64_array(bounds, "bounds", {P});
    for (int64_t k = 0; k < P; ++k)
        if (!(pb[k] > 0.0) || !std::isfinite(pb[k])) throw py::value_error("bounds: expected finite values > 0");
    for (int64_t k = 0; k < walkers * P; ++k)
        if (std::fabs(pp[k]) > pb[k % P])
            throw py::value_error("params: parameter " + std::to_string(k % P) + " lies outside its box");
    if (!(step > 0.0) || !std::isfinite(step)) throw py::value_error("step: expected a finite number > 0");
    ChainArgs out;
    out.grid = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    out.train = make_set(X_train, t_train, spec, "X_train", "y_train");
    out.test = make_set(X_test, t_test, spec, "X_test", "y_test");
    out.params.assign(pp, pp + walkers * P);
    out.bounds.assign(pb, pb + P);
    out.spec = std::move(spec);
    return out;
}

inline ee::WlmcChain* make_chain(std::vector<int64_t> sizes, std::vector<int> acts, std::vector<bool> bias, int loss,
                          int metric, py::handle params, py::handle X_train, py::handle t_train, py::handle X_test,
                          py::handle t_test, py::handle bounds, double x_min, double x_max, int64_t nx, double y_min,
                          double y_max, int64_t ny, uint64_t seed, uint64_t walker, double step,
                          int64_t refresh_every, bool y_log, int64_t adapt_every) {
    if (refresh_every < 0) throw py::value_error("refresh_every: expected a count >= 0");
    if (adapt_every < 0) throw py::value_error("adapt_every: expected a count >= 0");
    ChainArgs a = parse_chain_args(std::move(sizes), std::move(acts), std::move(bias), loss, metric, params, X_train,
                                   t_train, X_test, t_test, bounds, x_min, x_max, nx, y_min, y_max, ny, step, 1);
    ee::WlmcConfig cfg;
    cfg.seed = seed;
    cfg.walker = walker;
    cfg.refresh_every = refresh_every;
    cfg.y_log = y_log;
    cfg.adapt_every = adapt_every;
    ee::MlpState mlp(std::move(a.spec), a.params.data(), std::move(a.train), std::move(a.test));
    return new ee::WlmcChain(std::move(mlp), a.grid, std::move(a.bounds), cfg, step);
}

// The checked image of W walkers (CPU threads or CUDA blocks); params is W x P.
inline ee::walkers::Image make_walkers_image(std::vector<int64_t> sizes, std::vector<int> acts, std::vector<bool> bias,
                                             int loss, int metric, py::handle params, py::handle X_train,
                                             py::handle t_train, py::handle X_test, py::handle t_test,
                                             py::handle bounds, double x_min, double x_max, int64_t nx, double y_min,
                                             double y_max, int64_t ny, double step, bool y_log, int64_t walkers,
                                             int64_t refresh_every) {
    if (walkers < 1 || walkers > (1 << 20)) throw py::value_error("walkers: expected a count in [1, 2^20]");
    if (refresh_every < 0) throw py::value_error("refresh_every: expected a count >= 0");
    if (nx > (1 << 20) || ny > (1 << 20) || nx * ny > (int64_t{1} << 28))
        throw py::value_error("grid: expected at most 2^28 cells for the walkers' shared ln g");
    ChainArgs a = parse_chain_args(std::move(sizes), std::move(acts), std::move(bias), loss, metric, params, X_train,
                                   t_train, X_test, t_test, bounds, x_min, x_max, nx, y_min, y_max, ny, step, walkers);
    return ee::walkers::build_image(a.spec, a.params, walkers, a.train, a.test, a.bounds, a.grid, step, y_log,
                                    refresh_every);
}

// ln g / H (nx x ny), parameters (W x P) and states (W x S_COUNT) of a walkers object, checked.
struct WalkersUpload {
    std::vector<double> lnG, H, params, state;
};

// Each walker's state must be one the kernels can index with: a bin on the grid or (-1, -1), a step
// > 0, integral counters; its parameters inside their box.
inline void check_walker_states(const std::vector<double>& state, const std::vector<double>& params,
                                const double* bounds, int64_t W, int64_t P, int64_t nx, int64_t ny) {
    using namespace ee::walkers;
    auto bad = [](int64_t w, const std::string& what) {
        return py::value_error("state: walker " + std::to_string(w) + " " + what);
    };
    for (int64_t w = 0; w < W; ++w) {
        const double* s = state.data() + w * S_COUNT;
        for (int q = 0; q < S_COUNT; ++q)
            if (!std::isfinite(s[q])) throw bad(w, "has a non-finite value at field " + std::to_string(q));
        const double ci = s[S_CI], cj = s[S_CJ];
        const bool off = ci == -1.0 && cj == -1.0;
        const bool on = ci >= 0.0 && ci < static_cast<double>(nx) && cj >= 0.0 && cj < static_cast<double>(ny) &&
                        ci == std::floor(ci) && cj == std::floor(cj);
        if (!off && !on) throw bad(w, "has a bin outside the grid");
        if (!(s[S_STEP] > 0.0)) throw bad(w, "has step <= 0");
        for (int q : {S_T, S_WINDOW, S_ACCEPTED, S_REJ_BOX, S_REJ_GRID, S_REJ_WL})
            if (!(s[q] >= 0.0 && s[q] <= 9.0e15) || s[q] != std::floor(s[q]))
                throw bad(w, "has a counter that is not a count (field " + std::to_string(q) + ")");
        for (int64_t k = 0; k < P; ++k)
            if (!(std::fabs(params[w * P + k]) <= bounds[k]))
                throw py::value_error("params: walker " + std::to_string(w) + " parameter " + std::to_string(k) +
                                      " lies outside its box");
    }
}

inline WalkersUpload walkers_upload_args(py::handle lnG, py::handle H, py::handle params, py::handle state,
                                         int64_t nx, int64_t ny, int64_t W, int64_t P, const double* bounds) {
    constexpr int64_t S = ee::walkers::S_COUNT;
    const double* pg = f64_array(lnG, "lnG", {nx, ny});
    const double* ph = f64_array(H, "H", {nx, ny});
    const double* pp = f64_array(params, "params", {W, P});
    const double* ps = f64_array(state, "state", {W, S});
    require_finite(pg, nx * ny, "lnG");
    require_finite(ph, nx * ny, "H");
    require_finite(pp, W * P, "params");
    require_finite(ps, W * S, "state");
    WalkersUpload u;
    u.lnG.assign(pg, pg + nx * ny);
    u.H.assign(ph, ph + nx * ny);
    u.params.assign(pp, pp + W * P);
    u.state.assign(ps, ps + W * S);
    check_walker_states(u.state, u.params, bounds, W, P, nx, ny);
    return u;
}

inline py::array_t<double> as_array(const std::vector<double>& v, std::vector<int64_t> shape) {
    py::array_t<double> out(shape);
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

inline py::dict stats_dict(const std::vector<double>& s) {
    using namespace ee::walkers;
    py::dict d;
    d["visited"] = static_cast<int64_t>(s[T_VISITED]);
    d["flatness"] = s[T_VISITED] > 0 ? s[T_HMIN] / (s[T_HSUM] / s[T_VISITED]) : 0.0;
    d["t"] = static_cast<int64_t>(s[T_STEPS]);
    d["accepted"] = static_cast<int64_t>(s[T_ACCEPTED]);
    d["rejected_box"] = static_cast<int64_t>(s[T_REJ_BOX]);
    d["rejected_grid"] = static_cast<int64_t>(s[T_REJ_GRID]);
    d["rejected_wl"] = static_cast<int64_t>(s[T_REJ_WL]);
    d["off_grid"] = static_cast<int64_t>(s[T_OFF]);
    return d;
}

}  // namespace ee::bind
