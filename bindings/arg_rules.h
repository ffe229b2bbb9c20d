// The value rules of every binding's arguments, written once: the pybind11 module (checks.h,
// register_*.cpp) and the torch operator library (torch_ops.cpp) apply the same ones. Each rule
// returns an empty string when the values are valid, else the message naming the argument, which
// the binding raises as its ValueError (py::value_error, TORCH_CHECK_VALUE). Plain C++: neither
// pybind11 nor torch is included here.
#pragma once

#include <cmath>
#include <string>

#include "common.h"

namespace ee::rules {

// the most cells of a grid the kernels take (nx * ny <= 2^34, as entropyeng.Grid)
constexpr double kMaxCells = 17179869184.0;
// the most lattice cells one hill may span
constexpr double kMaxHillCells = 67108864.0;

inline std::string num(double v) { return std::to_string(v); }

// A grid: finite limits with x_min < x_max and y_min < y_max, whole numbers of cells nx, ny >= 3
// with nx * ny <= 2^34, and positive finite cell widths. nx and ny come as doubles so that a
// fractional count (40.5) is refused by the same rule wherever it arrives.
inline std::string grid_error(double x_min, double x_max, double nx, double y_min, double y_max, double ny) {
    const double v[4] = {x_min, x_max, y_min, y_max};
    const char* names[4] = {"x_min", "x_max", "y_min", "y_max"};
    for (int k = 0; k < 4; ++k)
        if (!std::isfinite(v[k])) return std::string(names[k]) + ": expected a finite number";
    if (!(x_max > x_min)) return "x_max: expected x_max > x_min";
    if (!(y_max > y_min)) return "y_max: expected y_max > y_min";
    if (!(nx >= 3) || nx != std::floor(nx)) return "nx: expected a whole number of cells >= 3, got " + num(nx);
    if (!(ny >= 3) || ny != std::floor(ny)) return "ny: expected a whole number of cells >= 3, got " + num(ny);
    if (!(nx * ny <= kMaxCells)) return "grid: expected at most 2^34 cells, got " + num(nx * ny);
    const double dx = (x_max - x_min) / nx, dy = (y_max - y_min) / ny;
    if (!(dx > 0.0) || !(dy > 0.0) || !std::isfinite(dx) || !std::isfinite(dy))
        return "grid: the cell widths are not positive finite numbers";
    return {};
}

inline ee::GridSpec grid_spec(double x_min, double x_max, double nx, double y_min, double y_max, double ny) {
    return ee::GridSpec{x_min, x_max, static_cast<int64_t>(nx), y_min, y_max, static_cast<int64_t>(ny)};
}

// A hill: sigma > 0, cutoff >= sigma, both finite, and a window of at most 2^26 lattice cells.
inline std::string hill_error(const ee::GridSpec& g, double sigma, double cutoff) {
    if (!(sigma > 0.0) || !std::isfinite(sigma)) return "sigma: expected a finite number > 0, got " + num(sigma);
    if (!(cutoff >= sigma) || !std::isfinite(cutoff))
        return "cutoff: expected a finite number >= sigma, got " + num(cutoff);
    const double cells = (2.0 * cutoff / g.dx() + 3.0) * (2.0 * cutoff / g.dy() + 3.0);
    if (!(cells <= kMaxHillCells))
        return "cutoff: a hill would span more than 2^26 lattice cells (cutoff " + num(cutoff) + " on cells of " +
               num(g.dx()) + " x " + num(g.dy()) + ")";
    return {};
}

// The scalars of a Langevin step: dt > 0 finite, gamma in [0, 1], kT >= 0 finite.
inline std::string langevin_error(double dt, double gamma, double kT) {
    if (!(dt > 0.0) || !std::isfinite(dt)) return "dt: expected a finite number > 0";
    if (!(gamma >= 0.0 && gamma <= 1.0)) return "gamma: expected a number in [0, 1]";
    if (!(kT >= 0.0) || !std::isfinite(kT)) return "kT: expected a finite number >= 0";
    return {};
}

}  // namespace ee::rules
