// Langevin kernel (docs/design.md contract 4) and its counter-based normals, CPU declarations.
#pragma once

#include <cstdint>

#include "langevin_math.h"

namespace ee {

// In place over n elements:
//   v <- v - dt grad;  v <- (1 - gamma) v + sqrt(gamma (2 - gamma) kT) xi;  theta <- theta + dt v;
//   reflect at +-bound (theta <- 2b - theta or -2b - theta, v <- -v; folded again if still outside).
// xi_i = philox_normal<T>(seed, i, step). `bound` is an array of n values, or null and
// `bound_scalar` is used for every element.
template <class T>
void langevin_cpu(T* theta, T* v, const T* grad, const T* bound, T bound_scalar, int64_t n,
                  const LangevinParams& p);

// The same over elements [0, n) of a larger array whose element 0 has the global index `first`: the
// noise of element i is philox_normal<T>(seed, first + i, step), so walkers updated on their own
// threads (the native WLMD step) draw what one call over all of them draws.
template <class T>
void langevin_cpu_at(T* theta, T* v, const T* grad, const T* bound, T bound_scalar, int64_t n, uint64_t first,
                     const LangevinParams& p);

// out[i] = philox_normal<T>(seed, i, step), i < n (the normals langevin_cpu<T> draws).
template <class T>
void normal_cpu(uint64_t seed, uint64_t step, int64_t n, T* out);


}  // namespace ee
