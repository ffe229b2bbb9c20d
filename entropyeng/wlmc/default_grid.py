"""The default grid of a WLMC sampler: x (ln train loss) from 8 below the lowest to 1 above the
highest value of 256 random parameter draws in the box, bins of 0.05; y for accuracy one bin per
attainable accuracy k / N_test, for loss as x on ln test loss."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..grid import Grid

__all__ = ["default_grid"]


def _outputs(spec, params, X):
    """The network's outputs for a batch of parameter draws (..., P) on inputs X (n, d_0)."""
    acts = {0: lambda z: z, 1: lambda z: np.maximum(z, 0), 2: np.tanh, 3: lambda z: z / (1 + np.exp(-z))}
    a, off = X, 0
    for l, act in enumerate(spec.acts):
        i, o = spec.sizes[l], spec.sizes[l + 1]
        W = params[..., off:off + i * o].reshape(params.shape[:-1] + (o, i))
        off += i * o
        z = np.einsum("...oi,...ni->...no", W, a)
        if spec.bias[l]:
            z = z + params[..., None, off:off + o]
            off += o
        a = acts[act](z)
    return a


def default_grid(spec, bounds, train, test, loss, metric) -> Grid:
    """The grid (module docstring) of an MLP ``spec`` in the box ``bounds`` on feature-major data."""
    rng = np.random.default_rng(12345)
    draws = rng.uniform(-1, 1, size=(256, spec.n_params)) * bounds
    Xa, ta = train
    Xb, tb = test

    def ln_loss(X, t):
        out = torch.from_numpy(_outputs(spec, draws, X.T))
        tt = torch.from_numpy(t)
        if loss == "bce":
            v = torch.nn.functional.binary_cross_entropy_with_logits(
                out[..., 0], tt.expand(out.shape[0], -1), reduction="none").mean(-1)
        elif loss == "ce":
            v = torch.nn.functional.cross_entropy(out.transpose(1, 2), tt.long().expand(out.shape[0], -1),
                                                  reduction="none").mean(-1)
        else:
            v = ((out - tt.T) ** 2).mean(dim=(-1, -2))
        return np.log(np.maximum(v.numpy(), 1e-300))

    xs = ln_loss(Xa, ta)
    x_min, x_max = math.floor(xs.min() - 8.0), math.ceil(xs.max() + 1.0)
    nx = int(round((x_max - x_min) / 0.05))
    if metric == "accuracy":
        n = Xb.shape[1]
        return Grid(x_min, x_max, nx, -0.5 / n, 1 + 0.5 / n, max(n + 1, 3))
    ys = ln_loss(Xb, tb)
    y_min, y_max = math.floor(ys.min() - 8.0), math.ceil(ys.max() + 1.0)
    return Grid(x_min, x_max, nx, y_min, y_max, int(round((y_max - y_min) / 0.05)))
