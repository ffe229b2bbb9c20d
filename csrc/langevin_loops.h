// The Langevin and normal loops as templates. Included only by langevin_isa.cpp, which is compiled
// once per x86-64 ISA level (baseline, v3 = AVX2, v4 = AVX-512) so that the compiler vectorises each
// for its instruction set; langevin.cpp picks one when the module loads. Floating-point
// contraction is off everywhere, so every level computes the same bits.
#pragma once

#include <cstdint>

#include "langevin_math.h"
#include "philox.h"

namespace ee {
// Internal linkage: each ISA object keeps its own instantiations (shared inline symbols would be
// merged by the linker into one copy, compiled for one ISA only).
namespace {
namespace loops {


constexpr int64_t CHUNK = 1024;  // elements per block of normals (a multiple of 4, fits in L1)

// z[0 .. 4 nb) = normals of elements 4 b0 .. 4 (b0 + nb).
template <class T>
inline void normals_blocks(uint64_t seed, uint64_t step, uint64_t b0, int64_t nb, T* __restrict z) {
    for (int64_t b = 0; b < nb; ++b) {
        T q[4];
        philox_normal4<T>(seed, b0 + static_cast<uint64_t>(b), step, q);
        z[4 * b + 0] = q[0];
        z[4 * b + 1] = q[1];
        z[4 * b + 2] = q[2];
        z[4 * b + 3] = q[3];
    }
}

template <class T, bool ARRAY_BOUND>
inline int update_span(T* __restrict theta, T* __restrict v, const T* __restrict grad,
                       const T* __restrict bound, T b0, const T* __restrict xi, int64_t m, T dt,
                       T c1, T amp) {
    int outside = 0;
    for (int64_t i = 0; i < m; ++i) {
        T th = theta[i], vv = v[i];
        outside |= langevin_element(th, vv, grad[i], ARRAY_BOUND ? bound[i] : b0, dt, c1, amp, xi[i]);
        theta[i] = th;
        v[i] = vv;
    }
    return outside;
}

// Elements [0, n) of an array whose element 0 has the global index e0 (the noise of element i is that
// of index e0 + i, so any split of one array into spans draws the same normals as the whole).
template <class T>
inline bool langevin_loop(T* theta, T* v, const T* grad, const T* bound, T b0, int64_t n, T dt, T c1,
                          T amp, uint64_t seed, uint64_t step, uint64_t e0) {
    alignas(64) T xi[CHUNK + 4];
    const int64_t lane = static_cast<int64_t>(e0 % 4);  // CHUNK is a multiple of 4: the same in every chunk
    int outside = 0;
    for (int64_t start = 0; start < n; start += CHUNK) {
        const int64_t m = (n - start < CHUNK) ? n - start : CHUNK;
        normals_blocks<T>(seed, step, (e0 + static_cast<uint64_t>(start)) / 4, (lane + m + 3) / 4, xi);
        outside |= bound ? update_span<T, true>(theta + start, v + start, grad + start, bound + start,
                                                b0, xi + lane, m, dt, c1, amp)
                         : update_span<T, false>(theta + start, v + start, grad + start, nullptr, b0,
                                                 xi + lane, m, dt, c1, amp);
    }
    return outside != 0;
}

template <class T>
inline void normal_loop(uint64_t seed, uint64_t step, int64_t n, T* out) {
    alignas(64) T z[CHUNK];
    for (int64_t start = 0; start < n; start += CHUNK) {
        const int64_t m = (n - start < CHUNK) ? n - start : CHUNK;
        normals_blocks<T>(seed, step, static_cast<uint64_t>(start / 4), (m + 3) / 4, z);
        for (int64_t i = 0; i < m; ++i) out[start + i] = z[i];
    }
}

}  // namespace loops
}  // namespace
}  // namespace ee
