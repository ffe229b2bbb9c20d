"""Pure-torch reference of the reflecting-boundary Langevin step (docs/design.md contract 4)."""

from __future__ import annotations

import math

import torch

from .philox import normal

__all__ = ["langevin", "fold_into_box"]


def fold_into_box(th: torch.Tensor, v: torch.Tensor, b: torch.Tensor):
    """Fold theta into [-b, b]: the reflections at +-b unfold to a triangle wave of period 4b; an odd
    number of reflections flips the velocity."""
    width = b + b
    u = th + b
    k = torch.floor(u / width)
    r = u - width * k
    r = torch.minimum(torch.clamp(r, min=0.0), width)
    odd = torch.fmod(k, 2.0) != 0
    return torch.where(odd, b - r, r - b), torch.where(odd, -v, v)


def langevin(theta: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, bound, dt: float, gamma: float,
             kT: float, seed: int, step: int) -> None:
    """In place: v <- v - dt grad; v <- (1 - gamma) v + sqrt(gamma (2 - gamma) kT) xi;
    theta <- theta + dt v; reflect at +-bound (folded again while outside)."""
    dtype = theta.dtype
    xi = normal(seed, step, theta.numel(), dtype=dtype, device=theta.device).view(theta.shape)
    b = bound if isinstance(bound, torch.Tensor) else torch.tensor(bound, dtype=dtype, device=theta.device)
    c1 = 1.0 - gamma
    amp = math.sqrt(gamma * (2.0 - gamma) * kT)
    vv = v - dt * grad
    vv = c1 * vv + amp * xi
    th = theta + dt * vv
    above, below = th > b, th < -b
    th = torch.where(above, (b + b) - th, torch.where(below, -(b + b) - th, th))
    vv = torch.where(above | below, -vv, vv)
    outside = (th > b) | (th < -b)
    if bool(outside.any()):
        fth, fv = fold_into_box(th, vv, b)
        th, vv = torch.where(outside, fth, th), torch.where(outside, fv, vv)
    theta.copy_(th)
    v.copy_(vv)
