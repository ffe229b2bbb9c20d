// One instruction-set level of the Langevin loops; EE_ISA names the namespace (base, v3, v4) and the
// build adds the matching -march flag to this file.
#include "langevin_isa.h"

#include "langevin_loops.inc"

#ifndef EE_ISA
#define EE_ISA base
#endif

// flatten: inline every call (philox, Box-Muller, the update) into these entry points, so that no
// out-of-line inline function shared with the other ISA objects is called from the hot loop.
#if defined(__GNUC__)
#define EE_FLATTEN __attribute__((flatten))
#else
#define EE_FLATTEN
#endif

namespace ee {
namespace EE_ISA {
namespace {

EE_FLATTEN bool langevin_f32(float* theta, float* v, const float* grad, const float* bound, float b0, int64_t n,
                  float dt, float c1, float amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return loops::langevin_loop<float>(theta, v, grad, bound, b0, n, dt, c1, amp, seed, step, e0);
}

EE_FLATTEN bool langevin_f64(double* theta, double* v, const double* grad, const double* bound, double b0,
                  int64_t n, double dt, double c1, double amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return loops::langevin_loop<double>(theta, v, grad, bound, b0, n, dt, c1, amp, seed, step, e0);
}

EE_FLATTEN void normal_f32(uint64_t seed, uint64_t step, int64_t n, float* out) {
    loops::normal_loop<float>(seed, step, n, out);
}

EE_FLATTEN void normal_f64(uint64_t seed, uint64_t step, int64_t n, double* out) {
    loops::normal_loop<double>(seed, step, n, out);
}

}  // namespace

LangevinKernels langevin_kernels() { return LangevinKernels{&langevin_f32, &langevin_f64, &normal_f32, &normal_f64}; }

}  // namespace EE_ISA
}  // namespace ee
