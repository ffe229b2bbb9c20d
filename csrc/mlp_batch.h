// The forward pass and the vector-Jacobian product of K copies of one MLP (K walkers' parameter
// vectors) on one set of rows: the model half of a batched WLMD step. One walker at a time, its
// activations kept feature-major so that every product is a loop over rows; the forward pass leaves
// them in an activation cache that the backward pass reads; a caller runs ranges of walkers on
// threads of its own.
//
// The layout of a walker's parameters is torch's: for each Linear layer its weight (out x in, row
// major), then its bias (out) when it has one. Activation codes as in mlp.h: 0 identity, 1 ReLU,
// 2 tanh, 3 SiLU. Unlike the WLMC kernels, these loops use fused multiply-add where the CPU has it
// (as torch's own matrix products do): results agree with the torch reference to rounding, and
// between instruction-set levels to rounding, not bit for bit; on one machine they are
// deterministic and independent of the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu_isa.h"

namespace ee {

// The activation cache of K walkers on N rows: K x C x H x MLP_CACHE_CHUNK values, C = ceil(N / 128)
// chunks of 128 rows, H = MlpBatchSpec::cache_features(); cached feature h of row n of walker k at
// ((k C + n / 128) H + h) 128 + n % 128. The features are, layer by layer, the pre-activation Z_l
// (SiLU layers only, whose derivative needs it) and the activation A_l (each d_{l+1} wide). The rows
// past N in the last chunk are zeros.
constexpr int64_t MLP_CACHE_CHUNK = 128;

// X's nonzeros, built once from rows that do not change (a WLMD run's data), in two orders:
// - by rows (compressed sparse rows): row n's values val[start[n] .. start[n + 1]) in the columns
//   col[...], ascending (the first layer's forward pass);
// - by columns within groups of SPARSE_GROUP rows: group g's columns gcol[gstart[g] .. gstart[g + 1]),
//   ascending, column c of them holding the rows grow[gentry[c] .. gentry[c + 1]), ascending, with
//   their values gval[...] (the first layer's weight gradient, a column's sum kept in registers).
constexpr int64_t SPARSE_GROUP = 32;  // divides every level's block of rows (32, 64 or 128)

template <class T>
struct SparseRows {
    std::vector<int64_t> start;
    std::vector<int32_t> col;
    std::vector<T> val;
    std::vector<int64_t> gstart, gentry;
    std::vector<int32_t> gcol, grow;
    std::vector<T> gval;
};

template <class T>
SparseRows<T> sparse_rows(const T* X, int64_t N, int64_t d) {
    SparseRows<T> r;
    r.start.reserve(static_cast<size_t>(N) + 1);
    r.start.push_back(0);
    for (int64_t n = 0; n < N; ++n) {
        for (int64_t f = 0; f < d; ++f)
            if (X[n * d + f] != T(0)) {
                r.col.push_back(static_cast<int32_t>(f));
                r.val.push_back(X[n * d + f]);
            }
        r.start.push_back(static_cast<int64_t>(r.col.size()));
    }
    r.gstart.push_back(0);
    r.gentry.push_back(0);
    for (int64_t n0 = 0; n0 < N; n0 += SPARSE_GROUP) {
        const int64_t n1 = n0 + SPARSE_GROUP < N ? n0 + SPARSE_GROUP : N;
        for (int64_t f = 0; f < d; ++f) {
            const size_t before = r.grow.size();
            for (int64_t n = n0; n < n1; ++n)
                if (X[n * d + f] != T(0)) {
                    r.grow.push_back(static_cast<int32_t>(n));
                    r.gval.push_back(X[n * d + f]);
                }
            if (r.grow.size() != before) {
                r.gcol.push_back(static_cast<int32_t>(f));
                r.gentry.push_back(static_cast<int64_t>(r.grow.size()));
            }
        }
        r.gstart.push_back(static_cast<int64_t>(r.gcol.size()));
    }
    return r;
}

struct MlpBatchSpec {
    std::vector<int64_t> sizes;  // d_0, ..., d_L
    std::vector<int> acts;       // the activation after each layer (L)
    std::vector<char> bias;      // whether each layer has a bias (L)
    // Where set, a SparseRows<T> of the X the kernels are called with (T the call's dtype): the first
    // layer's product and weight gradient then visit X's nonzeros only (the house data's one-hot
    // features: a quarter of the values), row by row, the other layers as before. The sums keep
    // their order over the inputs (zeros skipped), so the forward pass equals the dense one; the
    // first layer's weight gradient is summed over rows in another order (equal to rounding). The
    // first layer's width at most 16 registers (64 float32 / 32 float64 values with AVX2); a wider
    // one takes the dense loops.
    const void* sparse_rows = nullptr;

    int64_t layers() const { return static_cast<int64_t>(acts.size()); }
    // Offsets of layer l's weight and bias (-1: none) in a walker's parameter vector, and its length.
    int64_t weight_offset(int64_t l) const;
    int64_t bias_offset(int64_t l) const;
    int64_t n_params() const;
    // The first cached feature of layer l's Z_l and of its A_l (the same unless it is SiLU), and H.
    int64_t cache_z(int64_t l) const;
    int64_t cache_a(int64_t l) const;
    int64_t cache_features() const;
};

// out (K x N x d_L, the walkers [k0, k1) written) = the MLP of theta[k] (K x P) on X (N x d_0), and
// those walkers' activations in cache (the layout above).
template <class T>
void mlp_batch_forward(const MlpBatchSpec& spec, const T* theta, const T* X, int64_t N, int64_t k0, int64_t k1,
                       T* out, T* cache);

// grad (K x P, the walkers [k0, k1) written) = grad_out[k] (N x d_L) pulled back through the MLP of
// theta[k] on X: d/dtheta of sum(grad_out[k] * out[k]), with the activations the forward pass left in
// cache.
template <class T>
void mlp_batch_backward(const MlpBatchSpec& spec, const T* theta, const T* X, int64_t N, const T* cache,
                        const T* grad_out, int64_t k0, int64_t k1, T* grad);

// One instruction-set level's loops (mlp_batch_isa.cpp) and the table mlp_batch.cpp picks from.
struct MlpBatchKernels {
    void (*forward_f)(const MlpBatchSpec&, const float*, const float*, int64_t, int64_t, int64_t, float*, float*);
    void (*forward_d)(const MlpBatchSpec&, const double*, const double*, int64_t, int64_t, int64_t, double*,
                      double*);
    void (*backward_f)(const MlpBatchSpec&, const float*, const float*, int64_t, const float*, const float*, int64_t,
                       int64_t, float*);
    void (*backward_d)(const MlpBatchSpec&, const double*, const double*, int64_t, const double*, const double*,
                       int64_t, int64_t, double*);
};

EE_DECLARE_ISA_TABLE(MlpBatchKernels, mlp_batch_kernels)

}  // namespace ee
