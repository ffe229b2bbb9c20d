// Counter-based random numbers: Philox-4x32-10 (Salmon, Moraes, Dror & Shaw, SC'11) and the
// standard normals that the Langevin kernel draws from it.
//
// The normal for (seed, index, step) is a pure function of those three integers (and of the
// precision, float or double), computed with +, -, *, / and bit operations only: log, cos, sin and
// sqrt are fixed polynomials and iterations, not a libm's, so that the C++, CUDA and torch implementations give
// bitwise identical values when compiled without floating-point contraction (-ffp-contract=off,
// nvcc --fmad=false). One Philox call serves four consecutive elements (two Box-Muller pairs).
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace ee {

// Float constants are the float rounding of a double expression, so that other implementations
// (numpy.float32(double)) reproduce them exactly.
#define EE_F(x) static_cast<float>(x)

struct Philox4x32 {
    uint32_t v[4];
};

EE_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
}

// Philox-4x32's 10 rounds on the counter (c0, c1, c2, c3) with key (k0, k1), in place: one word
// (uint32_t, below) or one register of words of several counters (philox_lanes.h), `mulhilo` the
// 32 x 32 -> 64-bit product's hi and lo for that type (the same rounds, the same integers).
template <class U, class MulHiLo>
EE_HD void philox_rounds(U& c0, U& c1, U& c2, U& c3, uint32_t k0, uint32_t k1, MulHiLo mulhilo) {
    constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += W0;
            k1 += W1;
        }
        U hi0, lo0, hi1, lo1;
        mulhilo(M0, c0, hi0, lo0);
        mulhilo(M1, c2, hi1, lo1);
        const U n0 = hi1 ^ c1 ^ k0;
        const U n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
}

struct ScalarMulHiLo {
    EE_HD void operator()(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) const { philox_mulhilo(a, b, hi, lo); }
};

// Philox-4x32 with 10 rounds; counter (c0, c1, c2, c3), key (k0, k1).
EE_HD Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                               uint32_t k1) {
    philox_rounds(c0, c1, c2, c3, k0, k1, ScalarMulHiLo{});
    return Philox4x32{{c0, c1, c2, c3}};
}

EE_HD uint64_t ee_double_bits(double x) {
#if defined(__CUDA_ARCH__)
    return static_cast<uint64_t>(__double_as_longlong(x));
#else
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
#endif
}

EE_HD uint32_t ee_float_bits(float x) {
#if defined(__CUDA_ARCH__)
    return static_cast<uint32_t>(__float_as_uint(x));
#else
    uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
#endif
}

EE_HD float ee_bits_float(uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(b);
#else
    float x;
    std::memcpy(&x, &b, sizeof x);
    return x;
#endif
}

EE_HD double ee_bits_double(uint64_t b) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(static_cast<long long>(b));
#else
    double x;
    std::memcpy(&x, &b, sizeof x);
    return x;
#endif
}

// ln(u) for a normal u > 0 (here u in (0, 1]): u = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
// s = (m - 1)/(m + 1), |s| < 0.1716; odd series to s^23 in double (error < 1e-17), to s^11 in float.
EE_HD double unit_log(double u) {
    const uint64_t bits = ee_double_bits(u);
    double e = static_cast<double>(static_cast<int32_t>((bits >> 52) & 0x7ffu) - 1022);
    double m = ee_bits_double((bits & 0x000fffffffffffffull) | 0x3fe0000000000000ull);  // [0.5, 1)
    const bool low = m < 0.70710678118654752440;
    m = low ? m * 2.0 : m;
    e = low ? e - 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0);
    const double s2 = s * s;
    double p = 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    constexpr double LN2_HI = 6.93147180369123816490e-01;
    constexpr double LN2_LO = 1.90821492927058770002e-10;
    return e * LN2_HI + (2.0 * s * p + e * LN2_LO);
}

EE_HD float unit_log(float u) {
    const uint32_t bits = ee_float_bits(u);
    float e = static_cast<float>(static_cast<int32_t>((bits >> 23) & 0xffu) - 126);
    float m = ee_bits_float((bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
    const bool low = m < static_cast<float>(0.70710678118654752440);
    m = low ? m * 2.0f : m;
    e = low ? e - 1.0f : e;
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    float p = EE_F(1.0 / 11.0);
    p = p * s2 + EE_F(1.0 / 9.0);
    p = p * s2 + EE_F(1.0 / 7.0);
    p = p * s2 + EE_F(1.0 / 5.0);
    p = p * s2 + EE_F(1.0 / 3.0);
    p = p * s2 + 1.0f;
    constexpr float LN2_HI = EE_F(0.693145751953125);  // 0x3f317200, exact
    constexpr float LN2_LO = EE_F(1.4286068202862268e-06);
    return e * LN2_HI + (2.0f * s * p + e * LN2_LO);
}

// cos x and sin x for x = 2 pi a, a in [0, 1/4]: Taylor series to x^22 / x^23 (double) or
// x^12 / x^13 (float), Horner in x^2.
EE_HD void quarter_sincos(double a, double& c, double& s) {
    const double x = 6.28318530717958647692 * a;
    const double x2 = x * x;
    double p = -1.0 / 1124000727777607680000.0;  // cos: (-1)^k / (2k)!, k = 11 .. 0
    p = 1.0 / 2432902008176640000.0 + p * x2;
    p = -1.0 / 6402373705728000.0 + p * x2;
    p = 1.0 / 20922789888000.0 + p * x2;
    p = -1.0 / 87178291200.0 + p * x2;
    p = 1.0 / 479001600.0 + p * x2;
    p = -1.0 / 3628800.0 + p * x2;
    p = 1.0 / 40320.0 + p * x2;
    p = -1.0 / 720.0 + p * x2;
    p = 1.0 / 24.0 + p * x2;
    p = -0.5 + p * x2;
    c = 1.0 + p * x2;
    double q = -1.0 / 25852016738884976640000.0;  // sin: (-1)^k / (2k+1)!, k = 11 .. 0
    q = 1.0 / 51090942171709440000.0 + q * x2;
    q = -1.0 / 121645100408832000.0 + q * x2;
    q = 1.0 / 355687428096000.0 + q * x2;
    q = -1.0 / 1307674368000.0 + q * x2;
    q = 1.0 / 6227020800.0 + q * x2;
    q = -1.0 / 39916800.0 + q * x2;
    q = 1.0 / 362880.0 + q * x2;
    q = -1.0 / 5040.0 + q * x2;
    q = 1.0 / 120.0 + q * x2;
    q = -1.0 / 6.0 + q * x2;
    s = x + x * (q * x2);
}

EE_HD void quarter_sincos(float a, float& c, float& s) {
    const float x = EE_F(6.28318530717958647692) * a;
    const float x2 = x * x;
    float p = EE_F(1.0 / 479001600.0);
    p = EE_F(-1.0 / 3628800.0) + p * x2;
    p = EE_F(1.0 / 40320.0) + p * x2;
    p = EE_F(-1.0 / 720.0) + p * x2;
    p = EE_F(1.0 / 24.0) + p * x2;
    p = -0.5f + p * x2;
    c = 1.0f + p * x2;
    float q = EE_F(-1.0 / 6227020800.0);
    q = EE_F(1.0 / 39916800.0) + q * x2;
    q = EE_F(-1.0 / 362880.0) + q * x2;
    q = EE_F(1.0 / 5040.0) + q * x2;
    q = EE_F(-1.0 / 120.0) + q * x2;
    q = EE_F(1.0 / 6.0) + q * x2;
    s = x - x * (q * x2);
}

// sqrt(t) for t in [1e-12, 1e3] (the Box-Muller radius), from +, * and bit operations only: a
// magic-constant guess of 1/sqrt(t) (relative error < 3.5 %), four (double) or three (float) Newton
// steps y <- y (3/2 - t/2 y^2), then t y. Accurate to about one ulp; not the correctly rounded
// sqrt, but the same bits wherever it runs (libraries' sqrt differs: torch's CPU sqrt is not
// correctly rounded).
EE_HD double radius_sqrt(double t) {
    double y = ee_bits_double(0x5FE6EB50C7B537A9ull - (ee_double_bits(t) >> 1));
    const double h = 0.5 * t;
    y = y * (1.5 - h * (y * y));
    y = y * (1.5 - h * (y * y));
    y = y * (1.5 - h * (y * y));
    y = y * (1.5 - h * (y * y));
    return t * y;
}

EE_HD float radius_sqrt(float t) {
    float y = ee_bits_float(0x5F375A86u - (ee_float_bits(t) >> 1));
    const float h = 0.5f * t;
    y = y * (1.5f - h * (y * y));
    y = y * (1.5f - h * (y * y));
    y = y * (1.5f - h * (y * y));
    return t * y;
}

// Box-Muller pair from two 32-bit words: radius from ra, angle from rb.
//   double: u1 = (ra + 1/2) 2^-32;          float: u1 = ((ra >> 9) + 1/2) 2^-23   (both in (0, 1))
//   angle 2 pi t, t = rb 2^-32: quadrant q = rb >> 30, a = (rb & (2^30 - 1)) 2^-32 in [0, 1/4)
//   z0 = R cos(2 pi t), z1 = R sin(2 pi t), R = sqrt(-2 ln u1) (radius_sqrt).
template <class R>
EE_HD void box_muller(uint32_t ra, uint32_t rb, R& z0, R& z1);

template <>
EE_HD void box_muller<double>(uint32_t ra, uint32_t rb, double& z0, double& z1) {
    const double u1 = (static_cast<double>(ra) + 0.5) * (1.0 / 4294967296.0);
    const double a = static_cast<double>(rb & 0x3fffffffu) * (1.0 / 4294967296.0);
    const double r = radius_sqrt(-2.0 * unit_log(u1));
    double c, s;
    quarter_sincos(a, c, s);
    // quadrant q = rb >> 30: (cos, sin) of x + q pi/2 = (c, s), (-s, c), (-c, -s), (s, -c)
    const uint32_t q = rb >> 30;
    const bool swap = (q & 1u) != 0;
    const double sign_c = (((q + 1u) >> 1) & 1u) ? -1.0 : 1.0;
    const double sign_s = (q >> 1) ? -1.0 : 1.0;
    z0 = r * ((swap ? s : c) * sign_c);
    z1 = r * ((swap ? c : s) * sign_s);
}

template <>
EE_HD void box_muller<float>(uint32_t ra, uint32_t rb, float& z0, float& z1) {
    const float u1 = (static_cast<float>(static_cast<int32_t>(ra >> 9)) + 0.5f) * (1.0f / 8388608.0f);
    const float a = static_cast<float>(static_cast<int32_t>(rb & 0x3fffffffu)) * (1.0f / 4294967296.0f);
    const float r = radius_sqrt(-2.0f * unit_log(u1));
    float c, s;
    quarter_sincos(a, c, s);
    // quadrant q = rb >> 30: (cos, sin) of x + q pi/2 = (c, s), (-s, c), (-c, -s), (s, -c)
    const uint32_t q = rb >> 30;
    const bool swap = (q & 1u) != 0;
    const float sign_c = (((q + 1u) >> 1) & 1u) ? -1.0f : 1.0f;
    const float sign_s = (q >> 1) ? -1.0f : 1.0f;
    z0 = r * ((swap ? s : c) * sign_c);
    z1 = r * ((swap ? c : s) * sign_s);
}

// Four standard normals, for elements 4 block .. 4 block + 3, at (seed, step): one Philox-4x32-10
// call with key = (seed low, seed high), counter = (block low, block high, step low, step high);
// words (r0, r1) give elements 0 and 1, (r2, r3) elements 2 and 3, by box_muller in precision R.
template <class R>
EE_HD void philox_normal4(uint64_t seed, uint64_t block, uint64_t step, R z[4]) {
    const Philox4x32 r = philox4x32_10(
        static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), static_cast<uint32_t>(step),
        static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    box_muller<R>(r.v[0], r.v[1], z[0], z[1]);
    box_muller<R>(r.v[2], r.v[3], z[2], z[3]);
}

// The normal of one element (for scalar use and tests; loops use philox_normal4).
template <class R>
EE_HD R philox_normal(uint64_t seed, uint64_t index, uint64_t step) {
    R z[4];
    philox_normal4<R>(seed, index >> 2, step, z);
    return z[index & 3u];
}

}  // namespace ee
