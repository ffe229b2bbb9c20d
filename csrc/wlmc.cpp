// Wang-Landau Monte Carlo chain (see wlmc.h).
#include "wlmc.h"

#include <math.h>

#include <utility>


namespace ee {

WlmcChain::WlmcChain(MlpState mlp, GridSpec grid, std::vector<double> bounds, WlmcConfig cfg, double step)
    : mlp_(std::move(mlp)), grid_(grid), bounds_(std::move(bounds)), cfg_(cfg),
      lnG_(static_cast<size_t>(grid.nx * grid.ny), 0.0), H_(static_cast<size_t>(grid.nx * grid.ny), 0.0) {
    c_.step = step;
}

bool WlmcChain::bin_of(double loss, double metric, int64_t& i, int64_t& j) const {
    const double x = log(loss);
    const double y = cfg_.y_log ? log(metric) : metric;
    const double fx = floor((x - grid_.x_min) / grid_.dx());
    const double fy = floor((y - grid_.y_min) / grid_.dy());
    if (!(fx >= 0.0 && fx < static_cast<double>(grid_.nx) && fy >= 0.0 && fy < static_cast<double>(grid_.ny)))
        return false;  // also NaN
    i = static_cast<int64_t>(fx);
    j = static_cast<int64_t>(fy);
    return true;
}

bool WlmcChain::current_bin(int64_t& i, int64_t& j) const {
    return bin_of(mlp_.train_loss(), mlp_.test_metric(), i, j);
}

int WlmcChain::run(int64_t n, double ln_f) {
    int64_t ci, cj;
    if (!current_bin(ci, cj)) return 1;
    const uint64_t P = static_cast<uint64_t>(mlp_.n_params());
    const int64_t ny = grid_.ny;
    for (int64_t k = 0; k < n; ++k) {
        const WlmcRandoms rnd = wlmc_randoms(cfg_.seed, cfg_.walker, c_.t);
        const int64_t p = static_cast<int64_t>((rnd.param_word * P) >> 32);
        const double value = mlp_.param(p) + rnd.move * c_.step;
        if (value > bounds_[p] || value < -bounds_[p]) {
            ++c_.rejected_box;
        } else {
            double loss, metric;
            mlp_.propose(p, value, loss, metric);
            int64_t ni, nj;
            if (!bin_of(loss, metric, ni, nj)) {
                ++c_.rejected_grid;
            } else {
                const double d = lnG_[ci * ny + cj] - lnG_[ni * ny + nj];
                if (d >= 0.0 || rnd.accept < exp(d)) {
                    mlp_.accept();
                    ci = ni;
                    cj = nj;
                    ++c_.accepted;
                    ++c_.window_accepted;
                } else {
                    ++c_.rejected_wl;
                }
            }
        }
        lnG_[ci * ny + cj] += ln_f;
        H_[ci * ny + cj] += 1.0;
        ++c_.t;
        if (cfg_.adapt_every > 0 && c_.t % static_cast<uint64_t>(cfg_.adapt_every) == 0) {
            const double rate = static_cast<double>(c_.window_accepted) / static_cast<double>(cfg_.adapt_every);
            if (rate > cfg_.acc_high) c_.step *= cfg_.grow;
            else if (rate < cfg_.acc_low) c_.step *= cfg_.shrink;
            c_.window_accepted = 0;
        }
        if (cfg_.refresh_every > 0 && c_.t % static_cast<uint64_t>(cfg_.refresh_every) == 0) {
            mlp_.refresh();
            if (!current_bin(ci, cj)) return 1;
        }
    }
    return 0;
}

}  // namespace ee
