"""WLMC on your own data: the entropy landscape S(ln train loss, test accuracy) of a small ReLU MLP on
a two-class problem of your own, and Eq. 1's equilibrium test accuracy at each train loss. Seconds
on one core (the paper's spiral runs 10^8 steps and more: raise STAGES for a converged landscape).

    python docs/examples/wlmc_own_data.py [STAGES]
"""

import sys

import numpy as np
import torch
from torch import nn

from entropyeng import WLMC, analysis
from entropyeng.tasks import into_box

stages = int(sys.argv[1]) if len(sys.argv) > 1 else 40

# -- your data: two Gaussian blobs in 2-D, labels 0 and 1 (any (X, y) with labels 0/1 works)
rng = np.random.default_rng(0)


def blobs(n):
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return X, y.astype(np.float64)


train, test = blobs(40), blobs(40)

# -- your model: Linear layers with ReLU / Tanh / SiLU between them (what WLMC's C++ chain takes)
torch.manual_seed(0)
model = into_box(nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 1)))

w = WLMC(model, train, test, loss="bce", metric="accuracy", seed=0)
w.steps_per_stage = 100_000
w.advance(stages * w.steps_per_stage)  # the paper's schedule: ln f = 5 / (n + 10) at stage n
S = w.landscape
x, accuracy, valid = analysis.equilibrium(S)  # Eq. 1
print(f"{w.walker_steps:,} steps, {int(S.visited.sum())} cells visited, flatness {S.flatness():.2f}")
for xi, a in list(zip(x[valid], accuracy[valid]))[::8]:
    print(f"  ln L_train {xi:6.2f}: equilibrium test accuracy {a:.3f}")
assert valid.any() and np.all((accuracy[valid] >= 0) & (accuracy[valid] <= 1))
