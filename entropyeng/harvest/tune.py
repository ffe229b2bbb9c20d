"""The tuning of a harvest's bias: Wang-Landau on the x columns of the reach, the bias still a
function of ln L alone (so every column's conditional distribution of the test metric stays the
microcanonical one), then frozen for production. One schedule, two ways of adding ln f: a WLMC
walker's bias takes it in the walker's column; a WLMD walker's, whose force is the bias's gradient,
as a Gaussian hill in x reflected at the reach's ends (:func:`hill_in_x`)."""

from __future__ import annotations

import numpy as np

__all__ = ["XSchedule", "WallTilt", "hill_in_x"]


class XSchedule:
    """ln f of Wang-Landau over the reach's columns (``reach``: a boolean mask over the grid's x
    columns): ``ln_f`` (1) at first, halved whenever every column of the reach has been visited since the last
    halving, and after four halvings N / t (the 1/t schedule of Belardinelli and
    Pereyra, Phys. Rev. E 75, 046701 (2007); N columns, t samples so far)."""

    def __init__(self, reach, ln_f=1.0):
        self.reach = np.asarray(reach, dtype=bool)
        self.columns = int(self.reach.sum())
        self.ln_f, self.halvings, self.one_over_t, self.t = float(ln_f), 0, False, 0
        self._seen = np.zeros(self.reach.size, dtype=bool)

    def visit(self, i) -> float:
        """One sample in column ``i``: the ln f to add there (0 outside the reach)."""
        self.t += 1
        if not self.reach[i]:
            return 0.0
        self._seen[i] = True
        if not self.one_over_t and self._seen[self.reach].all():
            self.ln_f, self.halvings = self.ln_f / 2, self.halvings + 1
            self._seen[:] = False
        if self.halvings >= 4:  # the 1/t tail, once the flat phase did its work (from above or below: a
            self.one_over_t = True  # walker that sees every column quickly would halve ln f to nothing)
        if self.one_over_t:
            self.ln_f = self.columns / self.t
        return self.ln_f

    def summary(self) -> dict:
        return dict(tune_ln_f=self.ln_f, tune_halvings=self.halvings)


def hill_in_x(grid, x, mass, columns, sigma_columns=2.0):
    """The increment of a WLMD harvest's bias over the grid's x columns: a Gaussian centred at ``x``
    (``sigma_columns`` wide, cut at 4 sigma) whose values sum to ``mass``, as ln f added to one
    column would, reflected at the ends of ``columns`` (a slice: the reach) so that all of it lands
    inside (a hill cut at the edge would fill the middle faster than the ends, and Wang-Landau would
    flatten the deposits, not the visits). Smooth: its gradient is what a WLMD walker feels."""
    first, stop = columns.start, columns.stop
    c = (x - grid.x_min) / grid.dx - 0.5  # x in column units (centres at integers)
    radius = int(np.ceil(4 * sigma_columns))
    k = np.arange(int(np.floor(c)) - radius, int(np.ceil(c)) + radius + 1)
    values = np.exp(-0.5 * ((k - c) / sigma_columns) ** 2)
    for _ in range(2):  # fold what lies beyond an end back across it (twice: a hill wider than the reach)
        k = np.where(k < first, 2 * first - 1 - k, np.where(k >= stop, 2 * stop - 1 - k, k))
    out = np.zeros(stop - first)
    inside = (k >= first) & (k < stop)
    np.add.at(out, k[inside] - first, values[inside])
    return mass * out / out.sum()


class WallTilt:
    """The slope of a WLMD harvest's bias that a walker pressed into a wall of the reach says is
    missing. Where the landscape never went, a network's entropy can pull the walker up the train
    loss (~10^3 nats per unit of ln L for the digits CNN) far harder than Wang-Landau's hills build
    a slope, and it sits in the wall, where its hills change nothing. Its mean wall force over a
    block of samples, 2 c d (d: how far beyond the wall), is the pull the bias lacks there; it is
    added to a linear tilt of the bias in x (adaptive biasing force, from the walls alone), a
    walker pressed into the lower wall takes it back. Its gain falls with Wang-Landau's ln f (the
    ``scale`` of :meth:`visit`), so the tilt settles as the hills do. A tilt is a function of x
    alone, so the conditional distribution within a column stays the microcanonical one.
    ``lo``, ``hi``: the walls (the reach's ends); ``wall_c``: their c; ``block``: samples per update;
    ``gain``: the share of the mean force added (a half: the walker answers its bias late)."""

    def __init__(self, lo, hi, wall_c, block=50, gain=0.5):
        self.lo, self.hi, self.wall_c, self.block, self.gain = float(lo), float(hi), float(wall_c), int(block), gain
        self.slope, self.updates, self._sum, self._n = 0.0, 0, 0.0, 0

    def visit(self, x, scale=1.0) -> bool:
        """One sample at ln L ``x``; True when the slope changed (a block ended beyond a wall): by
        ``gain * scale`` times the block's mean wall force."""
        self._sum += max(x - self.hi, 0.0) + min(x - self.lo, 0.0)  # d: + beyond the upper wall, - below the lower
        self._n += 1
        if self._n < self.block:
            return False
        force, self._sum, self._n = 2 * self.wall_c * self._sum / self._n, 0.0, 0
        if force == 0:
            return False
        self.slope += self.gain * scale * force
        self.updates += 1
        return True

    def summary(self) -> dict:
        return dict(tune_slope=self.slope, tune_slope_updates=self.updates)
