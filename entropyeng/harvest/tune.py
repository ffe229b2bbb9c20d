"""The tuning of a harvest's bias: Wang-Landau on the x columns of the reach, the bias still a
function of ln L alone (so every column's conditional distribution of the test metric stays the
microcanonical one), then frozen for production. One schedule, two ways of adding ln f: a WLMC
walker's bias takes it in the walker's column; a WLMD walker's, whose force is the bias's gradient,
as a Gaussian hill in x reflected at the reach's ends (:func:`hill_in_x`)."""

from __future__ import annotations

import numpy as np

from ..statistics import one_over_t

__all__ = ["XSchedule", "hill_in_x"]


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
            self.ln_f = one_over_t(self.t, self.columns)
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
