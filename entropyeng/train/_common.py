"""What every trainer shares: the data on the model's dtype and device, the full-batch train loss
and test metric, the result, and the rule that compares methods at matched train loss."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..analysis.baselines import _loss, _metric

__all__ = ["TrainResult", "TrainError", "prepare", "evaluate", "check_target"]


class TrainError(ValueError):
    """A training request that cannot be met (a bad target, an unknown method)."""


@dataclass
class TrainResult:
    """A trained network and where it stands.

    ``model``: the network (an :class:`Ensemble` when several walkers' predictions are averaged);
    ``train_loss`` and ``test_metric`` of ``model`` (test accuracy, or ln test loss for a regression);
    ``reached``: whether the run reached the target train loss (else ``model`` is the point of its
    trajectory nearest the target); ``trajectory``: (n, 2) records (ln train loss, test metric);
    ``seconds``: wall time of the whole method (descent included); ``steps``: the method's updates."""

    method: str
    model: torch.nn.Module
    target_loss: float
    train_loss: float
    test_metric: float
    reached: bool
    seconds: float
    steps: int
    trajectory: np.ndarray = field(repr=False)
    details: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return dict(method=self.method, target_loss=self.target_loss, train_loss=self.train_loss,
                    ln_train_loss=math.log(self.train_loss), test_metric=self.test_metric, reached=self.reached,
                    seconds=self.seconds, steps=self.steps, **self.details)


class Ensemble(torch.nn.Module):
    """The average of several networks' outputs (logits, or regression outputs)."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(0)


def prepare(model, train, test):
    """(X, y, Xt, yt) as tensors on the model's device, inputs in its dtype."""
    first = next(model.parameters())
    X, y = (torch.as_tensor(a) for a in train)
    Xt, yt = (torch.as_tensor(a) for a in test)
    if X.is_floating_point():
        X, Xt = X.to(first.dtype), Xt.to(first.dtype)
    return X.to(first.device), y.to(first.device), Xt.to(first.device), yt.to(first.device)


def evaluate(model, data, loss, metric):
    """(train loss, test metric) of ``model`` on full batches."""
    X, y, Xt, yt = data
    with torch.no_grad():
        return float(_loss(model(X), y, loss)), float(_metric(model(Xt), yt, loss, metric))


def check_target(target_loss):
    if isinstance(target_loss, bool) or not isinstance(target_loss, (int, float, np.floating)):
        raise TrainError(f"target_loss: expected a positive number, got {target_loss!r}")
    t = float(target_loss)
    if not (math.isfinite(t) and t > 0):
        raise TrainError(f"target_loss: expected a finite number > 0 (a train loss), got {target_loss!r}")
    return t


def nearest(records, target):
    """Index of the record whose ln train loss is nearest ln(target) (records: (n, 2))."""
    return int(np.argmin(np.abs(np.asarray(records)[:, 0] - math.log(target))))
