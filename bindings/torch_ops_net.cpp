// The CPU kernels of entropyeng::net_batch and entropyeng::net_batch_backward (schemas in
// entropyeng/ops.py): K walkers' copies of one small convolutional network on one set of images,
// and their vector-Jacobian product (csrc net_batch.h). A binding: argument checks naming the
// argument, the walkers split over torch's intra-op threads, data pointers handed to csrc; no maths.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <torch/library.h>

#include <cstdint>
#include <string>

#include "net_batch.h"
#include "torch_checks.h"

namespace {

using at::Tensor;

using ee::torch_ops::require_dtype_of_theta;
using ee::torch_ops::require_float;

ee::NetBatchSpec checked_spec(const Tensor& theta, const Tensor& X, c10::IntArrayRef spec) {
    require_float(theta, "theta", 2);
    require_float(X, "X", 4);
    require_dtype_of_theta(X, "X", theta);
    TORCH_CHECK_VALUE(X.size(1) >= 1 && X.size(2) >= 1 && X.size(3) >= 1 && X.size(1) <= 65536 &&
                          X.size(2) <= 65536 && X.size(3) <= 65536,
                      "X: expected images of 1 to 2^16 channels, rows and columns, got ", X.sizes());
    TORCH_CHECK_VALUE(X.size(0) <= (int64_t{1} << 31), "X: expected at most 2^31 images");
    ee::NetBatchSpec s;
    const std::string err = ee::parse_net(spec.data(), static_cast<int64_t>(spec.size()), X.size(1), X.size(2),
                                          X.size(3), s);
    TORCH_CHECK_VALUE(err.empty(), err);
    TORCH_CHECK_VALUE(theta.size(1) == s.n_params, "theta: expected ", s.n_params,
                      " parameters per walker (the network's), got ", theta.size(1));
    return s;
}

Tensor net_batch(const Tensor& theta, const Tensor& X, c10::IntArrayRef spec) {
    const ee::NetBatchSpec s = checked_spec(theta, X, spec);
    const int64_t K = theta.size(0), N = X.size(0);
    Tensor out = at::empty({K, N, s.out_features}, theta.options());
    if (K == 0 || N == 0) return out;
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (theta.scalar_type() == at::kFloat)
            ee::net_batch_forward<float>(s, theta.data_ptr<float>(), X.data_ptr<float>(), N, k0, k1,
                                         out.data_ptr<float>());
        else
            ee::net_batch_forward<double>(s, theta.data_ptr<double>(), X.data_ptr<double>(), N, k0, k1,
                                          out.data_ptr<double>());
    });
    return out;
}

Tensor net_batch_backward(const Tensor& theta, const Tensor& X, const Tensor& grad_out, c10::IntArrayRef spec) {
    const ee::NetBatchSpec s = checked_spec(theta, X, spec);
    const int64_t K = theta.size(0), N = X.size(0);
    require_float(grad_out, "grad_out", 3);
    require_dtype_of_theta(grad_out, "grad_out", theta);
    TORCH_CHECK_VALUE(grad_out.size(0) == K && grad_out.size(1) == N && grad_out.size(2) == s.out_features,
                      "grad_out: expected shape (", K, ", ", N, ", ", s.out_features, "), got ", grad_out.sizes());
    Tensor grad = at::empty({K, s.n_params}, theta.options());
    if (K == 0) return grad;
    if (N == 0) return grad.zero_();
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        if (theta.scalar_type() == at::kFloat)
            ee::net_batch_backward<float>(s, theta.data_ptr<float>(), X.data_ptr<float>(), N,
                                          grad_out.data_ptr<float>(), k0, k1, grad.data_ptr<float>());
        else
            ee::net_batch_backward<double>(s, theta.data_ptr<double>(), X.data_ptr<double>(), N,
                                           grad_out.data_ptr<double>(), k0, k1, grad.data_ptr<double>());
    });
    return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(entropyeng, CPU, m) {
    m.impl("net_batch", &net_batch);
    m.impl("net_batch_backward", &net_batch_backward);
}
