// The CPU kernels of entropyeng::mlp_batch and entropyeng::mlp_batch_backward (schemas in
// entropyeng/ops.py): K walkers' copies of one MLP on one set of rows with their activation cache,
// and their vector-Jacobian product from that cache (csrc mlp_batch.h). A binding: argument checks naming the argument, the walkers split over
// torch's intra-op threads, data pointers handed to csrc; no maths.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <torch/library.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "mlp_batch.h"
#include "torch_checks.h"
#include "torch_workspace.h"

namespace {

using at::Tensor;

constexpr int64_t MAX_WIDTH = int64_t{1} << 20;

ee::MlpBatchSpec spec_of(c10::IntArrayRef sizes, c10::IntArrayRef acts, c10::IntArrayRef bias) {
    TORCH_CHECK_VALUE(sizes.size() >= 2, "sizes: expected the widths d_0, ..., d_L of at least one layer, got ",
                      sizes.size(), " numbers");
    const size_t L = sizes.size() - 1;
    TORCH_CHECK_VALUE(acts.size() == L, "acts: expected one activation per layer (", L, "), got ", acts.size());
    TORCH_CHECK_VALUE(bias.size() == L, "bias: expected one flag per layer (", L, "), got ", bias.size());
    ee::MlpBatchSpec s;
    for (int64_t d : sizes) {
        TORCH_CHECK_VALUE(d >= 1 && d <= MAX_WIDTH, "sizes: expected widths in [1, 2^20], got ", d);
        s.sizes.push_back(d);
    }
    for (int64_t a : acts) {
        TORCH_CHECK_VALUE(a >= 0 && a <= 3, "acts: expected codes 0 (identity), 1 (ReLU), 2 (tanh), 3 (SiLU), got ",
                          a);
        s.acts.push_back(static_cast<int>(a));
    }
    for (int64_t b : bias) {
        TORCH_CHECK_VALUE(b == 0 || b == 1, "bias: expected flags 0 or 1, got ", b);
        s.bias.push_back(static_cast<char>(b));
    }
    return s;
}

using ee::torch_ops::require_dtype_of_theta;
using ee::torch_ops::require_float;

// Checks theta (K x P) and X (N x d_0) against the spec; returns P.
int64_t check_inputs(const ee::MlpBatchSpec& s, const Tensor& theta, const Tensor& X) {
    require_float(theta, "theta", 2);
    require_float(X, "X", 2);
    require_dtype_of_theta(X, "X", theta);
    TORCH_CHECK_VALUE(X.size(1) == s.sizes[0], "X: expected ", s.sizes[0], " columns (sizes[0]), got ", X.size(1));
    TORCH_CHECK_VALUE(X.size(0) <= (int64_t{1} << 31), "X: expected at most 2^31 rows");
    const int64_t P = s.n_params();
    TORCH_CHECK_VALUE(theta.size(1) == P, "theta: expected ", P, " parameters per walker (the MLP's), got ",
                      theta.size(1));
    int64_t widths = s.sizes[0];
    for (int64_t d : s.sizes) widths += 3 * d;
    TORCH_CHECK_VALUE(widths * (X.size(0) + 64) <= (int64_t{1} << 40), "X: too many rows for these widths");
    return P;
}

// The activation cache's shape (mlp_batch.h): K x ceil(N / 128) x H x 128.
std::vector<int64_t> cache_shape(const ee::MlpBatchSpec& s, int64_t K, int64_t N) {
    return {K, (N + ee::MLP_CACHE_CHUNK - 1) / ee::MLP_CACHE_CHUNK, s.cache_features(), ee::MLP_CACHE_CHUNK};
}

std::tuple<Tensor, Tensor> mlp_batch(const Tensor& theta, const Tensor& X, c10::IntArrayRef sizes,
                                     c10::IntArrayRef acts, c10::IntArrayRef bias) {
    const ee::MlpBatchSpec s = spec_of(sizes, acts, bias);
    check_inputs(s, theta, X);
    const int64_t K = theta.size(0), N = X.size(0);
    Tensor out = at::empty({K, N, s.sizes.back()}, theta.options());
    static ee::torch_ops::RecycledStorage cache_slot;  // megabytes a step for many walkers
    Tensor cache = cache_slot.empty(cache_shape(s, K, N), theta.options());
    if (K == 0 || N == 0) return {out, cache};
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (theta.scalar_type() == at::kFloat)
            ee::mlp_batch_forward<float>(s, theta.data_ptr<float>(), X.data_ptr<float>(), N, k0, k1,
                                         out.data_ptr<float>(), cache.data_ptr<float>());
        else
            ee::mlp_batch_forward<double>(s, theta.data_ptr<double>(), X.data_ptr<double>(), N, k0, k1,
                                          out.data_ptr<double>(), cache.data_ptr<double>());
    });
    return {out, cache};
}

Tensor mlp_batch_backward(const Tensor& theta, const Tensor& X, const Tensor& cache, const Tensor& grad_out,
                          c10::IntArrayRef sizes, c10::IntArrayRef acts, c10::IntArrayRef bias) {
    const ee::MlpBatchSpec s = spec_of(sizes, acts, bias);
    check_inputs(s, theta, X);
    const int64_t K = theta.size(0), N = X.size(0);
    require_float(cache, "cache", 4);
    require_dtype_of_theta(cache, "cache", theta);
    const std::vector<int64_t> shape = cache_shape(s, K, N);
    TORCH_CHECK_VALUE(cache.sizes() == c10::IntArrayRef(shape), "cache: expected shape ", c10::IntArrayRef(shape),
                      " (mlp_batch's second output for these walkers and rows), got ", cache.sizes());
    require_float(grad_out, "grad_out", 3);
    require_dtype_of_theta(grad_out, "grad_out", theta);
    TORCH_CHECK_VALUE(grad_out.size(0) == K && grad_out.size(1) == N && grad_out.size(2) == s.sizes.back(),
                      "grad_out: expected shape (", K, ", ", N, ", ", s.sizes.back(), "), got ", grad_out.sizes());
    static ee::torch_ops::RecycledStorage grad_slot;
    Tensor grad = grad_slot.empty({K, s.n_params()}, theta.options());
    if (K == 0) return grad;
    if (N == 0) return grad.zero_();
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (theta.scalar_type() == at::kFloat)
            ee::mlp_batch_backward<float>(s, theta.data_ptr<float>(), X.data_ptr<float>(), N,
                                          cache.data_ptr<float>(), grad_out.data_ptr<float>(), k0, k1,
                                          grad.data_ptr<float>());
        else
            ee::mlp_batch_backward<double>(s, theta.data_ptr<double>(), X.data_ptr<double>(), N,
                                           cache.data_ptr<double>(), grad_out.data_ptr<double>(), k0, k1,
                                           grad.data_ptr<double>());
    });
    return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(entropyeng, CPU, m) {
    m.impl("mlp_batch", &mlp_batch);
    m.impl("mlp_batch_backward", &mlp_batch_backward);
}
