// Layout of the walkers' image (see wlmc_walkers_image.h and wlmc_walker.h).
#include "wlmc_walkers_image.h"

#include <algorithm>

#include "wlmc_walker.h"

namespace ee {
namespace walkers {

Image build_image(const MlpSpec& spec, const std::vector<double>& params, int64_t walkers, const DataSet& train,
                  const DataSet& test, const std::vector<double>& bounds, const GridSpec& grid, double step,
                  bool y_log, int64_t refresh_every) {
    const int64_t L = static_cast<int64_t>(spec.acts.size()), K = spec.sizes.back();
    const int64_t P = static_cast<int64_t>(bounds.size()), W = walkers;
    std::vector<int64_t> woff(L), boff(L);
    int64_t off = 0;
    for (int64_t l = 0; l < L; ++l) {
        woff[l] = off;
        off += spec.sizes[l] * spec.sizes[l + 1];
        boff[l] = spec.bias[l] ? off : -1;
        if (spec.bias[l]) off += spec.sizes[l + 1];
    }
    // per-walker workspace: parameters, state, then per set the caches of every layer and 3 rows
    std::vector<int64_t> cache(2 * L * 4 + 6);
    int64_t ws = P + S_COUNT;
    for (int s = 0; s < 2; ++s) {
        const int64_t n = s == 0 ? train.n : test.n;
        for (int64_t l = 0; l < L; ++l)
            for (int which = 0; which < 4; ++which) {
                cache[(s * L + l) * 4 + which] = ws;
                ws += spec.sizes[l + 1] * n;
            }
    }
    for (int s = 0; s < 2; ++s) {
        const int64_t n = s == 0 ? train.n : test.n;
        for (int which = 0; which < 3; ++which) {
            cache[2 * L * 4 + s * 3 + which] = ws;
            ws += n;
        }
    }
    std::vector<int64_t> h(H_COUNT, 0);
    int64_t g = 0;
    auto take = [&](int key, int64_t size) {
        h[key] = g;
        g += size;
    };
    h[H_L] = L;
    h[H_P] = P;
    h[H_NTR] = train.n;
    h[H_NTE] = test.n;
    h[H_K] = K;
    h[H_LOSS] = static_cast<int64_t>(spec.loss);
    h[H_METRIC] = static_cast<int64_t>(spec.metric);
    h[H_YLOG] = y_log ? 1 : 0;
    h[H_W] = W;
    h[H_WS] = ws;
    h[H_NX] = grid.nx;
    h[H_NY] = grid.ny;
    h[H_REFRESH] = refresh_every;
    take(H_XTR, static_cast<int64_t>(train.X.size()));
    take(H_TTR, static_cast<int64_t>(train.targets.size()));
    take(H_XTE, static_cast<int64_t>(test.X.size()));
    take(H_TTE, static_cast<int64_t>(test.targets.size()));
    take(H_BOUNDS, P);
    take(H_LNG, grid.nx * grid.ny);
    take(H_HIST, grid.nx * grid.ny);
    take(H_GRID, 4);
    take(H_STATS, T_COUNT);
    take(H_WBASE, W * ws);
    h[H_DOUBLES] = g;

    Image img;
    img.layout = h;
    img.layout.insert(img.layout.end(), spec.sizes.begin(), spec.sizes.end());
    for (Act a : spec.acts) img.layout.push_back(static_cast<int64_t>(a));
    img.layout.insert(img.layout.end(), woff.begin(), woff.end());
    img.layout.insert(img.layout.end(), boff.begin(), boff.end());
    img.layout.insert(img.layout.end(), cache.begin(), cache.end());

    std::vector<double>& d = img.data;
    d.assign(static_cast<size_t>(g), 0.0);
    std::copy(train.X.begin(), train.X.end(), d.begin() + h[H_XTR]);
    std::copy(train.targets.begin(), train.targets.end(), d.begin() + h[H_TTR]);
    std::copy(test.X.begin(), test.X.end(), d.begin() + h[H_XTE]);
    std::copy(test.targets.begin(), test.targets.end(), d.begin() + h[H_TTE]);
    std::copy(bounds.begin(), bounds.end(), d.begin() + h[H_BOUNDS]);
    d[h[H_GRID] + 0] = grid.x_min;
    d[h[H_GRID] + 1] = grid.dx();
    d[h[H_GRID] + 2] = grid.y_min;
    d[h[H_GRID] + 3] = grid.dy();
    for (int64_t w = 0; w < W; ++w) {
        const int64_t b = h[H_WBASE] + w * ws;
        std::copy(params.begin() + w * P, params.begin() + (w + 1) * P, d.begin() + b);
        d[b + P + S_STEP] = step;
    }
    return img;
}

}  // namespace walkers
}  // namespace ee
