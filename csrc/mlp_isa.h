// Per-ISA row kernels of the MLP forward pass (see mlp_isa.cpp) and the table mlp.cpp picks from.
#pragma once

#include <cstdint>

#include "cpu_isa.h"

namespace ee {

struct MlpRowKernels {
    void (*activate)(int act, const double* z, double* out, int64_t n);
    void (*layer)(const double* W, const double* b, const double* prev, int64_t in, int64_t out, int64_t n, int act,
                  double* Z, double* A);
    void (*rank1)(const double* W, int64_t in, int64_t out, int64_t r, const double* Z, const double* diff, int64_t n,
                  int act, double* SZ, double* SA);
    void (*moved_row)(const double* zr, const double* a, double delta, int64_t n, int act, const double* aold,
                      double* zs, double* as, double* diff);
    void (*loss_terms)(int loss, const double* const* rows, const double* t, int64_t n, int64_t K, double* out,
                       double* work);
};

EE_DECLARE_ISA_TABLE(MlpRowKernels, mlp_row_kernels)

// The kernels for the best ISA level of this CPU.
const MlpRowKernels& mlp_rows();

}  // namespace ee
