// The forward pass and the vector-Jacobian product of K copies of one small convolutional network
// (K walkers' parameter vectors) on one set of images: the model half of a batched WLMD step for
// the paper's CNNs. A network is a sequence of layers: 3-D convolutions (stride 1, zero padding),
// activations, 2 x 2 max pooling, flatten and linear layers, the order of an nn.Sequential.
//
// The images go through the network in blocks of one SIMD register's width (16 float32 or 8
// float64 images, one per lane), so every layer of any spatial size is a loop of vector
// operations; a block's activations stay in the L2 cache from the forward pass to the backward one.
// One walker at a time; a caller runs ranges of walkers on threads of its own. The parameters are in
// torch's layout (each layer's weight, then its bias). Fused multiply-add where the CPU has it:
// results equal the torch reference to rounding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu_isa.h"
#include "kinds.h"

namespace ee {

// Layer kinds (LayerCode, kinds.h) and their fields in the flat description (see parse_net):
//   LAYER_CONV:    c_in, c_out, k, pad, bias   (k x k kernel, stride 1, zero padding pad <= k - 1)
//   LAYER_ACT:     code                        (an ActCode)
//   LAYER_MAXPOOL:                             (2 x 2, stride 2, floor)
//   LAYER_FLATTEN:                             (C x H x W -> C H W features, torch's order)
//   LAYER_LINEAR:  in, out, bias
struct NetLayer {
    int kind = 0;
    int64_t cin = 0, cout = 0, k = 0, pad = 0;
    bool bias = false;
    int act = 0;
    // shapes in and out (a flat layer has H = W = 1 and C features), and the parameter offsets
    int64_t C_in = 0, H_in = 0, W_in = 0, C_out = 0, H_out = 0, W_out = 0;
    int64_t w_off = -1, b_off = -1;
};

struct NetBatchSpec {
    int64_t C = 0, H = 0, W = 0;  // the input images
    std::vector<NetLayer> layers;
    int64_t n_params = 0, out_features = 0, border = 0;
};

// Reads the flat description for images of C x H x W; an empty string, or what is wrong.
std::string parse_net(const int64_t* codes, int64_t n_codes, int64_t C, int64_t H, int64_t W, NetBatchSpec& spec);

// out (K x N x out_features, the walkers [k0, k1) written) = the network of theta[k] (K x P) on X
// (N x C x H x W).
template <class T>
void net_batch_forward(const NetBatchSpec& spec, const T* theta, const T* X, int64_t N, int64_t k0, int64_t k1,
                       T* out);

// grad (K x P, the walkers [k0, k1) written) = d/dtheta of sum(grad_out[k] * out[k]).
template <class T>
void net_batch_backward(const NetBatchSpec& spec, const T* theta, const T* X, int64_t N, const T* grad_out,
                        int64_t k0, int64_t k1, T* grad);

// The native WLMD step's passes of one walker (theta: its P parameters, out / grad_out: its N x
// out_features, grad: its P), which keep the forward pass's activations for the backward pass
// instead of recomputing them: `cache` holds net_batch_cache_len(spec, N) values of T, all zero
// before its first forward pass (the passes write interiors only, so its borders stay zero; a cache
// filled for another network or N must be zeroed again). The same sums as net_batch_forward /
// net_batch_backward: equal bit for bit. The cache keeps the images too, in the blocks' layout: with
// load_images false the forward pass takes them from the cache as an earlier pass over the same X
// left them (X is then not read), saving their transposition on every step of a run.
template <class T>
int64_t net_batch_cache_len(const NetBatchSpec& spec, int64_t N);
template <class T>
void net_batch_forward_cached(const NetBatchSpec& spec, const T* theta, const T* X, int64_t N, T* out, T* cache,
                              bool load_images);
template <class T>
void net_batch_backward_cached(const NetBatchSpec& spec, const T* theta, int64_t N, const T* cache, const T* grad_out,
                               T* grad);

struct NetBatchKernels {
    void (*forward_f)(const NetBatchSpec&, const float*, const float*, int64_t, int64_t, int64_t, float*);
    void (*forward_d)(const NetBatchSpec&, const double*, const double*, int64_t, int64_t, int64_t, double*);
    void (*backward_f)(const NetBatchSpec&, const float*, const float*, int64_t, const float*, int64_t, int64_t,
                       float*);
    void (*backward_d)(const NetBatchSpec&, const double*, const double*, int64_t, const double*, int64_t, int64_t,
                       double*);
    int64_t (*cache_len_f)(const NetBatchSpec&, int64_t);
    int64_t (*cache_len_d)(const NetBatchSpec&, int64_t);
    void (*forward_cached_f)(const NetBatchSpec&, const float*, const float*, int64_t, float*, float*, bool);
    void (*forward_cached_d)(const NetBatchSpec&, const double*, const double*, int64_t, double*, double*, bool);
    void (*backward_cached_f)(const NetBatchSpec&, const float*, int64_t, const float*, const float*, float*);
    void (*backward_cached_d)(const NetBatchSpec&, const double*, int64_t, const double*, const double*, double*);
};

EE_DECLARE_ISA_TABLE(NetBatchKernels, net_batch_kernels)

}  // namespace ee
