// Many independent WLMC walkers on a GPU (parallel Wang-Landau in the style of Yin & Landau's GPU
// WL): one walker per thread block, all sharing one ln g and one histogram through atomic adds.
// Each thread owns data rows, so the incremental forward pass of a move (moved row, rank-1 update
// of the next layer, full products beyond) needs no synchronisation between layers; the block
// only meets to sum the loss terms and to agree on the decision. Same chain as csrc/wlmc.h per
// walker: Philox words with counter = (step, walker, 0x574C4D43).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common.h"
#include "../mlp.h"

namespace ee {
namespace cuda {

class WlmcWalkers {
  public:
    // params: W x P (each walker's start), bounds: P; data as in MlpState (feature-major).
    WlmcWalkers(const MlpSpec& spec, const std::vector<double>& params, int64_t walkers, const DataSet& train,
                const DataSet& test, const std::vector<double>& bounds, const GridSpec& grid, uint64_t seed,
                double step, bool y_log, int device);
    ~WlmcWalkers();
    WlmcWalkers(const WlmcWalkers&) = delete;
    WlmcWalkers& operator=(const WlmcWalkers&) = delete;

    // Runs n steps on every walker at ln_f; returns a cudaError_t as int (0 = success).
    int run(int64_t n, double ln_f);
    int download(std::vector<double>& lnG, std::vector<double>& H, std::vector<double>& params,
                 std::vector<double>& state) const;  // state: per walker (loss, metric, step, accepted, t)
    int upload_landscape(const std::vector<double>& lnG, const std::vector<double>& H);
    // Restore each walker's parameters (W x P) and state (W x 8, as download gives it); the cached
    // activations, losses and bins are recomputed from the parameters.
    int upload_walkers(const std::vector<double>& params, const std::vector<double>& state);
    int64_t walkers() const { return W_; }
    int64_t n_params() const { return P_; }
    const std::string& error() const { return error_; }

  private:
    int64_t W_ = 0, P_ = 0, L_ = 0;
    GridSpec grid_{};
    std::string error_;
    void* dev_ = nullptr;  // one device allocation holding everything
    size_t bytes_ = 0;
    int device_ = 0;
    uint64_t seed_ = 0;
    // offsets (in doubles) into the allocation, and the layout description copied to the device
    std::vector<int64_t> layout_;
};

}  // namespace cuda
}  // namespace ee
