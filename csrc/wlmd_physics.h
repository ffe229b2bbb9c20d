// The small physics functions of a WLMD step, written once in C++ for the native step
// (wlmd_native.h): the collective variables of a walker's outputs and their pullback, the grid check,
// the fixed walls, Eq. 4's schedule, the round trips. Each mirrors a function of
// entropyeng/wlmd/physics.py (named beside it) and is tested against it through the _core module.
// The reductions run in double whatever the model's dtype.
#pragma once

#include <math.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ee {

enum WlmdLoss : int { LOSS_MSE = 0, LOSS_CE = 1, LOSS_BCE = 2 };
enum WlmdCvY : int { CV_TEST_LOSS = 0, CV_SMOOTHED_ACCURACY = 1 };

constexpr double WLMD_EPS = 1e-4;  // physics.EPS: y = logit(eps + (1 - 2 eps) A_s)

// How a walker's outputs (N rows of d values: the train rows [0, n_tr), then the test rows) become
// (x, y). targets: N x d values (MSE, BCE); labels: N class indices (CE; and the test rows' labels of
// the smoothed accuracy).
struct CvSpec {
    int loss = LOSS_MSE;
    int cv_y = CV_TEST_LOSS;
    bool logit_y = true;
    double alpha = 5.0;
    int64_t n_tr = 0, n_te = 0, d = 1;
};

// What the pullback needs of the forward: the two means and the smoothed accuracy.
struct CvValues {
    double x = 0, y = 0;
    double L_tr = 0, L_te = 0, A_s = 0;
};

// A cross-entropy row's log-sum-exp, m + log(s) with m = max_j o_j and s = sum_j exp(o_j - m) (in
// order); where p is given, its softmax exp(o_j - m) / s goes there (d values).
template <class T>
inline double log_sum_exp(const T* o, int64_t d, double* p) {
    double m = o[0];
    for (int64_t j = 1; j < d; ++j) m = std::max(m, static_cast<double>(o[j]));
    double s = 0;
    for (int64_t j = 0; j < d; ++j) {
        const double e = exp(static_cast<double>(o[j]) - m);
        if (p != nullptr) p[j] = e;
        s += e;
    }
    if (p != nullptr)
        for (int64_t j = 0; j < d; ++j) p[j] = p[j] / s;
    return m + log(s);
}

// One cross-entropy or BCE row's loss summed over its elements (physics.ROW_LOSSES' rows; MSE rows
// are summed all at once by squared_error_sum). Cross-entropy: where `probs` is given, the row's
// softmax goes there too (d values), for row_loss_grad instead of computing it again (the same bits).
template <class T>
inline double row_loss(int loss, const T* o, const T* target, int64_t label, int64_t d, double* probs = nullptr) {
    if (loss == LOSS_CE) return log_sum_exp(o, d, probs) - static_cast<double>(o[label]);
    double r = 0;
    for (int64_t j = 0; j < d; ++j) {  // BCE: softplus(o) - t o, stably
        const double oj = o[j], tj = target[j];
        r += std::max(oj, 0.0) + log1p(exp(-fabs(oj))) - tj * oj;
    }
    return r;
}

// The cross-entropy or BCE row's gradient times g into grad (d values); probs: the row's softmax as
// row_loss left it, or nullptr (cross-entropy then computes it into the thread's buffer).
template <class T>
inline void row_loss_grad(int loss, const T* o, const T* target, int64_t label, int64_t d, double g, T* grad,
                          const double* probs = nullptr) {
    if (loss == LOSS_CE) {
        if (probs == nullptr) {
            thread_local std::vector<double> softmax;
            softmax.resize(static_cast<size_t>(d));
            log_sum_exp(o, d, softmax.data());
            probs = softmax.data();
        }
        for (int64_t j = 0; j < d; ++j) grad[j] = static_cast<T>((probs[j] - (j == label ? 1.0 : 0.0)) * g);
        return;
    }
    for (int64_t j = 0; j < d; ++j) {
        const double oj = o[j], tj = target[j];
        grad[j] = static_cast<T>((1.0 / (1.0 + exp(-oj)) - tj) * g);
    }
}

// The margin of a test row for the smoothed accuracy (physics.make_heads): one logit, z or -z by the
// label's sign; several, the correct class's output minus the largest other one.
template <class T>
inline double margin(const T* o, int64_t label, int64_t d) {
    if (d == 1) return label > 0 ? static_cast<double>(o[0]) : -static_cast<double>(o[0]);
    double wrong = -INFINITY;
    for (int64_t j = 0; j < d; ++j)
        if (j != label) wrong = std::max(wrong, static_cast<double>(o[j]));
    return static_cast<double>(o[label]) - wrong;
}

inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

// The sum of (o_i - t_i)^2 over n values (the MSE rows' losses, row after row, one sum): element i
// goes to partial sum i mod 8, the eight added pairwise at the end. A fixed order (the same bits
// whatever the compiler vectorises), and eight independent chains: one chain of 500 dependent
// additions was most of a spiral step's CVs.
template <class T>
inline double squared_error_sum(const T* o, const T* t, int64_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int q = 0; q < 8; ++q) {
            const double e = static_cast<double>(o[i + q]) - static_cast<double>(t[i + q]);
            s[q] += e * e;
        }
    for (int q = 0; i < n; ++i, ++q) {
        const double e = static_cast<double>(o[i]) - static_cast<double>(t[i]);
        s[q] += e * e;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// The sum of one kind of row's losses over rows [n0, n1).
template <class T>
inline double loss_sum(const CvSpec& c, const T* out, const T* targets, const int64_t* labels, int64_t n0,
                       int64_t n1, double* probs) {
    const int64_t d = c.d;
    if (c.loss == LOSS_MSE) return squared_error_sum(out + n0 * d, targets + n0 * d, (n1 - n0) * d);
    double s = 0;
    for (int64_t n = n0; n < n1; ++n)
        s += row_loss(c.loss, out + n * d, targets ? targets + n * d : nullptr, labels ? labels[n] : 0, d,
                      probs ? probs + n * d : nullptr);
    return s;
}

// grad_out = the gradient of the rows [n0, n1)'s losses, times g.
template <class T>
inline void loss_sum_grad(const CvSpec& c, const T* out, const T* targets, const int64_t* labels, int64_t n0,
                          int64_t n1, double g, T* grad_out, const double* probs) {
    const int64_t d = c.d;
    if (c.loss == LOSS_MSE) {  // (one loop over the values, which vectorises)
        const double g2 = 2.0 * g;
        for (int64_t i = n0 * d; i < n1 * d; ++i)
            grad_out[i] = static_cast<T>((static_cast<double>(out[i]) - static_cast<double>(targets[i])) * g2);
        return;
    }
    for (int64_t n = n0; n < n1; ++n)
        row_loss_grad(c.loss, out + n * d, targets ? targets + n * d : nullptr, labels ? labels[n] : 0, d, g,
                      grad_out + n * d, probs ? probs + n * d : nullptr);
}

// (x, y) of one walker's outputs out (N x d): physics.make_joint_test_loss_cvs / make_heads. probs
// (N x d, optional): the cross-entropy rows' softmax, for cv_pullback.
template <class T>
inline CvValues cv_values(const CvSpec& c, const T* out, const T* targets, const int64_t* labels,
                          double* probs = nullptr) {
    if (c.loss != LOSS_CE) probs = nullptr;
    CvValues v;
    const int64_t d = c.d, N = c.n_tr + c.n_te;
    const int64_t per_row = c.loss == LOSS_CE ? 1 : d;  // the elements a row's loss is a mean over
    v.L_tr = loss_sum(c, out, targets, labels, 0, c.n_tr, probs) / static_cast<double>(c.n_tr * per_row);
    v.x = log(v.L_tr);
    if (c.cv_y == CV_TEST_LOSS) {
        v.L_te = loss_sum(c, out, targets, labels, c.n_tr, N, probs) / static_cast<double>(c.n_te * per_row);
        v.y = log(v.L_te);
        return v;
    }
    double s = 0;
    for (int64_t n = c.n_tr; n < N; ++n) s += sigmoid(c.alpha * margin(out + n * d, labels[n], d));
    v.A_s = s / static_cast<double>(c.n_te);
    if (c.logit_y) {
        const double p = WLMD_EPS + (1 - 2 * WLMD_EPS) * v.A_s;
        v.y = log(p) - log1p(-p);
    } else {
        v.y = v.A_s;
    }
    return v;
}

// grad_out (N x d) = sx dx/dout + sy dy/dout of one walker (the CVs' vector-Jacobian product).
// probs: what cv_values wrote there for these outputs, or nullptr.
template <class T>
inline void cv_pullback(const CvSpec& c, const T* out, const T* targets, const int64_t* labels, const CvValues& v,
                        double sx, double sy, T* grad_out, const double* probs = nullptr) {
    if (c.loss != LOSS_CE) probs = nullptr;
    const int64_t d = c.d, N = c.n_tr + c.n_te;
    const int64_t per_row = c.loss == LOSS_CE ? 1 : d;
    const double gx = sx / v.L_tr / static_cast<double>(c.n_tr * per_row);
    loss_sum_grad(c, out, targets, labels, 0, c.n_tr, gx, grad_out, probs);
    if (c.cv_y == CV_TEST_LOSS) {
        const double gy = sy / v.L_te / static_cast<double>(c.n_te * per_row);
        loss_sum_grad(c, out, targets, labels, c.n_tr, N, gy, grad_out, probs);
        return;
    }
    double dy_dA = 1.0;
    if (c.logit_y) {
        const double p = WLMD_EPS + (1 - 2 * WLMD_EPS) * v.A_s;
        dy_dA = (1 - 2 * WLMD_EPS) * (1.0 / p + 1.0 / (1.0 - p));
    }
    const double scale = sy * dy_dA / static_cast<double>(c.n_te) * c.alpha;
    for (int64_t n = c.n_tr; n < N; ++n) {
        const T* o = out + n * d;
        T* g = grad_out + n * d;
        const int64_t label = labels[n];
        const double sg = sigmoid(c.alpha * margin(o, label, d));
        const double gd = scale * sg * (1.0 - sg);  // d/d margin
        if (d == 1) {
            g[0] = static_cast<T>(label > 0 ? gd : -gd);
            continue;
        }
        double wrong = -INFINITY;
        int64_t ties = 0;
        for (int64_t j = 0; j < d; ++j)
            if (j != label) wrong = std::max(wrong, static_cast<double>(o[j]));
        for (int64_t j = 0; j < d; ++j)
            if (j != label && static_cast<double>(o[j]) == wrong) ++ties;
        for (int64_t j = 0; j < d; ++j) {
            // torch's amax shares its gradient evenly among tied maxima
            const bool at_max = j != label && static_cast<double>(o[j]) == wrong;
            g[j] = static_cast<T>(j == label ? gd : (at_max ? -gd / static_cast<double>(ties) : 0.0));
        }
    }
}

// physics.schedule_f: Eq. 4 at deposit t.
inline double schedule_f(double t, double f_max, double t1, double t2, double t3) {
    // (1 / (t - t3) times (t2 - t3) f_max, as physics.schedule_f rounds it)
    return t <= t2 ? std::min(t * (f_max / t1), f_max) : (1.0 / (t - t3)) * ((t2 - t3) * f_max);
}

// physics.on_grid: inside the grid, edges included; a non-finite coordinate is off it.
inline bool on_grid(double x, double y, const double lo[2], const double hi[2]) {
    return x >= lo[0] && x <= hi[0] && y >= lo[1] && y <= hi[1];
}

// physics.wall_force: 2 c d of each coordinate beyond its walls (lo / hi: -inf / +inf where unset).
inline double wall_force(double z, double lo, double hi, double c) {
    return (2 * c) * (std::max(z - hi, 0.0) + std::min(z - lo, 0.0));
}

// physics.count_round_trips for one walker: last_end -1 none, else the end touched last (0 low,
// 1 high) + 2 x (passages so far, mod 2); a round trip is every second passage between the ends
// (statistics.round_trips). Returns the trips added.
inline int64_t round_trip(double x, bool live, double lo, double hi, int64_t& last_end) {
    const double span = hi - lo;
    const int64_t end = (live && x < lo + 0.1 * span) ? 0 : ((live && x > hi - 0.1 * span) ? 1 : -1);
    if (end < 0) return 0;
    if (last_end < 0) {
        last_end = end;
        return 0;
    }
    if (end == last_end % 2) return 0;
    const int64_t odd = 1 - last_end / 2;  // the parity of the passages after this one
    last_end = end + 2 * odd;
    return odd ? 0 : 1;
}

}  // namespace ee
