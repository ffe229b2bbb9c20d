// Many WLMC walkers on a GPU (see wlmc_walkers.h): thread-block teams over ../wlmc_walker.h.
#include "wlmc_walkers.h"

#include <cuda_runtime.h>

#include <utility>

#include "../wlmc_walker.h"

namespace ee {
namespace cuda {

using namespace ee::walkers;

namespace {

constexpr int kThreads = 128;  // a power of two (the block reductions halve it)

struct Add {
    __device__ double operator()(double a, double b) const { return a + b; }
};
struct Min {
    __device__ double operator()(double a, double b) const { return fmin(a, b); }
};

// A thread block as a team; `red` is kThreads doubles of shared memory.
struct BlockTeam {
    double* red;
    __device__ int rank() const { return static_cast<int>(threadIdx.x); }
    __device__ int size() const { return static_cast<int>(blockDim.x); }
    __device__ void sync() const { __syncthreads(); }
    template <class Op>
    __device__ double reduce(double v, Op op) const {
        red[threadIdx.x] = v;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]);
            __syncthreads();
        }
        const double r = red[0];
        __syncthreads();
        return r;
    }
    __device__ double sum(double v) const { return reduce(v, Add{}); }
    __device__ double min(double v) const { return reduce(v, Min{}); }
};

// The shared landscape on the device: L2-coherent loads, atomic adds.
struct DeviceLand {
    double* lnG;
    double* H;
    __device__ double read(int64_t c) const { return __ldcg(lnG + c); }
    __device__ void add(int64_t c, double ln_f, double h) const {
        atomicAdd(lnG + c, ln_f);
        atomicAdd(H + c, h);
    }
};

__global__ void init_kernel(double* base, const int64_t* layout) {
    __shared__ double red[kThreads];
    const Layout y = make_layout(layout);
    init_walker(BlockTeam{red}, base, y, static_cast<int64_t>(blockIdx.x));
}

__global__ void run_kernel(double* base, const int64_t* layout, int64_t n, double ln_f, uint64_t seed) {
    __shared__ double red[kThreads];
    __shared__ Decision dec;
    const Layout y = make_layout(layout);
    const int64_t w = blockIdx.x;
    DeviceLand land{base + y.h[H_LNG], base + y.h[H_HIST]};
    run_walker(BlockTeam{red}, dec, base, y, w, walker_share(n, y.h[H_W], w), ln_f, seed, land);
}

__global__ void stats_kernel(double* base, const int64_t* layout) {
    __shared__ double red[kThreads];
    stats(BlockTeam{red}, base, make_layout(layout));
}

int check(cudaError_t e, std::string& msg) {
    if (e != cudaSuccess) msg = cudaGetErrorString(e);
    return static_cast<int>(e);
}

}  // namespace

WlmcWalkers::WlmcWalkers(walkers::Image image, uint64_t seed, int device)
    : layout_(std::move(image.layout)), device_(device), seed_(seed) {
    bounds_.assign(image.data.begin() + layout_[H_BOUNDS], image.data.begin() + layout_[H_BOUNDS] + layout_[H_P]);
    if (check(cudaSetDevice(device_), error_)) return;
    const size_t nd = image.data.size(), nl = layout_.size();
    void* p = nullptr;
    if (check(cudaMalloc(&p, nd * sizeof(double) + nl * sizeof(int64_t)), error_)) return;
    base_ = static_cast<double*>(p);
    dlayout_ = reinterpret_cast<int64_t*>(base_ + nd);
    if (check(cudaMemcpy(base_, image.data.data(), nd * sizeof(double), cudaMemcpyHostToDevice), error_)) return;
    if (check(cudaMemcpy(dlayout_, layout_.data(), nl * sizeof(int64_t), cudaMemcpyHostToDevice), error_)) return;
    init_kernel<<<static_cast<unsigned>(n_walkers()), kThreads>>>(base_, dlayout_);
    check(cudaDeviceSynchronize(), error_);
}

WlmcWalkers::~WlmcWalkers() {
    if (base_) cudaFree(base_);
}

int WlmcWalkers::run(int64_t n, double ln_f) {
    if (!base_) return static_cast<int>(cudaErrorInitializationError);
    run_kernel<<<static_cast<unsigned>(n_walkers()), kThreads>>>(base_, dlayout_, n, ln_f, seed_);
    if (int e = check(cudaGetLastError(), error_)) return e;
    return check(cudaDeviceSynchronize(), error_);
}

int WlmcWalkers::stats(std::vector<double>& out) {
    stats_kernel<<<1, kThreads>>>(base_, dlayout_);
    if (int e = check(cudaGetLastError(), error_)) return e;
    out.resize(T_COUNT);
    return check(cudaMemcpy(out.data(), base_ + layout_[H_STATS], T_COUNT * sizeof(double), cudaMemcpyDeviceToHost),
                 error_);
}

int WlmcWalkers::landscape(std::vector<double>& lnG, std::vector<double>& H) const {
    lnG.resize(static_cast<size_t>(cells()));
    H.resize(static_cast<size_t>(cells()));
    if (int e = check(cudaMemcpy(lnG.data(), base_ + layout_[H_LNG], cells() * sizeof(double), cudaMemcpyDeviceToHost),
                      error_))
        return e;
    return check(cudaMemcpy(H.data(), base_ + layout_[H_HIST], cells() * sizeof(double), cudaMemcpyDeviceToHost),
                 error_);
}

int WlmcWalkers::walkers(std::vector<double>& params, std::vector<double>& state) const {
    const int64_t W = n_walkers(), P = n_params(), ws = layout_[H_WS];
    params.resize(static_cast<size_t>(W * P));
    state.resize(static_cast<size_t>(W * S_COUNT));
    // strided copies: P parameters then S_COUNT state values at the head of each walker's workspace
    const double* src = base_ + layout_[H_WBASE];
    if (int e = check(cudaMemcpy2D(params.data(), P * sizeof(double), src, ws * sizeof(double), P * sizeof(double), W,
                                   cudaMemcpyDeviceToHost), error_))
        return e;
    return check(cudaMemcpy2D(state.data(), S_COUNT * sizeof(double), src + P, ws * sizeof(double),
                              S_COUNT * sizeof(double), W, cudaMemcpyDeviceToHost), error_);
}

int WlmcWalkers::upload(const std::vector<double>& lnG, const std::vector<double>& H,
                        const std::vector<double>& params, const std::vector<double>& state) {
    const int64_t W = n_walkers(), P = n_params(), ws = layout_[H_WS];
    if (int e = check(cudaMemcpy(base_ + layout_[H_LNG], lnG.data(), cells() * sizeof(double), cudaMemcpyHostToDevice),
                      error_))
        return e;
    if (int e = check(cudaMemcpy(base_ + layout_[H_HIST], H.data(), cells() * sizeof(double), cudaMemcpyHostToDevice),
                      error_))
        return e;
    double* dst = base_ + layout_[H_WBASE];
    if (int e = check(cudaMemcpy2D(dst, ws * sizeof(double), params.data(), P * sizeof(double), P * sizeof(double), W,
                                   cudaMemcpyHostToDevice), error_))
        return e;
    if (int e = check(cudaMemcpy2D(dst + P, ws * sizeof(double), state.data(), S_COUNT * sizeof(double),
                                   S_COUNT * sizeof(double), W, cudaMemcpyHostToDevice), error_))
        return e;
    init_kernel<<<static_cast<unsigned>(W), kThreads>>>(base_, dlayout_);
    if (int e = check(cudaGetLastError(), error_)) return e;
    return check(cudaDeviceSynchronize(), error_);
}

}  // namespace cuda
}  // namespace ee
