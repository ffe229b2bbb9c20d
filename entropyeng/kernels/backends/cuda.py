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


def histogram(H, grid, x, y, weight):
    """Counts in place by atomic adds (``index_add_``): no host synchronisation, so a step that calls
    it can be captured in a CUDA graph. A non-finite point counts nothing."""
    ok = torch.isfinite(x) & torch.isfinite(y)
    xs, ys = torch.where(ok, x, grid.x_min), torch.where(ok, y, grid.y_min)
    i = torch.clamp(torch.floor((xs - grid.x_min) / grid.dx), 0, grid.nx - 1).to(torch.int64)
    j = torch.clamp(torch.floor((ys - grid.y_min) / grid.dy), 0, grid.ny - 1).to(torch.int64)
    w = torch.where(ok, weight, torch.zeros_like(weight)).to(H.dtype)
    if H.is_contiguous():
        H.view(-1).index_add_(0, i * grid.ny + j, w)
    else:
        H.index_put_((i, j), w, accumulate=True)


def landscape_step(S, H, grid, x, y, height, weight, sigma, cutoff):
    """dS at the points before this step's hills, then the hills, then the counts (three kernels on
    the current stream; a non-finite point contributes nothing, dS = 0 there)."""
    ok = torch.isfinite(x) & torch.isfinite(y)
    xs, ys = torch.where(ok, x, grid.x_min), torch.where(ok, y, grid.y_min)
    gx, gy = gradient(S, grid, xs, ys)
    out = torch.where(ok, torch.stack([gx, gy]), 0.0)
    deposit(S, grid, xs, ys, torch.where(ok, height, torch.zeros_like(height)), sigma, cutoff)
    histogram(H, grid, x, y, weight)
    return out


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
