// The memory image of many WLMC walkers (see wlmc_walker.h): one array of doubles holding the data,
// the bounds, the shared ln g and histogram, the grid, the stage bookkeeping and every walker's
// parameters, state and cached activations, plus the int64 layout that says where each part lives.
// Built on the host; the CPU walkers keep it in host memory, the CUDA walkers copy it to the device.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "mlp.h"
#include "wlmc_walker.h"

namespace ee {
namespace walkers {

struct Image {
    std::vector<int64_t> layout;  // header (H_COUNT), then sizes, acts, woff, boff, cache offsets
    std::vector<double> data;     // everything else
};

// params: W x P (each walker's start), bounds: P; data feature-major (as MlpState).
// refresh_every: steps between recomputations of a walker's caches (0: never).
Image build_image(const MlpSpec& spec, const std::vector<double>& params, int64_t walkers, const DataSet& train,
                  const DataSet& test, const std::vector<double>& bounds, const GridSpec& grid, double step,
                  bool y_log, int64_t refresh_every);

}  // namespace walkers
}  // namespace ee
