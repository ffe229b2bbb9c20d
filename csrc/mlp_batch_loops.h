// The loops of mlp_batch.h for one instruction-set level (included by mlp_batch_isa.cpp only, which
// is compiled once per level). A walker's rows go through the network in blocks of NB rows (8 SIMD
// registers: 128 float32 or 64 float64 rows), so that a block's working set (about 30 KB for widths
// of 30) stays in the L1 cache through the block's layers. The activations are feature-major: feature
// f of the block's rows is one contiguous run, so every product is a loop over rows in SIMD registers;
// the forward pass writes them straight into the activation cache (chunks of 128 rows, a block within
// one chunk), which the backward pass reads instead of recomputing them. The last block is padded
// with zero input and zero gradient rows, which add nothing to the weights' gradient. The weights'
// gradient is summed in SIMD registers (one per parameter, lanes summed once per walker).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mlp_batch.h"
#include "simd.h"

namespace ee {
namespace {  // internal linkage: each ISA object keeps its own copy
namespace batch {

#if defined(__AVX512F__)
constexpr int IN_TILE = 4;  // inputs per register tile of the weights' gradient (16 accumulators)
#else
constexpr int IN_TILE = 2;  // (8 accumulators of 16 registers)
#endif
constexpr int OUT_TILE = 4;  // outputs per register tile of the weights' gradient

template <class T, int B, int R>
inline void product_tile(const T* W, int64_t ws, int64_t is, const T* b, const T* A, int64_t lda, int64_t I,
                         int64_t Np, int64_t j0, T* Z, int64_t ldz) {
    constexpr int64_t V = lanes<T>();
    for (int64_t n0 = 0; n0 < Np; n0 += R * V) {
        vec<T> acc[B][R];
        for (int r = 0; r < B; ++r)
            for (int c = 0; c < R; ++c) acc[r][c] = splat<T>(b ? b[j0 + r] : T(0));
        for (int64_t i = 0; i < I; ++i) {
            vec<T> a[R];
            for (int c = 0; c < R; ++c) a[c] = load(A + i * lda + n0 + c * V);
            for (int r = 0; r < B; ++r) {
                const T w = W[(j0 + r) * ws + i * is];  // scalar * vector: a broadcast
                for (int c = 0; c < R; ++c) acc[r][c] += w * a[c];
            }
        }
        for (int r = 0; r < B; ++r)
            for (int c = 0; c < R; ++c) store(Z + (j0 + r) * ldz + n0 + c * V, acc[r][c]);
    }
}

// The product's tile: OUT outputs x ROWS registers of rows. 4 x 2 (8 accumulators) everywhere but
// float32 with AVX-512: 6 x 4 (24 of the 32 registers; the spiral MLP's forward + backward, W = 30,
// one walker, 56 -> 47 us, 61 -> 56 us per walker for 64; float64 measured no faster with it). Every
// output sums over i in the same order whatever the tile: the results do not depend on it.
template <class T>
struct ProductTile {
    static constexpr int OUT = 4, ROWS = 2;
};
#if defined(__AVX512F__)
template <>
struct ProductTile<float> {
    static constexpr int OUT = 6, ROWS = 4;
};
#endif

// The last J mod OUT outputs: one tile of `rest` (< B + 1) outputs.
template <class T, int B, int R>
inline void product_rest(int64_t rest, const T* W, int64_t ws, int64_t is, const T* b, const T* A, int64_t lda,
                         int64_t I, int64_t Np, int64_t j0, T* Z, int64_t ldz) {
    if constexpr (B > 0) {
        if (rest == B)
            product_tile<T, B, R>(W, ws, is, b, A, lda, I, Np, j0, Z, ldz);
        else
            product_rest<T, B - 1, R>(rest, W, ws, is, b, A, lda, I, Np, j0, Z, ldz);
    }
}

template <class T>
void product(const T* W, int64_t ws, int64_t is, const T* b, const T* A, int64_t lda, int64_t I, int64_t J,
             int64_t Np, T* Z, int64_t ldz) {
    constexpr int B = ProductTile<T>::OUT, R = ProductTile<T>::ROWS;
    int64_t j = 0;
    for (; j + B <= J; j += B) product_tile<T, B, R>(W, ws, is, b, A, lda, I, Np, j, Z, ldz);
    product_rest<T, B - 1, R>(J - j, W, ws, is, b, A, lda, I, Np, j, Z, ldz);
}

// dW[j][i] += sum_n G[j][n] A[i][n] for j in [j0, j0 + BJ), i in [i0, i0 + BI), rows n < Np (G's features
// Np apart, A's lda apart); dW: J x I SIMD accumulators, row major (the lanes hold partial sums over rows).
template <class T, int BJ, int BI>
inline void outer_tile(const T* G, const T* A, int64_t lda, int64_t Np, int64_t I, int64_t j0, int64_t i0, T* dW) {
    constexpr int64_t V = lanes<T>();
    vec<T> acc[BJ][BI];
    for (int r = 0; r < BJ; ++r)
        for (int c = 0; c < BI; ++c) acc[r][c] = load(dW + ((j0 + r) * I + i0 + c) * V);
    for (int64_t n0 = 0; n0 < Np; n0 += V) {
        vec<T> a[BI];
        for (int c = 0; c < BI; ++c) a[c] = load(A + (i0 + c) * lda + n0);
        for (int r = 0; r < BJ; ++r) {
            const vec<T> g = load(G + (j0 + r) * Np + n0);
            for (int c = 0; c < BI; ++c) acc[r][c] += g * a[c];
        }
    }
    for (int r = 0; r < BJ; ++r)
        for (int c = 0; c < BI; ++c) store(dW + ((j0 + r) * I + i0 + c) * V, acc[r][c]);
}

template <class T, int BJ>
inline void outer_row(const T* G, const T* A, int64_t lda, int64_t Np, int64_t I, int64_t j0, T* dW) {
    int64_t i = 0;
    for (; i + IN_TILE <= I; i += IN_TILE) outer_tile<T, BJ, IN_TILE>(G, A, lda, Np, I, j0, i, dW);
    for (; i < I; ++i) outer_tile<T, BJ, 1>(G, A, lda, Np, I, j0, i, dW);
}

template <class T>
void outer(const T* G, const T* A, int64_t lda, int64_t J, int64_t I, int64_t Np, T* dW) {
    int64_t j = 0;
    for (; j + OUT_TILE <= J; j += OUT_TILE) outer_row<T, OUT_TILE>(G, A, lda, Np, I, j, dW);
    for (; j < J; ++j) outer_row<T, 1>(G, A, lda, Np, I, j, dW);
}

// out[j] += sum_n G[j][n] for every j (out: J SIMD accumulators).
template <class T>
void row_sums(const T* G, int64_t J, int64_t Np, T* out) {
    for (int64_t j = 0; j < J; ++j) {
        vec<T> acc = load(out + j * lanes<T>());
        for (int64_t n0 = 0; n0 < Np; n0 += lanes<T>()) acc += load(G + j * Np + n0);
        store(out + j * lanes<T>(), acc);
    }
}

template <class T>
constexpr int64_t block_rows() {
    return 8 * lanes<T>();
}
static_assert(MLP_CACHE_CHUNK % block_rows<float>() == 0 && MLP_CACHE_CHUNK % block_rows<double>() == 0,
              "a block of rows lies within one chunk of the activation cache");
static_assert(block_rows<float>() % (ProductTile<float>::ROWS * lanes<float>()) == 0 &&
                  block_rows<double>() % (ProductTile<double>::ROWS * lanes<double>()) == 0,
              "a block of rows is a whole number of product tiles");

// A thread's working arrays for one block of NB rows: the input (d_0 x NB), two gradient arrays of the
// widest layer (backward), and one SIMD accumulator per parameter (backward).
template <class T>
struct Scratch {
    static constexpr int64_t NB = block_rows<T>();
    int64_t g0 = 0, g1 = 0, acc = 0;
    std::vector<T>& buf;

    Scratch(const MlpBatchSpec& s, std::vector<T>& storage) : buf(storage) {
        const int64_t widest = *std::max_element(s.sizes.begin(), s.sizes.end());
        g0 = s.sizes[0] * NB;
        g1 = g0 + widest * NB;
        acc = g1 + widest * NB;
        const int64_t total = acc + s.n_params() * lanes<T>();
        if (static_cast<int64_t>(buf.size()) < total) buf.resize(total);
    }
    T* input() { return buf.data(); }
    T* accumulators() { return buf.data() + acc; }
};

// Rows [n0, n0 + nb) of X (row major, N x d_0), transposed and zero-padded to NB rows.
template <class T>
void load_block(const T* X, int64_t d0, int64_t n0, int64_t nb, T* in) {
    constexpr int64_t NB = block_rows<T>();
    std::fill(in, in + d0 * NB, T(0));
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t f = 0; f < d0; ++f) in[f * NB + n] = X[(n0 + n) * d0 + f];
}

// The block of rows [n0, n0 + NB) in walker k's activation cache (mlp_batch.h): cached feature h of
// the block's row r at the returned pointer + h MLP_CACHE_CHUNK + r.
template <class T>
T* cache_block(const MlpBatchSpec& s, T* cache, int64_t N, int64_t k, int64_t n0) {
    const int64_t chunks = (N + MLP_CACHE_CHUNK - 1) / MLP_CACHE_CHUNK, H = s.cache_features();
    return cache + ((k * chunks + n0 / MLP_CACHE_CHUNK) * H) * MLP_CACHE_CHUNK + n0 % MLP_CACHE_CHUNK;
}

// One block through the network: the input `in` (d_0 x NB) to the activations in the cache block `c`.
template <class T>
void forward_block(const MlpBatchSpec& s, const T* theta, const T* in, T* c) {
    constexpr int64_t NB = block_rows<T>(), LD = MLP_CACHE_CHUNK;
    for (int64_t l = 0; l < s.layers(); ++l) {
        const int64_t I = s.sizes[l], J = s.sizes[l + 1];
        const T* b = s.bias[l] ? theta + s.bias_offset(l) : nullptr;
        const T* prev = l == 0 ? in : c + s.cache_a(l - 1) * LD;
        T* Z = c + s.cache_z(l) * LD;
        T* A = c + s.cache_a(l) * LD;
        product(theta + s.weight_offset(l), I, int64_t{1}, b, prev, l == 0 ? NB : LD, I, J, NB, Z, LD);
        for (int64_t f = 0; f < J; ++f) activate(s.acts[l], Z + f * LD, A + f * LD, NB);
    }
}

template <class T>
void forward(const MlpBatchSpec& s, const T* theta, const T* X, int64_t N, int64_t k0, int64_t k1, T* out,
             T* cache) {
    constexpr int64_t NB = block_rows<T>(), LD = MLP_CACHE_CHUNK;
    Scratch<T> w(s, storage<T>);
    const int64_t P = s.n_params(), L = s.layers(), d0 = s.sizes[0], dL = s.sizes[L];
    const int64_t last = s.cache_a(L - 1);
    for (int64_t k = k0; k < k1; ++k)
        for (int64_t n0 = 0; n0 < N; n0 += NB) {
            const int64_t nb = std::min(NB, N - n0);
            load_block(X, d0, n0, nb, w.input());
            T* c = cache_block(s, cache, N, k, n0);
            forward_block(s, theta + k * P, w.input(), c);
            T* o = out + (k * N + n0) * dL;
            for (int64_t n = 0; n < nb; ++n)
                for (int64_t f = 0; f < dL; ++f) o[n * dL + f] = c[(last + f) * LD + n];
        }
    const int64_t tail = N % LD, H = s.cache_features();
    if (tail == 0) return;
    for (int64_t k = k0; k < k1; ++k) {  // the rows past N: zeros (the cache is deterministic)
        T* c = cache_block(s, cache, N, k, N - tail);
        for (int64_t h = 0; h < H; ++h) std::fill(c + h * LD + tail, c + (h + 1) * LD, T(0));
    }
}

template <class T>
void backward(const MlpBatchSpec& s, const T* theta, const T* X, int64_t N, const T* cache, const T* grad_out,
              int64_t k0, int64_t k1, T* grad) {
    constexpr int64_t NB = block_rows<T>(), LD = MLP_CACHE_CHUNK;
    constexpr int64_t V = lanes<T>();
    Scratch<T> w(s, storage<T>);
    const int64_t P = s.n_params(), L = s.layers(), d0 = s.sizes[0], dL = s.sizes[L];
    T* acc = w.accumulators();
    for (int64_t k = k0; k < k1; ++k) {
        const T* th = theta + k * P;
        std::fill(acc, acc + P * V, T(0));
        for (int64_t n0 = 0; n0 < N; n0 += NB) {
            const int64_t nb = std::min(NB, N - n0);
            load_block(X, d0, n0, nb, w.input());
            const T* c = cache_block(s, cache, N, k, n0);
            T* G = w.buf.data() + w.g0;
            T* Gn = w.buf.data() + w.g1;
            load_block(grad_out + k * N * dL, dL, n0, nb, G);
            for (int64_t l = L - 1; l >= 0; --l) {
                const int64_t I = s.sizes[l], J = s.sizes[l + 1];
                const T* Z = c + s.cache_z(l) * LD;
                const T* A = c + s.cache_a(l) * LD;
                for (int64_t f = 0; f < J; ++f) activate_backward(s.acts[l], Z + f * LD, A + f * LD, G + f * NB, NB);
                const T* prev = l == 0 ? w.input() : c + s.cache_a(l - 1) * LD;
                outer(G, prev, l == 0 ? NB : LD, J, I, NB, acc + s.weight_offset(l) * V);
                if (s.bias[l]) row_sums(G, J, NB, acc + s.bias_offset(l) * V);
                if (l > 0) {  // the gradient at the layer's input: G_prev[i][n] = sum_j W[j][i] G[j][n]
                    product(th + s.weight_offset(l), int64_t{1}, I, static_cast<const T*>(nullptr), G, NB, J, I, NB,
                            Gn, NB);
                    std::swap(G, Gn);
                }
            }
        }
        sum_lanes(acc, P, grad + k * P);
    }
}

}  // namespace batch
}  // namespace
}  // namespace ee
