// CUDA versions of the kernels (same contracts as landscape.h and langevin.h). Plain C++ interface:
// device pointers, sizes, a stream handle as void*; each returns a cudaError_t as int (0 = success).
#pragma once

#include <cstdint>

#include "../common.h"
#include "../langevin_math.h"

namespace ee {
namespace cuda {

// Number of usable CUDA devices (0 when there is no driver or no device).
int device_count();
// Device that owns a device pointer, or -1 when p is not device memory.
int pointer_device(const void* p);
const char* error_string(int code);
int set_device(int device);

// x, y, height: device arrays of n doubles.
int deposit(void* S, bool f32, const GridSpec& g, const double* x, const double* y,
            const double* height, int64_t n, double sigma, double cutoff, void* stream);

// out: device array of 2 n doubles, dS/dx then dS/dy.
int gradient(const void* S, bool f32, const GridSpec& g, const double* x, const double* y, int64_t n,
             double* out, void* stream);

// Doubles of device scratch that smooth needs.
int64_t smooth_work_size(int64_t nx, int64_t ny, double sigma_x, double sigma_y);
int smooth(const void* S, void* out, bool f32, double* work, int64_t nx, int64_t ny, double sigma_x,
           double sigma_y, void* stream);

// bound: device array of n values, or null and bound_scalar for all. step_dev: when not null, the
// noise counter is *step_dev + step_offset, read on the device (p.step is then ignored).
int langevin(void* theta, void* v, const void* grad, const void* bound, double bound_scalar, bool f32,
             int64_t n, const LangevinParams& p, void* stream, const int64_t* step_dev = nullptr,
             int64_t step_offset = 0);

int normal(void* out, bool f32, uint64_t seed, uint64_t step, int64_t n, void* stream);

}  // namespace cuda
}  // namespace ee
