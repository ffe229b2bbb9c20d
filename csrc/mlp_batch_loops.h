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
#include "kinds.h"
#include "vmath.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace ee {
namespace {  // internal linkage: each ISA object keeps its own copy
namespace batch {

#if defined(__AVX512F__)
constexpr int VEC_BYTES = 64;
constexpr int IN_TILE = 4;  // inputs per register tile of the weights' gradient (16 accumulators)
#else
constexpr int VEC_BYTES = 32;
constexpr int IN_TILE = 2;  // (8 accumulators of 16 registers)
#endif
constexpr int OUT_TILE = 4;  // outputs per register tile of the weights' gradient

// One SIMD register of T (GCC/Clang vector extensions: the loops below say which dimension is the
// vector one, which the auto-vectoriser got wrong for these small tiles), loaded and stored unaligned.
template <class T>
struct Simd {
    typedef T type __attribute__((vector_size(VEC_BYTES)));
};
template <class T>
using vec = typename Simd<T>::type;

template <class T>
constexpr int64_t lanes() {
    return VEC_BYTES / static_cast<int64_t>(sizeof(T));
}

template <class T>
inline vec<T> load(const T* p) {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <class T>
inline void store(T* p, vec<T> v) {
    std::memcpy(p, &v, sizeof v);
}

template <class T>
inline vec<T> splat(T x) {  // outside the inner loops only (it adds 0 to x first, then broadcasts)
    vec<T> v = {};
    return v + x;
}

// Z[j][n] = b[j] + sum_i W(j, i) A[i][n] for j in [j0, j0 + B), rows n < Np; W(j, i) = W[j ws + i is];
// feature i of A at A + i lda, feature j of Z at Z + j ldz. One tile: B outputs x R registers of rows
// (B R accumulators; each step of i loads R registers of A and broadcasts B weights).
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

// The sum of a register's lanes: halves added while a half is at least 16 bytes, then lane by lane.
template <class T, int BYTES>
inline T half_sum(const T* lanes_in) {
    if constexpr (BYTES > 16) {
        typedef T half __attribute__((vector_size(BYTES / 2)));
        half lo, hi;
        std::memcpy(&lo, lanes_in, sizeof lo);
        std::memcpy(&hi, lanes_in + BYTES / 2 / sizeof(T), sizeof hi);
        const half s = lo + hi;
        return half_sum<T, BYTES / 2>(reinterpret_cast<const T*>(&s));
    } else {
        T s = T(0);
        for (size_t k = 0; k < BYTES / sizeof(T); ++k) s += lanes_in[k];
        return s;
    }
}

template <class T>
inline T lane_sum(vec<T> v) {
    return half_sum<T, VEC_BYTES>(reinterpret_cast<const T*>(&v));
}

// out[p] = the sum of the lanes of accumulator p (acc: n SIMD registers of T).
template <class T>
void sum_lanes(const T* acc, int64_t n, T* out) {
    for (int64_t p = 0; p < n; ++p) out[p] = lane_sum<T>(load(acc + p * lanes<T>()));
}

// A thread's working memory (grown, never shrunk; each thread of a parallel_for has its own).
template <class T>
thread_local std::vector<T> storage;

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

// 1 / q for q in [1, 2]: AVX-512's 14-bit estimate and two Newton steps (to rounding) where there is
// one, else a division.
inline vec<double> reciprocal(vec<double> q) {
#if defined(__AVX512F__)
    vec<double> r = _mm512_rcp14_pd(q);
    r = r * (2.0 - q * r);
    return r * (2.0 - q * r);
#else
    return 1.0 / q;
#endif
}

// tanh of one register of float64: vmath::tanh's series (odd Taylor series below 0.125, else
// (1 - e)/(1 + e) with e = exp(-2|z|), exp by the 2^k shifter and Taylor to r^13), lane-wise.
inline vec<double> tanh_lanes(vec<double> z) {
    typedef int64_t ivec __attribute__((vector_size(VEC_BYTES)));
    const vec<double> a = z < 0.0 ? -z : z;
    const vec<double> a2 = a * a;
    vec<double> s = splat(929569.0 / 638512875.0);
    s = s * a2 - 21844.0 / 6081075.0;
    s = s * a2 + 1382.0 / 155925.0;
    s = s * a2 - 62.0 / 2835.0;
    s = s * a2 + 17.0 / 315.0;
    s = s * a2 - 2.0 / 15.0;
    s = s * a2 + 1.0 / 3.0;
    const vec<double> small = a - a * (a2 * s);
    vec<double> x = -2.0 * a;
    x = x < -708.0 ? splat(-708.0) : x;
    constexpr double SHIFTER = 6755399441055744.0;  // 1.5 * 2^52
    const vec<double> kd = x * 1.4426950408889634 + SHIFTER;
    const vec<double> k = kd - SHIFTER;
    const vec<double> r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    vec<double> p = splat(1.0 / 6227020800.0);
    for (double c : {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                     1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0})
        p = p * r + c;
    const ivec ki = reinterpret_cast<const ivec&>(kd) - static_cast<int64_t>(0x4338000000000000);  // bits of SHIFTER
    const ivec scale_bits = (ki + 1023) << 52;
    const vec<double> e = p * reinterpret_cast<const vec<double>&>(scale_bits);
    const vec<double> large = (1.0 - e) * reciprocal(1.0 + e);
    const vec<double> t = a < 0.125 ? small : large;
    return z < 0.0 ? -t : t;
}

// 1 / q for q in [4.8e-3, 1]: the hardware's reciprocal estimate and one Newton step (relative error
// ~2^-24 from AVX-512's 14-bit estimate, ~2^-22 from AVX's 12-bit one) where there is one, else a
// division (the division alone took half the float32 forward pass).
inline vec<float> reciprocal(vec<float> q) {
#if defined(__AVX512F__)
    const vec<float> r = _mm512_rcp14_ps(q);
#elif defined(__AVX__)
    const vec<float> r = _mm256_rcp_ps(q);
#else
    return 1.0f / q;
#endif
#if defined(__AVX__)
    return r * (2.0f - q * r);
#endif
}

// tanh of one register of float32: the rational approximation of Eigen's fast float tanh (odd
// numerator of degree 13 over an even denominator of degree 6 on |z| <= 7.9053111, z itself below
// 4e-4; a few ulp, tested against float64 tanh).
inline vec<float> tanh_lanes(vec<float> z) {
    const vec<float> x = z > 7.90531110763549805f ? splat(7.90531110763549805f)
                         : (z < -7.90531110763549805f ? splat(-7.90531110763549805f) : z);
    const vec<float> x2 = x * x;
    vec<float> p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    vec<float> q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    const vec<float> a = z < 0.0f ? -z : z;
    return a < 0.0004f ? z : p * reciprocal(q);
}

// A = act(Z) over n values, n a whole number of registers (A may be Z).
template <class T>
void activate(int act, const T* Z, T* A, int64_t n) {
    switch (act) {
        case ACT_RELU:
            for (int64_t k = 0; k < n; ++k) A[k] = Z[k] > T(0) ? Z[k] : T(0);
            break;
        case ACT_TANH:
            for (int64_t k = 0; k < n; k += lanes<T>()) store(A + k, tanh_lanes(load(Z + k)));
            break;
        case ACT_SILU:
            for (int64_t k = 0; k < n; ++k) A[k] = static_cast<T>(vmath::silu(static_cast<double>(Z[k])));
            break;
        default:
            if (A != Z) std::copy(Z, Z + n, A);
    }
}

// G *= act'(Z) (A = act(Z)) over n values.
template <class T>
void activate_backward(int act, const T* Z, const T* A, T* G, int64_t n) {
    switch (act) {
        case ACT_RELU:
            for (int64_t k = 0; k < n; ++k) G[k] = Z[k] > T(0) ? G[k] : T(0);
            break;
        case ACT_TANH:
            for (int64_t k = 0; k < n; ++k) G[k] *= T(1) - A[k] * A[k];
            break;
        case ACT_SILU:
            for (int64_t k = 0; k < n; ++k) {
                const double s = 1.0 / (1.0 + vmath::exp(-static_cast<double>(Z[k])));
                G[k] *= static_cast<T>(s * (1.0 + static_cast<double>(Z[k]) * (1.0 - s)));
            }
            break;
        default:
            break;
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
