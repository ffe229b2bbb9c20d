// Argument checks shared by the torch operator bindings of the batched model kernels
// (torch_ops_mlp.cpp, torch_ops_net.cpp): a Python ValueError naming the argument.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ee::torch_ops {

// A defined, contiguous CPU tensor of float32 or float64 with `dim` dimensions.
inline void require_float(const at::Tensor& t, const char* name, int64_t dim) {
    TORCH_CHECK_VALUE(t.defined(), name, ": expected a tensor");
    TORCH_CHECK_VALUE(t.device().is_cpu(), name, ": expected a CPU tensor, got one on ", t.device());
    TORCH_CHECK_VALUE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
                      ": expected float32 or float64, got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.dim() == dim, name, ": expected ", dim, " dimensions, got ", t.dim());
    TORCH_CHECK_VALUE(t.is_contiguous(), name, ": expected a contiguous tensor");
}

// `t` of `theta`'s dtype.
inline void require_dtype_of_theta(const at::Tensor& t, const char* name, const at::Tensor& theta) {
    TORCH_CHECK_VALUE(t.scalar_type() == theta.scalar_type(), name, ": expected the dtype of theta, ",
                      theta.scalar_type(), ", got ", t.scalar_type());
}

}  // namespace ee::torch_ops
