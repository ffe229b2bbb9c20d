// Per-hill and per-point maths of the landscape kernels, shared by the CPU and CUDA sources so that
// both implement docs/design.md contracts 1 and 2 with the same arithmetic.
#pragma once

#include <math.h>

#include <cstdint>

#include "common.h"

namespace ee {

EE_HD bool is_finite(double v) { return v - v == 0.0; }

// Lattice window of a hill: the lattice indices (also beyond the grid's edge) that may lie within
// `cutoff` of (x, y). One index of margin on each side; the exact test is r^2 <= cutoff^2.
struct HillWindow {
    int64_t i_lo, i_hi, j_lo, j_hi;
};

// Returns false when the hill touches no cell of the grid (or x, y are not finite): nothing to do.
EE_HD bool hill_window(const GridSpec& g, double x, double y, double cutoff, HillWindow& w) {
    if (!is_finite(x) || !is_finite(y)) return false;
    const double fx = (x - g.x_min) / g.dx() - 0.5;  // fractional index: centre i sits at fx = i
    const double fy = (y - g.y_min) / g.dy() - 0.5;
    const double rx = cutoff / g.dx(), ry = cutoff / g.dy();
    const double ilo = ceil(fx - rx) - 1.0, ihi = floor(fx + rx) + 1.0;
    const double jlo = ceil(fy - ry) - 1.0, jhi = floor(fy + ry) + 1.0;
    if (ihi < 0.0 || ilo > static_cast<double>(g.nx - 1) || jhi < 0.0 ||
        jlo > static_cast<double>(g.ny - 1))
        return false;
    w.i_lo = static_cast<int64_t>(ilo);
    w.i_hi = static_cast<int64_t>(ihi);
    w.j_lo = static_cast<int64_t>(jlo);
    w.j_hi = static_cast<int64_t>(jhi);
    return true;
}

// One-dimensional Gaussian factor of a hill relative to the nearest lattice centre of its window,
// exp(-(d^2 - d0^2) / 2 sigma^2) with d0 = that centre's offset: the 2-D weight is the product of the
// two factors, and w / W is unchanged by the constant exp(-d0^2 / 2 sigma^2), but a hill much
// narrower than a cell keeps its weight on the nearest centre (1) instead of underflowing to W = 0.
// Divided by sigma twice so that sigma^2 cannot underflow (sigma = 1e-300). hill_exponent: its
// argument (the CPU's hill preparation takes the exponentials of a window's factors in one loop).
EE_HD double hill_exponent(double d, double d0, double sigma) { return -0.5 * (((d * d - d0 * d0) / sigma) / sigma); }
EE_HD double hill_factor(double d, double d0, double sigma) { return exp(hill_exponent(d, d0, sigma)); }

// The lattice index of [lo, hi] nearest to the fractional index f (a centre i sits at f = i).
EE_HD int64_t nearest_index(double f, int64_t lo, int64_t hi) {
    double r = floor(f + 0.5);
    if (r < static_cast<double>(lo)) r = static_cast<double>(lo);
    if (r > static_cast<double>(hi)) r = static_cast<double>(hi);
    return static_cast<int64_t>(r);
}

// Central difference of S along x at centre (i, j), one-sided at the edges (nx >= 3).
template <class T>
EE_HD double diff_x(const T* S, const GridSpec& g, int64_t i, int64_t j) {
    const int64_t ny = g.ny;
    if (i == 0) return (static_cast<double>(S[ny + j]) - static_cast<double>(S[j])) / g.dx();
    if (i == g.nx - 1)
        return (static_cast<double>(S[i * ny + j]) - static_cast<double>(S[(i - 1) * ny + j])) / g.dx();
    return (static_cast<double>(S[(i + 1) * ny + j]) - static_cast<double>(S[(i - 1) * ny + j])) /
           (2.0 * g.dx());
}

template <class T>
EE_HD double diff_y(const T* S, const GridSpec& g, int64_t i, int64_t j) {
    const T* row = S + i * g.ny;
    if (j == 0) return (static_cast<double>(row[1]) - static_cast<double>(row[0])) / g.dy();
    if (j == g.ny - 1)
        return (static_cast<double>(row[j]) - static_cast<double>(row[j - 1])) / g.dy();
    return (static_cast<double>(row[j + 1]) - static_cast<double>(row[j - 1])) / (2.0 * g.dy());
}

// Cell below a coordinate and the bilinear weight towards the next cell, clamped at the edges.
EE_HD void bilinear_cell(double f, int64_t n, int64_t& i0, double& t) {
    const double top = static_cast<double>(n - 1);
    if (!(f > 0.0)) f = 0.0;
    if (f > top) f = top;
    double c = floor(f);
    if (c > top - 1.0) c = top - 1.0;
    i0 = static_cast<int64_t>(c);
    t = f - c;
}

// (dS/dx, dS/dy) at (x, y): central differences at the four nearest centres, bilinearly
// interpolated. Non-finite (x, y) give NaN.
template <class T>
EE_HD void gradient_at(const T* S, const GridSpec& g, double x, double y, double& gx, double& gy) {
    if (!is_finite(x) || !is_finite(y)) {
        gx = gy = NAN;
        return;
    }
    int64_t i0, j0;
    double tx, ty;
    bilinear_cell((x - g.x_min) / g.dx() - 0.5, g.nx, i0, tx);
    bilinear_cell((y - g.y_min) / g.dy() - 0.5, g.ny, j0, ty);
    const double w00 = (1.0 - tx) * (1.0 - ty), w10 = tx * (1.0 - ty);
    const double w01 = (1.0 - tx) * ty, w11 = tx * ty;
    gx = w00 * diff_x(S, g, i0, j0) + w10 * diff_x(S, g, i0 + 1, j0) + w01 * diff_x(S, g, i0, j0 + 1) +
         w11 * diff_x(S, g, i0 + 1, j0 + 1);
    gy = w00 * diff_y(S, g, i0, j0) + w10 * diff_y(S, g, i0 + 1, j0) + w01 * diff_y(S, g, i0, j0 + 1) +
         w11 * diff_y(S, g, i0 + 1, j0 + 1);
}

// Normalised weights exp(-k^2 / 2 sigma^2), |k| <= radius, of the truncated Gaussian filter
// (scipy.ndimage's kernel), summed in order k = -radius .. radius.
EE_HD void gaussian_weights_into(double sigma_bins, int64_t radius, double* w) {
    double total = 0.0;
    for (int64_t k = -radius; k <= radius; ++k) {
        // (k / sigma)^2, not k^2 / sigma^2: sigma^2 underflows for sigma < 1e-154 (0 / 0 gave NaN)
        const double q = static_cast<double>(k) / sigma_bins;
        w[k + radius] = exp(-0.5 * (q * q));
        total += w[k + radius];
    }
    for (int64_t k = 0; k <= 2 * radius; ++k) w[k] /= total;
}

}  // namespace ee
