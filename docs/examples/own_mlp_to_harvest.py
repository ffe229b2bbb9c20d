"""Your own network and data, from the entropy landscape to networks harvested from it.

A small MLP on a noisy sine (any torch.nn.Module and any (X, y) work the same way): WLMD maps
S(ln train loss, ln test loss); the landscape's max-entropy readout says which test loss a typical
network of each train loss has; the harvest returns such networks. About a minute on one core.

    python docs/examples/own_mlp_to_harvest.py [STEPS]
"""

import math
import sys

import numpy as np
import torch
from torch import nn

from entropyeng import WLMD, Grid, analysis
from entropyeng.harvest import harvest_wlmd
from entropyeng.tasks import into_box

steps = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200_000
torch.manual_seed(0)
torch.set_num_threads(1)

# -- the data: y = sin(3x) + noise, 64 points to train on and 64 to test on
x = torch.linspace(-1, 1, 128, dtype=torch.float64)[:, None]
y = torch.sin(3 * x) + 0.1 * torch.randn_like(x)
train, test = (x[::2], y[::2]), (x[1::2], y[1::2])


def make_model():
    """1 -> 16 -> 1 tanh, started inside the paper's box (as WLMD keeps it)."""
    torch.manual_seed(1)
    return into_box(nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1)).double())


# -- the landscape: the grid over (ln train loss, ln test loss); walls keep the walker where the
# landscape is wanted (below ln L = 1; a soft wall, c = 30, suits this time step); the hills' schedule scales with the budget
grid = Grid(-8.0, 4.0, 240, -8.0, 6.0, 280)
settings = dict(loss="mse", metric="loss", grid=grid, sigma=0.15, cutoff=0.6, walls=dict(x_max=1.0, y_max=3.0),
                wall_c=30.0, dt=0.005, gamma=0.1, seed=0)
# Eq. 4's hills: up to f_max = 0.5 over the first 1 % of the run, held to half of it, then decaying as 1/t
schedule = dict(f_max=0.5, t1=0.01 * steps, t2=0.5 * steps, t3=0.4 * steps)
sampler = WLMD(make_model(), train, test, schedule=schedule, **settings)
sampler.advance(steps)
landscape = sampler.landscape
print(f"landscape: {steps:,} steps, {int(landscape.visited.sum()):,} cells visited, "
      f"ln train loss {grid.centers[0][landscape.visited.any(axis=1)].min():.2f} and up")

# -- the readout: the max-entropy test loss at each train loss the walker visited
xs, ln_test, valid = analysis.max_entropy(landscape)
for x_value, t in list(zip(xs[valid], ln_test[valid]))[::20]:
    print(f"  ln L_train {x_value:6.2f}: max-entropy ln L_test {t:6.2f}")

# -- the harvest: networks of one train loss, sampled from the landscape's frozen bias
target = float(np.median(xs[valid]))
start = make_model()


def make_sampler(**kw):  # a one-walker WLMD on the same model, data and grid; the harvest sets the bias
    return WLMD(make_model(), train, test, **dict(settings, walls=dict(settings["walls"], **kw.pop("walls")), **kw))


h = harvest_wlmd(make_sampler, landscape, target, window=0.2, reach=0.6, steps=20_000, every=10)
print(f"harvest at ln L_train {target:.2f}: {h.count} networks, ln L_test {h.mean:.3f} +- {h.error:.3f} "
      f"(the landscape's own readout there: {h.landscape_mean:.3f})")
assert h.count > 0 and math.isfinite(h.mean)
