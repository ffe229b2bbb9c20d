// Incremental MLP forward pass (see mlp.h).
#include "mlp.h"

#include "cpu_isa.h"
#include "mlp_isa.h"

#include <math.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace ee {

const MlpRowKernels& mlp_rows() {
    static const MlpRowKernels k = EE_ISA_TABLE(mlp_row_kernels);
    return k;
}

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
    const MlpRowKernels& k = mlp_rows();
    const double* prev = d.X.data();
    for (int64_t l = 0; l < L_; ++l) {
        const double* b = b_off_[l] >= 0 ? theta_.data() + b_off_[l] : nullptr;
        k.layer(theta_.data() + w_off_[l], b, prev, spec_.sizes[l], spec_.sizes[l + 1], d.n,
                static_cast<int>(spec_.acts[l]), Z[l].data(), A[l].data());
        prev = A[l].data();
    }
}

double MlpState::output_value(const DataSet& d, const double* const* rows, bool metric) const {
    const int64_t n = d.n, K = spec_.sizes[L_];
    const double* t = d.targets.data();
    if (metric && spec_.metric == Metric::accuracy) {
        int64_t right = 0;
        if (spec_.loss == Loss::bce) {
            const double* z = rows[0];
            for (int64_t i = 0; i < n; ++i) right += ((z[i] > 0.0) == (t[i] > 0.5));
        } else {
            for (int64_t i = 0; i < n; ++i) {
                int64_t best = 0;
                for (int64_t k = 1; k < K; ++k)
                    if (rows[k][i] > rows[best][i]) best = k;
                right += (best == static_cast<int64_t>(t[i]));
            }
        }
        return static_cast<double>(right) / static_cast<double>(n);
    }
    terms_.resize(static_cast<size_t>(3 * n));
    mlp_rows().loss_terms(static_cast<int>(spec_.loss), rows, t, n, K, terms_.data(), terms_.data() + n);
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) acc += terms_[i];
    return acc / static_cast<double>(spec_.loss == Loss::mse ? n * K : n);
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
    const MlpRowKernels& k = mlp_rows();
    const int64_t n = d.n;
    const double* a = col < 0 ? nullptr : (l == 0 ? d.X.data() : c.A[l - 1].data()) + col * n;
    // layer l's own scratch is unused by this move: one row of it holds A_new - A_old of row r
    double* diff = l + 1 < L_ ? c.SA[l].data() : nullptr;
    k.moved_row(c.Z[l].data() + r * n, a, delta, n, static_cast<int>(spec_.acts[l]), c.A[l].data() + r * n,
                c.zrow.data(), c.arow.data(), diff);
    if (l == L_ - 1) return;
    // layer l+1: rank-1 update with the change of row r of A[l]
    k.rank1(theta_.data() + w_off_[l + 1], spec_.sizes[l + 1], spec_.sizes[l + 2], r, c.Z[l + 1].data(), diff, n,
            static_cast<int>(spec_.acts[l + 1]), c.SZ[l + 1].data(), c.SA[l + 1].data());
    // layers beyond: full products from the scratch activations
    for (int64_t m = l + 2; m < L_; ++m) {
        const double* b = b_off_[m] >= 0 ? theta_.data() + b_off_[m] : nullptr;
        k.layer(theta_.data() + w_off_[m], b, c.SA[m - 1].data(), spec_.sizes[m], spec_.sizes[m + 1], n,
                static_cast<int>(spec_.acts[m]), c.SZ[m].data(), c.SA[m].data());
    }
}

void MlpState::propose(int64_t p, double value, double& train_loss, double& test_metric) {
    if (full_) {  // every layer recomputed into scratch
        const double old = theta_[p];
        theta_[p] = value;
        forward_all(train_, ctrain_.SZ, ctrain_.SA);
        forward_all(test_, ctest_.SZ, ctest_.SA);
        theta_[p] = old;
        prop_p_ = p;
        prop_value_ = value;
        prop_loss_ = set_value(train_, ctrain_, true, -1, 0, false);
        prop_metric_ = set_value(test_, ctest_, true, -1, 0, true);
        train_loss = prop_loss_;
        test_metric = prop_metric_;
        return;
    }
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
    if (l >= 0) {
        std::copy(c.zrow.begin(), c.zrow.end(), c.Z[l].begin() + r * n);
        std::copy(c.arow.begin(), c.arow.end(), c.A[l].begin() + r * n);
    }
    for (int64_t k = l + 1; k < L_; ++k) {
        std::swap(c.Z[k], c.SZ[k]);
        std::swap(c.A[k], c.SA[k]);
    }
}

void MlpState::accept() {
    if (prop_p_ < 0) return;
    const int64_t l = full_ ? -1 : p_layer_[prop_p_], r = p_row_[prop_p_];
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
