// Philox-4x32-10 (philox.h) on several counters at once, for the CPU loops: the four words of LANES
// consecutive blocks, word by word in vector registers (one register holds word w of every block).
// The 32 x 32 -> 64-bit products are two unsigned 32-bit multiplies of the even and of the odd lanes
// (pmuludq) and a few shifts and blends, which GCC does not find when it vectorises the scalar
// function across blocks (it takes 64-bit lanes there, half as many blocks a register, and converts
// between the widths around each product). The same integers as philox4x32_10: the normals built
// on them are the same bits. AVX2 and AVX-512 only (at the baseline, two SSE2 registers a group of
// lanes measured slower than GCC's own loop: langevin_loops.inc keeps that there).
#pragma once
#if defined(__AVX2__)

#include <immintrin.h>

#include <cstdint>

#include "philox.h"

namespace ee {
namespace {  // internal linkage: each ISA object keeps its own copy

#if defined(__AVX512F__)
constexpr int PHILOX_BYTES = 64;
#else
constexpr int PHILOX_BYTES = 32;
#endif
constexpr int PHILOX_LANES = PHILOX_BYTES / 4;

typedef uint32_t u32_lanes __attribute__((vector_size(PHILOX_BYTES)));
typedef uint64_t u64_lanes __attribute__((vector_size(PHILOX_BYTES)));

// The 64-bit products of the low halves of a's 64-bit lanes with M (pmuludq: GCC makes a plain 64-bit
// product of vectors three of them at AVX2).
inline u64_lanes mul_low_halves(u64_lanes a, uint32_t M) {
#if defined(__AVX512F__)
    return reinterpret_cast<u64_lanes>(_mm512_mul_epu32(reinterpret_cast<__m512i>(a), _mm512_set1_epi64(M)));
#else
    return reinterpret_cast<u64_lanes>(_mm256_mul_epu32(reinterpret_cast<__m256i>(a), _mm256_set1_epi64x(M)));
#endif
}

// hi and lo of M c, lane by lane (philox_rounds' product for registers of words).
struct LanesMulHiLo {
    void operator()(uint32_t M, u32_lanes c, u32_lanes& hi, u32_lanes& lo) const {
        const u64_lanes c64 = reinterpret_cast<const u64_lanes&>(c);
        const u64_lanes even = mul_low_halves(c64, M);       // lanes 0, 2, ...
        const u64_lanes odd = mul_low_halves(c64 >> 32, M);  // lanes 1, 3, ...
        const u64_lanes lo64 = (even & 0xffffffffull) | (odd << 32);
        const u64_lanes hi64 = (even >> 32) | (odd & 0xffffffff00000000ull);
        lo = reinterpret_cast<const u32_lanes&>(lo64);
        hi = reinterpret_cast<const u32_lanes&>(hi64);
    }
};

// Words w[0..3][l] of blocks b0 + l (l < PHILOX_LANES) at (seed, step): philox4x32_10 with counter
// (block low, block high, step low, step high), key (seed low, seed high), as philox_normal4 calls it.
inline void philox_lanes(uint64_t seed, uint64_t b0, uint64_t step, u32_lanes w[4]) {
    u32_lanes lane;
    for (int l = 0; l < PHILOX_LANES; ++l) lane[l] = static_cast<uint32_t>(l);
    const uint32_t lo = static_cast<uint32_t>(b0), hi = static_cast<uint32_t>(b0 >> 32);
    u32_lanes c0 = lane + lo;
    u32_lanes c1 = (lane * 0u + hi) - static_cast<u32_lanes>(c0 < lo);  // (a carry: the compare's all-ones is -1)
    u32_lanes c2 = lane * 0u + static_cast<uint32_t>(step), c3 = lane * 0u + static_cast<uint32_t>(step >> 32);
    philox_rounds(c0, c1, c2, c3, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), LanesMulHiLo{});
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

}  // namespace
}  // namespace ee
#endif  // __AVX2__
