// Incremental MLP forward pass for single-parameter moves (docs/design.md contract 5).
//
// Activations are stored feature-major: for a data set of n rows, layer l keeps Z[l] and A[l] as
// (out_l x n) arrays, so that the row of one unit is contiguous. A move of one weight W_l[r, c]
// changes row r of Z[l] (Z[l][r] += delta * A[l-1][c]), row r of A[l], layer l+1 by a rank-1 update
// (Z[l+1] += W_{l+1}[:, r] (A_new - A_old)[r]) and layers beyond by full products. propose() computes
// into scratch buffers (no allocation), accept() commits by copies and buffer swaps, a rejected
// proposal leaves the state untouched, refresh() recomputes everything from the parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "kinds.h"

namespace ee {

enum class Act : int { identity = ACT_IDENTITY, relu = ACT_RELU, tanh = ACT_TANH, silu = ACT_SILU };
enum class Loss : int { bce = 0, ce = 1, mse = 2 };
enum class Metric : int { accuracy = 0, loss = 1 };

struct MlpSpec {
    std::vector<int64_t> sizes;  // d_0 (inputs), d_1, ..., d_L (outputs): L layers
    std::vector<Act> acts;       // activation applied after each layer (L entries)
    std::vector<bool> bias;      // whether each layer has a bias (L entries)
    Loss loss = Loss::mse;
    Metric metric = Metric::loss;
};

// One data set: inputs (d_0 x n, feature-major) and targets (bce: n values in {0, 1}; ce: n class
// indices stored as doubles; mse: d_L x n values, feature-major).
struct DataSet {
    int64_t n = 0;
    std::vector<double> X;
    std::vector<double> targets;
};

class MlpState {
  public:
    // params: flat, layer by layer, the weight (out x in, row-major) then the bias, as torch orders
    // the parameters of an nn.Sequential of Linear layers.
    MlpState(MlpSpec spec, const double* params, DataSet train, DataSet test);

    int64_t n_params() const { return static_cast<int64_t>(theta_.size()); }
    const std::vector<double>& params() const { return theta_; }
    double param(int64_t p) const { return theta_[p]; }

    // Train loss and test metric of the committed state.
    double train_loss() const { return train_loss_; }
    double test_metric() const { return test_metric_; }

    // Full recompute instead of the incremental pass (for benchmarks and cross-checks).
    void set_full_recompute(bool on) { full_ = on; }
    bool full_recompute() const { return full_; }

    // Set parameter p to `value` in scratch; returns the train loss and test metric it would give.
    void propose(int64_t p, double value, double& train_loss, double& test_metric);
    // Commit the last proposal.
    void accept();
    // Recompute every cached value from the parameters (bounds rounding drift).
    void refresh();
    // The cached activations and values, flattened (for checkpoints: a chain restored with
    // import_cache continues bit for bit as the original, rounding drift included).
    std::vector<double> export_cache() const;
    // Returns false (and changes nothing) when `v` has the wrong length.
    bool import_cache(const std::vector<double>& v);
    // Full forward pass of a data set from the current parameters, without touching the caches.
    void full_eval(bool test_set, double& loss, double& metric) const;

  private:
    struct Cache {
        std::vector<std::vector<double>> Z, A;    // per layer, out_l x n
        std::vector<std::vector<double>> SZ, SA;  // scratch for the layers after the moved one
        std::vector<double> zrow, arow;           // scratch row of the moved layer
    };

    void forward_all(const DataSet& d, std::vector<std::vector<double>>& Z,
                     std::vector<std::vector<double>>& A) const;
    void propose_set(const DataSet& d, Cache& c, int64_t l, int64_t r, int64_t col, double delta);
    void accept_set(Cache& c, int64_t l, int64_t r);
    double set_value(const DataSet& d, const Cache& c, bool scratch, int64_t l, int64_t r, bool metric) const;
    double output_value(const DataSet& d, const double* const* rows, bool metric) const;

    MlpSpec spec_;
    int64_t L_;
    std::vector<double> theta_;
    std::vector<int64_t> w_off_, b_off_;                // offsets of each layer's weight and bias
    std::vector<int64_t> p_layer_, p_row_, p_col_;      // parameter -> (layer, row, col or -1)
    DataSet train_, test_;
    Cache ctrain_, ctest_;
    double train_loss_ = 0.0, test_metric_ = 0.0;
    // last proposal
    bool full_ = false;
    int64_t prop_p_ = -1;
    double prop_value_ = 0.0, prop_loss_ = 0.0, prop_metric_ = 0.0;
    mutable std::vector<const double*> rows_;
    mutable std::vector<double> terms_;  // per-sample loss terms (3 n: terms and the ce scratch)
};

}  // namespace ee
