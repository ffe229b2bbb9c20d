"""``entropyeng plot`` and ``entropyeng compare``: the figure of a run, and Fig. 1b across runs."""

from __future__ import annotations

import json
import os

import numpy as np

from .._io import json_bytes, write_atomic
from .common import _paths
from .config import ConfigError, load_config

__all__ = ["cmd_plot", "cmd_compare"]

def cmd_plot(args):
    from ..analysis.plot import landscape_figure
    from ..landscape import Landscape
    from ..tasks.catalog import metric_of

    paths = _paths(args.dir)
    if not os.path.exists(paths["landscape"]):
        raise ConfigError(f"'{args.dir}' holds no landscape.npz (finish or resume the run first)")
    config = load_config(paths["config"]) if os.path.exists(paths["config"]) else {"task": "spiral"}
    metric = metric_of(config["task"])
    traj = None
    if os.path.exists(paths["sgd"]):
        with np.load(paths["sgd"], allow_pickle=False) as f:
            traj = [f[k] for k in f.files]
    landscape_figure(Landscape.load(paths["landscape"]), paths["figure"], traj, title=config["task"],
                     curve="equilibrium" if "wlmc" in config or config["task"] == "spiral" else "max_entropy",
                     y_label="test accuracy" if metric == "accuracy" else "ln(test loss)",
                     sgd_readout=config.get("sgd", {}).get("curve", "mean"), higher_is_better=metric == "accuracy")
    print(paths["figure"])


def cmd_compare(args):
    from ..analysis import combine_summaries
    from ..analysis.plot import advantage_figure

    summaries = []
    for d in args.dirs:
        path = os.path.join(d, "summary.json")
        if not os.path.exists(path):
            raise ConfigError(f"'{d}' holds no summary.json (finish the run first)")
        with open(path) as fh:
            summaries.append(json.load(fh))
    try:
        points = combine_summaries(summaries)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    metric = points[0]["metric"]
    advantage_figure(points, args.out, title=args.title or f"{summaries[0]['task']}: entropy advantage across networks",
                     metric=metric)
    print(f"{'network':22s} {'runs':>4s} {'SGD':>14s} {'landscape':>14s} {'advantage':>14s}")
    for p in points:
        print(f"{p['label']:22s} {p['n']:4d} {p['sgd']:8.3f} ±{p['sgd_error']:5.3f} {p['equilibrium']:8.3f} "
              f"±{p['error']:5.3f} {p['advantage']:+8.3f} ±{p['advantage_error']:5.3f}")
    write_atomic(os.path.splitext(args.out)[0] + ".json", json_bytes(points))
    print(args.out)
