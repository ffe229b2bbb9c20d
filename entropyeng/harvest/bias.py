"""The frozen bias of a harvest: the landscape's marginal over the train loss,
ln g(x) = log sum_y exp S(x, y) (the visited cells), the same in every y cell of a column.

A walker under this bias alone (no further learning: ln f = 0) visits every train-loss column
equally often (multicanonical in x) and, within a column, every network with the box's uniform
weight: the conditional distribution of the test metric at a train loss is the microcanonical one
that Eq. 1 averages, whatever the errors of ln g (they only change how long the walker spends in
each column). A bias over both axes would flatten the test axis too, and its samples would need
reweighting by exp S."""

from __future__ import annotations

import numpy as np

__all__ = ["marginal", "frozen_bias"]

#: ln g added per grid column beyond the harvest's reach: the walker drifts back into the reach and
#: stays there (e^-2 per column outside), so the run's time goes to the columns around the target
CONFINE_PER_COLUMN = 2.0
#: the bias of columns the landscape never visited: the walker does not enter them
UNVISITED = 1e4


def marginal(landscape, min_visits=1.0, temperature=1.0):
    """(ln g(x) per x column, valid columns): log-sum-exp of S over each column's visited cells; of a
    landscape learned at ``temperature`` (S = T ln g: a WLMD landscape's kT_c), T log sum exp(S / T)."""
    visited = landscape.histogram >= min_visits
    S = np.where(visited, landscape.entropy / temperature, -np.inf)
    top = S.max(axis=1)
    valid = np.isfinite(top)
    safe = np.where(valid, top, 0.0)
    with np.errstate(divide="ignore"):
        lng = safe + np.log(np.exp(S - safe[:, None]).sum(axis=1))
    return np.where(valid, temperature * lng, np.nan), valid


def _median5(v):
    """The running median over 5 columns (the visited ones): a short run's landscape has spikes of
    hundreds of nats in one or two columns (its first stages' large ln f), barriers the walker would
    not cross; the bias sets only how fast the walker moves, never what it samples in a column."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(v, 2, mode="edge")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
        return np.nanmedian(sliding_window_view(padded, 5), axis=1)


def frozen_bias(landscape, lo, hi, min_visits=1.0, walls=False, temperature=1.0, unvisited="wall"):
    """The (nx, ny) bias array of a harvest whose walker should stay in ln L in [lo, hi] (the
    reach): the marginal ln g inside (at ``temperature``, see :func:`marginal`; shifted so that its
    largest value is 0); outside, the marginal plus CONFINE_PER_COLUMN per column beyond the reach
    (the walker drifts in), or with ``walls`` UNVISITED (the walker never leaves). Columns never
    visited: UNVISITED (``unvisited="wall"``), or (``"ramp"``, for molecular dynamics, whose force a
    wall would make enormous) the marginal interpolated linearly between visited columns (the
    nearest visited column's beyond them), plus CONFINE_PER_COLUMN per column beyond the reach (a
    guess that a tuning corrects: the WLMD harvest's)."""
    lng, valid = marginal(landscape, min_visits, temperature)
    if not valid.any():
        raise ValueError("landscape: no visited cell")
    lng = np.where(valid, _median5(lng), np.nan)
    g = landscape.grid
    x = g.centers[0]
    lng = lng - np.nanmax(lng)
    dx = (g.x_max - g.x_min) / g.nx
    beyond = np.maximum(0.0, np.maximum(lo - x, x - hi)) / dx
    outside = np.full_like(lng, UNVISITED) if walls else lng + CONFINE_PER_COLUMN * np.ceil(beyond - 1e-9)
    column = np.where(valid, np.where(beyond > 0, outside, lng), UNVISITED)
    if unvisited == "ramp":
        idx = np.flatnonzero(valid)
        guess = np.interp(np.arange(column.size), idx, lng[idx])  # linear across gaps, flat beyond the ends
        column = np.where(valid, column, guess + CONFINE_PER_COLUMN * np.ceil(beyond - 1e-9))
    return np.ascontiguousarray(np.repeat(column[:, None], g.ny, axis=1), dtype=np.float64)
