// The loops of net_batch.h for one instruction-set level (included by net_batch_isa.cpp only, which
// is compiled once per level). Images in SIMD lanes: a block of V images (V = one register of T)
// is processed at once, every activation stored as (C, H + 2B, W + 2B, V) with a zero border of B
// pixels (the widest padding any convolution needs, forward or backward), or (F, V) after flatten.
// Every activation maps 0 to 0, so activations may run over the borders; every other writer writes
// the interior only, on a buffer whose border is zero.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.h"  // the SIMD helpers and the activations
#include "net_batch.h"

namespace ee {
namespace {
namespace netb {

using batch::lanes;
using batch::load;
using batch::store;
using batch::vec;

#if defined(__AVX512F__)
constexpr int64_t VEC_TAPS = 18;  // accumulators of the weights' gradient (of 32 registers)
#else
constexpr int64_t VEC_TAPS = 9;   // (of 16)
#endif

// The geometry of one activation buffer.
struct Geo {
    int64_t C = 0, H = 1, W = 1, B = 0;
    int64_t rows() const { return H + 2 * B; }
    int64_t cols() const { return W + 2 * B; }
    int64_t size() const { return C * rows() * cols(); }  // in vectors
    int64_t at(int64_t c, int64_t y, int64_t x) const { return (c * rows() + y + B) * cols() + x + B; }
};

template <class T>
struct Scratch {
    std::vector<Geo> geo;          // [0]: the input, [l + 1]: layer l's output
    std::vector<int64_t> a_off, g_off;
    int64_t acc = 0;
    std::vector<T>& buf;

    Scratch(const NetBatchSpec& s, std::vector<T>& storage) : buf(storage) {
        const int64_t V = lanes<T>();
        geo.push_back(Geo{s.C, s.H, s.W, s.border});
        bool flat = false;
        for (const NetLayer& L : s.layers) {
            flat = flat || L.kind == LAYER_FLATTEN;
            geo.push_back(flat ? Geo{L.C_out, 1, 1, 0} : Geo{L.C_out, L.H_out, L.W_out, s.border});
        }
        int64_t off = 0;
        for (const Geo& g : geo) a_off.push_back(off), off += g.size() * V;
        for (const Geo& g : geo) g_off.push_back(off), off += g.size() * V;
        acc = off;
        off += s.n_params * V;
        if (static_cast<int64_t>(buf.size()) < off) buf.resize(off);
        std::fill(buf.begin(), buf.begin() + acc, T(0));  // zero borders, once per call
    }
    T* A(size_t i) { return buf.data() + a_off[i]; }
    T* G(size_t i) { return buf.data() + g_off[i]; }
};

// ---- forward -------------------------------------------------------------------------------------

// Output channels [co0, co0 + R) at XB adjacent positions of a row at a time: R x XB independent
// accumulators (a single one would wait on the latency of every multiply-add).
template <class T, int R, int XB>
inline void conv_run(const NetLayer& L, const T* w, const T* b, const Geo& gi, const T* in, const Geo& go, T* out,
                     int64_t co0, int64_t y, int64_t x) {
    constexpr int64_t V = lanes<T>();
    const int64_t k = L.k, p = L.pad, ci_n = L.cin;
    vec<T> acc[R][XB];
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < XB; ++q) acc[r][q] = batch::splat<T>(b ? b[co0 + r] : T(0));
    for (int64_t ci = 0; ci < ci_n; ++ci)
        for (int64_t dy = 0; dy < k; ++dy) {
            const T* row = in + gi.at(ci, y + dy - p, x - p) * V;
            for (int64_t dx = 0; dx < k; ++dx) {
                vec<T> a[XB];
                for (int q = 0; q < XB; ++q) a[q] = load(row + (dx + q) * V);
                for (int r = 0; r < R; ++r) {
                    const T wv = w[(((co0 + r) * ci_n + ci) * k + dy) * k + dx];
                    for (int q = 0; q < XB; ++q) acc[r][q] += wv * a[q];
                }
            }
        }
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < XB; ++q) store(out + go.at(co0 + r, y, x + q) * V, acc[r][q]);
}

// The same for a K x K kernel known at compile time: a row's XB + K - 1 input vectors are loaded once
// and slide under the K taps.
template <class T, int R, int XB, int K>
inline void conv_run_k(const NetLayer& L, const T* w, const T* b, const Geo& gi, const T* in, const Geo& go, T* out,
                       int64_t co0, int64_t y, int64_t x) {
    constexpr int64_t V = lanes<T>();
    const int64_t p = L.pad, ci_n = L.cin;
    vec<T> acc[R][XB];
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < XB; ++q) acc[r][q] = batch::splat<T>(b ? b[co0 + r] : T(0));
    for (int64_t ci = 0; ci < ci_n; ++ci)
        for (int dy = 0; dy < K; ++dy) {
            const T* row = in + gi.at(ci, y + dy - p, x - p) * V;
            vec<T> a[XB + K - 1];
            for (int q = 0; q < XB + K - 1; ++q) a[q] = load(row + q * V);
            for (int r = 0; r < R; ++r)
                for (int dx = 0; dx < K; ++dx) {
                    const T wv = w[(((co0 + r) * ci_n + ci) * K + dy) * K + dx];
                    for (int q = 0; q < XB; ++q) acc[r][q] += wv * a[q + dx];
                }
        }
    for (int r = 0; r < R; ++r)
        for (int q = 0; q < XB; ++q) store(out + go.at(co0 + r, y, x + q) * V, acc[r][q]);
}

template <class T, int R>
inline void conv_tile(const NetLayer& L, const T* w, const T* b, const Geo& gi, const T* in, const Geo& go, T* out,
                      int64_t co0) {
    constexpr int XB = R >= 4 ? 2 : (R >= 2 ? 4 : 8);
    for (int64_t y = 0; y < go.H; ++y) {
        int64_t x = 0;
        if (L.k == 3)
            for (; x + XB <= go.W; x += XB) conv_run_k<T, R, XB, 3>(L, w, b, gi, in, go, out, co0, y, x);
        else
            for (; x + XB <= go.W; x += XB) conv_run<T, R, XB>(L, w, b, gi, in, go, out, co0, y, x);
        for (; x < go.W; ++x) conv_run<T, R, 1>(L, w, b, gi, in, go, out, co0, y, x);
    }
}

template <class T>
void conv_forward(const NetLayer& L, const T* theta, const Geo& gi, const T* in, const Geo& go, T* out) {
    const T* w = theta + L.w_off;
    const T* b = L.bias ? theta + L.b_off : nullptr;
    int64_t co = 0;
    for (; co + 4 <= L.cout; co += 4) conv_tile<T, 4>(L, w, b, gi, in, go, out, co);
    switch (L.cout - co) {
        case 3: conv_tile<T, 3>(L, w, b, gi, in, go, out, co); break;
        case 2: conv_tile<T, 2>(L, w, b, gi, in, go, out, co); break;
        case 1: conv_tile<T, 1>(L, w, b, gi, in, go, out, co); break;
        default: break;
    }
}

// NaN-propagating max (torch's max_pool2d returns NaN when a window holds one).
template <class T>
inline vec<T> nan_max(vec<T> a, vec<T> b) {
    return (a > b || a != a) ? a : b;
}

template <class T>
void pool_forward(const Geo& gi, const T* in, const Geo& go, T* out) {
    constexpr int64_t V = lanes<T>();
    for (int64_t c = 0; c < go.C; ++c)
        for (int64_t y = 0; y < go.H; ++y)
            for (int64_t x = 0; x < go.W; ++x) {
                const vec<T> m = nan_max<T>(nan_max<T>(load(in + gi.at(c, 2 * y, 2 * x) * V), load(in + gi.at(c, 2 * y, 2 * x + 1) * V)),
                                         nan_max<T>(load(in + gi.at(c, 2 * y + 1, 2 * x) * V),
                                                 load(in + gi.at(c, 2 * y + 1, 2 * x + 1) * V)));
                store(out + go.at(c, y, x) * V, m);
            }
}

template <class T>
void flatten_forward(const Geo& gi, const T* in, T* out) {
    constexpr int64_t V = lanes<T>();
    for (int64_t c = 0; c < gi.C; ++c)
        for (int64_t y = 0; y < gi.H; ++y)
            for (int64_t x = 0; x < gi.W; ++x) store(out + ((c * gi.H + y) * gi.W + x) * V, load(in + gi.at(c, y, x) * V));
}

template <class T>
void linear_forward(const NetLayer& L, const T* theta, const T* in, T* out) {
    constexpr int64_t V = lanes<T>();
    const T* w = theta + L.w_off;
    for (int64_t j = 0; j < L.cout; ++j) {
        vec<T> acc = batch::splat<T>(L.bias ? theta[L.b_off + j] : T(0));
        for (int64_t i = 0; i < L.cin; ++i) acc += w[j * L.cin + i] * load(in + i * V);
        store(out + j * V, acc);
    }
}

template <class T>
void forward_block(const NetBatchSpec& s, const T* theta, Scratch<T>& w) {
    constexpr int64_t V = lanes<T>();
    for (size_t l = 0; l < s.layers.size(); ++l) {
        const NetLayer& L = s.layers[l];
        const Geo &gi = w.geo[l], &go = w.geo[l + 1];
        const T* in = w.A(l);
        T* out = w.A(l + 1);
        switch (L.kind) {
            case LAYER_CONV: conv_forward(L, theta, gi, in, go, out); break;
            case LAYER_ACT: batch::activate(L.act, in, out, go.size() * V); break;
            case LAYER_MAXPOOL: pool_forward(gi, in, go, out); break;
            case LAYER_FLATTEN: flatten_forward(gi, in, out); break;
            default: linear_forward(L, theta, in, out); break;
        }
    }
}

// ---- backward ------------------------------------------------------------------------------------

// dW[co][ci][dy][dx] for the input channels [c0, c0 + CN), all K x K taps, accumulated in registers
// over every output position (one load of g serves CN K^2 multiply-adds).
template <class T, int K, int CN>
inline void weight_grad_taps(const NetLayer& L, const Geo& gi, const T* in, const Geo& go, const T* g, T* acc,
                             int64_t co, int64_t c0) {
    constexpr int64_t V = lanes<T>();
    const int64_t p = L.pad, ci_n = L.cin;
    vec<T> s[CN][K][K];
    for (int c = 0; c < CN; ++c)
        for (int dy = 0; dy < K; ++dy)
            for (int dx = 0; dx < K; ++dx) s[c][dy][dx] = batch::splat<T>(T(0));
    for (int64_t y = 0; y < go.H; ++y)
        for (int64_t x = 0; x < go.W; ++x) {
            const vec<T> gv = load(g + go.at(co, y, x) * V);
            for (int c = 0; c < CN; ++c)
                for (int dy = 0; dy < K; ++dy) {
                    const T* row = in + gi.at(c0 + c, y + dy - p, x - p) * V;
                    for (int dx = 0; dx < K; ++dx) s[c][dy][dx] += gv * load(row + dx * V);
                }
        }
    for (int c = 0; c < CN; ++c)
        for (int dy = 0; dy < K; ++dy)
            for (int dx = 0; dx < K; ++dx) {
                T* a = acc + (((co * ci_n + c0 + c) * K + dy) * K + dx + L.w_off) * V;
                store(a, load(a) + s[c][dy][dx]);
            }
}

// dW[co][ci][dy][dx] of one tap, on 4 chains (the kernels without a register-tiled form).
template <class T>
inline void weight_grad_tap(const NetLayer& L, const Geo& gi, const T* in, const Geo& go, const T* g, T* acc,
                            int64_t co, int64_t ci, int64_t dy, int64_t dx) {
    constexpr int64_t V = lanes<T>();
    const int64_t k = L.k, p = L.pad;
    T* a = acc + ((((co * L.cin + ci) * k + dy) * k + dx) + L.w_off) * V;
    vec<T> s[4] = {load(a), batch::splat<T>(T(0)), batch::splat<T>(T(0)), batch::splat<T>(T(0))};
    for (int64_t y = 0; y < go.H; ++y) {
        const T* gr = g + go.at(co, y, 0) * V;
        const T* ir = in + gi.at(ci, y + dy - p, dx - p) * V;
        int64_t x = 0;
        for (; x + 4 <= go.W; x += 4)
            for (int q = 0; q < 4; ++q) s[q] += load(gr + (x + q) * V) * load(ir + (x + q) * V);
        for (; x < go.W; ++x) s[0] += load(gr + x * V) * load(ir + x * V);
    }
    store(a, (s[0] + s[1]) + (s[2] + s[3]));
}

// g_in[ci][y][x + q] = sum_{co,dy,dx} w[co][ci][dy][dx] g[co][y - dy + p][x + q - dx + p], q < XB
// (g's zero border covers k - 1 - p).
template <class T, int XB>
inline void input_grad_run(const NetLayer& L, const T* w, const Geo& go, const T* g, const Geo& gi, T* g_in,
                           int64_t ci, int64_t y, int64_t x) {
    constexpr int64_t V = lanes<T>();
    const int64_t k = L.k, p = L.pad, ci_n = L.cin;
    vec<T> s[XB];
    for (int q = 0; q < XB; ++q) s[q] = batch::splat<T>(T(0));
    for (int64_t co = 0; co < L.cout; ++co)
        for (int64_t dy = 0; dy < k; ++dy) {
            const T* gr = g + go.at(co, y - dy + p, x + p) * V;
            for (int64_t dx = 0; dx < k; ++dx) {
                const T wv = w[((co * ci_n + ci) * k + dy) * k + dx];
                for (int q = 0; q < XB; ++q) s[q] += wv * load(gr + (q - dx) * V);
            }
        }
    for (int q = 0; q < XB; ++q) store(g_in + gi.at(ci, y, x + q) * V, s[q]);
}

template <class T>
void conv_backward(const NetLayer& L, const T* theta, const Geo& gi, const T* in, const Geo& go, const T* g,
                   T* g_in, T* acc, bool want_input) {
    constexpr int64_t V = lanes<T>();
    const int64_t k = L.k, p = L.pad, ci_n = L.cin;
    const T* w = theta + L.w_off;
    // the weights' gradient: dW[co][ci][dy][dx] += sum_{y,x} g[co][y][x] in[ci][y + dy - p][x + dx - p],
    // for 3 x 3 and 1 x 1 kernels every tap of one or two input channels at once
    const int64_t pair = VEC_TAPS >= 18 ? 2 : 1;
    for (int64_t co = 0; co < L.cout; ++co) {
        int64_t ci = 0;
        if (k == 3) {
            for (; pair == 2 && ci + 2 <= ci_n; ci += 2) weight_grad_taps<T, 3, 2>(L, gi, in, go, g, acc, co, ci);
            for (; ci < ci_n; ++ci) weight_grad_taps<T, 3, 1>(L, gi, in, go, g, acc, co, ci);
        } else if (k == 1) {
            for (; ci + 4 <= ci_n; ci += 4) weight_grad_taps<T, 1, 4>(L, gi, in, go, g, acc, co, ci);
            for (; ci < ci_n; ++ci) weight_grad_taps<T, 1, 1>(L, gi, in, go, g, acc, co, ci);
        }
        for (; ci < ci_n; ++ci)
            for (int64_t dy = 0; dy < k; ++dy)
                for (int64_t dx = 0; dx < k; ++dx) weight_grad_tap<T>(L, gi, in, go, g, acc, co, ci, dy, dx);
    }
    if (L.bias)
        for (int64_t co = 0; co < L.cout; ++co) {
            T* a = acc + (L.b_off + co) * V;
            vec<T> s = load(a);
            for (int64_t y = 0; y < go.H; ++y)
                for (int64_t x = 0; x < go.W; ++x) s += load(g + go.at(co, y, x) * V);
            store(a, s);
        }
    if (!want_input) return;
    // the input's gradient, XB positions of a row at a time
    for (int64_t ci = 0; ci < ci_n; ++ci)
        for (int64_t y = 0; y < gi.H; ++y) {
            int64_t x = 0;
            for (; x + 4 <= gi.W; x += 4) input_grad_run<T, 4>(L, w, go, g, gi, g_in, ci, y, x);
            for (; x < gi.W; ++x) input_grad_run<T, 1>(L, w, go, g, gi, g_in, ci, y, x);
        }
}

// The gradient of each window goes to its first maximum in row-major order, as torch's does.
template <class T>
void pool_backward(const Geo& gi, const T* in, const Geo& go, const T* out, const T* g, T* g_in) {
    constexpr int64_t V = lanes<T>();
    const vec<T> zero = batch::splat<T>(T(0));
    for (int64_t c = 0; c < go.C; ++c)
        for (int64_t y = 0; y < go.H; ++y)
            for (int64_t x = 0; x < go.W; ++x) {
                const vec<T> m = load(out + go.at(c, y, x) * V), gv = load(g + go.at(c, y, x) * V);
                auto taken = m != m && m == m;  // all false
                for (int64_t q = 0; q < 4; ++q) {
                    const int64_t at = gi.at(c, 2 * y + q / 2, 2 * x + q % 2) * V;
                    const vec<T> a = load(in + at);
                    const auto here = (a == m || (a != a && m != m)) && !taken;
                    store(g_in + at, here ? gv : zero);
                    taken = taken || here;
                }
            }
}

template <class T>
void flatten_backward(const Geo& gi, const T* g, T* g_in) {
    constexpr int64_t V = lanes<T>();
    for (int64_t c = 0; c < gi.C; ++c)
        for (int64_t y = 0; y < gi.H; ++y)
            for (int64_t x = 0; x < gi.W; ++x) store(g_in + gi.at(c, y, x) * V, load(g + ((c * gi.H + y) * gi.W + x) * V));
}

template <class T>
void linear_backward(const NetLayer& L, const T* theta, const T* in, const T* g, T* g_in, T* acc, bool want_input) {
    constexpr int64_t V = lanes<T>();
    const T* w = theta + L.w_off;
    for (int64_t j = 0; j < L.cout; ++j) {
        const vec<T> gj = load(g + j * V);
        for (int64_t i = 0; i < L.cin; ++i) {
            T* a = acc + (L.w_off + j * L.cin + i) * V;
            store(a, load(a) + gj * load(in + i * V));
        }
        if (L.bias) store(acc + (L.b_off + j) * V, load(acc + (L.b_off + j) * V) + gj);
    }
    if (!want_input) return;
    for (int64_t i = 0; i < L.cin; ++i) {
        vec<T> s = batch::splat<T>(T(0));
        for (int64_t j = 0; j < L.cout; ++j) s += w[j * L.cin + i] * load(g + j * V);
        store(g_in + i * V, s);
    }
}

template <class T>
void backward_block(const NetBatchSpec& s, const T* theta, Scratch<T>& w, T* acc) {
    constexpr int64_t V = lanes<T>();
    for (size_t l = s.layers.size(); l-- > 0;) {
        const NetLayer& L = s.layers[l];
        const Geo &gi = w.geo[l], &go = w.geo[l + 1];
        const T* g = w.G(l + 1);
        T* g_in = w.G(l);
        const bool want_input = l > 0;
        switch (L.kind) {
            case LAYER_CONV: conv_backward(L, theta, gi, w.A(l), go, g, g_in, acc, want_input); break;
            case LAYER_ACT:
                if (want_input) {
                    std::copy(g, g + go.size() * V, g_in);
                    batch::activate_backward(L.act, w.A(l), w.A(l + 1), g_in, go.size() * V);
                }
                break;
            case LAYER_MAXPOOL:
                if (want_input) pool_backward(gi, w.A(l), go, w.A(l + 1), g, g_in);
                break;
            case LAYER_FLATTEN:
                if (want_input) flatten_backward(gi, g, g_in);
                break;
            default: linear_backward(L, theta, w.A(l), g, g_in, acc, want_input); break;
        }
    }
}

// ---- blocks of images ----------------------------------------------------------------------------

template <class T>
void load_images(const NetBatchSpec& s, const T* X, int64_t n0, int64_t nb, const Geo& g, T* in) {
    constexpr int64_t V = lanes<T>();
    const int64_t per = s.C * s.H * s.W;
    for (int64_t c = 0; c < s.C; ++c)
        for (int64_t y = 0; y < s.H; ++y) {  // one row of every image of the block: reads along the row,
            T* v = in + g.at(c, y, 0) * V;   // writes within the row's few KB
            for (int64_t n = 0; n < V; ++n) {
                if (n < nb) {
                    const T* src = X + (n0 + n) * per + (c * s.H + y) * s.W;
                    for (int64_t x = 0; x < s.W; ++x) v[x * V + n] = src[x];
                } else {
                    for (int64_t x = 0; x < s.W; ++x) v[x * V + n] = T(0);
                }
            }
        }
}

template <class T>
void forward(const NetBatchSpec& s, const T* theta, const T* X, int64_t N, int64_t k0, int64_t k1, T* out) {
    constexpr int64_t V = lanes<T>();
    Scratch<T> w(s, batch::storage<T>);
    const int64_t P = s.n_params, F = s.out_features;
    const size_t last = s.layers.size();
    for (int64_t k = k0; k < k1; ++k)
        for (int64_t n0 = 0; n0 < N; n0 += V) {
            const int64_t nb = std::min(V, N - n0);
            load_images(s, X, n0, nb, w.geo[0], w.A(0));
            forward_block(s, theta + k * P, w);
            const T* o = w.A(last);
            for (int64_t n = 0; n < nb; ++n)
                for (int64_t f = 0; f < F; ++f) out[(k * N + n0 + n) * F + f] = o[f * V + n];
        }
}

template <class T>
void backward(const NetBatchSpec& s, const T* theta, const T* X, int64_t N, const T* grad_out, int64_t k0,
              int64_t k1, T* grad) {
    constexpr int64_t V = lanes<T>();
    Scratch<T> w(s, batch::storage<T>);
    const int64_t P = s.n_params, F = s.out_features;
    const size_t last = s.layers.size();
    T* acc = w.buf.data() + w.acc;
    for (int64_t k = k0; k < k1; ++k) {
        std::fill(acc, acc + P * V, T(0));
        for (int64_t n0 = 0; n0 < N; n0 += V) {
            const int64_t nb = std::min(V, N - n0);
            load_images(s, X, n0, nb, w.geo[0], w.A(0));
            forward_block(s, theta + k * P, w);
            T* g = w.G(last);
            for (int64_t f = 0; f < F; ++f)
                for (int64_t n = 0; n < V; ++n) g[f * V + n] = n < nb ? grad_out[(k * N + n0 + n) * F + f] : T(0);
            backward_block(s, theta + k * P, w, acc);
        }
        batch::sum_lanes(acc, P, grad + k * P);
    }
}

}  // namespace netb
}  // namespace
}  // namespace ee
