"""WLMD settings of the paper's tasks (Supplementary Table 6), for the CLI and for users.

Each preset gives the keyword arguments of :class:`entropyeng.WLMD` that the paper lists: hill width
and cutoff, the walls (max ln train loss; max ln test loss or smoothed accuracy), the schedule of
Eq. 4, the time step and the friction. The grid is the authors' one (-20 to 20, bins of 0.02).
"""

from __future__ import annotations

import math

from .grid import Grid

__all__ = ["PRESETS", "preset", "accuracy_to_logit"]

_PAPER_GRID = dict(x_min=-20.0, x_max=20.0, nx=2000, y_min=-20.0, y_max=20.0, ny=2000)

PRESETS = {
    "house": dict(sigma=0.5, cutoff=2.0, walls=dict(x_max=-1.0, y_max=5.0), cv_y="test_loss",
                  schedule=dict(f_max=20.0, t1=5e5, t2=5e5, t3=0.0), dt=1e-4, gamma=0.01),
    "mnist": dict(sigma=0.2, cutoff=0.8, walls=dict(x_max=2.0, y_max=0.95), cv_y="smoothed_accuracy",
                  schedule=dict(f_max=3.0, t1=2e5, t2=1e7, t3=8e6), dt=3e-6, gamma=1e-5),
    "polymer": dict(sigma=0.5, cutoff=2.0, walls=dict(x_max=0.0, y_max=5.0), cv_y="test_loss",
                    schedule=dict(f_max=20.0, t1=1e6, t2=1e6, t3=0.0), dt=3e-5, gamma=0.01),
    "cifar": dict(sigma=0.3, cutoff=1.2, walls=dict(x_max=1.0, y_max=1.0), cv_y="smoothed_accuracy",
                  schedule=dict(f_max=20.0, t1=3e5, t2=2e6, t3=0.0), dt=2e-5, gamma=1e-4),
    "spiral_regression": dict(sigma=0.2, cutoff=0.8, walls=dict(x_max=-0.5), cv_y="test_loss",
                              schedule=dict(f_max=5.0, t1=2e5, t2=1e7, t3=8e6), dt=5e-5, gamma=3e-5),
}


def preset(name: str) -> dict:
    """A copy of the WLMD keyword arguments of a paper task (see PRESETS), with the paper's grid.

    The smoothed-accuracy walls of Table 6 are on the accuracy itself; with the default
    ``logit_y=True`` they are moved to the logit scale: y_max = logit(eps + (1 - 2 eps) A_max).
    """
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    kw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[name].items()}
    if kw["cv_y"] == "smoothed_accuracy" and "y_max" in kw["walls"]:
        kw["walls"]["y_max"] = accuracy_to_logit(kw["walls"]["y_max"])
    kw["grid"] = Grid(**_PAPER_GRID)
    return kw


def accuracy_to_logit(a: float, eps: float = 1e-4) -> float:
    """A smoothed accuracy on WLMD's logit scale: logit(eps + (1 - 2 eps) a); a >= 1 is clipped just
    below 1 (Table 6's CIFAR wall of accuracy 1)."""
    a = min(float(a), 1.0 - 1e-12)
    p = eps + (1 - 2 * eps) * a
    return math.log(p / (1 - p))
