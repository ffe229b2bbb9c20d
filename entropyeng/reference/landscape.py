"""Pure-torch reference of the landscape kernels (docs/design.md contracts 1-3), written for clarity.

Arguments are already validated by :mod:`entropyeng.kernels`; S is a torch tensor of the grid's shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["deposit", "gradient", "smooth", "gaussian_weights", "histogram", "landscape_step"]


def deposit(S: torch.Tensor, grid, xs, ys, heights, sigma: float, cutoff: float) -> None:
    """Add each hill's mass ``height * w / W`` to the cells within ``cutoff`` of its centre, in place.

    w = exp(-r^2 / 2 sigma^2); W sums w over every lattice centre within the cutoff, also beyond the
    grid's edge, so that the part of a hill that falls off the grid is cut, not renormalised. The
    weights are computed relative to the nearest centre (the same w / W), so that a hill much
    narrower than a cell puts its height on the nearest centre; when no centre lies within the cutoff
    at all, the whole height goes to the nearest centre (the sigma -> 0 limit).
    """
    dx, dy = grid.dx, grid.dy
    for x, y, h in zip(xs, ys, heights):
        x, y, h = float(x), float(y), float(h)
        if not (math.isfinite(x) and math.isfinite(y)):
            continue  # as the compiled kernels: a non-finite centre deposits nothing
        fx, fy = (x - grid.x_min) / dx - 0.5, (y - grid.y_min) / dy - 0.5
        if not (math.isfinite(fx) and math.isfinite(fy)):
            continue  # a centre so far out that its cell index overflows: it touches no cell (as cpp)
        i_lo, i_hi = math.ceil(fx - cutoff / dx) - 1, math.floor(fx + cutoff / dx) + 1
        j_lo, j_hi = math.ceil(fy - cutoff / dy) - 1, math.floor(fy + cutoff / dy) + 1
        if i_hi < 0 or i_lo > grid.nx - 1 or j_hi < 0 or j_lo > grid.ny - 1:
            continue  # the hill touches no cell
        i = torch.arange(i_lo, i_hi + 1, dtype=torch.float64, device=S.device)
        j = torch.arange(j_lo, j_hi + 1, dtype=torch.float64, device=S.device)
        ddx = (grid.x_min + (i + 0.5) * dx) - x
        ddy = (grid.y_min + (j + 0.5) * dy) - y
        r2 = (ddx * ddx)[:, None] + (ddy * ddy)[None, :]
        # factors relative to the nearest centre of the window (w / W unchanged; a hill much narrower
        # than a cell keeps weight 1 there instead of underflowing), divided by sigma twice
        d0x = (grid.x_min + (min(max(math.floor(fx + 0.5), i_lo), i_hi) + 0.5) * dx) - x
        d0y = (grid.y_min + (min(max(math.floor(fy + 0.5), j_lo), j_hi) + 0.5) * dy) - y
        fxs = torch.exp(-0.5 * (((ddx * ddx - d0x * d0x) / sigma) / sigma))
        fys = torch.exp(-0.5 * (((ddy * ddy - d0y * d0y) / sigma) / sigma))
        w = fxs[:, None] * fys[None, :] * (r2 <= cutoff * cutoff)
        W = w.sum()
        if not W > 0:  # no centre within the cutoff: the whole height on the nearest centre
            i0 = min(max(math.floor(fx + 0.5), i_lo), i_hi)
            j0 = min(max(math.floor(fy + 0.5), j_lo), j_hi)
            if 0 <= i0 < grid.nx and 0 <= j0 < grid.ny:
                S[i0, j0] += torch.tensor(h, dtype=S.dtype)
            continue
        a0, a1 = max(0, -i_lo), min(i_hi, grid.nx - 1) - i_lo + 1
        b0, b1 = max(0, -j_lo), min(j_hi, grid.ny - 1) - j_lo + 1
        S[i_lo + a0:i_lo + a1, j_lo + b0:j_lo + b1] += (h / W * w[a0:a1, b0:b1]).to(S.dtype)


def _diff(S: torch.Tensor, i: torch.Tensor, j: torch.Tensor, axis: int, h: float) -> torch.Tensor:
    """Central difference along `axis` at cells (i, j), one-sided at the edges."""
    n = S.shape[axis]
    lo = torch.clamp(i - 1 if axis == 0 else j - 1, min=0)
    hi = torch.clamp(i + 1 if axis == 0 else j + 1, max=n - 1)
    if axis == 0:
        num = S[hi, j] - S[lo, j]
    else:
        num = S[i, hi] - S[i, lo]
    return num / ((hi - lo).to(torch.float64) * h)


def _cell(f: torch.Tensor, n: int):
    f = torch.clamp(torch.nan_to_num(f, nan=0.0), 0.0, n - 1.0)
    c = torch.clamp(torch.floor(f), max=n - 2.0)
    return c.to(torch.int64), f - c


def gradient(S: torch.Tensor, grid, x: torch.Tensor, y: torch.Tensor):
    """(dS/dx, dS/dy) at points (x, y), float64 tensors: central differences at the four nearest
    centres (one-sided at the edges), bilinearly interpolated, clamped at the grid's edge."""
    S = S.to(torch.float64)
    i0, tx = _cell((x - grid.x_min) / grid.dx - 0.5, grid.nx)
    j0, ty = _cell((y - grid.y_min) / grid.dy - 0.5, grid.ny)
    out = []
    for axis, h in ((0, grid.dx), (1, grid.dy)):
        d00, d10 = _diff(S, i0, j0, axis, h), _diff(S, i0 + 1, j0, axis, h)
        d01, d11 = _diff(S, i0, j0 + 1, axis, h), _diff(S, i0 + 1, j0 + 1, axis, h)
        out.append((1 - tx) * (1 - ty) * d00 + tx * (1 - ty) * d10 + (1 - tx) * ty * d01 + tx * ty * d11)
    return out[0], out[1]


def gaussian_weights(sigma_bins: float, device=None) -> torch.Tensor:
    """Normalised weights of the Gaussian filter truncated at 4 sigma (scipy.ndimage's kernel)."""
    radius = int(4.0 * sigma_bins + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    q = k / sigma_bins  # not k^2 / sigma^2: sigma^2 underflows for sigma < 1e-154
    w = torch.exp(-0.5 * (q * q))
    return w / w.sum()


def smooth(S: torch.Tensor, sigma_bins) -> torch.Tensor:
    """Separable Gaussian filter (axis 0, then axis 1), truncated at 4 sigma, edge mode 'nearest'."""
    out = S.to(torch.float64)
    if out.numel() == 0:
        return out.to(S.dtype).contiguous()
    for axis, sigma in enumerate(sigma_bins):
        if sigma <= 0:
            continue
        w = gaussian_weights(sigma, device=S.device)
        r = (w.numel() - 1) // 2
        lines = out if axis == 1 else out.T
        padded = F.pad(lines[:, None, :], (r, r), mode="replicate")
        lines = F.conv1d(padded, w.flip(0)[None, None, :])[:, 0, :]
        out = lines if axis == 1 else lines.T
    return out.to(S.dtype).contiguous()


def histogram(H: torch.Tensor, grid, xs, ys, weights) -> None:
    """Add ``weight`` to the cell of each point, in place: cell i = floor((x - x_min) / dx) clamped to
    [0, nx - 1] (the top edge belongs to the last cell; a point off the grid counts in the edge cell
    nearest it), the same along y. A point with a non-finite coordinate counts nothing."""
    for x, y, w in zip(xs, ys, weights):
        x, y, w = float(x), float(y), float(w)
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        i = min(max(math.floor((x - grid.x_min) / grid.dx), 0), grid.nx - 1)
        j = min(max(math.floor((y - grid.y_min) / grid.dy), 0), grid.ny - 1)
        H[i, j] += w


def landscape_step(S: torch.Tensor, H: torch.Tensor, grid, xs, ys, heights, weights, sigma: float,
                   cutoff: float) -> torch.Tensor:
    """One WLMD step's landscape work for K points, in this order: (2, K) float64 dS/dx, dS/dy at
    each point read before any of this call's hills (:func:`gradient`; 0 at a non-finite point), then
    the hills (:func:`deposit`, heights ``heights``), then the counts (:func:`histogram`, weights
    ``weights``)."""
    xs, ys = torch.as_tensor(xs, dtype=torch.float64), torch.as_tensor(ys, dtype=torch.float64)
    ok = torch.isfinite(xs) & torch.isfinite(ys)
    gx, gy = gradient(S, grid, torch.where(ok, xs, grid.x_min), torch.where(ok, ys, grid.y_min))
    out = torch.stack([torch.where(ok, gx.reshape(-1), 0.0), torch.where(ok, gy.reshape(-1), 0.0)])
    deposit(S, grid, xs.tolist(), ys.tolist(), [float(h) for h in heights], sigma, cutoff)
    histogram(H, grid, xs.tolist(), ys.tolist(), [float(w) for w in weights])
    return out
