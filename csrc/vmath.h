// exp, tanh and SiLU from +, -, *, / and bit operations, so that loops over them vectorise (a libm
// call does not) and give the same bits on every instruction set (contraction is off).
#pragma once

#include <cstdint>
#include <cstring>

#include "philox.h"

namespace ee {
namespace {  // internal linkage: each ISA object keeps its own copy (see langevin_loops.inc)
namespace vmath {

inline double bits_to_double(uint64_t b) {
    double x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}

inline uint64_t double_to_bits(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

// exp(x), relative error ~1e-16; x clamped to [-708, 709] (exp(-708) ~ 3e-308 stands for 0).
// k = round(x / ln 2) by the 1.5 * 2^52 shifter (no float-to-integer conversion, which AVX2
// cannot vectorise); exp(x) = 2^k exp(r), |r| <= ln2 / 2, Taylor to r^13 (error < 5e-18).
inline double exp(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    constexpr double SHIFTER = 6755399441055744.0;  // 1.5 * 2^52
    const double kd = x * 1.4426950408889634 + SHIFTER;
    const double k = kd - SHIFTER;
    const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const uint64_t ki = double_to_bits(kd) - double_to_bits(SHIFTER);  // k as a 64-bit integer
    const double scale = bits_to_double((ki + 1023u) << 52);
    return p * scale;
}

// tanh(z): odd Taylor series to z^15 for |z| < 0.125 (error < 1e-17), (1 - e)/(1 + e) with
// e = exp(-2|z|) above (a few ulp).
// tanh's odd series a - a^3 s(a^2) of a = |z| < 0.125, for a double or a register of them (simd.h).
template <class V>
inline V tanh_series(V a, V a2) {
    V s = a2 * (929569.0 / 638512875.0) - 21844.0 / 6081075.0;
    s = s * a2 + 1382.0 / 155925.0;
    s = s * a2 - 62.0 / 2835.0;
    s = s * a2 + 17.0 / 315.0;
    s = s * a2 - 2.0 / 15.0;
    s = s * a2 + 1.0 / 3.0;
    return a - a * (a2 * s);
}

inline double tanh(double z) {
    const double a = z < 0.0 ? -z : z;
    const double a2 = a * a;
    const double small = tanh_series(a, a2);
    const double e = exp(-2.0 * a);
    const double large = (1.0 - e) / (1.0 + e);
    const double t = a < 0.125 ? small : large;
    return z < 0.0 ? -t : t;
}

inline double silu(double z) { return z / (1.0 + exp(-z)); }

// log(1 + t) for t in [0, 1]: 2 atanh(s), s = t / (2 + t) in [0, 1/3], odd series to s^33.
inline double log1p_unit(double t) {
    const double s = t / (2.0 + t);
    const double s2 = s * s;
    double p = 1.0 / 33.0;
    p = p * s2 + 1.0 / 31.0;
    p = p * s2 + 1.0 / 29.0;
    p = p * s2 + 1.0 / 27.0;
    p = p * s2 + 1.0 / 25.0;
    p = p * s2 + 1.0 / 23.0;
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
    return 2.0 * s * p;
}

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|).
inline double softplus(double z) {
    const double a = z < 0.0 ? -z : z;
    return (z > 0.0 ? z : 0.0) + log1p_unit(exp(-a));
}

// log(x) for a normal x > 0 (the same series as the Langevin normals' logarithm).
inline double log(double x) { return unit_log(x); }

}  // namespace vmath
}  // namespace
}  // namespace ee
