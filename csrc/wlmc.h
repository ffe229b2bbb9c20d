// Wang-Landau Monte Carlo over an MLP (docs/design.md contract 6; Wang & Landau 2001).
//
// Each step: a parameter chosen uniformly, a uniform move within +-step, rejected when it leaves the
// parameter's box or the grid; accepted with min(1, exp(lnG[cur] - lnG[new])); then
// lnG[cur] += ln f and H[cur] += 1. Every `adapt_every` steps the step grows by `grow` when the
// acceptance over those steps is above `acc_high` and shrinks by `shrink` below `acc_low`.
// Random numbers are counter-based: Philox-4x32-10 with key = seed and counter = (step low, step
// high, walker, 0x574C4D43): word 0 picks the parameter, word 1 the move, word 2 the acceptance.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "mlp.h"
#include "wlmc_random.h"

namespace ee {

struct WlmcConfig {
    uint64_t seed = 0;
    uint64_t walker = 0;
    int64_t adapt_every = 1000;
    double acc_high = 0.7, acc_low = 0.3, grow = 1.1, shrink = 0.9;
    int64_t refresh_every = 0;  // 0: never
    bool y_log = false;         // y = ln(test metric) (metric "loss") instead of the metric itself
};

struct WlmcCounters {
    uint64_t t = 0;              // steps done (the counter of the random stream)
    double step = 0.01;          // current move width
    int64_t window_accepted = 0;  // accepted moves in the current adaptation window
    int64_t accepted = 0, rejected_box = 0, rejected_grid = 0, rejected_wl = 0;
};


class WlmcChain {
  public:
    WlmcChain(MlpState mlp, GridSpec grid, std::vector<double> bounds, WlmcConfig cfg, double step);

    // Runs n steps at modification factor ln_f; returns 0, or 1 when the current state is off the
    // grid (nothing done).
    int run(int64_t n, double ln_f);

    // Bin of the current state: false when it lies off the grid.
    bool current_bin(int64_t& i, int64_t& j) const;
    bool bin_of(double loss, double metric, int64_t& i, int64_t& j) const;

    MlpState& mlp() { return mlp_; }
    const MlpState& mlp() const { return mlp_; }
    std::vector<double>& lnG() { return lnG_; }
    std::vector<double>& H() { return H_; }
    WlmcCounters& counters() { return c_; }
    const GridSpec& grid() const { return grid_; }
    double bound(int64_t p) const { return bounds_[p]; }
    const WlmcConfig& config() const { return cfg_; }

  private:
    MlpState mlp_;
    GridSpec grid_;
    std::vector<double> bounds_;
    WlmcConfig cfg_;
    WlmcCounters c_;
    std::vector<double> lnG_, H_;
};

}  // namespace ee
