"""WLMC benchmark cases: the paper's spiral network (4 x 8, 249 parameters, 40 + 40 points)."""

from __future__ import annotations

import time
import warnings

import numpy as np
from torch import nn

from entropyeng import WLMC
from entropyeng.tasks import spiral_classification, spiral_mlp


def spiral_sampler(depth=4, width=8, n_points=40, backend="cpp", activation=nn.ReLU, seed=0, walkers=1):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    X, y = spiral_classification(n_points // 2, seed=seed)
    Xt, yt = spiral_classification(n_points // 2, seed=seed + 1000)
    model = spiral_mlp(depth, width, activation, seed=seed)
    return WLMC(model, (X, y), (Xt, yt), loss="bce", metric="accuracy", backend=backend, seed=seed, walkers=walkers)


def us_per_step(sampler, n_steps, warm=None):
    sampler.run(warm if warm is not None else max(1, n_steps // 10), 0.01)
    t0 = time.perf_counter()
    sampler.run(n_steps, 0.01)
    return (time.perf_counter() - t0) / n_steps * 1e6


def numba_us_per_step(sampler, n_steps):
    from .peers.numba_wlmc import run_chain

    X, y = sampler._train
    Xt, yt = sampler._test
    spec = sampler.spec
    args = (sampler.params.copy(), sampler.bounds, spec.sizes, spec.acts, np.ascontiguousarray(X.T), y,
            np.ascontiguousarray(Xt.T), yt, sampler.grid)
    run_chain(*args, 10, 0.01, 0.05)  # compile
    t0 = time.perf_counter()
    run_chain(*args, n_steps, 0.01, 0.05)
    return (time.perf_counter() - t0) / n_steps * 1e6


PAPER_PROTOCOL_STEPS = 10_000 * 3_200_000 * 6  # stages x steps per stage x data sets
