// The CPU kernel of entropyeng::wlmd_native (schema in entropyeng/kernels/ops.py): n steps of the
// native WLMD step (csrc wlmd_native.h) on the sampler's state tensors, in place. A binding: every
// tensor checked (device, dtype, shape, contiguity, distinct storage) and every number against the
// rules the other bindings apply, the walkers split over torch's intra-op threads, pointers handed to
// csrc; no maths.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/ArrayRef.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "arg_rules.h"
#include "torch_checks.h"
#include "wlmd_native.h"

namespace {

using at::Tensor;

void require(const Tensor& t, const char* name, at::ScalarType dtype, std::vector<int64_t> shape) {
    TORCH_CHECK_VALUE(t.defined(), name, ": expected a tensor");
    TORCH_CHECK_VALUE(t.device().is_cpu(), name, ": expected a CPU tensor, got one on ", t.device());
    TORCH_CHECK_VALUE(t.scalar_type() == dtype, name, ": expected ", dtype, ", got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.sizes() == c10::IntArrayRef(shape), name, ": expected shape ", c10::IntArrayRef(shape),
                      ", got ", t.sizes());
    TORCH_CHECK_VALUE(t.is_contiguous(), name, ": expected a contiguous tensor");
}

// The model from its description: [0, L, d_0 .. d_L, act_1 .. act_L, bias_1 .. bias_L] (an MLP; 2
// first: an MLP whose first layer reads X's nonzeros only) or [1, codes...] (net_batch's layer codes,
// read against X's image shape).
ee::WlmdNativeModel model_of(c10::IntArrayRef m, const Tensor& X) {
    TORCH_CHECK_VALUE(m.size() >= 1 && (m[0] == 0 || m[0] == 1 || m[0] == 2),
                      "model: expected 0 (MLP), 1 (CNN) or 2 (MLP on sparse rows) first");
    ee::WlmdNativeModel model;
    model.kind = m[0] == 1 ? 1 : 0;
    model.sparse_input = m[0] == 2;
    if (model.kind == 0) {
        TORCH_CHECK_VALUE(m.size() >= 2 && m[1] >= 1 && m[1] <= 1024, "model: expected the MLP's layer count");
        const int64_t L = m[1];
        TORCH_CHECK_VALUE(static_cast<int64_t>(m.size()) == 2 + (L + 1) + 2 * L,
                          "model: expected 2 + (L + 1) + 2 L numbers for an MLP of L layers");
        for (int64_t i = 0; i <= L; ++i) {
            TORCH_CHECK_VALUE(m[2 + i] >= 1 && m[2 + i] <= (int64_t{1} << 20), "model: expected widths in [1, 2^20]");
            model.mlp.sizes.push_back(m[2 + i]);
        }
        for (int64_t i = 0; i < L; ++i) {
            const int64_t a = m[3 + L + i], b = m[3 + 2 * L + i];
            TORCH_CHECK_VALUE(a >= 0 && a <= 3, "model: expected activation codes 0-3, got ", a);
            TORCH_CHECK_VALUE(b == 0 || b == 1, "model: expected bias flags 0 or 1, got ", b);
            model.mlp.acts.push_back(static_cast<int>(a));
            model.mlp.bias.push_back(static_cast<char>(b));
        }
        TORCH_CHECK_VALUE(X.dim() == 2 && X.size(1) == model.mlp.sizes[0], "X: expected (N, ", model.mlp.sizes[0],
                          ") rows for this MLP, got ", X.sizes());
    } else {
        TORCH_CHECK_VALUE(X.dim() == 4, "X: expected (N, C, H, W) images for a CNN, got ", X.sizes());
        TORCH_CHECK_VALUE(X.size(1) <= 65536 && X.size(2) <= 65536 && X.size(3) <= 65536, "X: images too large");
        const std::string err = ee::parse_net(m.data() + 1, static_cast<int64_t>(m.size()) - 1, X.size(1), X.size(2),
                                              X.size(3), model.net);
        TORCH_CHECK_VALUE(err.empty(), "model: ", err);
    }
    return model;
}

// Every value of a contiguous float32 / float64 tensor finite (and > 0 where `positive`).
void require_finite(const Tensor& t, const char* name, bool positive = false) {
    const int64_t n = t.numel();
    bool ok = true;
    if (t.scalar_type() == at::kFloat) {
        const float* p = t.data_ptr<float>();
        for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]) && (!positive || p[i] > 0);
    } else {
        const double* p = t.data_ptr<double>();
        for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]) && (!positive || p[i] > 0);
    }
    TORCH_CHECK_VALUE(ok, name, positive ? ": expected positive finite values" :
                                           ": expected finite values (a NaN or an infinity in the data)");
}

template <class T>
void run(const ee::WlmdNativeModel& model, const ee::WlmdNativeConfig& c, const std::vector<Tensor>& st,
         const Tensor& X, const Tensor& targets, const Tensor& labels, const Tensor& bound, int64_t K, int64_t n) {
    ee::WlmdNativeState<T> s{st[0].data_ptr<T>(),       st[1].data_ptr<T>(),        st[2].data_ptr<T>(),
                             st[3].data_ptr<T>(),       st[4].data_ptr<double>(),   st[5].data_ptr<double>(),
                             st[6].data_ptr<int64_t>(), st[7].data_ptr<int64_t>(),  st[8].data_ptr<double>(),
                             st[9].data_ptr<bool>(),    st[10].data_ptr<int64_t>(), st[11].data_ptr<int64_t>()};
    ee::WlmdNativeData<T> d{X.data_ptr<T>(), targets.numel() ? targets.data_ptr<T>() : nullptr,
                            labels.numel() ? labels.data_ptr<int64_t>() : nullptr, bound.data_ptr<T>()};
    const ee::WlmdParallelFor pfor = [](int64_t a, int64_t b, const std::function<void(int64_t, int64_t)>& fn) {
        at::parallel_for(a, b, 1, fn);
    };
    ee::wlmd_native_run<T>(model, c, d, s, K, n, pfor);
}

void wlmd_native(const Tensor& theta, const Tensor& v, const Tensor& good_theta, const Tensor& good_v,
                 const Tensor& S, const Tensor& H, const Tensor& t, const Tensor& bad, const Tensor& bad_xy,
                 const Tensor& active, const Tensor& trips, const Tensor& last_end, const Tensor& X,
                 const Tensor& targets, const Tensor& labels, const Tensor& bound, c10::IntArrayRef model_codes,
                 c10::IntArrayRef ints, c10::ArrayRef<double> reals, int64_t n_steps) {
    ee::torch_ops::require_float(theta, "theta", 2);
    const at::ScalarType T = theta.scalar_type();
    const int64_t K = theta.size(0), P = theta.size(1);
    TORCH_CHECK_VALUE(K >= 1 && K <= (int64_t{1} << 20), "theta: expected 1 to 2^20 walkers, got ", K);
    TORCH_CHECK_VALUE(n_steps >= 0, "n_steps: expected >= 0, got ", n_steps);
    TORCH_CHECK_VALUE(ints.size() == 8, "ints: expected 8 numbers, got ", ints.size());
    TORCH_CHECK_VALUE(reals.size() == 23, "reals: expected 23 numbers, got ", reals.size());
    TORCH_CHECK_VALUE(X.defined() && X.device().is_cpu() && X.scalar_type() == T && X.is_contiguous(),
                      "X: expected a contiguous CPU tensor of theta's dtype");
    const ee::WlmdNativeModel model = model_of(model_codes, X);
    TORCH_CHECK_VALUE(model.n_params() == P, "theta: expected ", model.n_params(),
                      " parameters per walker (the model's), got ", P);

    ee::WlmdNativeConfig c;
    c.cv.n_tr = ints[0];
    c.cv.n_te = ints[1];
    c.cv.loss = static_cast<int>(ints[2]);
    c.cv.cv_y = static_cast<int>(ints[3]);
    c.cv.logit_y = ints[4] != 0;
    c.integrator = static_cast<int>(ints[5]);
    c.deposits_per_step = ints[6];
    c.seed = static_cast<uint64_t>(ints[7]);
    c.cv.d = model.out_features();
    const int64_t N = X.size(0);
    TORCH_CHECK_VALUE(c.cv.n_tr >= 1 && c.cv.n_te >= 1 && c.cv.n_tr + c.cv.n_te == N,
                      "ints: expected n_train, n_test >= 1 that add up to X's ", N, " rows");
    TORCH_CHECK_VALUE(c.cv.loss >= 0 && c.cv.loss <= 2, "ints: loss code 0 (mse), 1 (ce) or 2 (bce)");
    TORCH_CHECK_VALUE(c.cv.cv_y == 0 || c.cv.cv_y == 1, "ints: cv_y code 0 (test loss) or 1 (smoothed accuracy)");
    TORCH_CHECK_VALUE(c.integrator == 0 || c.integrator == 1, "ints: integrator code 0 (paper) or 1 (baoab)");
    TORCH_CHECK_VALUE(c.deposits_per_step >= 1, "ints: deposits_per_step >= 1");
    for (double r : reals) TORCH_CHECK_VALUE(!std::isnan(r), "reals: expected numbers, got NaN");
    c.cv.alpha = reals[0];
    const std::string ge = ee::rules::grid_error(reals[1], reals[2], reals[3], reals[4], reals[5], reals[6]);
    TORCH_CHECK_VALUE(ge.empty(), "grid: ", ge);
    c.grid = ee::rules::grid_spec(reals[1], reals[2], reals[3], reals[4], reals[5], reals[6]);
    c.sigma = reals[7];
    c.cutoff = reals[8];
    const std::string he = ee::rules::hill_error(c.grid, c.sigma, c.cutoff);
    TORCH_CHECK_VALUE(he.empty(), he);
    c.wall_lo[0] = reals[9];
    c.wall_lo[1] = reals[10];
    c.wall_hi[0] = reals[11];
    c.wall_hi[1] = reals[12];
    c.wall_c = reals[13];
    c.f_max = reals[14];
    c.t1 = reals[15];
    c.t2 = reals[16];
    c.t3 = reals[17];
    c.dt = reals[18];
    c.gamma = reals[19];
    c.kT = reals[20];
    c.ends_lo = reals[21];
    c.ends_hi = reals[22];
    TORCH_CHECK_VALUE(std::isfinite(c.cv.alpha) && c.cv.alpha > 0, "alpha: expected a positive number");
    TORCH_CHECK_VALUE(std::isfinite(c.wall_c) && c.wall_c >= 0, "wall_c: expected a number >= 0");
    TORCH_CHECK_VALUE(std::isfinite(c.f_max) && std::isfinite(c.t1) && c.t1 > 0 && std::isfinite(c.t2) &&
                          std::isfinite(c.t3) && c.t3 < c.t2,
                      "schedule: expected finite f_max, t1 > 0, t2 and t3 < t2");
    TORCH_CHECK_VALUE(std::isfinite(c.ends_lo) && std::isfinite(c.ends_hi), "ends: expected finite numbers");
    const std::string le = ee::rules::langevin_error(c.dt, c.gamma, c.kT);
    TORCH_CHECK_VALUE(le.empty(), le);

    require(v, "v", T, {K, P});
    require(good_theta, "good_theta", T, {K, P});
    require(good_v, "good_v", T, {K, P});
    require(S, "S", at::kDouble, {c.grid.nx, c.grid.ny});
    require(H, "H", at::kDouble, {c.grid.nx, c.grid.ny});
    require(t, "t", at::kLong, {});
    require(bad, "bad", at::kLong, {K});
    require(bad_xy, "bad_xy", at::kDouble, {K, 2});
    require(active, "active", at::kBool, {K});
    require(trips, "trips", at::kLong, {K});
    require(last_end, "last_end", at::kLong, {K});
    require(bound, "bound", T, {P});
    const std::vector<Tensor> st{theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end};
    const char* names[] = {"theta", "v", "good_theta", "good_v", "S", "H", "t", "bad", "bad_xy", "active", "trips",
                           "last_end"};
    for (size_t i = 0; i < st.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            TORCH_CHECK_VALUE(!st[i].is_alias_of(st[j]), names[i], ": expected another tensor than ", names[j]);
    TORCH_CHECK_VALUE(*t.data_ptr<int64_t>() >= 0, "t: expected a step count >= 0");
    const int64_t d = c.cv.d;
    const bool needs_targets = c.cv.loss != 1;
    const bool needs_labels = c.cv.loss == 1 || c.cv.cv_y == 1;
    if (needs_targets) {
        require(targets, "targets", T, {N, d});
        require_finite(targets, "targets");
    }
    if (needs_labels) {
        require(labels, "labels", at::kLong, {N});
        const int64_t* l = labels.data_ptr<int64_t>();
        const int64_t hi = d == 1 ? 2 : d;
        for (int64_t i = (c.cv.loss == 1 ? 0 : c.cv.n_tr); i < N; ++i)
            TORCH_CHECK_VALUE(l[i] >= 0 && l[i] < hi, "labels: expected classes in [0, ", hi, "), got ", l[i]);
    }
    require_finite(X, "X");
    require_finite(bound, "bound", true);
    if (n_steps == 0) return;
    if (T == at::kFloat)
        run<float>(model, c, st, X, targets, labels, bound, K, n_steps);
    else
        run<double>(model, c, st, X, targets, labels, bound, K, n_steps);
}

// The CV spec of [n_train, n_test, loss, cv_y, logit_y] and alpha for outputs out (K, N, d), with the
// targets / labels the loss needs checked.
ee::CvSpec cv_spec_of(const Tensor& out, const Tensor& targets, const Tensor& labels, c10::IntArrayRef ints,
                      double alpha) {
    ee::torch_ops::require_float(out, "out", 3);
    ee::CvSpec c;
    TORCH_CHECK_VALUE(ints.size() == 5, "ints: expected [n_train, n_test, loss, cv_y, logit_y], got ", ints.size(),
                      " numbers");
    c.n_tr = ints[0];
    c.n_te = ints[1];
    c.loss = static_cast<int>(ints[2]);
    c.cv_y = static_cast<int>(ints[3]);
    c.logit_y = ints[4] != 0;
    c.alpha = alpha;
    c.d = out.size(2);
    const int64_t N = out.size(1);
    TORCH_CHECK_VALUE(c.n_tr >= 1 && c.n_te >= 1 && c.n_tr + c.n_te == N,
                      "ints: expected n_train, n_test >= 1 that add up to out's ", N, " rows");
    TORCH_CHECK_VALUE(c.loss >= 0 && c.loss <= 2, "ints: loss code 0 (mse), 1 (ce) or 2 (bce)");
    TORCH_CHECK_VALUE(c.cv_y == 0 || c.cv_y == 1, "ints: cv_y code 0 (test loss) or 1 (smoothed accuracy)");
    TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha > 0, "alpha: expected a positive number");
    if (c.loss != 1) require(targets, "targets", out.scalar_type(), {N, c.d});
    if (c.loss == 1 || c.cv_y == 1) {
        require(labels, "labels", at::kLong, {N});
        const int64_t* l = labels.data_ptr<int64_t>();
        const int64_t hi = c.d == 1 ? 2 : c.d;
        for (int64_t i = (c.loss == 1 ? 0 : c.n_tr); i < N; ++i)
            TORCH_CHECK_VALUE(l[i] >= 0 && l[i] < hi, "labels: expected classes in [0, ", hi, "), got ", l[i]);
    }
    return c;
}

// (K, 5) float64: x, y and what the pullback needs (L_train, L_test, A_s) of each walker's outputs
// (csrc wlmd_physics.h cv_values): the torch step's CVs, the same function as the native step's.
Tensor wlmd_cvs(const Tensor& out, const Tensor& targets, const Tensor& labels, c10::IntArrayRef ints, double alpha) {
    const ee::CvSpec c = cv_spec_of(out, targets, labels, ints, alpha);
    const int64_t K = out.size(0), N = out.size(1);
    Tensor values = at::empty({K, 5}, out.options().dtype(at::kDouble));
    double* v = values.data_ptr<double>();
    const int64_t* l = labels.numel() ? labels.data_ptr<int64_t>() : nullptr;
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (out.scalar_type() == at::kFloat)
            ee::wlmd_cvs_cpu<float>(c, out.data_ptr<float>(), targets.numel() ? targets.data_ptr<float>() : nullptr, l,
                                    k0, k1, v);
        else
            ee::wlmd_cvs_cpu<double>(c, out.data_ptr<double>(), targets.numel() ? targets.data_ptr<double>() : nullptr,
                                     l, k0, k1, v);
    });
    return values;
}

// grad_out (K, N, d) = seeds_x dx/dout + seeds_y dy/dout of each walker (csrc cv_pullback), from the
// values wlmd_cvs returned for the same outputs.
Tensor wlmd_cv_pullback(const Tensor& out, const Tensor& targets, const Tensor& labels, const Tensor& values,
                        const Tensor& seeds, c10::IntArrayRef ints, double alpha) {
    const ee::CvSpec c = cv_spec_of(out, targets, labels, ints, alpha);
    const int64_t K = out.size(0), N = out.size(1);
    require(values, "values", at::kDouble, {K, 5});
    TORCH_CHECK_VALUE(seeds.defined() && seeds.device().is_cpu() && seeds.dim() == 2 && seeds.size(0) == K &&
                          seeds.size(1) == 2,
                      "seeds: expected a (", K, ", 2) CPU tensor");
    const Tensor s = seeds.to(at::kDouble).contiguous();
    Tensor grad_out = at::empty_like(out);
    const double* v = values.data_ptr<double>();
    const double* sd = s.data_ptr<double>();
    const int64_t* l = labels.numel() ? labels.data_ptr<int64_t>() : nullptr;
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (out.scalar_type() == at::kFloat)
            ee::wlmd_cv_pullback_cpu<float>(c, out.data_ptr<float>(),
                                            targets.numel() ? targets.data_ptr<float>() : nullptr, l, v, sd, k0, k1,
                                            grad_out.data_ptr<float>());
        else
            ee::wlmd_cv_pullback_cpu<double>(c, out.data_ptr<double>(),
                                             targets.numel() ? targets.data_ptr<double>() : nullptr, l, v, sd, k0, k1,
                                             grad_out.data_ptr<double>());
    });
    return grad_out;
}

}  // namespace

TORCH_LIBRARY_IMPL(entropyeng, CPU, m) {
    m.impl("wlmd_native", &wlmd_native);
    m.impl("wlmd_cvs", &wlmd_cvs);
    m.impl("wlmd_cv_pullback", &wlmd_cv_pullback);
}
