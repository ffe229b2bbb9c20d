"""WLMD settings of the paper's tasks (Supplementary Table 6), for the CLI and for users.

Each preset gives the keyword arguments of :class:`entropyeng.WLMD` that the paper lists: hill width
and cutoff, the walls (max ln train loss; max ln test loss or smoothed accuracy), the schedule of
Eq. 4, the time step and the friction. The grid is the authors' one (-20 to 20, bins of 0.02).
"""

from __future__ import annotations

import math

from ..grid import PAPER_GRID as _PAPER_GRID
from ..grid import Grid

__all__ = ["PRESETS", "BUDGETS", "preset", "scaled_schedule", "accuracy_to_logit"]

PRESETS = {
    "house": dict(sigma=0.5, cutoff=2.0, walls=dict(x_max=-1.0, y_max=5.0), metric="loss",
                  schedule=dict(f_max=20.0, t1=5e5, t2=5e5, t3=0.0), dt=1e-4, gamma=0.01),
    "mnist": dict(sigma=0.2, cutoff=0.8, walls=dict(x_max=2.0, y_max=0.95), metric="accuracy",
                  schedule=dict(f_max=3.0, t1=2e5, t2=1e7, t3=8e6), dt=3e-6, gamma=1e-5),
    "polymer": dict(sigma=0.5, cutoff=2.0, walls=dict(x_max=0.0, y_max=5.0), metric="loss",
                    schedule=dict(f_max=20.0, t1=1e6, t2=1e6, t3=0.0), dt=3e-5, gamma=0.01),
    "cifar": dict(sigma=0.3, cutoff=1.2, walls=dict(x_max=1.0, y_max=1.0), metric="accuracy",
                  schedule=dict(f_max=20.0, t1=3e5, t2=2e6, t3=0.0), dt=2e-5, gamma=1e-4),
    "spiral_regression": dict(sigma=0.2, cutoff=0.8, walls=dict(x_max=-0.5), metric="loss",
                              schedule=dict(f_max=5.0, t1=2e5, t2=1e7, t3=8e6), dt=5e-5, gamma=3e-5),
}


#: The budget (walker-steps) each preset's schedule is written for: the length of the run whose
#: Eq. 4 clock reads t1, t2, t3 as in Table 6 (the command's default run of the task).
BUDGETS = {"house": 10_000_000, "mnist": 20_000_000, "polymer": 10_000_000, "cifar": 30_000_000,
           "spiral_regression": 20_000_000}


def scaled_schedule(schedule: dict, budget: float, steps: float) -> dict:
    """Eq. 4's schedule written for ``budget`` walker-steps, for a run of ``steps``: t1, t2 and t3
    keep their fractions of the run (so f rises, holds and decays over the same parts of it), f_max
    is kept. The command does the same with ``--steps``."""
    ratio = float(steps) / float(budget)
    return dict(schedule, t1=schedule["t1"] * ratio, t2=schedule["t2"] * ratio, t3=schedule["t3"] * ratio)


def preset(name: str, steps=None) -> dict:
    """A copy of the WLMD keyword arguments of a paper task (see PRESETS), with the paper's grid.

    ``steps``: the run's budget in walker-steps; the schedule's t1, t2, t3 are scaled from the task's
    own budget (:data:`BUDGETS`) to it (:func:`scaled_schedule`), so that a 20,000-step run rises,
    holds and decays as a paper-length one does. Without it, Table 6's schedule as written.

    The smoothed-accuracy walls of Table 6 are on the accuracy itself; with the default
    ``logit_y=True`` they are moved to the logit scale: y_max = logit(eps + (1 - 2 eps) A_max).
    """
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    kw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[name].items()}
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not 1 <= steps <= 1e15:
            raise ValueError(f"steps: expected a number of walker-steps in [1, 1e15], got {steps!r}")
        kw["schedule"] = scaled_schedule(kw["schedule"], BUDGETS[name], steps)
    if kw["metric"] == "accuracy" and "y_max" in kw["walls"]:
        kw["walls"]["y_max"] = accuracy_to_logit(kw["walls"]["y_max"])
    kw["grid"] = Grid(**_PAPER_GRID)
    return kw


def accuracy_to_logit(a: float, eps: float = 1e-4) -> float:
    """A smoothed accuracy on WLMD's logit scale: logit(eps + (1 - 2 eps) a); a >= 1 is clipped just
    below 1 (Table 6's CIFAR wall of accuracy 1)."""
    a = min(float(a), 1.0 - 1e-12)
    p = eps + (1 - 2 * eps) * a
    return math.log(p / (1 - p))
