"""``entropyeng plot`` and ``entropyeng compare``: the figure of a run, and Fig. 1b across runs."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from .._io import json_bytes, save_figure, write_atomic
from ..runs.config import ConfigError, load_config
from ..runs.rundir import run_paths
from .args import out_arg

__all__ = ["cmd_plot", "cmd_compare"]

def cmd_plot(args):
    """Redraw a run's figure; what it cannot draw (no SGD runs, an unreadable sgd.npz, an empty
    landscape, no config) it says on stderr, and draws the rest."""
    from ..analysis.plot import landscape_figure
    from ..landscape import Landscape
    from ..tasks.catalog import metric_of

    paths = run_paths(args.dir)
    if not os.path.exists(paths["landscape"]):
        raise ConfigError(f"'{args.dir}' holds no landscape.npz (finish or resume the run first)")
    missing = []
    if os.path.exists(paths["config"]):
        config = load_config(paths["config"])
    else:
        config = {"task": "spiral"}
        missing.append("no config.toml: drawn as the spiral task's landscape (test accuracy, Eq. 1)")
    metric = metric_of(config["task"])
    try:
        landscape = Landscape.load(paths["landscape"])
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{paths['landscape']}: cannot be read as a landscape ({str(e).splitlines()[0][:160]})") from None
    traj = _sgd_runs(paths["sgd"], missing)
    if not landscape.visited.any():
        missing.append("the landscape has no visited cell: the figure is empty")
    landscape_figure(landscape, paths["figure"], traj, title=config["task"],
                     curve="equilibrium" if "wlmc" in config or config["task"] == "spiral" else "max_entropy",
                     y_label="test accuracy" if metric == "accuracy" else "ln(test loss)",
                     sgd_readout=config.get("sgd", {}).get("curve", "mean"), higher_is_better=metric == "accuracy")
    for line in missing:
        print(f"entropyeng: plot: {line}", file=sys.stderr)
    print(paths["figure"])


def _sgd_runs(path, missing):
    """The whole SGD runs of sgd.npz (:func:`entropyeng.runs.task.read_sgd_runs`); what is not drawn is
    said in ``missing``."""
    from ..runs.task import read_sgd_runs

    if not os.path.exists(path):
        missing.append("no sgd.npz (the SGD baseline has not run): drawn without the SGD curve")
        return None
    runs, problem = read_sgd_runs(path)
    if problem:
        missing.append(f"{problem}: " + ("left out" if runs else "drawn without the SGD curve"))
    return runs or None


def _sweep_runs(dirs):
    """The run directories to compare: a sweep's directory (it holds sweep.json) stands for its
    finished runs; runs that differ in an axis other than the data set and the model (the budget,
    say) are told apart in their label. Returns (directories, {directory: label suffix})."""
    out, labels = [], {}
    for d in dirs:
        path = os.path.join(d, "sweep.json")
        if not os.path.exists(path):
            out.append(d)
            continue
        try:
            with open(path) as fh:
                record = json.load(fh)
            runs = record["runs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"'{path}' is not a sweep's record ({e})") from None
        unfinished = [r["name"] for r in runs if r.get("state") not in ("done", "kept")]
        if unfinished:
            print(f"{d}: {len(unfinished)} of {len(runs)} runs not finished, left out "
                  f"({', '.join(unfinished[:4])}{', ...' if len(unfinished) > 4 else ''})", file=sys.stderr)
        for r in runs:
            if r.get("state") in ("done", "kept"):
                run_dir = os.path.join(d, r["name"])  # the sweep may have moved: its runs lie beside sweep.json
                out.append(run_dir)
                labels[run_dir] = " ".join(f"{k.split('.')[-1]} {v:g}" if isinstance(v, float) else f"{k.split('.')[-1]} {v}"
                                           for k, v in r.get("axes", {}).items()
                                           if k != "data_set" and not k.startswith(("model.", "data.")))
    if not out:
        raise ConfigError("no finished runs to compare")
    return out, labels


def cmd_compare(args):
    from ..analysis import combine_summaries
    from ..analysis.plot import advantage_figure

    dirs, labels = _sweep_runs(args.dirs)
    if len(args.dirs) == 1 and os.path.exists(os.path.join(args.dirs[0], "sweep.json")):
        out = out_arg(args.out, lambda: os.path.join(args.dirs[0], "compare.png"))  # in the sweep's directory
    else:
        out = out_arg(args.out, lambda: os.path.join(
            os.path.commonpath([os.path.dirname(os.path.abspath(d)) for d in dirs]), "compare.png"))  # beside the runs
    if os.path.splitext(out)[1].lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"--out: the figure's file must end in .png, .pdf or .svg, got '{out}'")
    summaries, tasks = [], {}
    for d in dirs:
        path = os.path.join(d, "summary.json")
        if not os.path.exists(path):
            raise ConfigError(f"'{d}' holds no summary.json (finish the run first)")
        try:
            with open(path) as fh:
                s = json.load(fh)
        except (OSError, ValueError) as e:
            raise ConfigError(f"'{path}' is not a run's summary ({e})") from None
        if not isinstance(s, dict) or "task" not in s:
            raise ConfigError(f"'{path}' is not a run's summary (no task)")
        if s.get("advantage") is None:
            print(f"skipped {d}: its summary has no entropy advantage "
                  f"({s.get('error_message') or 'the landscape and SGD share no train loss'})", file=sys.stderr)
            continue
        if labels.get(d):
            s["label"] = f"{s.get('label') or s['task']}, {labels[d]}"
        tasks.setdefault(s["task"], []).append(d)
        summaries.append(s)
    if len(tasks) > 1:
        raise ConfigError("the runs are of different tasks (" + "; ".join(f"{t}: {', '.join(ds)}" for t, ds in tasks.items())
                          + "); compare runs of one task")
    try:
        points = combine_summaries(summaries)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    metric = points[0]["metric"]
    advantage_figure(points, out, title=args.title or f"{summaries[0]['task']}: entropy advantage across networks",
                     metric=metric)

    def pm(mean, err):  # a single run has no standard error
        return f"{mean:8.3f} ±{err:5.3f}" if err == err else f"{mean:8.3f}       "

    print(f"{'network':22s} {'n':>3s} {'SGD':>14s} {'landscape':>14s} {'advantage':>14s}  (mean ± standard error over n runs)")
    for p in points:
        print(f"{p['label']:22s} {p['n']:3d} {pm(p['sgd'], p['sgd_error'])} {pm(p['equilibrium'], p['error'])} "
              f"{pm(p['advantage'], p['advantage_error'])}")
    write_atomic(os.path.splitext(out)[0] + ".json", json_bytes(points))
    print(out)
    if len(args.dirs) == 1 and os.path.exists(os.path.join(args.dirs[0], "sweep.json")):
        panels = _panels(dirs, os.path.join(args.dirs[0], "panels.png"))
        if panels:
            print(panels)
        width = _width_figure(args.dirs[0], args.title)
        if width:
            print(width)


def _width_figure(sweep_dir, title=None):
    """The paper's width figure of a sweep over one model axis (model.width, model.channels, ...):
    the advantage against that axis, means and standard errors over the other axes' runs (the data
    sets), and a landscape panel per network; ``width.png`` and ``width.json`` in the sweep's
    directory. None when the sweep has no numeric model axis."""
    from ..analysis import width_points
    from ..analysis.plot import width_figure
    from ..landscape import Landscape

    with open(os.path.join(sweep_dir, "sweep.json")) as fh:
        record = json.load(fh)
    axes = [k for k, v in record.get("axes", {}).items() if k.startswith("model.") and len(v) > 1
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)]
    if len(axes) != 1:
        return None
    axis = axes[0]
    runs, landscapes = [], {}
    for r in record["runs"]:
        run_dir = os.path.join(sweep_dir, r["name"])
        if r.get("state") not in ("done", "kept") or not os.path.exists(os.path.join(run_dir, "summary.json")):
            continue
        with open(os.path.join(run_dir, "summary.json")) as fh:
            runs.append((r["axes"][axis], json.load(fh)))
        if r["axes"][axis] not in landscapes and os.path.exists(os.path.join(run_dir, "landscape.npz")):
            landscapes[r["axes"][axis]] = Landscape.load(os.path.join(run_dir, "landscape.npz"))
    if len({n for n, _ in runs}) < 2:
        print(f"{sweep_dir}: the width figure needs finished runs of two {axis} values at least", file=sys.stderr)
        return None
    points = width_points(runs)
    out = os.path.join(sweep_dir, "width.png")
    steps = sorted({s.get("steps") for _, s in runs if s.get("steps")})
    width_figure(points, landscapes, axis, out, title or f"{record.get('task')}: advantage against {axis} "
                 f"({', '.join(f'{x:.0e}' for x in steps)} steps; means and standard errors over data sets)")
    write_atomic(os.path.join(sweep_dir, "width.json"), json_bytes(dict(axis=axis, points=points)))
    print(f"{axis.split('.')[-1]:>8s} {'n':>3s} {'advantage (Eq. 1)':>20s} {'advantage (max S)':>20s}")
    for p in points:
        print(f"{p['network']!s:>8s} {p['n']:3d} {p['advantage']:+10.3f} ± {p['advantage_error']:.3f}     "
              f"{p['max_entropy_advantage']:+10.3f} ± {p['max_entropy_advantage_error']:.3f}")
    return out


def _panels(dirs, path, columns=4):
    """The across-sizes figure of a sweep (the paper's Figs. 3, 7-9): each finished run's
    landscape.png as a panel, in the sweep's order, titled by its directory's name."""
    from ..analysis.plot import _plt

    images = [(os.path.basename(os.path.normpath(d)), os.path.join(d, "landscape.png")) for d in dirs]
    images = [(name, p) for name, p in images if os.path.exists(p)]
    if len(images) < 2:
        return None
    plt = _plt()
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.2 * rows), dpi=120, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, p) in zip(axes.ravel(), images):
        ax.imshow(plt.imread(p))
        ax.set_title(name, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path
