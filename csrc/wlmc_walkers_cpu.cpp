// CPU walker threads (see wlmc_walkers_cpu.h).
#include "wlmc_walkers_cpu.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "wlmc_walker.h"

namespace ee {
namespace walkers {

namespace {

// One thread owns the landscape: plain loads and adds.
struct PlainLand {
    double* lnG;
    double* H;
    double read(int64_t c) const { return lnG[c]; }
    void add(int64_t c, double ln_f, double h) {
        lnG[c] += ln_f;
        H[c] += h;
    }
};

inline void atomic_add(double* p, double v) {
    double old;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    double want;
    do {
        want = old + v;
    } while (!__atomic_compare_exchange(p, &old, &want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

// Several threads share it: relaxed atomic loads and compare-and-swap adds.
struct AtomicLand {
    double* lnG;
    double* H;
    double read(int64_t c) const {
        double v;
        __atomic_load(lnG + c, &v, __ATOMIC_RELAXED);
        return v;
    }
    void add(int64_t c, double ln_f, double h) {
        atomic_add(lnG + c, ln_f);
        atomic_add(H + c, h);
    }
};

template <class Land>
void run_share(double* base, const Layout& y, int64_t n, double ln_f, uint64_t seed, int thread, int threads,
               Land land) {
    const int64_t W = y.h[H_W];
    std::vector<int64_t> mine, left;
    for (int64_t w = thread; w < W; w += threads) {
        mine.push_back(w);
        left.push_back(walker_share(n, W, w));
    }
    const SoloTeam team;
    Decision dec{};
    for (bool any = true; any;) {
        any = false;
        for (size_t k = 0; k < mine.size(); ++k) {
            const int64_t m = std::min(left[k], CpuWalkers::kChunk);
            if (m <= 0) continue;
            run_walker(team, dec, base, y, mine[k], m, ln_f, seed, land);
            left[k] -= m;
            any = true;
        }
    }
}

}  // namespace

CpuWalkers::CpuWalkers(Image image, uint64_t seed) : image_(std::move(image)), seed_(seed) {
    const Layout y = make_layout(image_.layout.data());
    for (int64_t w = 0; w < y.h[H_W]; ++w) init_walker(SoloTeam{}, image_.data.data(), y, w);
}

void CpuWalkers::run(int64_t n, double ln_f, int threads) {
    const Layout y = make_layout(image_.layout.data());
    double* base = image_.data.data();
    double* lnG = base + y.h[H_LNG];
    double* H = base + y.h[H_HIST];
    const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, y.h[H_W])));
    if (T == 1) {
        run_share(base, y, n, ln_f, seed_, 0, 1, PlainLand{lnG, H});
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(T));
    for (int k = 0; k < T; ++k)
        pool.emplace_back([=]() { run_share(base, y, n, ln_f, seed_, k, T, AtomicLand{lnG, H}); });
    for (auto& t : pool) t.join();
}

std::vector<double> CpuWalkers::stats() {
    const Layout y = make_layout(image_.layout.data());
    walkers::stats(SoloTeam{}, image_.data.data(), y);
    const double* s = image_.data.data() + y.h[H_STATS];
    return std::vector<double>(s, s + T_COUNT);
}

void CpuWalkers::landscape(std::vector<double>& lnG, std::vector<double>& H) const {
    const int64_t* h = image_.layout.data();
    const double* d = image_.data.data();
    lnG.assign(d + h[H_LNG], d + h[H_LNG] + cells());
    H.assign(d + h[H_HIST], d + h[H_HIST] + cells());
}

void CpuWalkers::walkers(std::vector<double>& params, std::vector<double>& state) const {
    const int64_t* h = image_.layout.data();
    const int64_t W = h[H_W], P = h[H_P];
    params.resize(static_cast<size_t>(W * P));
    state.resize(static_cast<size_t>(W * S_COUNT));
    for (int64_t w = 0; w < W; ++w) {
        const double* b = image_.data.data() + h[H_WBASE] + w * h[H_WS];
        std::copy(b, b + P, params.begin() + w * P);
        std::copy(b + P, b + P + S_COUNT, state.begin() + w * S_COUNT);
    }
}

void CpuWalkers::upload(const std::vector<double>& lnG, const std::vector<double>& H,
                        const std::vector<double>& params, const std::vector<double>& state) {
    const Layout y = make_layout(image_.layout.data());
    double* d = image_.data.data();
    const int64_t W = y.h[H_W], P = y.h[H_P];
    std::copy(lnG.begin(), lnG.end(), d + y.h[H_LNG]);
    std::copy(H.begin(), H.end(), d + y.h[H_HIST]);
    for (int64_t w = 0; w < W; ++w) {
        double* b = walker_base(d, y, w);
        std::copy(params.begin() + w * P, params.begin() + (w + 1) * P, b);
        std::copy(state.begin() + w * S_COUNT, state.begin() + (w + 1) * S_COUNT, b + P);
        init_walker(SoloTeam{}, d, y, w);
    }
}

std::vector<double> CpuWalkers::workspace() const {
    const int64_t* h = image_.layout.data();
    const double* b = image_.data.data() + h[H_WBASE];
    return std::vector<double>(b, b + h[H_W] * h[H_WS]);
}

bool CpuWalkers::import_workspace(const std::vector<double>& v) {
    const int64_t* h = image_.layout.data();
    if (static_cast<int64_t>(v.size()) != h[H_W] * h[H_WS]) return false;
    std::copy(v.begin(), v.end(), image_.data.begin() + h[H_WBASE]);
    return true;
}

}  // namespace walkers
}  // namespace ee
