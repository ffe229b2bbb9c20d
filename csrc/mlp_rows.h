// The row kernels of the incremental MLP forward pass, as inline functions with internal linkage.
// Included only by mlp_isa.cpp, which is compiled once per x86-64 ISA level (see langevin_isa.cpp).
// Rows are feature-major: one unit's values over the n data rows are contiguous.
#pragma once

#include <cstdint>

#include "vmath.h"
#include "kinds.h"

namespace ee {
namespace {
namespace rows {

// out = act(z) over n values (act: an ActCode).
inline void activate(int act, const double* __restrict z, double* __restrict out, int64_t n) {
    switch (act) {
        case ACT_RELU:
            for (int64_t i = 0; i < n; ++i) out[i] = z[i] > 0.0 ? z[i] : 0.0;
            break;
        case ACT_TANH:
            for (int64_t i = 0; i < n; ++i) out[i] = vmath::tanh(z[i]);
            break;
        case ACT_SILU:
            for (int64_t i = 0; i < n; ++i) out[i] = vmath::silu(z[i]);
            break;
        default:
            for (int64_t i = 0; i < n; ++i) out[i] = z[i];
    }
}

// Z = W prev + b, A = act(Z): W (out x in), prev (in x n), Z and A (out x n).
inline void layer(const double* __restrict W, const double* __restrict b, const double* __restrict prev, int64_t in,
                  int64_t out, int64_t n, int act, double* __restrict Z, double* __restrict A) {
    for (int64_t r = 0; r < out; ++r) {
        double* __restrict z = Z + r * n;
        const double bias = b ? b[r] : 0.0;
        for (int64_t i = 0; i < n; ++i) z[i] = bias;
        for (int64_t c = 0; c < in; ++c) {
            const double w = W[r * in + c];
            const double* __restrict a = prev + c * n;
            for (int64_t i = 0; i < n; ++i) z[i] += w * a[i];
        }
        activate(act, z, A + r * n, n);
    }
}

// SZ = Z + W[:, r] diff, SA = act(SZ): the layer after a move that changed row r of its input by diff.
inline void rank1(const double* __restrict W, int64_t in, int64_t out, int64_t r, const double* __restrict Z,
                  const double* __restrict diff, int64_t n, int act, double* __restrict SZ, double* __restrict SA) {
    for (int64_t q = 0; q < out; ++q) {
        const double w = W[q * in + r];
        const double* __restrict z = Z + q * n;
        double* __restrict s = SZ + q * n;
        for (int64_t i = 0; i < n; ++i) s[i] = z[i] + w * diff[i];
        activate(act, s, SA + q * n, n);
    }
}

// The moved row: zs = zr + delta a (a weight; a = null for a bias: zs = zr + delta), as = act(zs),
// and diff = as - aold.
inline void moved_row(const double* __restrict zr, const double* __restrict a, double delta, int64_t n, int act,
                      const double* __restrict aold, double* __restrict zs, double* __restrict as,
                      double* __restrict diff) {
    if (a) {
        for (int64_t i = 0; i < n; ++i) zs[i] = zr[i] + delta * a[i];
    } else {
        for (int64_t i = 0; i < n; ++i) zs[i] = zr[i] + delta;
    }
    activate(act, zs, as, n);
    if (diff)
        for (int64_t i = 0; i < n; ++i) diff[i] = as[i] - aold[i];
}

// Per-sample loss terms into out[0 .. n): loss 0 bce (softplus(z) - t z), 1 ce (logsumexp - z_t;
// work holds 2 n doubles), 2 mse (sum over outputs of (z - t)^2). The caller sums them in order.
inline void loss_terms(int loss, const double* const* rows, const double* __restrict t, int64_t n, int64_t K,
                       double* __restrict out, double* __restrict work) {
    if (loss == 0) {
        const double* __restrict z = rows[0];
        for (int64_t i = 0; i < n; ++i) out[i] = vmath::softplus(z[i]) - t[i] * z[i];
    } else if (loss == 1) {
        double* __restrict m = work;
        double* __restrict s = work + n;
        const double* __restrict z0 = rows[0];
        for (int64_t i = 0; i < n; ++i) m[i] = z0[i];
        for (int64_t k = 1; k < K; ++k) {
            const double* __restrict z = rows[k];
            for (int64_t i = 0; i < n; ++i) m[i] = z[i] > m[i] ? z[i] : m[i];
        }
        for (int64_t i = 0; i < n; ++i) s[i] = 0.0;
        for (int64_t k = 0; k < K; ++k) {
            const double* __restrict z = rows[k];
            for (int64_t i = 0; i < n; ++i) s[i] += vmath::exp(z[i] - m[i]);
        }
        for (int64_t i = 0; i < n; ++i) out[i] = m[i] + vmath::log(s[i]);
        for (int64_t i = 0; i < n; ++i) out[i] -= rows[static_cast<int64_t>(t[i])][i];
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = 0.0;
        for (int64_t k = 0; k < K; ++k) {
            const double* __restrict z = rows[k];
            const double* __restrict tk = t + k * n;
            for (int64_t i = 0; i < n; ++i) {
                const double e = z[i] - tk[i];
                out[i] += e * e;
            }
        }
    }
}

}  // namespace rows
}  // namespace
}  // namespace ee
