"""The compiled CUDA backend: torch CUDA tensors reach entropyeng._core through
``__cuda_array_interface__`` with the current stream; nothing here waits for the device."""

from __future__ import annotations

import torch

from . import core


def _stream(t) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream


def _dev(a, like):
    """A float64 1-D device tensor of a (Python number, array or tensor) on like's device."""
    return torch.as_tensor(a, dtype=torch.float64, device=like.device).reshape(-1).contiguous()


def deposit(S, grid, x, y, height, sigma, cutoff):
    core().cuda_deposit(S.detach(), grid.x_min, grid.x_max, grid.nx, grid.y_min, grid.y_max, grid.ny,
                        _dev(x, S), _dev(y, S), _dev(height, S), sigma, cutoff, _stream(S))


def gradient(S, grid, x, y):
    xd, yd = _dev(x, S), _dev(y, S)
    out = torch.empty((2, xd.numel()), dtype=torch.float64, device=S.device)
    core().cuda_gradient(S.detach(), grid.x_min, grid.x_max, grid.nx, grid.y_min, grid.y_max, grid.ny,
                         xd, yd, out, _stream(S))
    return out[0], out[1]


def smooth(S, sigma_bins):
    sx, sy = float(sigma_bins[0]), float(sigma_bins[1])
    out = torch.empty_like(S, memory_format=torch.contiguous_format)
    work = torch.empty(core().cuda_smooth_work_size(S.shape[0], S.shape[1], sx, sy), dtype=torch.float64,
                       device=S.device)
    core().cuda_smooth(S.detach(), out, work, sx, sy, _stream(S))
    return out


def langevin(theta, v, grad, bound, dt, gamma, kT, seed, step):
    b = bound if isinstance(bound, float) else bound.detach()
    core().cuda_langevin(theta.detach(), v.detach(), grad.detach(), b, dt, gamma, kT, seed, step,
                         _stream(theta))


def langevin_at(theta, v, grad, bound, dt, gamma, kT, seed, step_tensor, step_offset=0):
    """The Langevin kernel with the noise counter read on the device from ``step_tensor`` (a 0-d
    int64 CUDA tensor) plus ``step_offset``: no host synchronisation, so it can be graph-captured."""
    b = bound if isinstance(bound, float) else bound.detach()
    core().cuda_langevin(theta.detach(), v.detach(), grad.detach(), b, dt, gamma, kT, seed, 0, _stream(theta),
                         step_tensor.detach().reshape(1), int(step_offset))


def normal(seed, step, n, dtype, device=None):
    device = torch.device("cuda") if device is None else torch.device(device)
    out = torch.empty(n, dtype=getattr(torch, dtype), device=device)
    core().cuda_normal(out, seed, step, _stream(out))
    return out
