// CPU Langevin kernel: picks the loops compiled for the best instruction-set level this CPU has
// (see langevin_isa.cpp) and folds the rare elements that left their box by more than its width.
#include "langevin.h"

#include <math.h>

#include <cstdlib>
#include <cstring>

#include "langevin_isa.h"

namespace ee {

namespace {

enum class Isa { base, v3, v4 };

// The best level this CPU has, capped by the environment variable ENTROPYENG_MAX_ISA ("base", "v3"
// or "v4"; read once, when the library loads) so that tests can run every level's loops on one
// machine.
Isa detect_isa() {
    Isa cap = Isa::v4;
    if (const char* env = std::getenv("ENTROPYENG_MAX_ISA")) {
        if (std::strcmp(env, "base") == 0) cap = Isa::base;
        if (std::strcmp(env, "v3") == 0) cap = Isa::v3;
    }
#if defined(EE_HAVE_ISA_LEVELS)
    __builtin_cpu_init();
    if (cap == Isa::v4 && __builtin_cpu_supports("x86-64-v4")) return Isa::v4;
    if (cap != Isa::base && __builtin_cpu_supports("x86-64-v3")) return Isa::v3;
#endif
    return Isa::base;
}

const Isa kIsa = detect_isa();

template <class T>
void fold_span(T* theta, T* v, const T* bound, T b0, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const T b = bound ? bound[i] : b0;
        if (theta[i] > b || theta[i] < -b) fold_into_box(theta[i], v[i], b);
    }
}

#if defined(EE_HAVE_ISA_LEVELS)
#define EE_DISPATCH(FN, ...)                                         \
    (kIsa == Isa::v4 ? v4::FN(__VA_ARGS__)                           \
                     : kIsa == Isa::v3 ? v3::FN(__VA_ARGS__) : base::FN(__VA_ARGS__))
#else
#define EE_DISPATCH(FN, ...) base::FN(__VA_ARGS__)
#endif

bool loop(float* th, float* v, const float* g, const float* b, float b0, int64_t n, float dt, float c1,
          float amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return EE_DISPATCH(langevin_f32, th, v, g, b, b0, n, dt, c1, amp, seed, step, e0);
}

bool loop(double* th, double* v, const double* g, const double* b, double b0, int64_t n, double dt,
          double c1, double amp, uint64_t seed, uint64_t step, uint64_t e0) {
    return EE_DISPATCH(langevin_f64, th, v, g, b, b0, n, dt, c1, amp, seed, step, e0);
}

}  // namespace

int cpu_isa_level() { return kIsa == Isa::v4 ? 4 : kIsa == Isa::v3 ? 3 : 0; }

const char* cpu_isa_name() {
    return kIsa == Isa::v4 ? "x86-64-v4" : kIsa == Isa::v3 ? "x86-64-v3" : "baseline";
}

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
    EE_DISPATCH(normal_f32, seed, step, n, out);
}

template <>
void normal_cpu<double>(uint64_t seed, uint64_t step, int64_t n, double* out) {
    EE_DISPATCH(normal_f64, seed, step, n, out);
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
