// The per-ISA loops of a hill (landscape_isa.cpp) as a table: its factors' exponentials and the
// adding of its rows, which at the baseline's two doubles a register were most of a WLMD step's hill.
#pragma once

#include <cstdint>

#include "cpu_isa.h"

namespace ee {

struct LandscapeKernels {
    // f[a] = exp(f[a]) for a < n (vmath::exp), 0 below e^-708
    void (*exp_in_place)(double* f, int64_t n);
    // row[b] += T(wx fy[b]) for b in [lo, hi]
    void (*add_row_f64)(double* row, const double* fy, double wx, int64_t lo, int64_t hi);
    void (*add_row_f32)(float* row, const double* fy, double wx, int64_t lo, int64_t hi);
};

EE_DECLARE_ISA_TABLE(LandscapeKernels, landscape_kernels)

}  // namespace ee
