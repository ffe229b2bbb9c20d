// Many WLMC walkers on a GPU sharing one ln g and one histogram (parallel Wang-Landau after Yin &
// Landau, Phys. Rev. E 85, 056701 (2012)): one walker per thread block, the per-walker code of
// ../wlmc_walker.h (the same code the CPU walker threads run, ../wlmc_walkers_cpu.h).
//
// Layout: one block per walker. Each thread of the block owns data rows, so the incremental forward
// pass of a move (moved row, rank-1 update of the next layer, full products beyond) needs no
// synchronisation between layers; the block only meets to sum the loss terms and to agree on the
// decision. For 4 x 8 networks on 40 + 40 points most of a 128-thread block idles: a warp per
// walker with its caches in shared memory is the likely faster layout, not tried yet (no GPU was
// lent since this code was written; GPU.md has the last measured figures).
// Shared ln g: walkers add with atomicAdd and read with __ldcg (L2, coherent with the other blocks'
// atomics; a plain load may hit a stale L1 line). The stage bookkeeping (visited cells, flatness,
// summed counters) is computed on the device by the `stats` kernel; ln g and H cross to the host only
// when asked for (a landscape, a checkpoint).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../wlmc_walkers_image.h"

namespace ee {
namespace cuda {

class WlmcWalkers {
  public:
    WlmcWalkers(walkers::Image image, uint64_t seed, int device);
    ~WlmcWalkers();
    WlmcWalkers(const WlmcWalkers&) = delete;
    WlmcWalkers& operator=(const WlmcWalkers&) = delete;

    // Each function returns a cudaError_t as int (0 = success; error() says more).
    // n walker-steps in all (walker_share per walker) at ln_f.
    int run(int64_t n, double ln_f);
    int stats(std::vector<double>& out);  // T_COUNT values
    int landscape(std::vector<double>& lnG, std::vector<double>& H) const;
    int walkers(std::vector<double>& params, std::vector<double>& state) const;  // W x P, W x S_COUNT
    // Restore ln g, H and every walker's parameters and state; the caches are recomputed.
    int upload(const std::vector<double>& lnG, const std::vector<double>& H, const std::vector<double>& params,
               const std::vector<double>& state);
    int64_t n_walkers() const { return layout_[walkers::H_W]; }
    int64_t n_params() const { return layout_[walkers::H_P]; }
    int64_t cells() const { return layout_[walkers::H_NX] * layout_[walkers::H_NY]; }
    int64_t nx() const { return layout_[walkers::H_NX]; }
    int64_t ny() const { return layout_[walkers::H_NY]; }
    const double* bounds() const { return bounds_.data(); }
    const std::string& error() const { return error_; }

  private:
    std::vector<int64_t> layout_;
    std::vector<double> bounds_;  // host copy (for the checks of uploads)
    mutable std::string error_;
    double* base_ = nullptr;      // device copy of the image's doubles
    int64_t* dlayout_ = nullptr;  // device copy of the layout
    int device_ = 0;
    uint64_t seed_ = 0;
};

}  // namespace cuda
}  // namespace ee
