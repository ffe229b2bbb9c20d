// One instruction-set level of the MLP row kernels; EE_ISA names the namespace (base, v3, v4) and
// the build adds the matching -march flag to this file.
#include "mlp_isa.h"

#include "mlp_rows.h"

#ifndef EE_ISA
#define EE_ISA base
#endif

#if defined(__GNUC__)
#define EE_FLATTEN __attribute__((flatten))
#else
#define EE_FLATTEN
#endif

namespace ee {
namespace EE_ISA {
namespace {

EE_FLATTEN void activate(int act, const double* z, double* out, int64_t n) { rows::activate(act, z, out, n); }

EE_FLATTEN void layer(const double* W, const double* b, const double* prev, int64_t in, int64_t out, int64_t n,
                      int act, double* Z, double* A) {
    rows::layer(W, b, prev, in, out, n, act, Z, A);
}

EE_FLATTEN void rank1(const double* W, int64_t in, int64_t out, int64_t r, const double* Z, const double* diff,
                      int64_t n, int act, double* SZ, double* SA) {
    rows::rank1(W, in, out, r, Z, diff, n, act, SZ, SA);
}

EE_FLATTEN void moved_row(const double* zr, const double* a, double delta, int64_t n, int act, const double* aold,
                          double* zs, double* as, double* diff) {
    rows::moved_row(zr, a, delta, n, act, aold, zs, as, diff);
}

EE_FLATTEN void loss_terms(int loss, const double* const* rows, const double* t, int64_t n, int64_t K, double* out,
                           double* work) {
    rows::loss_terms(loss, rows, t, n, K, out, work);
}

}  // namespace

MlpRowKernels mlp_row_kernels() { return MlpRowKernels{&activate, &layer, &rank1, &moved_row, &loss_terms}; }

}  // namespace EE_ISA
}  // namespace ee
