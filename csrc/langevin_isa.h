// Declarations of the per-ISA Langevin loops (see langevin_isa.cpp). Each returns whether some
// element needs a second fold into its box.
#pragma once

#include <cstdint>

#define EE_DECLARE_LANGEVIN_ISA(NS)                                                                 \
    namespace NS {                                                                                  \
    bool langevin_f32(float*, float*, const float*, const float*, float, int64_t, float, float,     \
                      float, uint64_t, uint64_t, uint64_t);                                         \
    bool langevin_f64(double*, double*, const double*, const double*, double, int64_t, double,      \
                      double, double, uint64_t, uint64_t, uint64_t);                                \
    void normal_f32(uint64_t, uint64_t, int64_t, float*);                                           \
    void normal_f64(uint64_t, uint64_t, int64_t, double*);                                          \
    }

namespace ee {
EE_DECLARE_LANGEVIN_ISA(base)
#if defined(EE_HAVE_ISA_LEVELS)
EE_DECLARE_LANGEVIN_ISA(v3)
EE_DECLARE_LANGEVIN_ISA(v4)
#endif
}  // namespace ee
