// One element of the reflecting-boundary Langevin update (docs/design.md contract 4), shared by the CPU
// and CUDA sources.
#pragma once

#include <math.h>

#include "common.h"

namespace ee {

struct LangevinParams {
    double dt;     // time step
    double gamma;  // friction per step, in [0, 1]
    double kT;     // temperature
    uint64_t seed;
    uint64_t step;  // the counter's second word: a resumed run passes the next step
};

// Fold theta into [-b, b] after it left by more than one box width: the reflections at +-b unfold
// to a triangle wave of period 4b; an odd number of reflections flips the velocity.
template <class T>
EE_HD void fold_into_box(T& theta, T& v, T b) {
    const T width = b + b;
    const T u = theta + b;
    const T k = floor(u / width);
    T r = u - width * k;
    if (r < T(0)) r = T(0);
    if (r > width) r = width;
    const bool odd = fmod(k, T(2)) != T(0);
    theta = odd ? b - r : r - b;
    if (odd) v = -v;
}

// v <- v - dt grad; v <- c1 v + amp xi; theta <- theta + dt v; reflect at +-b.
// Returns 1 when theta needed more than one reflection (then handled by fold_into_box), else 0.
template <class T>
EE_HD int langevin_element(T& theta, T& v, T grad, T b, T dt, T c1, T amp, T xi) {
    T vv = v - dt * grad;
    vv = c1 * vv + amp * xi;
    T th = theta + dt * vv;
    const bool above = th > b, below = th < -b;
    th = above ? (b + b) - th : (below ? -(b + b) - th : th);
    vv = (above | below) ? -vv : vv;
    theta = th;
    v = vv;
    return static_cast<int>(th > b) | static_cast<int>(th < -b);
}

}  // namespace ee
