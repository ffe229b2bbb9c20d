"""The polymer band-gap task: the TransPolymer regressor head on fixed 768-d embeddings read from a
local file (the embeddings of the 561 Egb polymers are not shipped; make them with TransPolymer's
encoder and save them as described in :func:`load_embeddings`)."""

from __future__ import annotations

import os

import numpy as np
from torch import nn

from .box import boxed as _boxed

__all__ = ["load_embeddings", "regressor_head"]


def load_embeddings(path, test_fraction=0.2, seed=0):
    """Embeddings and targets from ``path``: an ``.npz`` with ``X`` (n, d) and ``y`` (n,), or a CSV
    (header line, one row per polymer, the target in the last column). Split 80/20 at random, as
    TransPolymer did; the embeddings are used as they are, the target (band gap in eV) is
    standard-scaled with the train statistics. Returns ((X_train, y_train (n, 1)), (X_test, y_test))."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            if "X" not in f.files or "y" not in f.files:
                raise ValueError(f"data: '{path}' must hold arrays X (n, d) and y (n,), found {f.files}")
            X, y = np.asarray(f["X"], dtype=float), np.asarray(f["y"], dtype=float).reshape(-1)
    elif path.endswith((".csv", ".tsv", ".txt")):
        table = np.loadtxt(path, delimiter="\t" if path.endswith(".tsv") else ",", skiprows=1, ndmin=2)
        X, y = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"data: expected an .npz or .csv file of embeddings, got '{path}'")
    if X.ndim != 2 or len(X) != len(y) or len(X) < 2:
        raise ValueError(f"data: expected X (n, d) and y (n,) with n >= 2, got {X.shape} and {y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError(f"data: '{path}' contains NaN or infinite values")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    if not 0 < n_test < len(X):
        raise ValueError(f"test_fraction: {test_fraction} leaves an empty train or test set")
    te, tr = idx[:n_test], idx[n_test:]
    mu, sd = y[tr].mean(), y[tr].std() or 1.0
    y = ((y - mu) / sd)[:, None]
    return (X[tr], y[tr]), (X[te], y[te])


def regressor_head(in_features=768, width=50, activation=nn.SiLU, seed=0, box=None) -> nn.Sequential:
    """TransPolymer's regressor head narrowed as in the paper: in -> width (SiLU) -> 1 (38,501
    parameters for 768 inputs and width 50). ``box``: see :func:`~entropyeng.tasks.into_box`."""
    import torch

    torch.manual_seed(seed)
    return _boxed(nn.Sequential(nn.Linear(in_features, width), activation(), nn.Linear(width, 1)).double(), box)
