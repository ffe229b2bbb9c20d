"""The pure-torch reference backend: numpy arrays are wrapped as tensors (zero copy)."""

from __future__ import annotations

import numpy as np
import torch

from ... import reference


def _tensor(a):
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


def deposit(S, grid, x, y, height, sigma, cutoff):
    with torch.no_grad():
        reference.deposit(_tensor(S), grid, x.tolist(), y.tolist(), height.tolist(), sigma, cutoff)


def gradient(S, grid, x, y):
    S = _tensor(S)
    with torch.no_grad():
        gx, gy = reference.gradient(S, grid, torch.as_tensor(x, device=S.device),
                                    torch.as_tensor(y, device=S.device))
    return gx.cpu().numpy(), gy.cpu().numpy()


def histogram(H, grid, x, y, weight):
    with torch.no_grad():
        reference.histogram(_tensor(H), grid, x.tolist(), y.tolist(), weight.tolist())


def landscape_step(S, H, grid, x, y, height, weight, sigma, cutoff):
    with torch.no_grad():
        return reference.landscape_step(_tensor(S), _tensor(H), grid, _tensor(x), _tensor(y), _tensor(height).tolist(),
                                        _tensor(weight).tolist(), sigma, cutoff)


def smooth(S, sigma_bins):
    with torch.no_grad():
        out = reference.smooth(_tensor(S), sigma_bins)
    return out.numpy() if isinstance(S, np.ndarray) else out


def langevin(theta, v, grad, bound, dt, gamma, kT, seed, step):
    b = bound if isinstance(bound, float) else _tensor(bound)
    with torch.no_grad():
        reference.langevin(_tensor(theta), _tensor(v), _tensor(grad), b, dt, gamma, kT, seed, step)


def langevin_at(theta, v, grad, bound, dt, gamma, kT, seed, step_tensor, step_offset=0):
    """:func:`langevin` with the counter in a one-element integer tensor, plus ``step_offset``."""
    langevin(theta, v, grad, bound, dt, gamma, kT, seed, int(step_tensor) + int(step_offset))


def normal(seed, step, n, dtype):
    return reference.normal(seed, step, n, dtype=getattr(torch, dtype))


def wlmc_chain(**args):
    """The reference WLMC chain of one walker (a full torch forward per move)."""
    from ...reference.wlmc import TorchWlmcChain

    return TorchWlmcChain(**args)
