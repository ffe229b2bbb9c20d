// The per-ISA Langevin loops (langevin_isa.cpp) as a table. langevin_* return whether some element
// needs a second fold into its box.
#pragma once

#include <cstdint>

#include "cpu_isa.h"

namespace ee {

struct LangevinKernels {
    bool (*langevin_f32)(float*, float*, const float*, const float*, float, int64_t, float, float, float, uint64_t,
                         uint64_t, uint64_t);
    bool (*langevin_f64)(double*, double*, const double*, const double*, double, int64_t, double, double, double,
                         uint64_t, uint64_t, uint64_t);
    void (*normal_f32)(uint64_t, uint64_t, int64_t, float*);
    void (*normal_f64)(uint64_t, uint64_t, int64_t, double*);
};

EE_DECLARE_ISA_TABLE(LangevinKernels, langevin_kernels)

}  // namespace ee
