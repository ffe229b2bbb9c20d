// CUDA Langevin kernel and normals: one thread per block of four elements (one Philox call),
// grid-stride; the same per-element arithmetic as the CPU (langevin_math.h, philox.h).
#include <cuda_runtime.h>

#include "../langevin_math.h"
#include "../philox.h"
#include "cuda_kernels.h"

namespace ee {
namespace cuda {

namespace {

constexpr int kBlock = 256;

template <class T>
__global__ void langevin_kernel(T* theta, T* v, const T* grad, const T* bound, T b0, int64_t n, T dt,
                                T c1, T amp, uint64_t seed, uint64_t step_host, const int64_t* step_dev,
                                int64_t step_offset) {
    // the counter from device memory when given (a captured CUDA graph replays with new values)
    const uint64_t step = step_dev ? static_cast<uint64_t>(*step_dev + step_offset) : step_host;
    const int64_t nblocks = (n + 3) / 4;
    for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < nblocks;
         q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        T xi[4];
        philox_normal4<T>(seed, static_cast<uint64_t>(q), step, xi);
        for (int l = 0; l < 4; ++l) {
            const int64_t i = 4 * q + l;
            if (i >= n) break;
            const T b = bound ? bound[i] : b0;
            T th = theta[i], vv = v[i];
            if (langevin_element(th, vv, grad[i], b, dt, c1, amp, xi[l])) fold_into_box(th, vv, b);
            theta[i] = th;
            v[i] = vv;
        }
    }
}

template <class T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t step) {
    const int64_t nblocks = (n + 3) / 4;
    for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < nblocks;
         q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        T z[4];
        philox_normal4<T>(seed, static_cast<uint64_t>(q), step, z);
        for (int l = 0; l < 4; ++l) {
            const int64_t i = 4 * q + l;
            if (i < n) out[i] = z[l];
        }
    }
}

unsigned grid_for(int64_t n) {
    const int64_t blocks = ((n + 3) / 4 + kBlock - 1) / kBlock;
    return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

}  // namespace

int langevin(void* theta, void* v, const void* grad, const void* bound, double bound_scalar, bool f32,
             int64_t n, const LangevinParams& p, void* stream, const int64_t* step_dev, int64_t step_offset) {
    if (n == 0) return 0;
    auto st = static_cast<cudaStream_t>(stream);
    const double c1 = 1.0 - p.gamma, amp = sqrt(p.gamma * (2.0 - p.gamma) * p.kT);
    if (f32)
        langevin_kernel<float><<<grid_for(n), kBlock, 0, st>>>(
            static_cast<float*>(theta), static_cast<float*>(v), static_cast<const float*>(grad),
            static_cast<const float*>(bound), static_cast<float>(bound_scalar), n, static_cast<float>(p.dt),
            static_cast<float>(c1), static_cast<float>(amp), p.seed, p.step, step_dev, step_offset);
    else
        langevin_kernel<double><<<grid_for(n), kBlock, 0, st>>>(
            static_cast<double*>(theta), static_cast<double*>(v), static_cast<const double*>(grad),
            static_cast<const double*>(bound), bound_scalar, n, p.dt, c1, amp, p.seed, p.step, step_dev,
            step_offset);
    return static_cast<int>(cudaGetLastError());
}

int normal(void* out, bool f32, uint64_t seed, uint64_t step, int64_t n, void* stream) {
    if (n == 0) return 0;
    auto st = static_cast<cudaStream_t>(stream);
    if (f32)
        normal_kernel<float><<<grid_for(n), kBlock, 0, st>>>(static_cast<float*>(out), n, seed, step);
    else
        normal_kernel<double><<<grid_for(n), kBlock, 0, st>>>(static_cast<double*>(out), n, seed, step);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace ee
