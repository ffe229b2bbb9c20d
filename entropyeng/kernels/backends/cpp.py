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


def smooth(S, sigma_bins):
    return _like(core().smooth(_view(S), float(sigma_bins[0]), float(sigma_bins[1])), S)


def langevin(theta, v, grad, bound, dt, gamma, kT, seed, step):
    b = bound if isinstance(bound, float) else _view(bound)
    core().langevin(_view(theta), _view(v), _view(grad), b, dt, gamma, kT, seed, step)


def normal(seed, step, n, dtype):
    return core().normal(seed, step, n, dtype)
