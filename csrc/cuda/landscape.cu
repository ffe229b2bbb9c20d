// CUDA landscape kernels: deposit (one block per hill, atomic adds), gradient (one thread per
// point), smooth (two separable passes). Same per-cell arithmetic as the CPU (landscape_math.h).
#include <cuda_runtime.h>

#include <vector>

#include "../landscape.h"
#include "../landscape_math.h"
#include "cuda_kernels.h"

namespace ee {
namespace cuda {

namespace {

constexpr int kBlock = 256;

template <class T>
__global__ void deposit_kernel(T* S, GridSpec g, const double* xs, const double* ys, const double* hs,
                               double sigma, double cutoff) {
    __shared__ double partial[kBlock];
    const double x = xs[blockIdx.x], y = ys[blockIdx.x], h = hs[blockIdx.x];
    HillWindow w;
    if (!hill_window(g, x, y, cutoff, w)) return;  // uniform across the block
    const int64_t nwx = w.i_hi - w.i_lo + 1, nwy = w.j_hi - w.j_lo + 1, total = nwx * nwy;
    const double c2 = cutoff * cutoff;
    const double d0x = g.cx(static_cast<double>(nearest_index((x - g.x_min) / g.dx() - 0.5, w.i_lo, w.i_hi))) - x;
    const double d0y = g.cy(static_cast<double>(nearest_index((y - g.y_min) / g.dy() - 0.5, w.j_lo, w.j_hi))) - y;
    double acc = 0.0;
    for (int64_t c = threadIdx.x; c < total; c += blockDim.x) {
        const int64_t a = c / nwy, b = c % nwy;
        const double ddx = g.cx(static_cast<double>(w.i_lo + a)) - x;
        const double ddy = g.cy(static_cast<double>(w.j_lo + b)) - y;
        if (ddx * ddx + ddy * ddy <= c2) acc += hill_factor(ddx, d0x, sigma) * hill_factor(ddy, d0y, sigma);
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    const double W = partial[0];
    if (!(W > 0.0)) {  // no centre within the cutoff: the whole height on the nearest centre (as the CPU)
        if (threadIdx.x == 0) {
            const int64_t i = nearest_index((x - g.x_min) / g.dx() - 0.5, w.i_lo, w.i_hi);
            const int64_t j = nearest_index((y - g.y_min) / g.dy() - 0.5, w.j_lo, w.j_hi);
            if (i >= 0 && i < g.nx && j >= 0 && j < g.ny) atomicAdd(S + i * g.ny + j, static_cast<T>(h));
        }
        return;
    }
    const double scale = h / W;
    for (int64_t c = threadIdx.x; c < total; c += blockDim.x) {
        const int64_t a = c / nwy, b = c % nwy;
        const int64_t i = w.i_lo + a, j = w.j_lo + b;
        if (i < 0 || i >= g.nx || j < 0 || j >= g.ny) continue;
        const double ddx = g.cx(static_cast<double>(i)) - x;
        const double ddy = g.cy(static_cast<double>(j)) - y;
        if (ddx * ddx + ddy * ddy <= c2)
            atomicAdd(S + i * g.ny + j,
                      static_cast<T>(scale * hill_factor(ddx, d0x, sigma) * hill_factor(ddy, d0y, sigma)));
    }
}

template <class T>
__global__ void gradient_kernel(const T* S, GridSpec g, const double* xs, const double* ys, int64_t n,
                                double* out) {
    const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (k >= n) return;
    double gx, gy;
    gradient_at(S, g, xs[k], ys[k], gx, gy);
    out[k] = gx;
    out[n + k] = gy;
}

__global__ void weights_kernel(double* w, int64_t radius, double sigma) {
    // one thread: the same order of operations as the CPU (landscape_math.h)
    if (threadIdx.x == 0 && blockIdx.x == 0) gaussian_weights_into(sigma, radius, w);
}

__device__ __forceinline__ int64_t clampi(int64_t k, int64_t n) { return k < 0 ? 0 : (k >= n ? n - 1 : k); }

// pass along x (axis 0): work[i, j] = sum_k w[k] S[clamp(i + k - r), j]
template <class T>
__global__ void smooth_x_kernel(const T* S, double* work, const double* w, int64_t r, int64_t nx, int64_t ny) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (c >= nx * ny) return;
    const int64_t i = c / ny, j = c % ny;
    double acc = 0.0;
    for (int64_t k = -r; k <= r; ++k) acc += w[k + r] * static_cast<double>(S[clampi(i + k, nx) * ny + j]);
    work[c] = acc;
}

// pass along y (axis 1): out[i, j] = sum_k w[k] work[i, clamp(j + k - r)]
template <class T>
__global__ void smooth_y_kernel(const double* work, T* out, const double* w, int64_t r, int64_t nx, int64_t ny) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (c >= nx * ny) return;
    const int64_t i = c / ny, j = c % ny;
    double acc = 0.0;
    for (int64_t k = -r; k <= r; ++k) acc += w[k + r] * work[i * ny + clampi(j + k, ny)];
    out[c] = static_cast<T>(acc);
}

template <class T>
__global__ void copy_kernel(const T* S, double* work, int64_t size) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (c < size) work[c] = static_cast<double>(S[c]);
}

template <class T>
__global__ void store_kernel(const double* work, T* out, int64_t size) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (c < size) out[c] = static_cast<T>(work[c]);
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

template <class T>
int smooth_t(const T* S, T* out, double* work, int64_t nx, int64_t ny, double sx, double sy, cudaStream_t st) {
    const int64_t size = nx * ny;
    if (size == 0) return 0;
    const int64_t rx = sx > 0.0 ? gaussian_radius(sx) : 0, ry = sy > 0.0 ? gaussian_radius(sy) : 0;
    double* wx = work + size;
    double* wy = wx + 2 * rx + 1;
    if (sx > 0.0) {
        weights_kernel<<<1, 1, 0, st>>>(wx, rx, sx);
        smooth_x_kernel<T><<<blocks_for(size), kBlock, 0, st>>>(S, work, wx, rx, nx, ny);
    } else {
        copy_kernel<T><<<blocks_for(size), kBlock, 0, st>>>(S, work, size);
    }
    if (sy > 0.0) {
        weights_kernel<<<1, 1, 0, st>>>(wy, ry, sy);
        smooth_y_kernel<T><<<blocks_for(size), kBlock, 0, st>>>(work, out, wy, ry, nx, ny);
    } else {
        store_kernel<T><<<blocks_for(size), kBlock, 0, st>>>(work, out, size);
    }
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the error state
        return 0;
    }
    return n;
}

int pointer_device(const void* p) {
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) return -1;
    return attr.device;
}

const char* error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

int set_device(int device) { return static_cast<int>(cudaSetDevice(device)); }

int deposit(void* S, bool f32, const GridSpec& g, const double* x, const double* y, const double* height,
            int64_t n, double sigma, double cutoff, void* stream) {
    if (n == 0) return 0;
    auto st = static_cast<cudaStream_t>(stream);
    if (f32)
        deposit_kernel<float><<<static_cast<unsigned>(n), kBlock, 0, st>>>(static_cast<float*>(S), g, x, y, height, sigma, cutoff);
    else
        deposit_kernel<double><<<static_cast<unsigned>(n), kBlock, 0, st>>>(static_cast<double*>(S), g, x, y, height, sigma, cutoff);
    return static_cast<int>(cudaGetLastError());
}

int gradient(const void* S, bool f32, const GridSpec& g, const double* x, const double* y, int64_t n,
             double* out, void* stream) {
    if (n == 0) return 0;
    auto st = static_cast<cudaStream_t>(stream);
    if (f32)
        gradient_kernel<float><<<blocks_for(n), kBlock, 0, st>>>(static_cast<const float*>(S), g, x, y, n, out);
    else
        gradient_kernel<double><<<blocks_for(n), kBlock, 0, st>>>(static_cast<const double*>(S), g, x, y, n, out);
    return static_cast<int>(cudaGetLastError());
}

int64_t smooth_work_size(int64_t nx, int64_t ny, double sigma_x, double sigma_y) {
    const int64_t rx = sigma_x > 0.0 ? gaussian_radius(sigma_x) : 0;
    const int64_t ry = sigma_y > 0.0 ? gaussian_radius(sigma_y) : 0;
    return nx * ny + (2 * rx + 1) + (2 * ry + 1);
}

int smooth(const void* S, void* out, bool f32, double* work, int64_t nx, int64_t ny, double sigma_x,
           double sigma_y, void* stream) {
    auto st = static_cast<cudaStream_t>(stream);
    if (f32)
        return smooth_t<float>(static_cast<const float*>(S), static_cast<float*>(out), work, nx, ny, sigma_x, sigma_y, st);
    return smooth_t<double>(static_cast<const double*>(S), static_cast<double*>(out), work, nx, ny, sigma_x, sigma_y, st);
}

}  // namespace cuda
}  // namespace ee
