// The batched MLP kernels (mlp_batch.h): the layout of a walker's parameters and the choice of the
// instruction-set level.
#include "mlp_batch.h"

#include "cpu_isa.h"

namespace ee {

int64_t MlpBatchSpec::weight_offset(int64_t l) const {
    int64_t off = 0;
    for (int64_t k = 0; k < l; ++k) off += sizes[k] * sizes[k + 1] + (bias[k] ? sizes[k + 1] : 0);
    return off;
}

int64_t MlpBatchSpec::bias_offset(int64_t l) const {
    return bias[l] ? weight_offset(l) + sizes[l] * sizes[l + 1] : -1;
}

int64_t MlpBatchSpec::n_params() const { return weight_offset(layers()); }

int64_t MlpBatchSpec::cache_z(int64_t l) const {
    int64_t h = 0;
    for (int64_t k = 0; k < l; ++k) h += sizes[k + 1] * (acts[k] == 3 ? 2 : 1);
    return h;
}

int64_t MlpBatchSpec::cache_a(int64_t l) const { return cache_z(l) + (acts[l] == 3 ? sizes[l + 1] : 0); }

int64_t MlpBatchSpec::cache_features() const { return cache_z(layers()); }

namespace {

const MlpBatchKernels& kernels() {
    static const MlpBatchKernels k = EE_ISA_TABLE(mlp_batch_kernels);
    return k;
}

}  // namespace

template <>
void mlp_batch_forward<float>(const MlpBatchSpec& s, const float* theta, const float* X, int64_t N, int64_t k0,
                              int64_t k1, float* out, float* cache) {
    kernels().forward_f(s, theta, X, N, k0, k1, out, cache);
}

template <>
void mlp_batch_forward<double>(const MlpBatchSpec& s, const double* theta, const double* X, int64_t N, int64_t k0,
                               int64_t k1, double* out, double* cache) {
    kernels().forward_d(s, theta, X, N, k0, k1, out, cache);
}

template <>
void mlp_batch_backward<float>(const MlpBatchSpec& s, const float* theta, const float* X, int64_t N,
                               const float* cache, const float* grad_out, int64_t k0, int64_t k1, float* grad) {
    kernels().backward_f(s, theta, X, N, cache, grad_out, k0, k1, grad);
}

template <>
void mlp_batch_backward<double>(const MlpBatchSpec& s, const double* theta, const double* X, int64_t N,
                                const double* cache, const double* grad_out, int64_t k0, int64_t k1,
                                double* grad) {
    kernels().backward_d(s, theta, X, N, cache, grad_out, k0, k1, grad);
}

}  // namespace ee
