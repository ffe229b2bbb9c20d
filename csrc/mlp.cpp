// Incremental MLP forward pass (see mlp.h).
#include "mlp.h"

#include <math.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace ee {

namespace {

inline double activate(Act a, double z) {
    switch (a) {
        case Act::relu: return z > 0.0 ? z : 0.0;
        case Act::tanh: return tanh(z);
        case Act::silu: return z / (1.0 + exp(-z));
        case Act::identity:
        default: return z;
    }
}

void activate_row(Act a, const double* z, double* out, int64_t n) {
    switch (a) {
        case Act::relu:
            for (int64_t i = 0; i < n; ++i) out[i] = z[i] > 0.0 ? z[i] : 0.0;
            break;
        case Act::identity:
            for (int64_t i = 0; i < n; ++i) out[i] = z[i];
            break;
        default:
            for (int64_t i = 0; i < n; ++i) out[i] = activate(a, z[i]);
    }
}

inline double softplus(double z) { return (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z))); }

}  // namespace

MlpState::MlpState(MlpSpec spec, const double* params, DataSet train, DataSet test)
    : spec_(std::move(spec)), L_(static_cast<int64_t>(spec_.acts.size())), train_(std::move(train)),
      test_(std::move(test)) {
    int64_t off = 0;
    for (int64_t l = 0; l < L_; ++l) {
        const int64_t in = spec_.sizes[l], out = spec_.sizes[l + 1];
        w_off_.push_back(off);
        for (int64_t r = 0; r < out; ++r)
            for (int64_t c = 0; c < in; ++c) {
                p_layer_.push_back(l);
                p_row_.push_back(r);
                p_col_.push_back(c);
            }
        off += in * out;
        b_off_.push_back(spec_.bias[l] ? off : -1);
        if (spec_.bias[l]) {
            for (int64_t r = 0; r < out; ++r) {
                p_layer_.push_back(l);
                p_row_.push_back(r);
                p_col_.push_back(-1);
            }
            off += out;
        }
    }
    theta_.assign(params, params + off);
    for (Cache* c : {&ctrain_, &ctest_}) {
        const int64_t n = (c == &ctrain_) ? train_.n : test_.n;
        c->Z.resize(L_);
        c->A.resize(L_);
        c->SZ.resize(L_);
        c->SA.resize(L_);
        int64_t widest = 0;
        for (int64_t l = 0; l < L_; ++l) {
            const size_t size = static_cast<size_t>(spec_.sizes[l + 1] * n);
            c->Z[l].assign(size, 0.0);
            c->A[l].assign(size, 0.0);
            c->SZ[l].assign(size, 0.0);
            c->SA[l].assign(size, 0.0);
            widest = std::max(widest, spec_.sizes[l + 1]);
        }
        c->zrow.assign(static_cast<size_t>(n), 0.0);
        c->arow.assign(static_cast<size_t>(n), 0.0);
        (void)widest;
    }
    rows_.resize(static_cast<size_t>(spec_.sizes[L_]));
    refresh();
}

void MlpState::forward_all(const DataSet& d, std::vector<std::vector<double>>& Z,
                           std::vector<std::vector<double>>& A) const {
    const int64_t n = d.n;
    const double* prev = d.X.data();
    for (int64_t l = 0; l < L_; ++l) {
        const int64_t in = spec_.sizes[l], out = spec_.sizes[l + 1];
        const double* W = theta_.data() + w_off_[l];
        for (int64_t r = 0; r < out; ++r) {
            double* z = Z[l].data() + r * n;
            const double b = b_off_[l] >= 0 ? theta_[b_off_[l] + r] : 0.0;
            for (int64_t i = 0; i < n; ++i) z[i] = b;
            for (int64_t c = 0; c < in; ++c) {
                const double w = W[r * in + c];
                const double* a = prev + c * n;
                for (int64_t i = 0; i < n; ++i) z[i] += w * a[i];
            }
            activate_row(spec_.acts[l], z, A[l].data() + r * n, n);
        }
        prev = A[l].data();
    }
}

double MlpState::output_value(const DataSet& d, const double* const* rows, bool metric) const {
    const int64_t n = d.n, K = spec_.sizes[L_];
    const double* t = d.targets.data();
    double acc = 0.0;
    switch (spec_.loss) {
        case Loss::bce: {
            const double* z = rows[0];
            if (metric && spec_.metric == Metric::accuracy) {
                int64_t right = 0;
                for (int64_t i = 0; i < n; ++i) right += ((z[i] > 0.0) == (t[i] > 0.5));
                return static_cast<double>(right) / static_cast<double>(n);
            }
            for (int64_t i = 0; i < n; ++i) acc += softplus(z[i]) - t[i] * z[i];
            return acc / static_cast<double>(n);
        }
        case Loss::ce: {
            if (metric && spec_.metric == Metric::accuracy) {
                int64_t right = 0;
                for (int64_t i = 0; i < n; ++i) {
                    int64_t best = 0;
                    for (int64_t k = 1; k < K; ++k)
                        if (rows[k][i] > rows[best][i]) best = k;
                    right += (best == static_cast<int64_t>(t[i]));
                }
                return static_cast<double>(right) / static_cast<double>(n);
            }
            for (int64_t i = 0; i < n; ++i) {
                double m = rows[0][i];
                for (int64_t k = 1; k < K; ++k) m = std::max(m, rows[k][i]);
                double s = 0.0;
                for (int64_t k = 0; k < K; ++k) s += exp(rows[k][i] - m);
                acc += m + log(s) - rows[static_cast<int64_t>(t[i])][i];
            }
            return acc / static_cast<double>(n);
        }
        case Loss::mse:
        default: {
            for (int64_t k = 0; k < K; ++k) {
                const double* z = rows[k];
                const double* tk = t + k * n;
                for (int64_t i = 0; i < n; ++i) {
                    const double e = z[i] - tk[i];
                    acc += e * e;
                }
            }
            return acc / static_cast<double>(n * K);
        }
    }
}

// Value (loss or metric) of a data set from the committed caches, or from the scratch of a
// proposal that moved row r of layer l.
double MlpState::set_value(const DataSet& d, const Cache& c, bool scratch, int64_t l, int64_t r,
                           bool metric) const {
    const int64_t K = spec_.sizes[L_], n = d.n;
    const bool identity_out = spec_.acts[L_ - 1] == Act::identity;
    for (int64_t k = 0; k < K; ++k) {
        const std::vector<double>& last = identity_out ? c.Z[L_ - 1] : c.A[L_ - 1];
        rows_[k] = last.data() + k * n;
    }
    if (scratch) {
        if (l == L_ - 1) {
            rows_[r] = identity_out ? c.zrow.data() : c.arow.data();
        } else {
            const std::vector<double>& last = identity_out ? c.SZ[L_ - 1] : c.SA[L_ - 1];
            for (int64_t k = 0; k < K; ++k) rows_[k] = last.data() + k * n;
        }
    }
    return output_value(d, rows_.data(), metric);
}

void MlpState::propose_set(const DataSet& d, Cache& c, int64_t l, int64_t r, int64_t col, double delta) {
    const int64_t n = d.n;
    // row r of layer l
    const double* zr = c.Z[l].data() + r * n;
    double* zs = c.zrow.data();
    if (col < 0) {
        for (int64_t i = 0; i < n; ++i) zs[i] = zr[i] + delta;
    } else {
        const double* a = (l == 0 ? d.X.data() : c.A[l - 1].data()) + col * n;
        for (int64_t i = 0; i < n; ++i) zs[i] = zr[i] + delta * a[i];
    }
    activate_row(spec_.acts[l], zs, c.arow.data(), n);
    if (l == L_ - 1) return;
    // layer l+1: rank-1 update with the change of row r of A[l]
    {
        const int64_t in = spec_.sizes[l + 1], out = spec_.sizes[l + 2];
        const double* W = theta_.data() + w_off_[l + 1];
        const double* aold = c.A[l].data() + r * n;
        const double* anew = c.arow.data();
        double* diff = c.SA[l].data();  // layer l's scratch is unused: borrow one row for A_new - A_old
        for (int64_t i = 0; i < n; ++i) diff[i] = anew[i] - aold[i];
        for (int64_t q = 0; q < out; ++q) {
            const double w = W[q * in + r];
            const double* z = c.Z[l + 1].data() + q * n;
            double* s = c.SZ[l + 1].data() + q * n;
            for (int64_t i = 0; i < n; ++i) s[i] = z[i] + w * diff[i];
            activate_row(spec_.acts[l + 1], s, c.SA[l + 1].data() + q * n, n);
        }
    }
    // layers beyond: full products from the scratch activations
    for (int64_t k = l + 2; k < L_; ++k) {
        const int64_t in = spec_.sizes[k], out = spec_.sizes[k + 1];
        const double* W = theta_.data() + w_off_[k];
        const double* prev = c.SA[k - 1].data();
        for (int64_t q = 0; q < out; ++q) {
            double* s = c.SZ[k].data() + q * n;
            const double b = b_off_[k] >= 0 ? theta_[b_off_[k] + q] : 0.0;
            for (int64_t i = 0; i < n; ++i) s[i] = b;
            for (int64_t cc = 0; cc < in; ++cc) {
                const double w = W[q * in + cc];
                const double* a = prev + cc * n;
                for (int64_t i = 0; i < n; ++i) s[i] += w * a[i];
            }
            activate_row(spec_.acts[k], s, c.SA[k].data() + q * n, n);
        }
    }
}

void MlpState::propose(int64_t p, double value, double& train_loss, double& test_metric) {
    const int64_t l = p_layer_[p], r = p_row_[p], col = p_col_[p];
    const double delta = value - theta_[p];
    propose_set(train_, ctrain_, l, r, col, delta);
    propose_set(test_, ctest_, l, r, col, delta);
    prop_p_ = p;
    prop_value_ = value;
    prop_loss_ = set_value(train_, ctrain_, true, l, r, false);
    prop_metric_ = set_value(test_, ctest_, true, l, r, true);
    train_loss = prop_loss_;
    test_metric = prop_metric_;
}

void MlpState::accept_set(Cache& c, int64_t l, int64_t r) {
    const int64_t n = static_cast<int64_t>(c.zrow.size());
    std::copy(c.zrow.begin(), c.zrow.end(), c.Z[l].begin() + r * n);
    std::copy(c.arow.begin(), c.arow.end(), c.A[l].begin() + r * n);
    for (int64_t k = l + 1; k < L_; ++k) {
        std::swap(c.Z[k], c.SZ[k]);
        std::swap(c.A[k], c.SA[k]);
    }
}

void MlpState::accept() {
    if (prop_p_ < 0) return;
    const int64_t l = p_layer_[prop_p_], r = p_row_[prop_p_];
    accept_set(ctrain_, l, r);
    accept_set(ctest_, l, r);
    theta_[prop_p_] = prop_value_;
    train_loss_ = prop_loss_;
    test_metric_ = prop_metric_;
    prop_p_ = -1;
}

void MlpState::refresh() {
    forward_all(train_, ctrain_.Z, ctrain_.A);
    forward_all(test_, ctest_.Z, ctest_.A);
    train_loss_ = set_value(train_, ctrain_, false, 0, 0, false);
    test_metric_ = set_value(test_, ctest_, false, 0, 0, true);
    prop_p_ = -1;
}

std::vector<double> MlpState::export_cache() const {
    std::vector<double> v;
    for (const Cache* c : {&ctrain_, &ctest_})
        for (int64_t l = 0; l < L_; ++l) {
            v.insert(v.end(), c->Z[l].begin(), c->Z[l].end());
            v.insert(v.end(), c->A[l].begin(), c->A[l].end());
        }
    v.push_back(train_loss_);
    v.push_back(test_metric_);
    return v;
}

bool MlpState::import_cache(const std::vector<double>& v) {
    size_t need = 2;
    for (const Cache* c : {&ctrain_, &ctest_})
        for (int64_t l = 0; l < L_; ++l) need += c->Z[l].size() + c->A[l].size();
    if (v.size() != need) return false;
    size_t k = 0;
    for (Cache* c : {&ctrain_, &ctest_})
        for (int64_t l = 0; l < L_; ++l) {
            std::copy(v.begin() + k, v.begin() + k + c->Z[l].size(), c->Z[l].begin());
            k += c->Z[l].size();
            std::copy(v.begin() + k, v.begin() + k + c->A[l].size(), c->A[l].begin());
            k += c->A[l].size();
        }
    train_loss_ = v[k];
    test_metric_ = v[k + 1];
    prop_p_ = -1;
    return true;
}

void MlpState::full_eval(bool test_set, double& loss, double& metric) const {
    const DataSet& d = test_set ? test_ : train_;
    std::vector<std::vector<double>> Z(L_), A(L_);
    for (int64_t l = 0; l < L_; ++l) {
        Z[l].assign(static_cast<size_t>(spec_.sizes[l + 1] * d.n), 0.0);
        A[l].assign(static_cast<size_t>(spec_.sizes[l + 1] * d.n), 0.0);
    }
    forward_all(d, Z, A);
    Cache c;
    c.Z = std::move(Z);
    c.A = std::move(A);
    loss = set_value(d, c, false, 0, 0, false);
    metric = set_value(d, c, false, 0, 0, true);
}

}  // namespace ee
