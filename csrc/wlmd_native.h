// The whole WLMD step in C++ ("native" form) for the models the batched kernels take: n steps of K
// walkers sharing one landscape in one call, with no Python or torch between steps. It composes the
// kernels that exist (mlp_batch / net_batch forward and backward, landscape_step_cpu,
// langevin_cpu_at) and the physics of wlmd_physics.h, and does what the torch step
// (entropyeng/wlmd/step.py) does, in its order:
//   1. the forward pass of every active walker on the train and test rows, and (x, y);
//   2. the check of the state it starts from: a walker whose (x, y) is not finite or off the grid is
//      dropped (active false, bad = this step, bad_xy = that point), goes back to its last good
//      state and deposits nothing from then on; the round trips;
//   3. dS at (x, y), the hills of height f(t) of Eq. 4 (deposit t K R + 1) and the histogram;
//   4. dS plus the walls' force, times the integrator's kick scale, as the seeds of the pullback;
//   5. the last good state, the integrator's Langevin update(s) with the Philox noise of element
//      k P + i at step t, the dropped walkers frozen; t += 1.
// Each walker goes from its forward pass to its Langevin update on one of the caller's threads,
// reading S as it was before the step; the step's hills and counts are added afterwards in walker
// order, as landscape_step_cpu adds them (the hills by bands of rows). The threads join the run once
// and claim each step's walkers and bands as they come (step_claims.h: no parallel region a step).
// Each walker's and each band's arithmetic is the same on any thread, so the result does not depend
// on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common.h"
#include "mlp_batch.h"
#include "net_batch.h"
#include "wlmd_physics.h"

namespace ee {

enum WlmdIntegrator : int { INTEGRATOR_PAPER = 0, INTEGRATOR_BAOAB = 1 };

struct WlmdNativeModel {
    int kind = 0;  // 0: MLP (mlp), 1: small CNN (net)
    bool sparse_input = false;  // an MLP whose first layer reads X's nonzeros (MlpBatchSpec::sparse_rows)
    MlpBatchSpec mlp;
    NetBatchSpec net;
    int64_t n_params() const { return kind == 0 ? mlp.n_params() : net.n_params; }
    int64_t out_features() const { return kind == 0 ? mlp.sizes.back() : net.out_features; }
};

struct WlmdNativeConfig {
    CvSpec cv;
    GridSpec grid;
    double sigma = 0, cutoff = 0;
    double wall_lo[2] = {-INFINITY, -INFINITY}, wall_hi[2] = {INFINITY, INFINITY};
    double wall_c = 0;
    double f_max = 0, t1 = 1, t2 = 1, t3 = 0;
    int64_t deposits_per_step = 1;
    double dt = 0, gamma = 0, kT = 0;
    uint64_t seed = 0;
    int integrator = INTEGRATOR_PAPER;
    double ends_lo = 0, ends_hi = 0;  // round trips between the lowest and highest tenth of [lo, hi]
};

// The sampler's state, as the torch step's State holds it (K walkers of P parameters).
template <class T>
struct WlmdNativeState {
    T* theta;
    T* v;
    T* good_theta;
    T* good_v;
    double* S;
    double* H;
    int64_t* t;
    int64_t* bad;
    double* bad_xy;
    bool* active;
    int64_t* trips;
    int64_t* last_end;
};

// The data: X (N rows of the model's input, train rows first), targets (N x d, MSE / BCE; may be
// null), labels (N, CE and the smoothed accuracy; may be null), bound (P, the box of each parameter).
template <class T>
struct WlmdNativeData {
    const T* X;
    const T* targets;
    const int64_t* labels;
    const T* bound;
};

// The CVs of walkers [k0, k1) of K walkers' outputs out (K x N x d): values (K x 5: x, y, L_train,
// L_test, A_s), and their pullback grad_out (K x N x d) from those values and the seeds (K x 2). The
// torch step's operators (entropyeng::wlmd_cvs, wlmd_cv_pullback) and the native step call these,
// compiled once with the kernels' flags, so the two forms round alike.
template <class T>
void wlmd_cvs_cpu(const CvSpec& c, const T* out, const T* targets, const int64_t* labels, int64_t k0, int64_t k1,
                  double* values);
template <class T>
void wlmd_cv_pullback_cpu(const CvSpec& c, const T* out, const T* targets, const int64_t* labels,
                          const double* values, const double* seeds, int64_t k0, int64_t k1, T* grad_out);

using WlmdParallelFor = std::function<void(int64_t, int64_t, const std::function<void(int64_t, int64_t)>&)>;

// n_steps steps of K walkers, in place. pfor(0, K, fn) calls fn on walker ranges covering [0, K), on
// as many threads as it runs at once (one included): each call joins the run, its range the walkers
// that thread claims first. An exception in one call stops the others' waits and is pfor's to pass on.
template <class T>
void wlmd_native_run(const WlmdNativeModel& model, const WlmdNativeConfig& c, const WlmdNativeData<T>& data,
                     const WlmdNativeState<T>& s, int64_t K, int64_t n_steps, const WlmdParallelFor& pfor);

}  // namespace ee
