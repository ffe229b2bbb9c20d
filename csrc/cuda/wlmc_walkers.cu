// Many WLMC walkers on a GPU (see wlmc_walkers.h).
#include "wlmc_walkers.h"

#include <cuda_runtime.h>

#include <math.h>

#include "../wlmc_random.h"

namespace ee {
namespace cuda {

namespace {

constexpr int kThreads = 128;  // a power of two (the block reduction halves it)

// layout: header, then per-layer tables, then per-walker offsets (all int64, in doubles)
enum Header : int {
    H_L, H_P, H_NTR, H_NTE, H_K, H_LOSS, H_METRIC, H_YLOG, H_W, H_WS, H_XTR, H_TTR, H_XTE, H_TTE, H_BOUNDS,
    H_LNG, H_HIST, H_WBASE, H_NX, H_NY, H_COUNT
};
// per walker workspace (offsets relative to the walker's base): theta (P), state (8), then per set s
// in {0 train, 1 test}: for each layer Z, A, SZ, SA (out_l x n_s), and zrow, arow, diff (n_s each)
enum State : int { S_LOSS, S_METRIC, S_STEP, S_WINDOW, S_ACCEPTED, S_CI, S_CJ, S_T, S_COUNT };

struct Layout {
    const int64_t* h;  // header
    const int64_t* sizes;  // L + 1
    const int64_t* acts;   // L
    const int64_t* woff;   // L
    const int64_t* boff;   // L (-1: no bias)
    const int64_t* cache;  // [s][l][4] offsets of Z, A, SZ, SA; then [s][3] zrow, arow, diff
    __device__ int64_t L() const { return h[H_L]; }
    __device__ int64_t n(int s) const { return h[s == 0 ? H_NTR : H_NTE]; }
    __device__ int64_t zoff(int s, int64_t l, int which) const { return cache[(s * L() + l) * 4 + which]; }
    __device__ int64_t rowoff(int s, int which) const { return cache[2 * L() * 4 + s * 3 + which]; }
};

__device__ Layout make_layout(const int64_t* layout) {
    Layout y;
    y.h = layout;
    const int64_t L = layout[H_L];
    y.sizes = layout + H_COUNT;
    y.acts = y.sizes + L + 1;
    y.woff = y.acts + L;
    y.boff = y.woff + L;
    y.cache = y.boff + L;
    return y;
}

__device__ __forceinline__ double act_fn(int64_t a, double z) {
    switch (a) {
        case 1: return z > 0.0 ? z : 0.0;
        case 2: return tanh(z);
        case 3: return z / (1.0 + exp(-z));
        default: return z;
    }
}

__device__ double block_sum(double v, double* sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

// Output k of row i: committed caches, or the scratch of a move of row r of layer l (l < 0: none).
__device__ __forceinline__ double out_value(const double* ws, const Layout& y, int s, int64_t l, int64_t r,
                                            int64_t k, int64_t i) {
    const int64_t L = y.L(), n = y.n(s);
    const bool identity = y.acts[L - 1] == 0;
    if (l == L - 1 && k == r) return ws[y.rowoff(s, identity ? 0 : 1) + i];
    const bool scratch = l >= 0 && l < L - 1;
    return ws[y.zoff(s, L - 1, (identity ? 0 : 1) + (scratch ? 2 : 0)) + k * n + i];
}

// (loss, metric) of set s; every thread of the block must call it.
__device__ void set_values(const double* base, const double* ws, const Layout& y, int s, int64_t l, int64_t r,
                           double* sh, double& loss, double& metric) {
    const int64_t n = y.n(s), K = y.h[H_K], lossk = y.h[H_LOSS];
    const double* t = base + y.h[s == 0 ? H_TTR : H_TTE];
    double term = 0.0, right = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        if (lossk == 0) {  // bce
            const double z = out_value(ws, y, s, l, r, 0, i);
            term += fmax(z, 0.0) + log1p(exp(-fabs(z))) - t[i] * z;
            right += ((z > 0.0) == (t[i] > 0.5)) ? 1.0 : 0.0;
        } else if (lossk == 1) {  // ce
            double m = out_value(ws, y, s, l, r, 0, i);
            int64_t best = 0;
            for (int64_t k = 1; k < K; ++k) {
                const double v = out_value(ws, y, s, l, r, k, i);
                if (v > m) {
                    m = v;
                    best = k;
                }
            }
            double sum = 0.0;
            for (int64_t k = 0; k < K; ++k) sum += exp(out_value(ws, y, s, l, r, k, i) - m);
            const int64_t label = static_cast<int64_t>(t[i]);
            term += m + log(sum) - out_value(ws, y, s, l, r, label, i);
            right += best == label ? 1.0 : 0.0;
        } else {  // mse
            for (int64_t k = 0; k < K; ++k) {
                const double e = out_value(ws, y, s, l, r, k, i) - t[k * n + i];
                term += e * e;
            }
        }
    }
    const double total = block_sum(term, sh);
    const double correct = block_sum(right, sh);
    loss = total / static_cast<double>(lossk == 2 ? n * K : n);
    metric = correct / static_cast<double>(n);
}

__device__ void full_forward(const double* base, double* ws, const Layout& y, int s) {
    const int64_t L = y.L(), n = y.n(s);
    const double* theta = ws;
    const double* X = base + y.h[s == 0 ? H_XTR : H_XTE];
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        for (int64_t l = 0; l < L; ++l) {
            const int64_t in = y.sizes[l], out = y.sizes[l + 1];
            const double* prev = l == 0 ? X : ws + y.zoff(s, l - 1, 1);
            double* Z = ws + y.zoff(s, l, 0);
            double* A = ws + y.zoff(s, l, 1);
            for (int64_t q = 0; q < out; ++q) {
                double z = y.boff[l] >= 0 ? theta[y.boff[l] + q] : 0.0;
                for (int64_t c = 0; c < in; ++c) z += theta[y.woff[l] + q * in + c] * prev[c * n + i];
                Z[q * n + i] = z;
                A[q * n + i] = act_fn(y.acts[l], z);
            }
        }
    }
}

// The proposal of a move of parameter (l, r, col) by delta, for the rows this thread owns.
__device__ void propose_rows(const double* base, double* ws, const Layout& y, int s, int64_t l, int64_t r,
                             int64_t col, double delta) {
    const int64_t L = y.L(), n = y.n(s);
    const double* theta = ws;
    const double* X = base + y.h[s == 0 ? H_XTR : H_XTE];
    double* zs = ws + y.rowoff(s, 0);
    double* as = ws + y.rowoff(s, 1);
    double* diff = ws + y.rowoff(s, 2);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const double* Zl = ws + y.zoff(s, l, 0);
        const double* Al = ws + y.zoff(s, l, 1);
        const double a = col < 0 ? 1.0 : (l == 0 ? X : ws + y.zoff(s, l - 1, 1))[col * n + i];
        zs[i] = Zl[r * n + i] + delta * a;
        as[i] = act_fn(y.acts[l], zs[i]);
        diff[i] = as[i] - Al[r * n + i];
        if (l + 1 < L) {
            const int64_t in = y.sizes[l + 1], out = y.sizes[l + 2];
            const double* Z = ws + y.zoff(s, l + 1, 0);
            double* SZ = ws + y.zoff(s, l + 1, 2);
            double* SA = ws + y.zoff(s, l + 1, 3);
            for (int64_t q = 0; q < out; ++q) {
                SZ[q * n + i] = Z[q * n + i] + theta[y.woff[l + 1] + q * in + r] * diff[i];
                SA[q * n + i] = act_fn(y.acts[l + 1], SZ[q * n + i]);
            }
        }
        for (int64_t k = l + 2; k < L; ++k) {
            const int64_t in = y.sizes[k], out = y.sizes[k + 1];
            const double* prev = ws + y.zoff(s, k - 1, 3);
            double* SZ = ws + y.zoff(s, k, 2);
            double* SA = ws + y.zoff(s, k, 3);
            for (int64_t q = 0; q < out; ++q) {
                double z = y.boff[k] >= 0 ? theta[y.boff[k] + q] : 0.0;
                for (int64_t c = 0; c < in; ++c) z += theta[y.woff[k] + q * in + c] * prev[c * n + i];
                SZ[q * n + i] = z;
                SA[q * n + i] = act_fn(y.acts[k], z);
            }
        }
    }
}

__device__ void commit_rows(double* ws, const Layout& y, int s, int64_t l, int64_t r) {
    const int64_t L = y.L(), n = y.n(s);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        ws[y.zoff(s, l, 0) + r * n + i] = ws[y.rowoff(s, 0) + i];
        ws[y.zoff(s, l, 1) + r * n + i] = ws[y.rowoff(s, 1) + i];
        for (int64_t k = l + 1; k < L; ++k)
            for (int64_t q = 0; q < y.sizes[k + 1]; ++q) {
                ws[y.zoff(s, k, 0) + q * n + i] = ws[y.zoff(s, k, 2) + q * n + i];
                ws[y.zoff(s, k, 1) + q * n + i] = ws[y.zoff(s, k, 3) + q * n + i];
            }
    }
}

__device__ bool bin_of(const Layout& y, const double* grid, double loss, double metric, int64_t& i, int64_t& j) {
    const double x = log(loss);
    const double v = y.h[H_YLOG] ? log(metric) : metric;
    const double fx = floor((x - grid[0]) / grid[1]), fy = floor((v - grid[2]) / grid[3]);
    if (!(fx >= 0.0 && fx < static_cast<double>(y.h[H_NX]) && fy >= 0.0 && fy < static_cast<double>(y.h[H_NY])))
        return false;
    i = static_cast<int64_t>(fx);
    j = static_cast<int64_t>(fy);
    return true;
}

// grid: x_min, dx, y_min, dy
__global__ void init_kernel(double* base, const int64_t* layout, const double* grid) {
    __shared__ double sh[kThreads];
    const Layout y = make_layout(layout);
    double* ws = base + y.h[H_WBASE] + blockIdx.x * y.h[H_WS];
    double* state = ws + y.h[H_P];
    full_forward(base, ws, y, 0);
    full_forward(base, ws, y, 1);
    __syncthreads();
    double l0, m0, l1, m1;
    set_values(base, ws, y, 0, -1, 0, sh, l0, m0);
    set_values(base, ws, y, 1, -1, 0, sh, l1, m1);
    if (threadIdx.x == 0) {
        state[S_LOSS] = l0;
        state[S_METRIC] = y.h[H_METRIC] == 0 ? m1 : l1;
        int64_t i = -1, j = -1;
        bin_of(y, grid, state[S_LOSS], state[S_METRIC], i, j);
        state[S_CI] = static_cast<double>(i);
        state[S_CJ] = static_cast<double>(j);
    }
}

__global__ void run_kernel(double* base, const int64_t* layout, const double* grid, int64_t n_steps, double ln_f,
                           uint64_t seed) {
    __shared__ double sh[kThreads];
    __shared__ int64_t move_p;
    __shared__ double move_value;
    __shared__ int decision;  // 0 box reject, 1 propose, 2 accept
    const Layout y = make_layout(layout);
    const int64_t walker = blockIdx.x;
    double* ws = base + y.h[H_WBASE] + walker * y.h[H_WS];
    double* theta = ws;
    double* state = ws + y.h[H_P];
    const double* bounds = base + y.h[H_BOUNDS];
    double* lnG = base + y.h[H_LNG];
    double* H = base + y.h[H_HIST];
    const int64_t P = y.h[H_P], ny = y.h[H_NY], L = y.L();
    if (state[S_CI] < 0.0) return;  // the walker lies off the grid: the host reports it
    for (int64_t k = 0; k < n_steps; ++k) {
        if (threadIdx.x == 0) {
            const uint64_t t = static_cast<uint64_t>(state[S_T]);
            const WlmcRandoms rnd = wlmc_randoms(seed, static_cast<uint64_t>(walker), t);
            move_p = static_cast<int64_t>((rnd.param_word * static_cast<uint64_t>(P)) >> 32);
            move_value = theta[move_p] + rnd.move * state[S_STEP];
            decision = (move_value > bounds[move_p] || move_value < -bounds[move_p]) ? 0 : 1;
            sh[0] = rnd.accept;
        }
        __syncthreads();
        const double u = sh[0];
        __syncthreads();
        const int64_t p = move_p;
        const double value = move_value;
        if (decision == 1) {
            int64_t l = 0;
            while (l + 1 < L && p >= y.woff[l + 1]) ++l;
            const int64_t in = y.sizes[l];
            const int64_t rel = p - y.woff[l];
            const bool is_weight = rel < in * y.sizes[l + 1];
            const int64_t r = is_weight ? rel / in : p - y.boff[l];
            const int64_t col = is_weight ? rel % in : -1;
            const double delta = value - theta[p];
            propose_rows(base, ws, y, 0, l, r, col, delta);
            propose_rows(base, ws, y, 1, l, r, col, delta);
            __syncthreads();
            double l0, m0, l1, m1;
            set_values(base, ws, y, 0, l, r, sh, l0, m0);
            set_values(base, ws, y, 1, l, r, sh, l1, m1);
            if (threadIdx.x == 0) {
                const double metric = y.h[H_METRIC] == 0 ? m1 : l1;
                int64_t ni, nj;
                decision = 1;
                if (bin_of(y, grid, l0, metric, ni, nj)) {
                    const int64_t ci = static_cast<int64_t>(state[S_CI]), cj = static_cast<int64_t>(state[S_CJ]);
                    const double d = lnG[ci * ny + cj] - lnG[ni * ny + nj];
                    if (d >= 0.0 || u < exp(d)) {
                        decision = 2;
                        state[S_LOSS] = l0;
                        state[S_METRIC] = metric;
                        state[S_CI] = static_cast<double>(ni);
                        state[S_CJ] = static_cast<double>(nj);
                        state[S_WINDOW] += 1.0;
                        state[S_ACCEPTED] += 1.0;
                    }
                }
            }
            __syncthreads();
            if (decision == 2) {
                commit_rows(ws, y, 0, l, r);
                commit_rows(ws, y, 1, l, r);
                if (threadIdx.x == 0) theta[p] = value;
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            const int64_t ci = static_cast<int64_t>(state[S_CI]), cj = static_cast<int64_t>(state[S_CJ]);
            atomicAdd(lnG + ci * ny + cj, ln_f);
            atomicAdd(H + ci * ny + cj, 1.0);
            state[S_T] += 1.0;
            if (fmod(state[S_T], 1000.0) == 0.0) {
                const double rate = state[S_WINDOW] / 1000.0;
                if (rate > 0.7) state[S_STEP] *= 1.1;
                else if (rate < 0.3) state[S_STEP] *= 0.9;
                state[S_WINDOW] = 0.0;
            }
        }
        __syncthreads();
    }
}

int check(cudaError_t e, std::string& msg) {
    if (e != cudaSuccess) msg = cudaGetErrorString(e);
    return static_cast<int>(e);
}

}  // namespace

WlmcWalkers::WlmcWalkers(const MlpSpec& spec, const std::vector<double>& params, int64_t walkers,
                         const DataSet& train, const DataSet& test, const std::vector<double>& bounds,
                         const GridSpec& grid, uint64_t seed, double step, bool y_log, int device)
    : W_(walkers), L_(static_cast<int64_t>(spec.acts.size())), grid_(grid), device_(device) {
    seed_ = seed;
    P_ = static_cast<int64_t>(bounds.size());
    const int64_t L = L_, K = spec.sizes.back();
    std::vector<int64_t> woff(L), boff(L);
    int64_t off = 0;
    for (int64_t l = 0; l < L; ++l) {
        woff[l] = off;
        off += spec.sizes[l] * spec.sizes[l + 1];
        boff[l] = spec.bias[l] ? off : -1;
        if (spec.bias[l]) off += spec.sizes[l + 1];
    }
    // per-walker workspace
    std::vector<int64_t> cache(2 * L * 4 + 6);
    int64_t ws = P_ + S_COUNT;
    for (int s = 0; s < 2; ++s) {
        const int64_t n = s == 0 ? train.n : test.n;
        for (int64_t l = 0; l < L; ++l)
            for (int which = 0; which < 4; ++which) {
                cache[(s * L + l) * 4 + which] = ws;
                ws += spec.sizes[l + 1] * n;
            }
    }
    for (int s = 0; s < 2; ++s) {
        const int64_t n = s == 0 ? train.n : test.n;
        for (int which = 0; which < 3; ++which) {
            cache[2 * L * 4 + s * 3 + which] = ws;
            ws += n;
        }
    }
    // global layout: data, bounds, lnG, H, walkers
    std::vector<int64_t> h(H_COUNT, 0);
    int64_t g = 0;
    auto take = [&](int key, int64_t size) {
        h[key] = g;
        g += size;
    };
    h[H_L] = L;
    h[H_P] = P_;
    h[H_NTR] = train.n;
    h[H_NTE] = test.n;
    h[H_K] = K;
    h[H_LOSS] = static_cast<int64_t>(spec.loss);
    h[H_METRIC] = static_cast<int64_t>(spec.metric);
    h[H_YLOG] = y_log ? 1 : 0;
    h[H_W] = W_;
    h[H_WS] = ws;
    h[H_NX] = grid.nx;
    h[H_NY] = grid.ny;
    take(H_XTR, static_cast<int64_t>(train.X.size()));
    take(H_TTR, static_cast<int64_t>(train.targets.size()));
    take(H_XTE, static_cast<int64_t>(test.X.size()));
    take(H_TTE, static_cast<int64_t>(test.targets.size()));
    take(H_BOUNDS, P_);
    take(H_LNG, grid.nx * grid.ny);
    take(H_HIST, grid.nx * grid.ny);
    take(H_WBASE, W_ * ws);
    const int64_t grid_at = g;
    g += 4;
    layout_ = h;
    layout_.insert(layout_.end(), spec.sizes.begin(), spec.sizes.end());
    for (Act a : spec.acts) layout_.push_back(static_cast<int64_t>(a));
    layout_.insert(layout_.end(), woff.begin(), woff.end());
    layout_.insert(layout_.end(), boff.begin(), boff.end());
    layout_.insert(layout_.end(), cache.begin(), cache.end());
    bytes_ = static_cast<size_t>(g) * sizeof(double) + layout_.size() * sizeof(int64_t);
    if (check(cudaSetDevice(device_), error_)) return;
    if (check(cudaMalloc(&dev_, bytes_), error_)) {
        dev_ = nullptr;
        return;
    }
    // host image of the doubles, then one copy
    std::vector<double> img(static_cast<size_t>(g), 0.0);
    std::copy(train.X.begin(), train.X.end(), img.begin() + h[H_XTR]);
    std::copy(train.targets.begin(), train.targets.end(), img.begin() + h[H_TTR]);
    std::copy(test.X.begin(), test.X.end(), img.begin() + h[H_XTE]);
    std::copy(test.targets.begin(), test.targets.end(), img.begin() + h[H_TTE]);
    std::copy(bounds.begin(), bounds.end(), img.begin() + h[H_BOUNDS]);
    for (int64_t w = 0; w < W_; ++w) {
        const int64_t b = h[H_WBASE] + w * ws;
        std::copy(params.begin() + w * P_, params.begin() + (w + 1) * P_, img.begin() + b);
        img[b + P_ + S_STEP] = step;
    }
    img[grid_at + 0] = grid.x_min;
    img[grid_at + 1] = grid.dx();
    img[grid_at + 2] = grid.y_min;
    img[grid_at + 3] = grid.dy();
    double* dbase = static_cast<double*>(dev_);
    int64_t* dlayout = reinterpret_cast<int64_t*>(dbase + g);
    if (check(cudaMemcpy(dbase, img.data(), img.size() * sizeof(double), cudaMemcpyHostToDevice), error_)) return;
    if (check(cudaMemcpy(dlayout, layout_.data(), layout_.size() * sizeof(int64_t), cudaMemcpyHostToDevice), error_))
        return;
    layout_.push_back(g);  // remember where the layout and the grid live
    layout_.push_back(grid_at);
    init_kernel<<<static_cast<unsigned>(W_), kThreads>>>(dbase, dlayout, dbase + grid_at);
    check(cudaDeviceSynchronize(), error_);
}

WlmcWalkers::~WlmcWalkers() {
    if (dev_) cudaFree(dev_);
}

int WlmcWalkers::run(int64_t n, double ln_f) {
    if (!dev_) return static_cast<int>(cudaErrorInitializationError);
    const int64_t g = layout_[layout_.size() - 2], grid_at = layout_.back();
    double* dbase = static_cast<double*>(dev_);
    const int64_t* dlayout = reinterpret_cast<const int64_t*>(dbase + g);
    run_kernel<<<static_cast<unsigned>(W_), kThreads>>>(dbase, dlayout, dbase + grid_at, n, ln_f, seed_);
    if (int e = check(cudaGetLastError(), error_)) return e;
    return check(cudaDeviceSynchronize(), error_);
}

int WlmcWalkers::download(std::vector<double>& lnG, std::vector<double>& H, std::vector<double>& params,
                          std::vector<double>& state) const {
    std::string msg;
    const double* dbase = static_cast<const double*>(dev_);
    const int64_t cells = grid_.nx * grid_.ny;
    lnG.resize(static_cast<size_t>(cells));
    H.resize(static_cast<size_t>(cells));
    params.resize(static_cast<size_t>(W_ * P_));
    state.resize(static_cast<size_t>(W_ * S_COUNT));
    if (int e = check(cudaMemcpy(lnG.data(), dbase + layout_[H_LNG], cells * sizeof(double), cudaMemcpyDeviceToHost), msg))
        return e;
    if (int e = check(cudaMemcpy(H.data(), dbase + layout_[H_HIST], cells * sizeof(double), cudaMemcpyDeviceToHost), msg))
        return e;
    for (int64_t w = 0; w < W_; ++w) {
        const double* b = dbase + layout_[H_WBASE] + w * layout_[H_WS];
        if (int e = check(cudaMemcpy(params.data() + w * P_, b, P_ * sizeof(double), cudaMemcpyDeviceToHost), msg))
            return e;
        if (int e = check(cudaMemcpy(state.data() + w * S_COUNT, b + P_, S_COUNT * sizeof(double),
                                     cudaMemcpyDeviceToHost), msg))
            return e;
    }
    return 0;
}

int WlmcWalkers::upload_landscape(const std::vector<double>& lnG, const std::vector<double>& H) {
    double* dbase = static_cast<double*>(dev_);
    const int64_t cells = grid_.nx * grid_.ny;
    if (int e = check(cudaMemcpy(dbase + layout_[H_LNG], lnG.data(), cells * sizeof(double), cudaMemcpyHostToDevice),
                      error_))
        return e;
    return check(cudaMemcpy(dbase + layout_[H_HIST], H.data(), cells * sizeof(double), cudaMemcpyHostToDevice), error_);
}

int WlmcWalkers::upload_walkers(const std::vector<double>& params, const std::vector<double>& state) {
    double* dbase = static_cast<double*>(dev_);
    for (int64_t w = 0; w < W_; ++w) {
        double* b = dbase + layout_[H_WBASE] + w * layout_[H_WS];
        if (int e = check(cudaMemcpy(b, params.data() + w * P_, P_ * sizeof(double), cudaMemcpyHostToDevice), error_))
            return e;
        if (int e = check(cudaMemcpy(b + P_, state.data() + w * S_COUNT, S_COUNT * sizeof(double),
                                     cudaMemcpyHostToDevice), error_))
            return e;
    }
    const int64_t g = layout_[layout_.size() - 2], grid_at = layout_.back();
    init_kernel<<<static_cast<unsigned>(W_), kThreads>>>(dbase, reinterpret_cast<const int64_t*>(dbase + g),
                                                          dbase + grid_at);
    if (int e = check(cudaGetLastError(), error_)) return e;
    return check(cudaDeviceSynchronize(), error_);
}

}  // namespace cuda
}  // namespace ee
