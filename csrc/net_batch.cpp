// The batched network kernels (net_batch.h): reading a network's description and the choice of the
// instruction-set level.
#include "net_batch.h"

#include <algorithm>

#include "cpu_isa.h"

namespace ee {

namespace {

constexpr int64_t MAX_SIZE = int64_t{1} << 16;

std::string take(const int64_t* codes, int64_t n, int64_t& at, int64_t count, const char* what, int64_t* out) {
    if (at + count > n) return std::string("spec: the description ends inside a ") + what + " layer";
    for (int64_t k = 0; k < count; ++k) out[k] = codes[at + k];
    at += count;
    return "";
}

}  // namespace

std::string parse_net(const int64_t* codes, int64_t n, int64_t C, int64_t H, int64_t W, NetBatchSpec& spec) {
    spec = NetBatchSpec{};
    spec.C = C;
    spec.H = H;
    spec.W = W;
    int64_t c = C, h = H, w = W, off = 0;
    bool flat = false;
    int64_t at = 0;
    while (at < n) {
        NetLayer L;
        L.kind = static_cast<int>(codes[at++]);
        L.C_in = c;
        L.H_in = h;
        L.W_in = w;
        int64_t v[5];
        std::string err;
        switch (L.kind) {
            case LAYER_CONV:
                if (!(err = take(codes, n, at, 5, "conv", v)).empty()) return err;
                L.cin = v[0], L.cout = v[1], L.k = v[2], L.pad = v[3], L.bias = v[4] != 0;
                if (flat) return "spec: a conv layer after flatten";
                if (L.cin != c) return "spec: a conv layer takes " + std::to_string(L.cin) + " channels, its input has " +
                                       std::to_string(c);
                if (L.cout < 1 || L.cout > MAX_SIZE || L.k < 1 || L.k > 15 || L.pad < 0 || L.pad > L.k - 1 ||
                    (v[4] != 0 && v[4] != 1))
                    return "spec: a conv layer needs 1 <= c_out <= 2^16, 1 <= k <= 15, 0 <= pad <= k - 1, bias 0 or 1";
                h = h + 2 * L.pad - L.k + 1;
                w = w + 2 * L.pad - L.k + 1;
                if (h < 1 || w < 1) return "spec: a conv layer's output would be empty";
                c = L.cout;
                L.w_off = off;
                off += L.cout * L.cin * L.k * L.k;
                if (L.bias) L.b_off = off, off += L.cout;
                spec.border = std::max(spec.border, std::max(L.pad, L.k - 1 - L.pad));
                break;
            case LAYER_ACT:
                if (!(err = take(codes, n, at, 1, "act", v)).empty()) return err;
                if (v[0] < 0 || v[0] > 3) return "spec: activation codes are 0 (identity), 1 (ReLU), 2 (tanh), 3 (SiLU)";
                L.act = static_cast<int>(v[0]);
                break;
            case LAYER_MAXPOOL:
                if (flat) return "spec: a maxpool layer after flatten";
                if (h < 2 || w < 2) return "spec: a maxpool layer on an image smaller than 2 x 2";
                h /= 2;
                w /= 2;
                break;
            case LAYER_FLATTEN:
                if (flat) return "spec: flatten twice";
                c = c * h * w;
                h = w = 1;
                flat = true;
                break;
            case LAYER_LINEAR:
                if (!(err = take(codes, n, at, 3, "linear", v)).empty()) return err;
                L.cin = v[0], L.cout = v[1], L.bias = v[2] != 0;
                if (!flat) return "spec: a linear layer before flatten";
                if (L.cin != c) return "spec: a linear layer takes " + std::to_string(L.cin) + " features, its input has " +
                                       std::to_string(c);
                if (L.cout < 1 || L.cout > MAX_SIZE || (v[2] != 0 && v[2] != 1))
                    return "spec: a linear layer needs 1 <= out <= 2^16 and bias 0 or 1";
                c = L.cout;
                L.w_off = off;
                off += L.cout * L.cin;
                if (L.bias) L.b_off = off, off += L.cout;
                break;
            default:
                return "spec: unknown layer code " + std::to_string(L.kind);
        }
        L.C_out = c;
        L.H_out = h;
        L.W_out = w;
        if (c * (h + 2 * 15) * (w + 2 * 15) > (int64_t{1} << 28)) return "spec: a layer's output is too large";
        spec.layers.push_back(L);
    }
    if (!flat) return "spec: the network must flatten its images to features (a flatten layer)";
    spec.n_params = off;
    spec.out_features = c;
    return "";
}

namespace {

const NetBatchKernels& kernels() {
    static const NetBatchKernels k = EE_ISA_TABLE(net_batch_kernels);
    return k;
}

}  // namespace

template <>
void net_batch_forward<float>(const NetBatchSpec& s, const float* theta, const float* X, int64_t N, int64_t k0,
                              int64_t k1, float* out) {
    kernels().forward_f(s, theta, X, N, k0, k1, out);
}

template <>
void net_batch_forward<double>(const NetBatchSpec& s, const double* theta, const double* X, int64_t N, int64_t k0,
                               int64_t k1, double* out) {
    kernels().forward_d(s, theta, X, N, k0, k1, out);
}

template <>
void net_batch_backward<float>(const NetBatchSpec& s, const float* theta, const float* X, int64_t N,
                               const float* grad_out, int64_t k0, int64_t k1, float* grad) {
    kernels().backward_f(s, theta, X, N, grad_out, k0, k1, grad);
}

template <>
void net_batch_backward<double>(const NetBatchSpec& s, const double* theta, const double* X, int64_t N,
                                const double* grad_out, int64_t k0, int64_t k1, double* grad) {
    kernels().backward_d(s, theta, X, N, grad_out, k0, k1, grad);
}

template <>
int64_t net_batch_cache_len<float>(const NetBatchSpec& s, int64_t N) {
    return kernels().cache_len_f(s, N);
}

template <>
int64_t net_batch_cache_len<double>(const NetBatchSpec& s, int64_t N) {
    return kernels().cache_len_d(s, N);
}

template <>
void net_batch_forward_cached<float>(const NetBatchSpec& s, const float* theta, const float* X, int64_t N, float* out,
                                     float* cache, bool load_images) {
    kernels().forward_cached_f(s, theta, X, N, out, cache, load_images);
}

template <>
void net_batch_forward_cached<double>(const NetBatchSpec& s, const double* theta, const double* X, int64_t N,
                                      double* out, double* cache, bool load_images) {
    kernels().forward_cached_d(s, theta, X, N, out, cache, load_images);
}

template <>
void net_batch_backward_cached<float>(const NetBatchSpec& s, const float* theta, int64_t N, const float* cache,
                                      const float* grad_out, float* grad) {
    kernels().backward_cached_f(s, theta, N, cache, grad_out, grad);
}

template <>
void net_batch_backward_cached<double>(const NetBatchSpec& s, const double* theta, int64_t N, const double* cache,
                                       const double* grad_out, double* grad) {
    kernels().backward_cached_d(s, theta, N, cache, grad_out, grad);
}

}  // namespace ee
