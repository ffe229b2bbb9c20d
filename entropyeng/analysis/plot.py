"""Figures in the style of the paper's Fig. 1 (matplotlib, written as PNG)."""

from __future__ import annotations

import numpy as np

from .. import analysis
from .._io import save_figure
from ..landscape import Landscape

__all__ = ["landscape_figure", "advantage_figure", "width_figure", "y_axis_label"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def y_axis_label(meta) -> str:
    """The y axis of a landscape, from its metadata: WLMC's ``y`` (or ``metric``), WLMD's ``cv_y``."""
    if meta.get("y"):
        return str(meta["y"])
    if meta.get("metric") == "accuracy" or meta.get("cv_y") == "smoothed_accuracy":
        return "smoothed test accuracy" if meta.get("cv_y") else "test accuracy"
    if meta.get("metric") == "loss" or meta.get("cv_y") == "test_loss":
        return "ln(test loss)"
    return "y"


def landscape_figure(landscape: Landscape, path, trajectories=None, title=None, curve="equilibrium", y_label=None,
                     sgd_readout="mean", higher_is_better=True, points=()):
    """Fig. 1a: the entropy landscape over ln(train loss) x test metric, the equilibrium (Eq. 1) or
    max-entropy points (magenta, named in the legend) and the SGD curve (its mean, or its best state
    per bin) with the spread of the SGD states (10th-90th percentile band) on top; ``points``: (label,
    ln train loss, metric) of single networks (a trainer's results), drawn as stars; the axes are
    cropped to the visited cells."""
    plt = _plt()
    g = landscape.grid
    S = landscape.masked_entropy()
    y_label = y_label or y_axis_label(landscape.meta)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    ex, ey = g.edges
    y_vals = analysis.y_values(landscape)
    if landscape.meta.get("cv_y") == "smoothed_accuracy" and landscape.meta.get("logit_y"):
        ey = np.concatenate([[0.0], 0.5 * (y_vals[1:] + y_vals[:-1]), [1.0]])
        y_label = "smoothed " + y_label if "smoothed" not in y_label else y_label
    finite = S[np.isfinite(S)]
    vmin = float(np.percentile(finite, 2)) if finite.size else None  # robust: a few extreme cells
    mesh = ax.pcolormesh(ex, ey, S.T, cmap="viridis", shading="flat", vmin=vmin, vmax=0.0)
    fig.colorbar(mesh, ax=ax, label="entropy S (nats, max = 0)")
    fn = analysis.equilibrium if curve == "equilibrium" else analysis.max_entropy
    x, eq, valid = fn(landscape)
    name = "equilibrium (Eq. 1)" if curve == "equilibrium" else "max-entropy cell"
    ax.plot(x[valid], eq[valid], "o", ms=3, color="magenta", label=name)
    sgd_cols = np.zeros(g.nx, dtype=bool)
    if trajectories is not None:
        trajectories = list(trajectories)
        centres, mean, counts = analysis.sgd_curve(trajectories, ex, sgd_readout, higher_is_better)
        ok = counts >= 5
        sgd_cols = ok
        _, low, high, _ = analysis.sgd_band(trajectories, ex)
        ax.fill_between(centres[ok], low[ok], high[ok], color="black", alpha=0.15, lw=0,
                        label="SGD states, 10-90 %")
        ax.plot(centres[ok], mean[ok], "-", color="black", lw=1.8, label=f"SGD ({sgd_readout} per bin)")
    visited = landscape.visited
    if visited.any():
        # the x range of the landscape and of the SGD curve, so that the two can be compared
        cols = np.nonzero(visited.any(axis=1) | sgd_cols)[0]
        ax.set_xlim(ex[max(cols.min() - 2, 0)], ex[min(cols.max() + 3, g.nx)])
        rows = np.nonzero(visited.any(axis=0))[0]
        lo, hi = ey[max(rows.min() - 2, 0)], ey[min(rows.max() + 3, len(ey) - 1)]
        if sgd_cols.any():
            pad = 0.05 * (hi - lo)
            lo, hi = min(lo, np.nanmin(mean[sgd_cols]) - pad), max(hi, np.nanmax(mean[sgd_cols]) + pad)
        ax.set_ylim(lo, hi)
    for k, (label, px, py) in enumerate(points):
        ax.plot([px], [py], "*", ms=12, mec="white", mew=0.8, color=f"C{k + 1}", label=label)
    ax.set_xlabel("ln(train loss)")
    ax.set_ylabel(y_label)
    ax.set_title(title or f"{landscape.meta.get('sampler', '')} entropy landscape")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def advantage_figure(points, path, title="equilibrium vs SGD", metric="accuracy"):
    """Fig. 1b: equilibrium (max-entropy for a regression) vs SGD metric, one point per network /
    condition, with y = x; error bars in both directions where given.

    points: iterable of dicts with keys label, sgd, equilibrium and optionally error, sgd_error."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=120)
    pts = list(points)
    for p in pts:
        def err(key):
            e = p.get(key)
            return e if e is not None and np.isfinite(e) else None

        ax.errorbar(p["sgd"], p["equilibrium"], yerr=err("error"), xerr=err("sgd_error"),
                    fmt="o", capsize=3, label=p.get("label"))
    def span(value, e):
        e = e if e is not None and np.isfinite(e) else 0.0
        return (value - e, value + e)

    # the limits hold every point with its error bars (bars ran off the plot before)
    vals = [v for p in pts for v in span(p["sgd"], p.get("sgd_error")) + span(p["equilibrium"], p.get("error"))]
    pad = 0.05 * max(max(vals) - min(vals), 0.5)
    lo, hi = min(vals) - pad, max(vals) + pad
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    if metric == "accuracy":
        ax.set_xlabel("SGD test accuracy (best early stopping)")
        ax.set_ylabel("equilibrium test accuracy")
    else:
        ax.set_xlabel("SGD ln(test loss) (best early stopping)")
        ax.set_ylabel("max-entropy ln(test loss)")
    ax.set_title(title)
    if any(p.get("label") for p in pts):
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def width_figure(points, landscapes, axis, path, title=""):
    """The paper's width figure: the advantage against the swept network axis (``points`` of
    :func:`entropyeng.analysis.width_points`; means with standard errors, the equilibrium and the
    max-entropy readouts, and the gap over the train losses both visited, which runs too short to
    reach the baseline's best train loss still have), and beside it each network's landscape (``landscapes``: {network:
    Landscape}, one data set's), S - max S over the visited cells."""
    plt = _plt()
    n = 1 + len(landscapes)
    fig, axs = plt.subplots(1, n, figsize=(4.2 * n, 3.8), dpi=110, squeeze=False)
    axs = axs[0]
    ax = axs[0]
    w = [p["network"] for p in points]
    for key, style, label in (("advantage", "o-", "equilibrium (Eq. 1)"), ("max_entropy_advantage", "s--", "max entropy"),
                              ("shared_gap", "^:", "equilibrium, mean over the shared train losses")):
        if key not in points[0]:
            continue
        ax.errorbar(w, [p[key] for p in points], yerr=[0 if not np.isfinite(p[key + "_error"]) else p[key + "_error"]
                                                        for p in points], fmt=style, capsize=3, label=label)
    ax.axhline(0, color="0.6", lw=0.8)
    if all(isinstance(v, (int, float)) and v > 0 for v in w):
        ax.set_xscale("log")
        ax.set_xticks(w, [str(v) for v in w])
        ax.minorticks_off()
    ax.set_xlabel(axis.split(".")[-1])
    ax.set_ylabel("advantage (+: the landscape generalises better)", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    for ax, (value, L) in zip(axs[1:], sorted(landscapes.items())):
        S = L.masked_entropy()
        rows, cols = np.nonzero(L.visited)
        ex, ey = L.grid.edges
        if rows.size:
            i0, i1, j0, j1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            im = ax.pcolormesh(ex[i0:i1 + 1], ey[j0:j1 + 1], S[i0:i1, j0:j1].T, shading="flat")
            fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_xlabel("ln(train loss)")
        ax.set_ylabel(y_axis_label(L.meta))
        ax.set_title(f"{axis.split('.')[-1]} {value}: S - max S", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
