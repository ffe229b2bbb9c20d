// The native WLMD step (wlmd_native.h): the torch step's body (entropyeng/wlmd/step.py) over raw
// pointers, composing the batched model kernels, the landscape kernel and the Langevin kernel.
#include "wlmd_native.h"

#include <math.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "aligned.h"
#include "landscape.h"
#include "langevin.h"
#include "step_claims.h"

namespace ee {

namespace {

// Walker k's forward pass (theta K x P) into o (its N x d outputs). Its activations go to `cache`,
// one walker's worth: the thread's own, which its backward pass reads straight after (K walkers'
// caches would be K x 120 KB for the spiral network, out of the L2 cache by the time a step comes
// back); the outputs and gradients likewise (the thread's, walker after walker). A CNN keeps its
// activations where they fit in NET_CACHE_MAX_BYTES (cache_per_walker > 0); else its backward pass
// recomputes them block by block.
template <class T>
void forward(const WlmdNativeModel& m, const T* theta, const T* X, int64_t N, int64_t k, T* o, T* cache,
             int64_t per_cache, bool load_images) {
    const T* th = theta + k * m.n_params();  // walker k's parameters: walker 0 of the kernels
    if (m.kind == 0)
        mlp_batch_forward<T>(m.mlp, th, X, N, 0, 1, o, cache);
    else if (per_cache > 0)
        net_batch_forward_cached<T>(m.net, th, X, N, o, cache, load_images);
    else
        net_batch_forward<T>(m.net, th, X, N, 0, 1, o);
}

// Walker k's vector-Jacobian product: go (its N x d output seeds) into g (its P gradients).
template <class T>
void backward(const WlmdNativeModel& m, const T* theta, const T* X, int64_t N, int64_t k, const T* cache,
              int64_t per_cache, const T* go, T* g) {
    const T* th = theta + k * m.n_params();
    if (m.kind == 0)
        mlp_batch_backward<T>(m.mlp, th, X, N, cache, go, 0, 1, g);
    else if (per_cache > 0)
        net_batch_backward_cached<T>(m.net, th, N, cache, go, g);
    else
        net_batch_backward<T>(m.net, th, X, N, go, 0, 1, g);
}

// The most a thread's CNN activation cache may hold: the 8 x 8 digits CNNs' 1.4-2.6 MB (2-4 channels,
// 500 images, float32, activations in place) fit; a 28 x 28 MNIST CNN's (over 10 MB) would go to
// memory and back each step, which costs more than the recomputation it saves.
constexpr int64_t NET_CACHE_MAX_BYTES = int64_t{8} << 20;

template <class T>
int64_t cache_per_walker(const WlmdNativeModel& m, int64_t N) {
    if (m.kind == 0) return ((N + MLP_CACHE_CHUNK - 1) / MLP_CACHE_CHUNK) * m.mlp.cache_features() * MLP_CACHE_CHUNK;
    const int64_t len = net_batch_cache_len<T>(m.net, N);
    return len * static_cast<int64_t>(sizeof(T)) <= NET_CACHE_MAX_BYTES ? len : 0;
}

// A thread's activation cache (grown, never shrunk) and the layout it was last zeroed for: a CNN's
// cache needs zero borders, which its passes keep, so it is zeroed only when the layout changes. A
// CNN's cache also holds the images in its blocks' layout, loaded by the first forward pass of a
// call on the thread (`images_of`: that call's number) and read by the call's later steps.
template <class T>
struct WalkerCache {
    AlignedVector<T> values;  // (on a cache line: the kernels load whole registers)
    std::vector<int64_t> layout;
    uint64_t images_of = 0;
};
template <class T>
thread_local WalkerCache<T> walker_cache;

std::atomic<uint64_t> native_calls{0};  // numbers the calls of wlmd_native_run (from 1)

// From HILL_PARALLEL_MIN walkers on, a step's hills are added by HILL_BANDS bands of the rows they
// touch, which the threads claim (one hill is not worth splitting).
constexpr int64_t HILL_BANDS = 16, HILL_PARALLEL_MIN = 2;

std::vector<int64_t> cache_layout(const WlmdNativeModel& m, int64_t N, int64_t per_cache) {
    std::vector<int64_t> key{m.kind, N, per_cache};
    if (m.kind == 1) {
        key.insert(key.end(), {m.net.C, m.net.H, m.net.W, m.net.border});
        for (const NetLayer& L : m.net.layers)  // (the activation: SiLU keeps its input, the others run in place)
            key.insert(key.end(), {L.kind, L.act, L.C_out, L.H_out, L.W_out});
    }
    return key;
}

// z rounded to T and back. Through a volatile: GCC 12 at -O3 dropped the plain double -> float ->
// double round trip here (the seeds kept their float64 bits, one ulp off the torch step's).
template <class T>
double rounded(double z) {
    volatile T r = static_cast<T>(z);
    return static_cast<double>(r);
}

// The histogram's cell of a finite (x, y), clamped to the grid (landscape_step_cpu's rule).
int64_t histogram_cell(const GridSpec& g, double x, double y) {
    const double fi = std::floor((x - g.x_min) / g.dx()), fj = std::floor((y - g.y_min) / g.dy());
    const int64_t i = static_cast<int64_t>(std::min(std::max(fi, 0.0), static_cast<double>(g.nx - 1)));
    const int64_t j = static_cast<int64_t>(std::min(std::max(fj, 0.0), static_cast<double>(g.ny - 1)));
    return i * g.ny + j;
}

CvValues unpack(const double* v) {
    CvValues r;
    r.x = v[0];
    r.y = v[1];
    r.L_tr = v[2];
    r.L_te = v[3];
    r.A_s = v[4];
    return r;
}

}  // namespace

template <class T>
void wlmd_cvs_cpu(const CvSpec& c, const T* out, const T* targets, const int64_t* labels, int64_t k0, int64_t k1,
                  double* values) {
    const int64_t stride = (c.n_tr + c.n_te) * c.d;
    for (int64_t k = k0; k < k1; ++k) {
        const CvValues r = cv_values<T>(c, out + k * stride, targets, labels);
        const double row[5] = {r.x, r.y, r.L_tr, r.L_te, r.A_s};
        std::copy(row, row + 5, values + 5 * k);
    }
}

template <class T>
void wlmd_cv_pullback_cpu(const CvSpec& c, const T* out, const T* targets, const int64_t* labels,
                          const double* values, const double* seeds, int64_t k0, int64_t k1, T* grad_out) {
    const int64_t stride = (c.n_tr + c.n_te) * c.d;
    for (int64_t k = k0; k < k1; ++k)
        cv_pullback<T>(c, out + k * stride, targets, labels, unpack(values + 5 * k), seeds[2 * k], seeds[2 * k + 1],
                       grad_out + k * stride);
}

template <class T>
void wlmd_native_run(const WlmdNativeModel& dense_model, const WlmdNativeConfig& c, const WlmdNativeData<T>& data,
                     const WlmdNativeState<T>& s, int64_t K, int64_t n_steps, const WlmdParallelFor& pfor) {
    const int64_t P = dense_model.n_params(), d = dense_model.out_features();
    const int64_t N = c.cv.n_tr + c.cv.n_te;
    // a sparse first layer reads the rows' nonzeros, found once for the call's n steps
    WlmdNativeModel model = dense_model;
    SparseRows<T> rows;
    if (model.kind == 0 && model.sparse_input) {
        rows = sparse_rows<T>(data.X, N, model.mlp.sizes[0]);
        model.mlp.sparse_rows = &rows;
    }
    const int64_t per_cache = cache_per_walker<T>(model, N);
    const std::vector<int64_t> layout = cache_layout(model, N, per_cache);
    const uint64_t call = ++native_calls;
    AlignedVector<T> zeros;
    if (c.integrator == INTEGRATOR_BAOAB) zeros.assign(static_cast<size_t>(P), T(0));
    // (x, y) and the weight of each walker, two steps' worth: the threads start a step's forward
    // passes while the previous step's tail still reads its own
    std::vector<double> xs(2 * K), ys(2 * K), weights(2 * K), seeds(2 * K);
    std::vector<PreparedHill> hills(static_cast<size_t>(K));
    const double grid_lo[2] = {c.grid.x_min, c.grid.y_min}, grid_hi[2] = {c.grid.x_max, c.grid.y_max};
    if (n_steps <= 0) return;

    // Step `step` of the call: its t (each step adds 1), f, and the integrator's parameters.
    const int64_t t0 = *s.t;
    struct StepConsts {
        int64_t step, t;
        double f, kick;
        LangevinParams lp, half_kick, half_rest;
    };
    auto consts = [&](int64_t step) {
        const int64_t t = t0 + step;
        const double f = schedule_f(static_cast<double>(t) * static_cast<double>(c.deposits_per_step) + 1.0, c.f_max,
                                    c.t1, c.t2, c.t3);
        const double kick = (c.integrator == INTEGRATOR_BAOAB && t != 0) ? 2.0 : 1.0;
        return StepConsts{step,
                          t,
                          f,
                          kick,
                          LangevinParams{c.dt, c.gamma, c.kT, c.seed, static_cast<uint64_t>(t)},
                          LangevinParams{0.5 * c.dt, 0.0, c.kT, c.seed, static_cast<uint64_t>(t)},
                          LangevinParams{0.5 * c.dt, c.gamma, c.kT, c.seed, static_cast<uint64_t>(t)}};
    };

    // A thread's working memory: its activation cache, a walker's outputs, their seeds and its
    // gradient (walker after walker), and a cross-entropy walker's softmax (from its CVs to their pullback).
    struct Buffers {
        WalkerCache<T>* wc;  // (its values: the activation cache)
        T *out, *grad_out, *grad;
        double* probs;
    };
    auto buffers = [&]() {
        WalkerCache<T>& wc = walker_cache<T>;
        if (wc.layout != layout) {
            wc.values.assign(static_cast<size_t>(std::max<int64_t>(per_cache, 1)), T(0));
            wc.layout = layout;
            wc.images_of = 0;
        }
        thread_local AlignedVector<T> out, grad_out, grad;
        if (static_cast<int64_t>(out.size()) < N * d) out.resize(static_cast<size_t>(N * d));
        if (grad_out.size() < out.size()) grad_out.resize(out.size());
        if (static_cast<int64_t>(grad.size()) < P) grad.resize(static_cast<size_t>(P));
        thread_local std::vector<double> softmax;
        double* probs = nullptr;
        if (c.cv.loss == LOSS_CE) {
            if (static_cast<int64_t>(softmax.size()) < N * d) softmax.resize(static_cast<size_t>(N * d));
            probs = softmax.data();
        }
        return Buffers{&wc, out.data(), grad_out.data(), grad.data(), probs};
    };

    // Walker k's step, from its forward pass to its Langevin update, on one thread (its activations
    // still in the cache for the backward pass); dS is read from S as it was before this step's hills,
    // which all walkers deposit afterwards, in walker order (landscape_step_cpu's order).
    const int64_t n_bands = K < HILL_PARALLEL_MIN ? 1 : HILL_BANDS;  // (the hills' bands: see `band`)
    StepClaims claims(K, n_bands);
    auto walker = [&](int64_t k, const StepConsts& sc, const Buffers& b) {
        T* th = s.theta + k * P;
        T* v = s.v + k * P;
        T* gth = s.good_theta + k * P;
        T* gv = s.good_v + k * P;
        const int64_t at = (sc.step & 1) * K;  // this step's half of xs, ys, weights
        double* x = xs.data() + at;
        double* y = ys.data() + at;
        double* weight = weights.data() + at;
        // S with the previous step's hills, which that step's bands no longer read (from here on:
        // its hills[k] may change); false when another thread failed
        auto landscape_ready = [&] {
            return claims.wait([&] { return claims.steps_done.load(std::memory_order_acquire) >= sc.step; });
        };
        weight[k] = 0.0;
        if (!s.active[k]) {  // dropped earlier: frozen at its last good state, deposits nothing
            x[k] = y[k] = NAN;
            if (landscape_ready()) hills[k].kind = HILL_NONE;
            return;
        }
        // 1. the forward pass and (x, y)
        forward(model, s.theta, data.X, N, k, b.out, b.wc->values.data(), per_cache, b.wc->images_of != call);
        b.wc->images_of = call;
        const CvValues cvk = cv_values<T>(c.cv, b.out, data.targets, data.labels, b.probs);
        x[k] = cvk.x;
        y[k] = cvk.y;
        // 2. the check, the round trips
        const bool live = on_grid(x[k], y[k], grid_lo, grid_hi);
        if (!live) {
            s.bad[k] = sc.t;
            s.bad_xy[2 * k] = x[k];
            s.bad_xy[2 * k + 1] = y[k];
            s.active[k] = false;
        }
        s.trips[k] += round_trip(x[k], live, c.ends_lo, c.ends_hi, s.last_end[k]);
        if (!live) {  // back to the last good state
            std::copy(gth, gth + P, th);
            std::fill(v, v + P, T(0));
            if (landscape_ready()) hills[k].kind = HILL_NONE;
            return;
        }
        weight[k] = 1.0;
        // 3. dS at (x, y) before this step's hills; the walker's hill of height f made ready
        if (!landscape_ready()) return;
        hills[k].kind = HILL_NONE;
        double dSx = 0.0, dSy = 0.0;
        gradient_cpu<double>(s.S, c.grid, &x[k], &y[k], 1, &dSx, &dSy);
        if (sc.f != 0.0) hill_prepare(c.grid, x[k], y[k], sc.f * weight[k], c.sigma, c.cutoff, hills[k]);
        // 4. the seeds: dS plus the walls' force, times the integrator's kick scale, in the model's
        // dtype (as the torch step casts them before its pullback)
        seeds[2 * k] = rounded<T>((dSx + wall_force(x[k], c.wall_lo[0], c.wall_hi[0], c.wall_c)) * sc.kick);
        seeds[2 * k + 1] = rounded<T>((dSy + wall_force(y[k], c.wall_lo[1], c.wall_hi[1], c.wall_c)) * sc.kick);
        // 5. the pullback, the last good state, the integrator
        cv_pullback<T>(c.cv, b.out, data.targets, data.labels, cvk, seeds[2 * k], seeds[2 * k + 1], b.grad_out,
                       b.probs);
        backward(model, s.theta, data.X, N, k, b.wc->values.data(), per_cache, b.grad_out, b.grad);
        std::copy(th, th + P, gth);
        std::copy(v, v + P, gv);
        const uint64_t first = static_cast<uint64_t>(k * P);
        if (c.integrator == INTEGRATOR_BAOAB) {
            langevin_cpu_at<T>(th, v, b.grad, data.bound, T(0), P, first, sc.half_kick);
            langevin_cpu_at<T>(th, v, zeros.data(), data.bound, T(0), P, first, sc.half_rest);
        } else {
            langevin_cpu_at<T>(th, v, b.grad, data.bound, T(0), P, first, sc.lp);
        }
    };

    // 3'. the hills in walker order (landscape_step_cpu's): one band adds them all over every row; from
    // HILL_PARALLEL_MIN walkers on, HILL_BANDS bands split the rows the hills touch, each band taking
    // every hill in walker order (each cell's sum as one thread's)
    auto band = [&](int64_t b) {
        if (n_bands == 1) {
            for (const PreparedHill& h : hills) hill_add_rows<double>(s.S, c.grid, h, 0, c.grid.nx);
            return;
        }
        int64_t row_lo = c.grid.nx, row_hi = 0;  // the rows this step's hills touch
        for (const PreparedHill& h : hills) {
            if (h.kind == HILL_NONE) continue;
            const bool disk = h.kind == HILL_DISK;
            row_lo = std::min(row_lo, disk ? h.i_lo + h.a0 : h.cell_i);
            row_hi = std::max(row_hi, (disk ? h.i_lo + h.a1 : h.cell_i) + 1);
        }
        if (row_lo >= row_hi) return;
        const int64_t rows = row_hi - row_lo;
        const int64_t lo = row_lo + b * rows / n_bands, hi = row_lo + (b + 1) * rows / n_bands;
        for (const PreparedHill& h : hills) hill_add_rows<double>(s.S, c.grid, h, lo, hi);
    };
    // then the histogram counts, and t
    auto tail = [&](const StepConsts& sc) {
        const int64_t at = (sc.step & 1) * K;
        const double *x = xs.data() + at, *y = ys.data() + at, *weight = weights.data() + at;
        for (int64_t k = 0; k < K; ++k)
            if (std::isfinite(x[k]) && std::isfinite(y[k])) s.H[histogram_cell(c.grid, x[k], y[k])] += weight[k];
        *s.t = sc.t + 1;
    };

    // The threads that join (one per walker range of pfor, as many as it runs at once) share the
    // steps (step_claims.h): a step's walkers, then its bands, then its tail, claimed piece by piece.
    // A thread with no band of step s left to claim goes on to step s + 1's walkers: their forward
    // passes and checks need nothing of step s but its updates, done; each waits for s's tail
    // (steps_done > s: S holds s's hills, which no band reads any more) before it reads dS and
    // prepares its hill. So a thread is at most one step ahead of steps_done, the walkers of step
    // s + 1 all finish after s's tail, and s's data (hills, xs, ys) stay put while s has a piece
    // unfinished (the tail's xs, ys and weights are the other half from step s + 1's).
    auto join = [&](int64_t k0, int64_t k1) {
        const Buffers b = buffers();
        const int64_t b0 = k0 * n_bands / K, b1 = k1 * n_bands / K;  // the thread's share of the bands
        for (int64_t step = claims.steps_done.load(std::memory_order_acquire); step < n_steps; ++step) {
            const StepConsts sc = consts(step);
            claims.walkers.run(step, k0, k1, [&](int64_t k) { walker(k, sc, b); });
            if (!claims.wait([&] { return claims.walkers.finished_through(step); })) return;
            if (claims.bands.run(step, b0, b1, band)) {
                tail(sc);
                claims.steps_done.store(step + 1, std::memory_order_release);
            }
            if (claims.failed.load(std::memory_order_relaxed)) return;
        }
    };
    pfor(0, K, [&](int64_t k0, int64_t k1) {
        try {
            join(k0, k1);
        } catch (...) {
            claims.failed.store(true);
            throw;
        }
    });
}

template void wlmd_cvs_cpu<float>(const CvSpec&, const float*, const float*, const int64_t*, int64_t, int64_t,
                                  double*);
template void wlmd_cvs_cpu<double>(const CvSpec&, const double*, const double*, const int64_t*, int64_t, int64_t,
                                   double*);
template void wlmd_cv_pullback_cpu<float>(const CvSpec&, const float*, const float*, const int64_t*, const double*,
                                          const double*, int64_t, int64_t, float*);
template void wlmd_cv_pullback_cpu<double>(const CvSpec&, const double*, const double*, const int64_t*,
                                           const double*, const double*, int64_t, int64_t, double*);
template void wlmd_native_run<float>(const WlmdNativeModel&, const WlmdNativeConfig&, const WlmdNativeData<float>&,
                                     const WlmdNativeState<float>&, int64_t, int64_t, const WlmdParallelFor&);
template void wlmd_native_run<double>(const WlmdNativeModel&, const WlmdNativeConfig&, const WlmdNativeData<double>&,
                                      const WlmdNativeState<double>&, int64_t, int64_t, const WlmdParallelFor&);

}  // namespace ee
