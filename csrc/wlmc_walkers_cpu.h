// Many WLMC walkers sharing one ln g on CPU threads: the CPU twin of cuda/wlmc_walkers.h, running the
// same per-walker code (wlmc_walker.h) with a team of one thread per walker.
//
// Sharing: every walker reads and adds to the one ln g and histogram as it goes (parallel WL after
// Yin & Landau 2012: no walker waits for a merge, so a walker feels the others' visits at once).
// With one thread the adds are plain and the run is deterministic (a resumed run continues bit for
// bit); with several threads they are relaxed atomic adds (compare-and-swap on the double) and the
// order in which the walkers' adds interleave, hence the rounding and the acceptance decisions that
// read ln g, depends on the scheduler: the run is statistically, not bitwise, reproducible.
// Why atomics and not per-thread increments merged per sweep: a walker that does not see its own
// and the others' recent visits piles ln f on the cells it sits in for a whole sweep (the overshoot
// that a frozen ln g produces in WL, unlike multicanonical sampling with fixed weights); the atomics
// cost two uncontended compare-and-swaps per step, a few per cent of a step.
// Work split: thread k runs walkers k, k + T, ..., in rounds of kChunk steps per walker.
#pragma once

#include <cstdint>
#include <vector>

#include "wlmc_walkers_image.h"

namespace ee {
namespace walkers {

class CpuWalkers {
  public:
    CpuWalkers(Image image, uint64_t seed);

    // n walker-steps in all (walker_share(n, W, w) for walker w) at ln_f, on `threads` threads.
    void run(int64_t n, double ln_f, int threads);
    // T_COUNT values (see Stats in wlmc_walker.h).
    std::vector<double> stats();
    void landscape(std::vector<double>& lnG, std::vector<double>& H) const;
    // params: W x P; state: W x S_COUNT.
    void walkers(std::vector<double>& params, std::vector<double>& state) const;
    // Restore ln g, H and every walker's parameters and state; the caches are recomputed.
    void upload(const std::vector<double>& lnG, const std::vector<double>& H, const std::vector<double>& params,
                const std::vector<double>& state);

    // Every walker's whole workspace (parameters, state and cached activations, W x workspace), for
    // checkpoints that continue bit for bit; import_workspace returns false on a length mismatch.
    std::vector<double> workspace() const;
    bool import_workspace(const std::vector<double>& v);

    int64_t n_walkers() const { return image_.layout[H_W]; }
    int64_t n_params() const { return image_.layout[H_P]; }
    int64_t workspace_size() const { return image_.layout[H_WS]; }
    int64_t nx() const { return image_.layout[H_NX]; }
    int64_t ny() const { return image_.layout[H_NY]; }
    const double* bounds() const { return image_.data.data() + image_.layout[H_BOUNDS]; }
    int64_t cells() const { return image_.layout[H_NX] * image_.layout[H_NY]; }

    static constexpr int64_t kChunk = 256;

  private:
    Image image_;
    uint64_t seed_;
};

}  // namespace walkers
}  // namespace ee
