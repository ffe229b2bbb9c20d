// One instruction-set level of a hill's loops (landscape_isa.h); EE_ISA names the namespace (base,
// v3, v4) and the build adds the matching -march flag to this file. Contraction is off, so every
// level computes the same bits (the same operations on each value, only more values a register).
#include "landscape_isa.h"

#include "vmath.h"

#ifndef EE_ISA
#define EE_ISA base
#endif

namespace ee {
namespace EE_ISA {
namespace {

void exp_in_place(double* __restrict f, int64_t n) {
    for (int64_t a = 0; a < n; ++a) f[a] = f[a] < -708.0 ? 0.0 : vmath::exp(f[a]);
}

template <class T>
void add_row(T* __restrict row, const double* __restrict fy, double wx, int64_t lo, int64_t hi) {
    for (int64_t b = lo; b <= hi; ++b) row[b] += static_cast<T>(wx * fy[b]);
}

}  // namespace

LandscapeKernels landscape_kernels() { return LandscapeKernels{&exp_in_place, &add_row<double>, &add_row<float>}; }

}  // namespace EE_ISA
}  // namespace ee
