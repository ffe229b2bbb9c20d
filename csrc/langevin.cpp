// CPU Langevin kernel: the loops of this CPU's instruction-set level (cpu_isa.h; the loops:
// langevin_isa.cpp), then the rare elements that left their box by more than its width folded back.
#include "langevin.h"

#include <math.h>

#include "cpu_isa.h"
#include "langevin_isa.h"

namespace ee {

namespace {

template <class T>
void fold_span(T* theta, T* v, const T* bound, T b0, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const T b = bound ? bound[i] : b0;
        if (theta[i] > b || theta[i] < -b) fold_into_box(theta[i], v[i], b);
    }
}

const LangevinKernels& kernels() {
    static const LangevinKernels k = EE_ISA_TABLE(langevin_kernels);
    return k;
}

bool loop(float* th, float* v, const float* g, const float* b, float b0, int64_t n, float dt, float c1,
          float amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return kernels().langevin_f32(th, v, g, b, b0, n, dt, c1, amp, seed, step, e0);
}

bool loop(double* th, double* v, const double* g, const double* b, double b0, int64_t n, double dt,
          double c1, double amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return kernels().langevin_f64(th, v, g, b, b0, n, dt, c1, amp, seed, step, e0);
}

}  // namespace

template <class T>
void langevin_cpu_at(T* theta, T* v, const T* grad, const T* bound, T bound_scalar, int64_t n, uint64_t first,
                     const LangevinParams& p) {
    const T dt = static_cast<T>(p.dt);
    const T c1 = static_cast<T>(1.0 - p.gamma);
    const T amp = static_cast<T>(sqrt(p.gamma * (2.0 - p.gamma) * p.kT));
    if (loop(theta, v, grad, bound, bound_scalar, n, dt, c1, amp, p.seed, p.step, first))
        fold_span(theta, v, bound, bound_scalar, n);
}

template <class T>
void langevin_cpu(T* theta, T* v, const T* grad, const T* bound, T bound_scalar, int64_t n,
                  const LangevinParams& p) {
    langevin_cpu_at(theta, v, grad, bound, bound_scalar, n, 0, p);
}

template <>
void normal_cpu<float>(uint64_t seed, uint64_t step, int64_t n, float* out) {
    kernels().normal_f32(seed, step, n, out);
}

template <>
void normal_cpu<double>(uint64_t seed, uint64_t step, int64_t n, double* out) {
    kernels().normal_f64(seed, step, n, out);
}

template void langevin_cpu_at<float>(float*, float*, const float*, const float*, float, int64_t, uint64_t,
                                     const LangevinParams&);
template void langevin_cpu_at<double>(double*, double*, const double*, const double*, double, int64_t, uint64_t,
                                      const LangevinParams&);
template void langevin_cpu<float>(float*, float*, const float*, const float*, float, int64_t,
                                  const LangevinParams&);
template void langevin_cpu<double>(double*, double*, const double*, const double*, double, int64_t,
                                   const LangevinParams&);

}  // namespace ee
