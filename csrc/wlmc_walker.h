// The WLMC step of one walker among many that share one ln g, written once for both places that
// run it: CPU threads (wlmc_walkers_cpu.cpp, one thread per walker at a time, a "team" of one) and
// CUDA thread blocks (cuda/wlmc_walkers.cu, one block per walker, a team of blockDim.x threads that
// split the data rows). So the tests that run on any machine exercise the code the GPU runs.
//
// Everything a walker touches lives in one array of doubles ("the image", laid out by
// wlmc_walkers_image.h): the data, the bounds, the shared ln g and histogram, and per walker its
// parameters, its state (below) and its cached activations. A `Team` supplies rank(), size(), sync()
// and the reductions sum() / min(); a `Land` supplies read(cell) and add(cell, value) on the shared
// ln g and histogram (relaxed atomics on the CPU, L2-coherent loads and atomicAdd on the GPU).
//
// The chain per walker is docs/design.md's contract 6 (as csrc/wlmc.h): Philox words with counter =
// (t, walker, 0x574C4D43), a uniform move of +-step, rejection outside the box or off the grid,
// acceptance min(1, g(old)/g(new)), then ln g[cur] += ln f and H[cur] += 1; every 1000 of the
// walker's steps its step adapts; every `refresh_every` steps its caches are recomputed.
#pragma once

#include <math.h>

#include <cstdint>

#include "common.h"
#include "kinds.h"
#include "wlmc_random.h"

namespace ee {
namespace walkers {

// Offsets and sizes in the header of the layout (int64).
enum Header : int {
    H_L, H_P, H_NTR, H_NTE, H_K, H_LOSS, H_METRIC, H_YLOG, H_W, H_WS, H_XTR, H_TTR, H_XTE, H_TTE, H_BOUNDS,
    H_LNG, H_HIST, H_WBASE, H_GRID, H_NX, H_NY, H_REFRESH, H_STATS, H_DOUBLES, H_COUNT
};
// Per-walker state, right after the walker's P parameters.
enum State : int {
    S_LOSS, S_METRIC, S_STEP, S_WINDOW, S_ACCEPTED, S_CI, S_CJ, S_T, S_REJ_BOX, S_REJ_GRID, S_REJ_WL, S_COUNT
};
// The bookkeeping that `stats` writes (so that a stage needs no download of ln g or H).
enum Stats : int { T_VISITED, T_HMIN, T_HSUM, T_STEPS, T_ACCEPTED, T_REJ_BOX, T_REJ_GRID, T_REJ_WL, T_OFF, T_COUNT };

struct Layout {
    const int64_t* h;      // header
    const int64_t* sizes;  // L + 1
    const int64_t* acts;   // L
    const int64_t* woff;   // L
    const int64_t* boff;   // L (-1: no bias)
    const int64_t* cache;  // [s][l][4] offsets of Z, A, SZ, SA; then [s][3] zrow, arow, diff
    EE_HD int64_t L() const { return h[H_L]; }
    EE_HD int64_t n(int s) const { return h[s == 0 ? H_NTR : H_NTE]; }
    EE_HD int64_t zoff(int s, int64_t l, int which) const { return cache[(s * L() + l) * 4 + which]; }
    EE_HD int64_t rowoff(int s, int which) const { return cache[2 * L() * 4 + s * 3 + which]; }
};

EE_HD Layout make_layout(const int64_t* layout) {
    Layout y;
    y.h = layout;
    const int64_t L = layout[H_L];
    y.sizes = layout + H_COUNT;
    y.acts = y.sizes + L + 1;
    y.woff = y.acts + L;
    y.boff = y.woff + L;
    y.cache = y.boff + L;
    return y;
}

// What rank 0 decides and the team reads.
struct Decision {
    int64_t p;
    double value;
    double u;
    int kind;  // 0 box reject, 1 proposed, 2 accepted, 3 grid reject, 4 WL reject
};

// A team of one: the CPU path.
struct SoloTeam {
    EE_HD int rank() const { return 0; }
    EE_HD int size() const { return 1; }
    EE_HD void sync() const {}
    EE_HD double sum(double v) const { return v; }
    EE_HD double min(double v) const { return v; }
};

EE_HD double act_fn(int64_t a, double z) {
    switch (a) {
        case ACT_RELU: return z > 0.0 ? z : 0.0;
        case ACT_TANH: return tanh(z);
        case ACT_SILU: return z / (1.0 + exp(-z));
        default: return z;
    }
}

// Output k of row i: committed caches, or the scratch of a move of row r of layer l (l < 0: none).
EE_HD double out_value(const double* ws, const Layout& y, int s, int64_t l, int64_t r, int64_t k, int64_t i) {
    const int64_t L = y.L(), n = y.n(s);
    const bool identity = y.acts[L - 1] == 0;
    if (l == L - 1 && k == r) return ws[y.rowoff(s, identity ? 0 : 1) + i];
    const bool scratch = l >= 0 && l < L - 1;
    return ws[y.zoff(s, L - 1, (identity ? 0 : 1) + (scratch ? 2 : 0)) + k * n + i];
}

// (loss, metric) of set s; every member of the team must call it.
template <class Team>
EE_HD void set_values(const Team& team, const double* base, const double* ws, const Layout& y, int s, int64_t l,
                      int64_t r, double& loss, double& metric) {
    const int64_t n = y.n(s), K = y.h[H_K], lossk = y.h[H_LOSS];
    const double* t = base + y.h[s == 0 ? H_TTR : H_TTE];
    double term = 0.0, right = 0.0;
    for (int64_t i = team.rank(); i < n; i += team.size()) {
        if (lossk == 0) {  // bce
            const double z = out_value(ws, y, s, l, r, 0, i);
            term += fmax(z, 0.0) + log1p(exp(-fabs(z))) - t[i] * z;
            right += ((z > 0.0) == (t[i] > 0.5)) ? 1.0 : 0.0;
        } else if (lossk == 1) {  // ce
            double m = out_value(ws, y, s, l, r, 0, i);
            int64_t best = 0;
            for (int64_t k = 1; k < K; ++k) {
                const double v = out_value(ws, y, s, l, r, k, i);
                if (v > m) {
                    m = v;
                    best = k;
                }
            }
            double sum = 0.0;
            for (int64_t k = 0; k < K; ++k) sum += exp(out_value(ws, y, s, l, r, k, i) - m);
            const int64_t label = static_cast<int64_t>(t[i]);
            term += m + log(sum) - out_value(ws, y, s, l, r, label, i);
            right += best == label ? 1.0 : 0.0;
        } else {  // mse
            for (int64_t k = 0; k < K; ++k) {
                const double e = out_value(ws, y, s, l, r, k, i) - t[k * n + i];
                term += e * e;
            }
        }
    }
    const double total = team.sum(term);
    const double correct = team.sum(right);
    loss = total / static_cast<double>(lossk == 2 ? n * K : n);
    metric = correct / static_cast<double>(n);
}

// Row i of layer k from the previous layer's activations `prev` (in_k x n): Z = W prev + b, A = act(Z).
EE_HD void layer_row(const Layout& y, const double* theta, int64_t k, const double* prev, double* Z, double* A,
                     int64_t n, int64_t i) {
    const int64_t in = y.sizes[k], out = y.sizes[k + 1];
    for (int64_t q = 0; q < out; ++q) {
        double z = y.boff[k] >= 0 ? theta[y.boff[k] + q] : 0.0;
        for (int64_t c = 0; c < in; ++c) z += theta[y.woff[k] + q * in + c] * prev[c * n + i];
        Z[q * n + i] = z;
        A[q * n + i] = act_fn(y.acts[k], z);
    }
}

template <class Team>
EE_HD void full_forward(const Team& team, const double* base, double* ws, const Layout& y, int s) {
    const int64_t L = y.L(), n = y.n(s);
    const double* theta = ws;
    const double* X = base + y.h[s == 0 ? H_XTR : H_XTE];
    for (int64_t i = team.rank(); i < n; i += team.size()) {
        for (int64_t l = 0; l < L; ++l)
            layer_row(y, theta, l, l == 0 ? X : ws + y.zoff(s, l - 1, 1), ws + y.zoff(s, l, 0), ws + y.zoff(s, l, 1),
                      n, i);
    }
}

// The proposal of a move of parameter (l, r, col) by delta, for the rows this member owns.
template <class Team>
EE_HD void propose_rows(const Team& team, const double* base, double* ws, const Layout& y, int s, int64_t l,
                        int64_t r, int64_t col, double delta) {
    const int64_t L = y.L(), n = y.n(s);
    const double* theta = ws;
    const double* X = base + y.h[s == 0 ? H_XTR : H_XTE];
    double* zs = ws + y.rowoff(s, 0);
    double* as = ws + y.rowoff(s, 1);
    double* diff = ws + y.rowoff(s, 2);
    for (int64_t i = team.rank(); i < n; i += team.size()) {
        const double* Zl = ws + y.zoff(s, l, 0);
        const double* Al = ws + y.zoff(s, l, 1);
        const double a = col < 0 ? 1.0 : (l == 0 ? X : ws + y.zoff(s, l - 1, 1))[col * n + i];
        zs[i] = Zl[r * n + i] + delta * a;
        as[i] = act_fn(y.acts[l], zs[i]);
        diff[i] = as[i] - Al[r * n + i];
        if (l + 1 < L) {
            const int64_t in = y.sizes[l + 1], out = y.sizes[l + 2];
            const double* Z = ws + y.zoff(s, l + 1, 0);
            double* SZ = ws + y.zoff(s, l + 1, 2);
            double* SA = ws + y.zoff(s, l + 1, 3);
            for (int64_t q = 0; q < out; ++q) {
                SZ[q * n + i] = Z[q * n + i] + theta[y.woff[l + 1] + q * in + r] * diff[i];
                SA[q * n + i] = act_fn(y.acts[l + 1], SZ[q * n + i]);
            }
        }
        for (int64_t k = l + 2; k < L; ++k)
            layer_row(y, theta, k, ws + y.zoff(s, k - 1, 3), ws + y.zoff(s, k, 2), ws + y.zoff(s, k, 3), n, i);
    }
}

template <class Team>
EE_HD void commit_rows(const Team& team, double* ws, const Layout& y, int s, int64_t l, int64_t r) {
    const int64_t L = y.L(), n = y.n(s);
    for (int64_t i = team.rank(); i < n; i += team.size()) {
        ws[y.zoff(s, l, 0) + r * n + i] = ws[y.rowoff(s, 0) + i];
        ws[y.zoff(s, l, 1) + r * n + i] = ws[y.rowoff(s, 1) + i];
        for (int64_t k = l + 1; k < L; ++k)
            for (int64_t q = 0; q < y.sizes[k + 1]; ++q) {
                ws[y.zoff(s, k, 0) + q * n + i] = ws[y.zoff(s, k, 2) + q * n + i];
                ws[y.zoff(s, k, 1) + q * n + i] = ws[y.zoff(s, k, 3) + q * n + i];
            }
    }
}

// grid: x_min, dx, y_min, dy. False off the grid (and for NaN).
EE_HD bool bin_of(const Layout& y, const double* grid, double loss, double metric, int64_t& i, int64_t& j) {
    const double x = log(loss);
    const double v = y.h[H_YLOG] ? log(metric) : metric;
    const double fx = floor((x - grid[0]) / grid[1]), fy = floor((v - grid[2]) / grid[3]);
    if (!(fx >= 0.0 && fx < static_cast<double>(y.h[H_NX]) && fy >= 0.0 && fy < static_cast<double>(y.h[H_NY])))
        return false;
    i = static_cast<int64_t>(fx);
    j = static_cast<int64_t>(fy);
    return true;
}

EE_HD double* walker_base(double* base, const Layout& y, int64_t walker) {
    return base + y.h[H_WBASE] + walker * y.h[H_WS];
}

// Recompute the walker's caches, values and bin from its parameters (construction, upload, the
// periodic refresh). A walker whose state lies off the grid gets bin (-1, -1) and does not run.
template <class Team>
EE_HD void init_walker(const Team& team, double* base, const Layout& y, int64_t walker) {
    double* ws = walker_base(base, y, walker);
    double* state = ws + y.h[H_P];
    full_forward(team, base, ws, y, 0);
    full_forward(team, base, ws, y, 1);
    team.sync();
    double l0, m0, l1, m1;
    set_values(team, base, ws, y, 0, -1, 0, l0, m0);
    set_values(team, base, ws, y, 1, -1, 0, l1, m1);
    if (team.rank() == 0) {
        state[S_LOSS] = l0;
        state[S_METRIC] = y.h[H_METRIC] == 0 ? m1 : l1;
        int64_t i = -1, j = -1;
        if (!bin_of(y, base + y.h[H_GRID], state[S_LOSS], state[S_METRIC], i, j)) i = j = -1;
        state[S_CI] = static_cast<double>(i);
        state[S_CJ] = static_cast<double>(j);
    }
    team.sync();
}

// n_steps WL steps of one walker at modification factor ln_f.
template <class Team, class Land>
EE_HD void run_walker(const Team& team, Decision& dec, double* base, const Layout& y, int64_t walker,
                      int64_t n_steps, double ln_f, uint64_t seed, Land& land) {
    double* ws = walker_base(base, y, walker);
    double* theta = ws;
    double* state = ws + y.h[H_P];
    const double* bounds = base + y.h[H_BOUNDS];
    const double* grid = base + y.h[H_GRID];
    const int64_t P = y.h[H_P], ny = y.h[H_NY], L = y.L(), refresh = y.h[H_REFRESH];
    if (state[S_CI] < 0.0) return;  // off the grid: the host reports it
    for (int64_t k = 0; k < n_steps; ++k) {
        if (team.rank() == 0) {
            const WlmcRandoms rnd = wlmc_randoms(seed, static_cast<uint64_t>(walker), static_cast<uint64_t>(state[S_T]));
            dec.p = static_cast<int64_t>((rnd.param_word * static_cast<uint64_t>(P)) >> 32);
            dec.value = theta[dec.p] + rnd.move * state[S_STEP];
            dec.kind = (dec.value > bounds[dec.p] || dec.value < -bounds[dec.p]) ? 0 : 1;
            dec.u = rnd.accept;
        }
        team.sync();
        const int64_t p = dec.p;
        const double value = dec.value, u = dec.u;
        const int kind = dec.kind;
        team.sync();
        if (kind == 1) {
            int64_t l = 0;
            while (l + 1 < L && p >= y.woff[l + 1]) ++l;
            const int64_t in = y.sizes[l];
            const int64_t rel = p - y.woff[l];
            const bool is_weight = rel < in * y.sizes[l + 1];
            const int64_t r = is_weight ? rel / in : p - y.boff[l];
            const int64_t col = is_weight ? rel % in : -1;
            const double delta = value - theta[p];
            propose_rows(team, base, ws, y, 0, l, r, col, delta);
            propose_rows(team, base, ws, y, 1, l, r, col, delta);
            team.sync();
            double l0, m0, l1, m1;
            set_values(team, base, ws, y, 0, l, r, l0, m0);
            set_values(team, base, ws, y, 1, l, r, l1, m1);
            if (team.rank() == 0) {
                const double metric = y.h[H_METRIC] == 0 ? m1 : l1;
                int64_t ni, nj;
                if (!bin_of(y, grid, l0, metric, ni, nj)) {
                    dec.kind = 3;
                } else {
                    const int64_t ci = static_cast<int64_t>(state[S_CI]), cj = static_cast<int64_t>(state[S_CJ]);
                    const double d = land.read(ci * ny + cj) - land.read(ni * ny + nj);
                    if (d >= 0.0 || u < exp(d)) {
                        dec.kind = 2;
                        state[S_LOSS] = l0;
                        state[S_METRIC] = metric;
                        state[S_CI] = static_cast<double>(ni);
                        state[S_CJ] = static_cast<double>(nj);
                    } else {
                        dec.kind = 4;
                    }
                }
            }
            team.sync();
            if (dec.kind == 2) {
                commit_rows(team, ws, y, 0, l, r);
                commit_rows(team, ws, y, 1, l, r);
                if (team.rank() == 0) theta[p] = value;
            }
        }
        team.sync();
        if (team.rank() == 0) {
            switch (dec.kind) {
                case 0: state[S_REJ_BOX] += 1.0; break;
                case 2: state[S_WINDOW] += 1.0; state[S_ACCEPTED] += 1.0; break;
                case 3: state[S_REJ_GRID] += 1.0; break;
                case 4: state[S_REJ_WL] += 1.0; break;
                default: break;
            }
            const int64_t cell = static_cast<int64_t>(state[S_CI]) * ny + static_cast<int64_t>(state[S_CJ]);
            land.add(cell, ln_f, 1.0);
            state[S_T] += 1.0;
            if (fmod(state[S_T], 1000.0) == 0.0) {
                const double rate = state[S_WINDOW] / 1000.0;
                if (rate > 0.7) state[S_STEP] *= 1.1;
                else if (rate < 0.3) state[S_STEP] *= 0.9;
                state[S_WINDOW] = 0.0;
            }
        }
        team.sync();
        if (refresh > 0 && fmod(state[S_T], static_cast<double>(refresh)) == 0.0) {
            init_walker(team, base, y, walker);  // drift control; may put the walker off the grid
            if (state[S_CI] < 0.0) return;
        }
    }
}

// Shared bookkeeping of a stage: visited cells, min and sum of H over them, and the walkers'
// counters summed (written at H_STATS).
template <class Team>
EE_HD void stats(const Team& team, double* base, const Layout& y) {
    const int64_t cells = y.h[H_NX] * y.h[H_NY], W = y.h[H_W], P = y.h[H_P];
    const double* H = base + y.h[H_HIST];
    double visited = 0.0, hmin = 1.0e308, hsum = 0.0;
    for (int64_t c = team.rank(); c < cells; c += team.size()) {
        if (H[c] > 0.0) {
            visited += 1.0;
            hsum += H[c];
            hmin = fmin(hmin, H[c]);
        }
    }
    double acc[5] = {0.0, 0.0, 0.0, 0.0, 0.0}, off = 0.0;
    const int keys[5] = {S_T, S_ACCEPTED, S_REJ_BOX, S_REJ_GRID, S_REJ_WL};
    for (int64_t w = team.rank(); w < W; w += team.size()) {
        const double* state = walker_base(base, y, w) + P;
        for (int q = 0; q < 5; ++q) acc[q] += state[keys[q]];
        off += state[S_CI] < 0.0 ? 1.0 : 0.0;
    }
    double out[T_COUNT];
    out[T_VISITED] = team.sum(visited);
    out[T_HMIN] = team.min(hmin);
    out[T_HSUM] = team.sum(hsum);
    for (int q = 0; q < 5; ++q) out[T_STEPS + q] = team.sum(acc[q]);
    out[T_OFF] = team.sum(off);
    if (team.rank() == 0)
        for (int q = 0; q < T_COUNT; ++q) base[y.h[H_STATS] + q] = out[q];
    team.sync();
}

// Steps of walker w when n walker-steps are spread over W walkers: n / W each, one more for the
// first n % W.
EE_HD int64_t walker_share(int64_t n, int64_t W, int64_t w) { return n / W + (w < n % W ? 1 : 0); }

}  // namespace walkers
}  // namespace ee
