"""A straightforward numba WLMC: what a Python user who knows numba would write. Full forward pass
per move, float64, the same chain as the engine (uniform parameter, uniform move, box and grid
rejection, Wang-Landau acceptance, step adaptation every 1000 steps), numpy's generator inside njit.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # the peer is optional: pip install --no-build-isolation ".[bench]"
    numba = None


def _make():
    @numba.njit(cache=False, fastmath=False)
    def forward_loss(theta, sizes, acts, X, y, want_accuracy):
        n = X.shape[0]
        a = X.copy()
        off = 0
        for l in range(sizes.shape[0] - 1):
            i, o = sizes[l], sizes[l + 1]
            z = np.zeros((n, o))
            for s in range(n):
                for r in range(o):
                    acc = theta[off + i * o + r]  # bias
                    for c in range(i):
                        acc += theta[off + r * i + c] * a[s, c]
                    z[s, r] = acc
            off += i * o + o
            if acts[l] == 1:
                a = np.maximum(z, 0.0)
            elif acts[l] == 2:
                a = np.tanh(z)
            else:
                a = z
        if want_accuracy:
            right = 0
            for s in range(n):
                right += (a[s, 0] > 0.0) == (y[s] > 0.5)
            return right / n
        total = 0.0
        for s in range(n):
            zz = a[s, 0]
            total += max(zz, 0.0) + math.log1p(math.exp(-abs(zz))) - y[s] * zz
        return total / n

    @numba.njit(cache=False)
    def run(theta, bounds, sizes, acts, X, y, Xt, yt, lnG, H, x_min, dx, y_min, dy, n_steps, ln_f, step, seed):
        np.random.seed(seed)
        nx, ny = lnG.shape
        P = theta.shape[0]
        loss = forward_loss(theta, sizes, acts, X, y, False)
        acc = forward_loss(theta, sizes, acts, Xt, yt, True)
        ci = int(math.floor((math.log(loss) - x_min) / dx))
        cj = int(math.floor((acc - y_min) / dy))
        accepted = 0
        for t in range(n_steps):
            p = np.random.randint(P)
            new = theta[p] + (2.0 * np.random.random() - 1.0) * step
            if abs(new) <= bounds[p]:
                old = theta[p]
                theta[p] = new
                l2 = forward_loss(theta, sizes, acts, X, y, False)
                a2 = forward_loss(theta, sizes, acts, Xt, yt, True)
                i = int(math.floor((math.log(l2) - x_min) / dx))
                j = int(math.floor((a2 - y_min) / dy))
                if 0 <= i < nx and 0 <= j < ny and np.random.random() < math.exp(lnG[ci, cj] - lnG[i, j]):
                    ci, cj = i, j
                    accepted += 1
                else:
                    theta[p] = old
            lnG[ci, cj] += ln_f
            H[ci, cj] += 1.0
            if (t + 1) % 1000 == 0:
                rate = accepted / 1000.0
                if rate > 0.7:
                    step *= 1.1
                elif rate < 0.3:
                    step *= 0.9
                accepted = 0
        return step

    return run


_RUN = None


def run_chain(theta, bounds, sizes, acts, X, y, Xt, yt, grid, n_steps, ln_f, step, seed=0):
    """Run the numba chain (biased Linear layers; acts codes as entropyeng: 0 identity, 1 relu, 2 tanh)."""
    global _RUN
    if numba is None:
        raise ImportError("numba is not installed: pip install --no-build-isolation '.[bench]'")
    if _RUN is None:
        _RUN = _make()
    lnG = np.zeros(grid.shape)
    H = np.zeros(grid.shape)
    return _RUN(theta, bounds, np.asarray(sizes, np.int64), np.asarray(acts, np.int64), X, y, Xt, yt, lnG, H,
                grid.x_min, grid.dx, grid.y_min, grid.dy, n_steps, ln_f, step, seed)
