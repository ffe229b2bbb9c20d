"""The benchmark cases, shared by ``python -m bench`` and the pytest-benchmark suites."""

from __future__ import annotations

import time

import numpy as np
import torch

from entropyeng import Grid, kernels
from entropyeng import grid as grid_module

# The paper's WLMD setting: one grid from -20 to 20 with bin 0.02 on both axes.
PAPER_GRID = Grid(**grid_module.PAPER_GRID)
HILL = dict(sigma=0.2, cutoff=0.8)
N_PARAMS = 10**6


def best_time(fn, repeat=7, min_time=0.2):
    """Best seconds per call over `repeat` rounds of at least `min_time` each."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t >= min_time:
                break
        best = min(best, t / n)
    return best


def deposit_case(backend):
    S = np.zeros(PAPER_GRID.shape) if backend != "torch" else torch.zeros(PAPER_GRID.shape, dtype=torch.float64)
    # a walker's path: consecutive hills lie a fraction of a hill width apart, as in a WLMD run
    rng = np.random.default_rng(0)
    path = np.cumsum(rng.normal(scale=0.05, size=(4096, 2)), axis=0)
    path = [(float(x), float(y)) for x, y in np.clip(path, -15, 15)]
    k = [0]

    def run():
        x, y = path[k[0] % 4096]
        k[0] += 1
        kernels.deposit(S, PAPER_GRID, x, y, 1e-3, backend=backend, **HILL)

    return run


def gradient_case(backend):
    S = np.random.default_rng(1).normal(size=PAPER_GRID.shape)
    if backend == "torch":
        S = torch.from_numpy(S)

    def run():
        kernels.gradient(S, PAPER_GRID, 0.123, -4.56, backend=backend)

    return run


def smooth_case(backend, n=500, sigma=10.0):
    S = np.random.default_rng(2).normal(size=(n, n))
    if backend == "torch":
        S = torch.from_numpy(S)

    def run():
        kernels.smooth(S, sigma, backend=backend)

    return run


def langevin_state(n=N_PARAMS, dtype=np.float32):
    rng = np.random.default_rng(3)
    return (rng.uniform(-0.1, 0.1, n).astype(dtype), rng.normal(size=n).astype(dtype),
            rng.normal(size=n).astype(dtype))


def langevin_case(backend, n=N_PARAMS, dtype=np.float32):
    th, v, g = langevin_state(n, dtype)
    if backend == "torch":
        th, v, g = torch.from_numpy(th), torch.from_numpy(v), torch.from_numpy(g)
    step = [0]

    def run():
        kernels.langevin(th, v, g, 0.2, 0.01, 0.1, 1.0, 1, step[0], backend=backend)
        step[0] += 1

    return run


def stream_case(n=N_PARAMS, dtype=np.float32):
    """The memory-bound floor of the Langevin step: a numpy pass that reads theta, v, grad and
    writes theta, v (the same five streams), with no arithmetic to speak of."""
    th, v, g = langevin_state(n, dtype)

    def run():
        np.add(th, v, out=th)
        np.subtract(v, g, out=v)

    return run


def dram_bandwidth(nbytes=256 * 2**20):
    """Bytes per second of a large numpy copy (read + write), arrays far beyond the caches."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    t = best_time(lambda: np.copyto(b, a), repeat=5, min_time=0.3)
    return 2 * a.nbytes / t
