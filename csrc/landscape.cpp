// CPU implementation of the landscape kernels (contracts 1-3).
#include "landscape.h"

#include <math.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "landscape_isa.h"
#include "landscape_math.h"

namespace ee {

namespace {

// The chord of row a inside the cutoff disk: the contiguous range [lo, hi] of b with
// ddx2 + ddy2[b] <= c2 (ddy2 is convex in b). Starts from the analytic chord and steps until the
// exact predicate holds, so the set equals the per-cell test of the contract. The start need not
// be exact (the steps correct it): truncation, not ceil and floor, which baseline x86-64 has no
// instruction for; one step each way is taken without a branch, so the loops after it almost never
// run and their branches are predicted (their mispredictions were most of a hill's preparation).
inline void chord(const double* ddy2, double rx2, double c2, double centre, double half_bins, int64_t n,
                  int64_t& lo, int64_t& hi) {
    auto in = [&](int64_t b) { return rx2 + ddy2[b] <= c2; };
    const double last = static_cast<double>(n - 1);
    int64_t l = static_cast<int64_t>(std::max(0.0, std::min(last, centre - half_bins + 1.0)));
    int64_t h = static_cast<int64_t>(std::max(0.0, std::min(last, centre + half_bins)));
    l -= static_cast<int64_t>(l > 0) & static_cast<int64_t>(in(std::max<int64_t>(l - 1, 0)));
    h += static_cast<int64_t>(h < n - 1) & static_cast<int64_t>(in(std::min(h + 1, n - 1)));
    while (l > 0 && in(l - 1)) --l;
    while (l < n && !in(l)) ++l;
    while (h < n - 1 && in(h + 1)) ++h;
    while (h >= 0 && !in(h)) --h;
    lo = l;
    hi = h;
}

// This CPU's level of the hill's loops.
const LandscapeKernels& hill_loops() {
    static const LandscapeKernels k = EE_ISA_TABLE(landscape_kernels);
    return k;
}

// A window's one-dimensional factors along one axis of cells `spacing` wide from `origin`:
// f[a] = hill_factor(c_a - z, d0, sigma) and dd2[a] = (c_a - z)^2 for the n lattice centres c_a
// (GridSpec::centre) from index first on. exp by vmath::exp (within 1e-16 of libm's, and a
// loop of it vectorises), 0 below e^-708 as libm's all but underflows there. The index first + a as
// double(first) + double(a) of a 32-bit a (a window has at most 2^26 cells: arg_rules.h' hill_error):
// the same double, exactly, and a conversion that vectorises, where an int64's (no packed form
// before AVX-512) kept the loop scalar, its two divisions a factor one at a time.
void factors(double origin, double spacing, double z, double d0, double sigma, int64_t first, int64_t n,
             double* __restrict f, double* __restrict dd2) {
    const double base = static_cast<double>(first);
    const int32_t m = static_cast<int32_t>(n);
    for (int32_t a = 0; a < m; ++a) {
        const double d = GridSpec::centre(origin, spacing, base + static_cast<double>(a)) - z;
        dd2[a] = d * d;
        f[a] = hill_exponent(d, d0, sigma);
    }
    hill_loops().exp_in_place(f, n);
}

}  // namespace

void hill_prepare(const GridSpec& g, double x, double y, double height, double sigma, double cutoff, PreparedHill& s) {
    s.kind = HILL_NONE;
    HillWindow w;
    if (!hill_window(g, x, y, cutoff, w)) return;
    const int64_t nwx = w.i_hi - w.i_lo + 1, nwy = w.j_hi - w.j_lo + 1;
    // what only the preparation needs: the thread's (a prepared hill keeps its factors and chords)
    thread_local std::vector<double> ddx2, ddy2, prefix;
    s.fx.resize(nwx);
    ddx2.resize(nwx);
    s.lo.resize(nwx);
    s.hi.resize(nwx);
    s.fy.resize(nwy);
    ddy2.resize(nwy);
    prefix.resize(nwy + 1);
    const double d0x = g.cx(static_cast<double>(nearest_index((x - g.x_min) / g.dx() - 0.5, w.i_lo, w.i_hi))) - x;
    const double d0y = g.cy(static_cast<double>(nearest_index((y - g.y_min) / g.dy() - 0.5, w.j_lo, w.j_hi))) - y;
    // the factors hill_factor(d, d0, sigma) in loops that vectorise (the spacings divided out once:
    // per cell, GridSpec::cx divides, and the factors' stores might alias the grid)
    factors(g.x_min, g.dx(), x, d0x, sigma, w.i_lo, nwx, s.fx.data(), ddx2.data());
    factors(g.y_min, g.dy(), y, d0y, sigma, w.j_lo, nwy, s.fy.data(), ddy2.data());
    prefix[0] = 0.0;
    for (int64_t b = 0; b < nwy; ++b) prefix[b + 1] = prefix[b] + s.fy[b];
    // W = sum over the disk of fx[a] fy[b] = sum_a fx[a] (sum of fy over the chord of row a)
    const double c2 = cutoff * cutoff;
    const double centre = (y - g.y_min) / g.dy() - 0.5 - static_cast<double>(w.j_lo);
    double W = 0.0;
    for (int64_t a = 0; a < nwx; ++a) {
        const double rest = c2 - ddx2[a];
        if (rest < 0.0) {
            s.lo[a] = 0;
            s.hi[a] = -1;
            continue;
        }
        chord(ddy2.data(), ddx2[a], c2, centre, sqrt(rest) / g.dy(), nwy, s.lo[a], s.hi[a]);
        if (s.lo[a] <= s.hi[a]) W += s.fx[a] * (prefix[s.hi[a] + 1] - prefix[s.lo[a]]);
    }
    if (!(W > 0.0)) {
        // no lattice centre within the cutoff (a hill narrower than a cell): the sigma -> 0 limit,
        // the whole height on the nearest centre (if it is a cell of the grid)
        const int64_t i = nearest_index((x - g.x_min) / g.dx() - 0.5, w.i_lo, w.i_hi);
        const int64_t j = nearest_index((y - g.y_min) / g.dy() - 0.5, w.j_lo, w.j_hi);
        if (i >= 0 && i < g.nx && j >= 0 && j < g.ny) {
            s.kind = HILL_ONE_CELL;
            s.cell_i = i;
            s.cell_j = j;
            s.height = height;
        }
        return;
    }
    s.kind = HILL_DISK;
    s.scale = height / W;
    s.i_lo = w.i_lo;
    s.j_lo = w.j_lo;
    s.a0 = w.i_lo < 0 ? -w.i_lo : 0;
    s.a1 = w.i_hi >= g.nx ? g.nx - 1 - w.i_lo : nwx - 1;
    s.b0 = w.j_lo < 0 ? -w.j_lo : 0;
    s.b1 = w.j_hi >= g.ny ? g.ny - 1 - w.j_lo : nwy - 1;
}

template <class T>
void hill_add_rows(T* S, const GridSpec& g, const PreparedHill& s, int64_t row_lo, int64_t row_hi) {
    if (s.kind == HILL_ONE_CELL) {
        if (s.cell_i >= row_lo && s.cell_i < row_hi) S[s.cell_i * g.ny + s.cell_j] += static_cast<T>(s.height);
        return;
    }
    if (s.kind != HILL_DISK) return;
    const int64_t a0 = std::max(s.a0, row_lo - s.i_lo), a1 = std::min(s.a1, row_hi - 1 - s.i_lo);
    const auto add_row_f64 = hill_loops().add_row_f64;
    const auto add_row_f32 = hill_loops().add_row_f32;
    for (int64_t a = a0; a <= a1; ++a) {
        const int64_t lo = std::max(s.lo[a], s.b0), hi = std::min(s.hi[a], s.b1);
        T* row = S + (s.i_lo + a) * g.ny + s.j_lo;
        const double wx = s.scale * s.fx[a];
        if constexpr (std::is_same_v<T, double>)
            add_row_f64(row, s.fy.data(), wx, lo, hi);
        else
            add_row_f32(row, s.fy.data(), wx, lo, hi);
    }
}

template <class T>
void deposit_cpu(T* S, const GridSpec& g, const double* x, const double* y, const double* height,
                 int64_t n, double sigma, double cutoff) {
    thread_local PreparedHill hill;
    for (int64_t k = 0; k < n; ++k) {
        hill_prepare(g, x[k], y[k], height[k], sigma, cutoff, hill);
        hill_add_rows(S, g, hill, 0, g.nx);
    }
}

template <class T>
void gradient_cpu(const T* S, const GridSpec& g, const double* x, const double* y, int64_t n,
                  double* dS_dx, double* dS_dy) {
    for (int64_t k = 0; k < n; ++k) gradient_at(S, g, x[k], y[k], dS_dx[k], dS_dy[k]);
}

int64_t gaussian_radius(double sigma_bins) { return static_cast<int64_t>(4.0 * sigma_bins + 0.5); }

void gaussian_weights(double sigma_bins, int64_t radius, double* w) { gaussian_weights_into(sigma_bins, radius, w); }

namespace {

inline int64_t clamp_index(int64_t k, int64_t n) { return k < 0 ? 0 : (k >= n ? n - 1 : k); }

}  // namespace

template <class T>
void smooth_cpu(const T* S, T* out, double* work, int64_t nx, int64_t ny, double sigma_x,
                double sigma_y) {
    const int64_t size = nx * ny;
    if (size == 0) return;
    // pass 1, along x (axis 0), into work
    if (sigma_x > 0.0) {
        const int64_t r = gaussian_radius(sigma_x);
        std::vector<double> wt(2 * r + 1);
        gaussian_weights(sigma_x, r, wt.data());
        for (int64_t i = 0; i < size; ++i) work[i] = 0.0;
        for (int64_t k = -r; k <= r; ++k) {
            const double c = wt[k + r];
            for (int64_t i = 0; i < nx; ++i) {
                const T* src = S + clamp_index(i + k, nx) * ny;
                double* dst = work + i * ny;
                for (int64_t j = 0; j < ny; ++j) dst[j] += c * static_cast<double>(src[j]);
            }
        }
    } else {
        for (int64_t i = 0; i < size; ++i) work[i] = static_cast<double>(S[i]);
    }
    // pass 2, along y (axis 1), into out
    if (sigma_y > 0.0) {
        const int64_t r = gaussian_radius(sigma_y);
        std::vector<double> wt(2 * r + 1), line(ny + 2 * r);
        gaussian_weights(sigma_y, r, wt.data());
        for (int64_t i = 0; i < nx; ++i) {
            const double* src = work + i * ny;
            for (int64_t j = 0; j < ny + 2 * r; ++j) line[j] = src[clamp_index(j - r, ny)];
            T* dst = out + i * ny;
            for (int64_t j = 0; j < ny; ++j) {
                double acc = 0.0;
                for (int64_t k = 0; k <= 2 * r; ++k) acc += wt[k] * line[j + k];
                dst[j] = static_cast<T>(acc);
            }
        }
    } else {
        for (int64_t i = 0; i < size; ++i) out[i] = static_cast<T>(work[i]);
    }
}

template <class T>
void landscape_step_cpu(T* S, double* H, const GridSpec& g, const double* x, const double* y, const double* height,
                        const double* weight, int64_t n, double sigma, double cutoff, double* dS_dx,
                        double* dS_dy) {
    for (int64_t k = 0; k < n; ++k) {
        dS_dx[k] = dS_dy[k] = 0.0;
        if (std::isfinite(x[k]) && std::isfinite(y[k])) gradient_cpu(S, g, x + k, y + k, 1, dS_dx + k, dS_dy + k);
    }
    for (int64_t k = 0; k < n; ++k) {
        if (!(std::isfinite(x[k]) && std::isfinite(y[k]))) continue;
        if (height[k] != 0.0) deposit_cpu(S, g, x + k, y + k, height + k, 1, sigma, cutoff);
        const double fi = std::floor((x[k] - g.x_min) / g.dx()), fj = std::floor((y[k] - g.y_min) / g.dy());
        const int64_t i = static_cast<int64_t>(std::min(std::max(fi, 0.0), static_cast<double>(g.nx - 1)));
        const int64_t j = static_cast<int64_t>(std::min(std::max(fj, 0.0), static_cast<double>(g.ny - 1)));
        H[i * g.ny + j] += weight[k];
    }
}

#define EE_INSTANTIATE(T)                                                                          \
    template void landscape_step_cpu<T>(T*, double*, const GridSpec&, const double*, const double*, \
                                        const double*, const double*, int64_t, double, double, double*, \
                                        double*);                                                  \
    template void deposit_cpu<T>(T*, const GridSpec&, const double*, const double*, const double*, \
                                 int64_t, double, double);                                         \
    template void hill_add_rows<T>(T*, const GridSpec&, const PreparedHill&, int64_t, int64_t);        \
    template void gradient_cpu<T>(const T*, const GridSpec&, const double*, const double*, int64_t, \
                                  double*, double*);                                               \
    template void smooth_cpu<T>(const T*, T*, double*, int64_t, int64_t, double, double);

EE_INSTANTIATE(float)
EE_INSTANTIATE(double)
#undef EE_INSTANTIATE

}  // namespace ee
