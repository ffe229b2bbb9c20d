"""The paper's analysis of a landscape: equilibrium metric (Eq. 1), max-entropy curve, the SGD curve
and the entropy advantage."""

from __future__ import annotations

import math

import numpy as np

from ..landscape import Landscape
from ..wlmd.physics import (
    EPS as _EPS,  # the smoothed accuracy's logit transform, y = logit(eps + (1 - 2 eps) A_s)
)

__all__ = ["y_values", "equilibrium", "max_entropy", "runs_per_bin", "sgd_curve", "best_sgd", "advantage", "shared_gap", "combine_summaries",
           "width_points"]



def y_values(landscape: Landscape) -> np.ndarray:
    """The y value of each y cell in the metric's own units: accuracy for a smoothed-accuracy WLMD
    landscape on the logit scale (undoing y = logit(eps + (1 - 2 eps) A)), the centre otherwise."""
    y = landscape.grid.centers[1]
    meta = landscape.meta
    if meta.get("cv_y") == "smoothed_accuracy" and meta.get("logit_y"):
        p = 1.0 / (1.0 + np.exp(-y))
        return np.clip((p - _EPS) / (1 - 2 * _EPS), 0.0, 1.0)
    return y


def equilibrium(landscape: Landscape, min_visits: float = 1):
    """Eq. 1: the equilibrium metric at each x cell, <y>(x) = sum_j y_j e^S(x, j) / sum_j e^S(x, j),
    over the visited cells. Returns (x centres, values, valid) with NaN where x was never visited."""
    x = landscape.grid.centers[0]
    y = y_values(landscape)
    visited = landscape.histogram >= min_visits
    S = np.where(visited, landscape.entropy, -np.inf)
    top = S.max(axis=1, keepdims=True)
    valid = np.isfinite(top[:, 0])
    w = np.exp(S - np.where(np.isfinite(top), top, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (w * y[None, :]).sum(axis=1) / w.sum(axis=1)
    return x, np.where(valid, values, np.nan), valid


def max_entropy(landscape: Landscape, min_visits: float = 1):
    """The y of the highest-entropy visited cell at each x (the max-entropy curve used for
    regression). Returns (x centres, values, valid)."""
    x = landscape.grid.centers[0]
    y = y_values(landscape)
    visited = landscape.histogram >= min_visits
    S = np.where(visited, landscape.entropy, -np.inf)
    valid = visited.any(axis=1)
    return x, np.where(valid, y[np.argmax(S, axis=1)], np.nan), valid


def runs_per_bin(trajectories, edges) -> np.ndarray:
    """How many of the runs record at least one state in each ln(train loss) bin."""
    edges = np.asarray(edges, dtype=float)
    out = np.zeros(len(edges) - 1)
    for t in trajectories:
        x = np.asarray(t, dtype=float).reshape(-1, 2)[:, 0]
        idx = np.digitize(x[np.isfinite(x)], edges) - 1
        idx = np.unique(idx[(idx >= 0) & (idx < len(out))])
        out[idx] += 1
    return out


SGD_READOUTS = ("mean", "best")


def _binned(trajectories, edges):
    edges = np.asarray(edges, dtype=float)
    pts = np.concatenate([np.asarray(t, dtype=float).reshape(-1, 2) for t in list(trajectories)], axis=0)
    pts = pts[np.isfinite(pts).all(axis=1)]
    idx = np.digitize(pts[:, 0], edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    return edges, idx[ok], pts[ok, 1]


def sgd_curve(trajectories, edges, readout="mean", higher_is_better=True):
    """The SGD test metric per ln(train loss) bin over all recorded SGD states.

    ``readout="mean"``: the mean (the paper's black curve in the main text); ``"best"``: the best
    state in each bin (highest accuracy or lowest test loss: the Supplementary's "best-available SGD
    state" when several networks fall into a bin). trajectories: iterable of arrays (n_records, 2)
    of (ln train loss, test metric); edges: bin edges in x. Returns (bin centres, metric (NaN where
    empty), counts)."""
    if readout not in SGD_READOUTS:
        raise ValueError(f"readout: expected one of {SGD_READOUTS}, got {readout!r}")
    edges, idx, y = _binned(trajectories, edges)
    n = len(edges) - 1
    counts = np.bincount(idx, minlength=n).astype(float)
    if readout == "mean":
        sums = np.bincount(idx, weights=y, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = sums / counts
    else:
        value = np.full(n, -np.inf if higher_is_better else np.inf)
        (np.maximum if higher_is_better else np.minimum).at(value, idx, y)
    return 0.5 * (edges[1:] + edges[:-1]), np.where(counts > 0, value, np.nan), counts


def sgd_band(trajectories, edges, lo=10.0, hi=90.0):
    """The spread of the SGD states per bin: (centres, lo-th percentile, hi-th percentile, counts)."""
    edges, idx, y = _binned(trajectories, edges)
    n = len(edges) - 1
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    order = np.argsort(idx, kind="stable")
    idx, y = idx[order], y[order]
    bounds = np.searchsorted(idx, np.arange(n + 1))
    for k in range(n):
        a, b = bounds[k], bounds[k + 1]
        if b > a:
            low[k], high[k] = np.percentile(y[a:b], [lo, hi])
    return 0.5 * (edges[1:] + edges[:-1]), low, high, np.diff(bounds).astype(float)


def best_sgd(centres, mean, counts, higher_is_better=True, min_count=5):
    """The best point of the SGD curve (best-possible early stopping): (x, metric)."""
    ok = np.isfinite(mean) & (counts >= min_count)
    if not ok.any():
        raise ValueError("sgd: no bin of the SGD curve has enough records")
    values = np.where(ok, mean, -np.inf if higher_is_better else np.inf)
    k = int(np.argmax(values) if higher_is_better else np.argmin(values))
    return float(centres[k]), float(mean[k])


def advantage(landscapes, trajectories, higher_is_better=True, curve="equilibrium", sgd_readout="mean"):
    """The entropy advantage: the equilibrium (or max-entropy) metric minus SGD's, at the train loss
    where SGD's mean curve is best among the train losses that at least half of the runs reach. Several landscapes (independent data sets or walkers) give an
    error bar (standard error of the mean).

    Returns a dict: x, sgd, equilibrium (mean), advantage, error (NaN with one landscape), n."""
    if isinstance(landscapes, Landscape):
        landscapes = [landscapes]
    trajectories = list(trajectories)
    grid = landscapes[0].grid
    centres, mean, counts = sgd_curve(trajectories, grid.edges[0], sgd_readout, higher_is_better)
    # only train losses that at least half of the runs reach: the tail reached by a few lucky runs
    # would select for them
    reached = runs_per_bin(trajectories, grid.edges[0]) >= max(1, 0.5 * len(trajectories))
    x_best, sgd_best = best_sgd(centres, np.where(reached, mean, np.nan), counts, higher_is_better)
    i = grid.column(x_best)
    fn = equilibrium if curve == "equilibrium" else max_entropy
    values = np.array([fn(L)[1][i] for L in landscapes])
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"landscape: the cell at x = {x_best:.3g} (SGD's best train loss) was never visited")
    eq = float(values.mean())
    adv = eq - sgd_best if higher_is_better else sgd_best - eq
    err = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")
    return dict(x=x_best, sgd=sgd_best, equilibrium=eq, advantage=adv, error=err, n=int(values.size))


def shared_gap(landscape: Landscape, trajectories, higher_is_better=True, curve="equilibrium", min_count=5,
               sgd_readout="mean"):
    """The landscape's curve minus SGD's mean curve (sign: positive = the landscape's states
    generalise better), averaged over the train-loss cells that both cover. For a run too short to
    reach SGD's best train loss this is the comparison that exists. Returns a dict: gap, cells,
    x_min, x_max (the covered range), or raises ValueError when the curves share no cell."""
    grid = landscape.grid
    _, mean, counts = sgd_curve(trajectories, grid.edges[0], sgd_readout, higher_is_better)
    fn = equilibrium if curve == "equilibrium" else max_entropy
    x, values, valid = fn(landscape)
    both = valid & np.isfinite(mean) & (counts >= min_count)
    if not both.any():
        raise ValueError("the landscape and the SGD curve share no train-loss cell")
    diff = values[both] - mean[both]
    if not higher_is_better:
        diff = -diff
    return dict(gap=float(diff.mean()), cells=int(both.sum()), x_min=float(x[both].min()), x_max=float(x[both].max()))


def combine_summaries(summaries):
    """Fig. 1b's points from the summary.json of finished runs: runs of the same network (``label``;
    independent data sets or seeds) are averaged, with standard errors of the mean (NaN for a single
    run). Returns one dict per network, ordered by size: label, metric, n, n_params, sgd, sgd_error,
    equilibrium, error, advantage, advantage_error. Runs without an advantage are skipped."""
    summaries = [s for s in summaries if "advantage" in s and s.get("advantage") is not None]
    if not summaries:
        raise ValueError("runs: none of them has an advantage in its summary.json")
    metrics = {s.get("metric", "accuracy") for s in summaries}
    if len(metrics) != 1:
        raise ValueError(f"runs: they mix metrics {sorted(metrics)}; compare runs of one kind of task")

    metric = next(iter(metrics))

    def mean_err(values):
        v = np.asarray(values, dtype=float)
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")

    groups = {}
    for s in summaries:
        groups.setdefault(s.get("label") or s["task"], []).append(s)
    points = []
    for label, runs in groups.items():
        sgd, sgd_err = mean_err([r["sgd"] for r in runs])
        eq, eq_err = mean_err([r["equilibrium"] for r in runs])
        adv, adv_err = mean_err([r["advantage"] for r in runs])
        points.append(dict(label=label, metric=metric, n=len(runs), n_params=runs[0].get("n_params"), sgd=sgd, sgd_error=sgd_err,
                           equilibrium=eq, error=eq_err, advantage=adv, advantage_error=adv_err))
    return sorted(points, key=lambda p: (p["n_params"] or 0, p["label"]))


def _mean_err(values):
    """(mean, standard error) of the finite values; NaN where there are none (or one, for the error)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")


def width_points(runs):
    """The paper's width figures (Figs. 3, 7, 8) from finished runs: ``runs`` is a list of (network,
    summary) with ``network`` the swept model value (a width, channels) and ``summary`` a run's
    summary.json; one point per network, ordered by it, with the means and standard errors over its
    runs (data sets) of the readouts at the train loss where the baseline's mean is best: the
    baseline (``sgd``), the equilibrium of Eq. 1 and the max-entropy cell, and the advantage of each
    (positive: the landscape generalises better). A run whose readout is unavailable (its walker
    never reached that train loss) counts in ``n`` and not in the means (``missing``). Beside them,
    the comparison every run has: the equilibrium minus the baseline's mean averaged over the train
    losses both visited (``shared_gap``, :func:`shared_gap`; same sign), and the lowest train loss
    of that shared range (``shared_x_min``)."""
    groups = {}
    for network, s in runs:
        groups.setdefault(network, []).append(s)
    points = []
    for network, ss in sorted(groups.items()):
        eq = [s.get("readouts", {}).get("equilibrium_vs_sgd_mean", {}) for s in ss]
        me = [s.get("readouts", {}).get("max_entropy_vs_sgd_mean", {}) for s in ss]
        p = dict(network=network, label=ss[0].get("label"), metric=ss[0].get("metric"), n=len(ss),
                 n_params=ss[0].get("n_params"), missing=sum(r.get("advantage") is None for r in eq))
        for key, vals in (("x", [r.get("x") for r in eq]), ("sgd", [r.get("sgd") for r in eq]),
                          ("equilibrium", [r.get("equilibrium") for r in eq]),
                          ("advantage", [r.get("advantage") for r in eq]),
                          ("max_entropy", [r.get("equilibrium") for r in me]),
                          ("max_entropy_advantage", [r.get("advantage") for r in me]),
                          ("shared_gap", [(r.get("shared_gap") or {}).get("gap") for r in eq]),
                          ("shared_x_min", [(r.get("shared_gap") or {}).get("x_min") for r in eq])):
            p[key], p[key + "_error"] = _mean_err(vals)
        points.append(p)
    return points
