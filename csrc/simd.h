// SIMD registers for the batched loops of one instruction-set level (GCC/Clang vector extensions,
// 64 bytes under AVX-512, else 32), their lane sums, the maths over them (1 / q, tanh) and the
// activations over runs of values: shared by mlp_batch_loops.inc and net_batch_loops.inc. Internal
// linkage: each ISA object that includes it keeps its own copy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aligned.h"
#include "kinds.h"
#include "vmath.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace ee {
namespace {
namespace batch {

#if defined(__AVX512F__)
constexpr int VEC_BYTES = 64;
#else
constexpr int VEC_BYTES = 32;
#endif

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

#if defined(__AVX__) && !defined(__AVX512F__)
// lane_sum of eight float32 accumulators at once (AVX2), the same sums in the same order: each
// accumulator's halves added (lane i + lane i + 4), then its four sums transposed into four
// registers and added in lane order from 0. A third of the operations of eight lane_sums.
inline void lane_sums8(const float* acc, float* out) {
    __m256 h[4];
    for (int q = 0; q < 4; ++q) {
        const __m256 a = _mm256_loadu_ps(acc + 16 * q), b = _mm256_loadu_ps(acc + 16 * q + 8);
        h[q] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }  // h[q]: accumulator 2q's four half sums, then 2q + 1's
    const __m256 t0 = _mm256_unpacklo_ps(h[0], h[1]), t1 = _mm256_unpackhi_ps(h[0], h[1]);
    const __m256 t2 = _mm256_unpacklo_ps(h[2], h[3]), t3 = _mm256_unpackhi_ps(h[2], h[3]);
    const __m256 l0 = _mm256_shuffle_ps(t0, t2, 0x44), l1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 l2 = _mm256_shuffle_ps(t1, t3, 0x44), l3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    // l_i: half sum i of accumulators 0, 2, 4, 6, then of 1, 3, 5, 7
    const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), l0), l1), l2), l3);
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
#endif

// out[p] = the sum of the lanes of accumulator p (acc: n SIMD registers of T).
template <class T>
void sum_lanes(const T* acc, int64_t n, T* out) {
    int64_t p = 0;
#if defined(__AVX__) && !defined(__AVX512F__)
    if constexpr (sizeof(T) == 4)
        for (; p + 8 <= n; p += 8) lane_sums8(acc + p * 8, out + p);
#endif
    for (; p < n; ++p) out[p] = lane_sum<T>(load(acc + p * lanes<T>()));
}

// Keeps a loaded register in a register: GCC otherwise folds its load into each multiply-add that
// uses it (two loads for one where a vector feeds two), which makes a tile's loop load-bound.
template <class V>
inline void in_register(V& v) {
#if defined(__GNUC__) && defined(__AVX512F__)
    __asm__("" : "+v"(v));
#elif defined(__GNUC__) && defined(__AVX__)
    __asm__("" : "+x"(v));
#else
    (void)v;
#endif
}

// A thread's working memory (grown, never shrunk; each thread of a parallel_for has its own).
template <class T>
thread_local AlignedVector<T> storage;

// 1 / q for a normal q >= 1: AVX-512's 14-bit estimate and two Newton steps (to rounding) where there
// is one, else a division.
inline vec<double> reciprocal(vec<double> q) {
#if defined(__AVX512F__)
    vec<double> r = _mm512_rcp14_pd(q);
    r = r * (2.0 - q * r);
    return r * (2.0 - q * r);
#else
    return 1.0 / q;
#endif
}

// tanh of one register of float64, as E / (E + 2) with E = expm1(2|z|) (one polynomial, no branch
// to blend: 30 % fewer operations than a series below 0.125 beside (1 - e)/(1 + e) above, which it
// replaced): expm1(x) = 2^k (e^r - 1) + (2^k - 1), k = round(x / ln 2) by the 1.5 * 2^52 shifter,
// |r| <= ln2 / 2, e^r - 1 = r (1 + r/2 + ... + r^12/13!) (truncation < 4e-18 relative), so small
// arguments keep their relative accuracy; |z| clamped at 19.5, where tanh is 1 in float64. The
// polynomial by Estrin's scheme (a third of Horner's dependent chain), |z| and the sign by bit
// operations, the clamp by a min (15 % off this function at x86-64-v3 against compares and blends;
// a reciprocal estimate with Newton steps instead of the division was 50 % slower there). Within 3
// ulp of tanh (tested on 800,000 arguments from 1e-30 to 40); NaN stays NaN.
inline vec<double> clamp_above(vec<double> a, double hi) {  // min(a, hi), NaN kept (min's 2nd operand)
#if defined(__AVX512F__)
    return _mm512_min_pd(splat(hi), a);
#elif defined(__AVX__)
    return _mm256_min_pd(splat(hi), a);
#else
    return a > hi ? splat(hi) : a;
#endif
}

// tanh of float64 in two halves, which activate runs as two passes over the values: E = expm1(2|z|)
// carrying z's sign, then the quotient. One pass's dependent chain (some 70 cycles at AVX2) was
// longer than the core's window holds at its throughput; two passes took 30,720 float64 tanh
// 40.3 -> 35.3 us at x86-64-v3, the same bits ((-E) r = -(E r) exactly).
inline vec<double> tanh_expm1_signed(vec<double> z) {
    typedef int64_t ivec __attribute__((vector_size(VEC_BYTES)));
    const ivec sign = reinterpret_cast<const ivec&>(z) & static_cast<int64_t>(0x8000000000000000ull);
    const ivec abs_bits = reinterpret_cast<const ivec&>(z) ^ sign;
    const vec<double> a = clamp_above(reinterpret_cast<const vec<double>&>(abs_bits), 19.5);
    const vec<double> x = a + a;
    constexpr double SHIFTER = 6755399441055744.0;  // 1.5 * 2^52
    const vec<double> kd = x * 1.4426950408889634 + SHIFTER;
    const vec<double> k = kd - SHIFTER;
    const vec<double> r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    // p(r) = sum_i r^i / (i + 1)!, i = 0 ... 12, by Estrin's scheme
    const vec<double> r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const vec<double> p01 = r * 0.5 + 1.0, p23 = r * (1.0 / 24.0) + 1.0 / 6.0;
    const vec<double> p45 = r * (1.0 / 720.0) + 1.0 / 120.0, p67 = r * (1.0 / 40320.0) + 1.0 / 5040.0;
    const vec<double> p89 = r * (1.0 / 3628800.0) + 1.0 / 362880.0;
    const vec<double> p1011 = r * (1.0 / 479001600.0) + 1.0 / 39916800.0;
    const vec<double> p03 = p23 * r2 + p01, p47 = p67 * r2 + p45, p811 = p1011 * r2 + p89;
    const vec<double> p07 = p47 * r4 + p03, p812 = r4 * (1.0 / 6227020800.0) + p811;
    const vec<double> q = (p812 * r8 + p07) * r;  // e^r - 1
    const ivec ki = reinterpret_cast<const ivec&>(kd) - static_cast<int64_t>(0x4338000000000000);  // bits of SHIFTER
    const ivec scale_bits = (ki + 1023) << 52;
    const vec<double> s = reinterpret_cast<const vec<double>&>(scale_bits);  // 2^k, k in [0, 57]
    const vec<double> E = s * q + (s - 1.0);
    const ivec E_bits = reinterpret_cast<const ivec&>(E) ^ sign;
    return reinterpret_cast<const vec<double>&>(E_bits);
}

// tanh z from Es = tanh_expm1_signed(z): Es / (|Es| + 2).
inline vec<double> tanh_quotient(vec<double> Es) {
    typedef int64_t ivec __attribute__((vector_size(VEC_BYTES)));
    const ivec abs_bits = reinterpret_cast<const ivec&>(Es) & static_cast<int64_t>(0x7fffffffffffffffull);
    return Es * reciprocal(reinterpret_cast<const vec<double>&>(abs_bits) + 2.0);
}

// 1 / q for q in [1, 184] (tanh_lanes' denominator): the hardware's reciprocal estimate and one
// Newton step (relative error ~2^-24 from AVX-512's 14-bit estimate, ~2^-22 from AVX's 12-bit one)
// where there is one, else a division (the division alone took half the float32 forward pass).
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

// tanh of one register of float32: z P(z^2) / Q(z^2) on |z| <= 7.9053111 (where float32's tanh
// reaches 1), P of degree 5 and Q of degree 3 in z^2 (a rational of degree 11 over 6, fitted minimax
// in relative error by bench/tanh_fit.py: 0.4 ulp in exact arithmetic, within 3 ulp here with the
// reciprocal's Newton step, tested against float64 tanh over every binade and on subnormals; 9 over
// 6 fits to 1.9 ulp exact, too close to the tests' 4 with the reciprocal's). It replaced Eigen's
// fast float tanh (degree 13 over 6, and a branch that returned z below 4e-4): one multiply-add and
// the branch's three operations fewer, 17 % off this function at AVX2; z below 4e-4 needs no
// branch, as P(0) / Q(0) = 1 - 3e-8 rounds to 1 (z comes back, subnormals too).
// (The clamp by min and max: 9 % off this function at x86-64-v3 against compares and blends, the
// same values; NaN stays NaN, the second operand of min and max.)
inline vec<float> tanh_lanes(vec<float> z) {
    constexpr float HI = 7.90531110763549805f;
#if defined(__AVX512F__)
    const vec<float> x = _mm512_min_ps(splat(HI), _mm512_max_ps(splat(-HI), z));
#elif defined(__AVX__)
    const vec<float> x = _mm256_min_ps(splat(HI), _mm256_max_ps(splat(-HI), z));
#else
    const vec<float> x = z > HI ? splat(HI) : (z < -HI ? splat(-HI) : z);
#endif
    const vec<float> x2 = x * x;
    vec<float> p = x2 * 2.659092523156519e-11f + -1.5837270779417564e-08f;
    p = x2 * p + 1.0242914626554355e-05f;
    p = x2 * p + 0.0030251308206483453f;
    p = x2 * p + 0.13015602507275773f;
    p = x2 * p + 0.9999999715297951f;
    p = x * p;
    vec<float> q = x2 * 0.00024266388725065682f + 0.024188211630563335f;
    q = x2 * q + 0.4634893780551915f;
    q = x2 * q + 1.0f;
    return p * reciprocal(q);
}

// A = act(Z) over n values, n a whole number of registers (A may be Z).
template <class T>
void activate(int act, const T* Z, T* A, int64_t n) {
    switch (act) {
        case ACT_RELU:
            for (int64_t k = 0; k < n; ++k) A[k] = Z[k] > T(0) ? Z[k] : T(0);
            break;
        case ACT_TANH:
            if constexpr (sizeof(T) == 8) {  // (two passes: see tanh_expm1_signed; A may be Z)
                for (int64_t k = 0; k < n; k += lanes<T>()) store(A + k, tanh_expm1_signed(load(Z + k)));
                for (int64_t k = 0; k < n; k += lanes<T>()) store(A + k, tanh_quotient(load(A + k)));
            } else {
                for (int64_t k = 0; k < n; k += lanes<T>()) store(A + k, tanh_lanes(load(Z + k)));
            }
            break;
        case ACT_SILU:
            for (int64_t k = 0; k < n; ++k) A[k] = static_cast<T>(vmath::silu(static_cast<double>(Z[k])));
            break;
        default:
            if (A != Z) std::copy(Z, Z + n, A);
    }
}

// out = G act'(Z) (A = act(Z)) over n values; out may be G.
template <class T>
void activate_backward_to(int act, const T* Z, const T* A, const T* G, T* out, int64_t n) {
    switch (act) {
        case ACT_RELU:
            for (int64_t k = 0; k < n; ++k) {
                const T gk = G[k];  // (read unconditionally: a select, not a masked load)
                out[k] = Z[k] > T(0) ? gk : T(0);
            }
            break;
        case ACT_TANH:
            for (int64_t k = 0; k < n; ++k) out[k] = G[k] * (T(1) - A[k] * A[k]);
            break;
        case ACT_SILU:
            for (int64_t k = 0; k < n; ++k) {
                const double s = 1.0 / (1.0 + vmath::exp(-static_cast<double>(Z[k])));
                out[k] = G[k] * static_cast<T>(s * (1.0 + static_cast<double>(Z[k]) * (1.0 - s)));
            }
            break;
        default:
            if (out != G) std::copy(G, G + n, out);
    }
}

// G *= act'(Z) (A = act(Z)) over n values.
template <class T>
void activate_backward(int act, const T* Z, const T* A, T* G, int64_t n) {
    activate_backward_to(act, Z, A, G, G, n);
}

}  // namespace batch
}  // namespace
}  // namespace ee
