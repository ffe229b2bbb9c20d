"""The WLMD sampler's state: one typed object of tensors that the step takes and updates in place,
that checkpoints save and that ranks share; and the types a run reports with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = ["State", "new_state", "WLMDError", "WalkerDropped", "WLMDInfo"]


class State(NamedTuple):
    """Everything the step reads and writes, for K walkers of P parameters on an (nx, ny) grid. The
    step is ``step(*state)``: every field is a tensor updated in place (no host synchronisation), so
    the step can be compiled whole and replayed from a CUDA graph over the same addresses."""

    theta: torch.Tensor  # (K, P) parameters, the model's dtype; walker 0's row holds the model's parameters
    v: torch.Tensor  # (K, P) velocities
    good_theta: torch.Tensor  # (K, P) the last state that passed the check (a dropped walker goes back to it)
    good_v: torch.Tensor  # (K, P)
    S: torch.Tensor  # (nx, ny) float64: the learned entropy (the hills; no walls)
    H: torch.Tensor  # (nx, ny) float64: the visit histogram
    t: torch.Tensor  # () int64: steps taken by each walker (the noise counter, the schedule's clock / K R)
    bad: torch.Tensor  # (K,) int64: the step at which a walker was dropped, -1 while it is active
    bad_xy: torch.Tensor  # (K, 2) float64: the (x, y) that dropped it
    active: torch.Tensor  # (K,) bool
    trips: torch.Tensor  # (K,) int64: round trips of each walker
    last_end: torch.Tensor  # (K,) int64: the end each walker touched last: -1 none, 0 low, 1 high

    def scratch(self) -> "State":
        """Copies of every field (warm-up and timing calls leave the run's state alone)."""
        return State(*(a.clone() for a in self))


def new_state(theta: torch.Tensor, v: torch.Tensor, grid_shape) -> State:
    """The state of a fresh run from the walkers' parameters and velocities (K, P)."""
    K, dev = theta.shape[0], theta.device
    S = torch.zeros(grid_shape, dtype=torch.float64, device=dev)
    return State(theta, v, theta.clone(), v.clone(), S, torch.zeros_like(S), torch.zeros((), dtype=torch.int64, device=dev),
                 torch.full((K,), -1, dtype=torch.int64, device=dev), torch.zeros((K, 2), dtype=torch.float64, device=dev),
                 torch.ones(K, dtype=torch.bool, device=dev), torch.zeros(K, dtype=torch.int64, device=dev),
                 torch.full((K,), -1, dtype=torch.int64, device=dev))


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
