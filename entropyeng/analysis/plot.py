"""Figures in the style of the paper's Fig. 1 (matplotlib, written as PNG)."""

from __future__ import annotations

import numpy as np

from .. import analysis
from .._io import save_figure
from ..landscape import Landscape

__all__ = ["landscape_figure", "advantage_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    y_label = y_label or landscape.meta.get("y", "test accuracy" if landscape.meta.get("metric") == "accuracy" else "y")
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
