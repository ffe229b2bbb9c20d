"""The compiled CPU backend: numpy arrays and CPU torch tensors reach entropyeng._core as zero-copy
numpy views."""

from __future__ import annotations

import numpy as np

from . import core


def _view(a):
    """Zero-copy numpy view of a numpy array or CPU torch tensor."""
    if isinstance(a, np.ndarray):
        return a
    return a.detach().numpy()


def _f64(a):
    """A contiguous float64 numpy view of a 1-D array or tensor (a copy only when it is strided or of
    another dtype)."""
    return np.ascontiguousarray(_view(a), dtype=np.float64)


def _like(result: np.ndarray, template):
    if isinstance(template, np.ndarray):
        return result
    import torch

    return torch.from_numpy(result)


def deposit(S, grid, x, y, height, sigma, cutoff):
    core().deposit(_view(S), grid.x_min, grid.x_max, grid.nx, grid.y_min, grid.y_max, grid.ny,
                   _view(x), _view(y), _view(height), sigma, cutoff)


def gradient(S, grid, x, y):
    return core().gradient(_view(S), grid.x_min, grid.x_max, grid.nx, grid.y_min, grid.y_max, grid.ny,
                           _view(x), _view(y))


def histogram(H, grid, x, y, weight):
    """Counts in place (numpy's unbuffered add: the step's counts run in :func:`landscape_step`'s
    compiled kernel; this one serves the ``histogram`` operator alone)."""
    xs, ys = np.asarray(_view(x), dtype=np.float64), np.asarray(_view(y), dtype=np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    i = np.clip(np.floor((np.where(ok, xs, grid.x_min) - grid.x_min) / grid.dx), 0, grid.nx - 1).astype(np.int64)
    j = np.clip(np.floor((np.where(ok, ys, grid.y_min) - grid.y_min) / grid.dy), 0, grid.ny - 1).astype(np.int64)
    np.add.at(_view(H), (i, j), np.where(ok, _view(weight), 0.0))


def landscape_step(S, H, grid, x, y, height, weight, sigma, cutoff):
    out = np.empty((2, len(x)))
    core().landscape_step(_view(S), _view(H), grid.x_min, grid.x_max, grid.nx, grid.y_min, grid.y_max, grid.ny,
                          _f64(x), _f64(y), _f64(height), _f64(weight), sigma, cutoff, out)
    return out


def smooth(S, sigma_bins):
    return _like(core().smooth(_view(S), float(sigma_bins[0]), float(sigma_bins[1])), S)


def langevin(theta, v, grad, bound, dt, gamma, kT, seed, step):
    b = bound if isinstance(bound, float) else _view(bound)
    core().langevin(_view(theta), _view(v), _view(grad), b, dt, gamma, kT, seed, step)


def langevin_at(theta, v, grad, bound, dt, gamma, kT, seed, step_tensor, step_offset=0):
    """:func:`langevin` with the counter in a one-element integer tensor, plus ``step_offset``."""
    langevin(theta, v, grad, bound, dt, gamma, kT, seed, int(step_tensor) + int(step_offset))


def normal(seed, step, n, dtype):
    return core().normal(seed, step, n, dtype)


def wlmc_chain(**args):
    """A compiled WLMC chain of one walker (``_core.WlmcChain``; the arguments as
    :class:`entropyeng.reference.wlmc.TorchWlmcChain`)."""
    return core().WlmcChain(**args)
