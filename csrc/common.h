// Shared definitions for the entropyeng kernels: host/device qualifiers and the grid.
// Plain C++17, no Python, no torch. Included by the CPU (.cpp) and CUDA (.cu) sources.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define EE_HD __host__ __device__ __forceinline__
#else
#define EE_HD inline
#endif

namespace ee {

// Regular 2-D grid; cell (i, j) has centre (x_min + (i + 1/2) dx, y_min + (j + 1/2) dy).
// Arrays over the grid are (nx, ny), C order, i along x.
struct GridSpec {
    double x_min, x_max;
    int64_t nx;
    double y_min, y_max;
    int64_t ny;

    EE_HD double dx() const { return (x_max - x_min) / static_cast<double>(nx); }
    EE_HD double dy() const { return (y_max - y_min) / static_cast<double>(ny); }
    EE_HD double cx(double i) const { return centre(x_min, dx(), i); }
    EE_HD double cy(double j) const { return centre(y_min, dy(), j); }
    // the centre of cell i of an axis of cells `spacing` wide from `origin`
    EE_HD static double centre(double origin, double spacing, double i) { return origin + (i + 0.5) * spacing; }
};

}  // namespace ee
