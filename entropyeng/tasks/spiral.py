"""The spiral classification task of the paper (Supplementary, Eq. 5)."""

from __future__ import annotations

import numpy as np
from torch import nn

from .box import boxed as _boxed


def spiral_classification(n_per_class: int = 20, seed: int = 0, noise: float = 0.1):
    """Two interleaved spirals, Eq. 5 of the paper's Supplementary:
    x = (r cos(theta) + N1, r sin(theta) + N2), theta = 2 r + pi y, r ~ U(1, 5), N ~ N(0, noise^2).

    Returns (X (2 n, 2) float64, y (2 n,) float64 labels 0/1). The paper uses 20 + 20 points and an
    independent test set from another seed.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat([0.0, 1.0], n_per_class)
    r = rng.uniform(1.0, 5.0, size=y.size)
    theta = 2.0 * r + np.pi * y
    noise_xy = rng.normal(0.0, noise, size=(y.size, 2))
    X = np.c_[r * np.cos(theta), r * np.sin(theta)] + noise_xy
    order = rng.permutation(y.size)
    return X[order], y[order]


def spiral_mlp(depth: int = 4, width: int = 8, activation=nn.ReLU, seed: int = 0, box=None) -> nn.Sequential:
    """An FNN of `depth` hidden layers of `width` units for the spiral task (2 inputs, 1 logit);
    4 x 8 has the paper's 249 parameters. ``box``: see :func:`~entropyeng.tasks.into_box`."""
    import torch

    torch.manual_seed(seed)
    layers, d = [], 2
    for _ in range(depth):
        layers += [nn.Linear(d, width), activation()]
        d = width
    layers.append(nn.Linear(d, 1))
    return _boxed(nn.Sequential(*layers).double(), box)


def spiral_regression(n: int = 250, seed: int = 0):
    """The spiral regression task (Supplementary, Eq. 6): points uniform in [-5, 5]^2 and the target
    y = sin(theta - 2 r) from their polar coordinates. Returns (X (n, 2), y (n, 1)) float64."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-5.0, 5.0, size=(n, 2))
    r = np.hypot(X[:, 0], X[:, 1])
    theta = np.arctan2(X[:, 1], X[:, 0])
    return X, np.sin(theta - 2.0 * r)[:, None]


def regression_mlp(width: int = 30, activation=nn.Tanh, seed: int = 0, box=None) -> nn.Sequential:
    """The spiral-regression FNN: 2 -> width -> width -> 1 (1051 parameters at width 30).

    ``box="paper"`` starts it inside the samplers' box (:func:`~entropyeng.tasks.into_box`: 45 of
    the first layer's 90 parameters at width 30 are clamped); the default keeps PyTorch's
    initialisation, where SGD starts."""
    import torch

    torch.manual_seed(seed)
    return _boxed(nn.Sequential(nn.Linear(2, width), activation(), nn.Linear(width, width), activation(),
                                nn.Linear(width, 1)).double(), box)
