"""What the WLMD samplers share: the failure and diagnostics types, Eq. 4's schedule, the paper's
boxes of the parameters, and torch's thread setting for a block."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["WLMDError", "WalkerDropped", "WLMDInfo", "f_schedule", "paper_bounds", "NORM_BOUND", "torch_threads"]

_EPS = 1e-4  # the logit transform of the smoothed accuracy: y = logit(eps + (1 - 2 eps) A_s)
_INIT_STEP = 2**64 - 1  # counter step reserved for the initial velocities


class WLMDError(RuntimeError):
    """The walker's loss went non-finite or it left the grid; ``step`` and ``checkpoint`` say where
    and which file holds the last good state."""

    def __init__(self, message, step, checkpoint):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


class WalkerDropped(UserWarning):
    """One of several walkers went non-finite or left the grid: it is back at its last checked state
    and deposits no more hills; the others go on."""


@dataclass
class WLMDInfo:
    """Diagnostics passed to the ``run`` callback every ``every`` steps."""

    step: int
    x: float
    y: float
    f: float
    kinetic_temperature: float  # mean v^2 over the parameters (kT at equilibrium)
    smoothing_error: float  # |smoothed - hard| test accuracy (0 for cv_y="test_loss")
    flatness: float  # min / mean of the visit histogram over the visited cells
    visited: int
    round_trips: int
    seconds: float


class torch_threads:
    """torch's intra-op threads set for a block (None: leave them), restored after."""

    def __init__(self, n):
        self.n, self.old = n, None

    def __enter__(self):
        if self.n is not None and self.n != torch.get_num_threads():
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.old is not None:
            torch.set_num_threads(self.old)


def f_schedule(t: float, f_max: float, t1: float, t2: float, t3: float) -> float:
    """Eq. 4: f rises linearly to f_max until t1, holds until t2, then f_max (t2 - t3) / (t - t3)."""
    if t <= t1:
        return t / t1 * f_max
    if t <= t2:
        return f_max
    return (t2 - t3) / (t - t3) * f_max


def _paper_bound(p: torch.Tensor) -> float:
    """2 / sqrt(width): width = numel / in for a tensor of shape (out, in, ...), out for a bias."""
    width = p.numel() / p.shape[1] if p.dim() >= 2 else p.shape[0]
    return 2.0 / math.sqrt(width)


NORM_BOUND = 2.0
_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm,
          torch.nn.modules.instancenorm._InstanceNorm) + ((torch.nn.RMSNorm,) if hasattr(torch.nn, "RMSNorm") else ())


def paper_bounds(model, params) -> list:
    """The box of each parameter tensor under ``bound="paper"``. Weights and biases of the layers
    that mix inputs: 2 / sqrt(width) (the paper's Methods: parameters on the order of 1/sqrt(W), the
    box twice that). Gains and biases of normalisation layers (LayerNorm, GroupNorm, BatchNorm,
    InstanceNorm, RMSNorm): their natural scale is 1 (a gain starts at 1, a bias at 0) whatever the
    width, so their box is twice that, +-2 (NORM_BOUND). The 2/sqrt(width) rule would clamp the
    ResNet's 30,528 LayerNorm gains from 1 to as little as 0.02 and change the network."""
    norm = {id(q) for m in model.modules() if isinstance(m, _NORMS) for q in m.parameters(recurse=False)}
    return [NORM_BOUND if id(p) in norm else _paper_bound(p) for p in params]
