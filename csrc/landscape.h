// Landscape kernels (docs/design.md contracts 1-3), CPU declarations. Raw pointers, C order, no checks:
// the bindings validate every array before calling these.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"

namespace ee {

// Adds, for each of the n hills, height[k] * w / W to every cell whose centre lies within `cutoff`
// of (x[k], y[k]); w = exp(-r^2 / 2 sigma^2), W = sum of w over all lattice centres within the
// cutoff, also those beyond the grid's edge. Hills that touch no cell are skipped.
template <class T>
void deposit_cpu(T* S, const GridSpec& g, const double* x, const double* y, const double* height,
                 int64_t n, double sigma, double cutoff);

// One hill made ready (hill_prepare: its window, factors and normalisation) and added to the rows
// [row_lo, row_hi) of the grid (hill_add_rows): deposit_cpu is the two over every row. Hills added in
// the same order give the same sums however the rows are split, so threads may share the adding of
// many hills, each thread its own band of rows, the result equal to deposit_cpu's bit for bit.
enum HillKind : int { HILL_NONE = 0, HILL_ONE_CELL = 1, HILL_DISK = 2 };
struct PreparedHill {
    int kind = HILL_NONE;
    int64_t i_lo = 0, j_lo = 0, a0 = 0, a1 = -1, b0 = 0, b1 = -1;  // HILL_DISK: window and its rows on the grid
    int64_t cell_i = 0, cell_j = 0;                                // HILL_ONE_CELL
    double height = 0.0, scale = 0.0;
    std::vector<double> fx, fy;     // the window's factors
    std::vector<int64_t> lo, hi;    // each window row's chord
};
void hill_prepare(const GridSpec& g, double x, double y, double height, double sigma, double cutoff, PreparedHill& h);
template <class T>
void hill_add_rows(T* S, const GridSpec& g, const PreparedHill& h, int64_t row_lo, int64_t row_hi);

// dS/dx and dS/dy at n points (central differences, bilinear interpolation, clamped at the edges).
template <class T>
void gradient_cpu(const T* S, const GridSpec& g, const double* x, const double* y, int64_t n,
                  double* dS_dx, double* dS_dy);

// One WLMD step's landscape work for n walkers: dS/dx, dS/dy at every point before any hill, then
// a hill of height[k] at every point, then H[cell of point k] += weight[k] (the last cell for a
// point on the upper edge). A point that is not finite is skipped (its gradient is 0). H: float64.
template <class T>
void landscape_step_cpu(T* S, double* H, const GridSpec& g, const double* x, const double* y, const double* height,
                        const double* weight, int64_t n, double sigma, double cutoff, double* dS_dx,
                        double* dS_dy);

// Radius of the truncated Gaussian filter: int(4 sigma + 1/2), as scipy.ndimage.
int64_t gaussian_radius(double sigma_bins);

// Normalised weights of the truncated Gaussian filter, 2 * radius + 1 values.
void gaussian_weights(double sigma_bins, int64_t radius, double* w);

// out = separable Gaussian filter of S (nx, ny) with sigma_x, sigma_y in bins, truncated at 4 sigma,
// edge mode "nearest"; a sigma of 0 leaves that axis alone. `work` holds nx * ny doubles.
template <class T>
void smooth_cpu(const T* S, T* out, double* work, int64_t nx, int64_t ny, double sigma_x,
                double sigma_y);

}  // namespace ee
