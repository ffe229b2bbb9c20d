"""``entropyeng md TASK --kT 0.005``: plain Langevin dynamics of a task's network on its train loss
(no bias), several independent runs: the paper's Fig. 4 (Supplementary, "Newtonian MD results"),
written as ``md.png`` (train loss and test metric against time; the test metric of the steps whose
train loss lies in a window, against time) and ``md.npz`` / ``md.json`` (the numbers)."""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from .._io import json_bytes, save_figure, save_npz_atomic, write_atomic
from .. import limits
from ..runs.config import ConfigError, load_config
from .args import count_arg, out_arg, positive_arg


def add_parser(sub, tasks):
    p = sub.add_parser("md", help="plain Langevin dynamics at a temperature (the paper's Fig. 4)")
    p.add_argument("task", help=f"a task ({', '.join(tasks)}) or a config .toml")
    p.add_argument("--kT", default="0.005", help="temperature on the scale of the train loss (the paper: 0.005)")
    p.add_argument("--steps", default="20000", help="steps of each run")
    p.add_argument("--runs", type=int, default=4, help="independent runs (the paper: 4)")
    p.add_argument("--dt", help="time step (default sqrt(0.1 lr) of the task's SGD learning rate, friction 0.1)")
    p.add_argument("--window", help="LO,HI: the train-loss window of the right panel (default: the last "
                                    "quarter's median train loss +-2.5 %%)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch's intra-op threads (default: 1 for small models, as run)")
    p.add_argument("--data", help="a local data file or folder (digits: MNIST; cifar; polymer)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--out", help="output folder (default runs/md-TASK)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_md)


def cmd_md(args):
    from ..train._common import prepare
    from ..train.langevin import langevin_md
    from ..runs.build import build_problem, set_threads
    from ..runs.loop import Progress

    kT, steps = positive_arg(args.kT, "--kT", most=1e6), positive_arg(args.steps, "--steps", int, most=limits.MAX_STEPS)
    count_arg(args.runs, "--runs", limits.MAX_RUNS)
    window = None
    if args.window:
        try:
            window = tuple(float(v) for v in args.window.split(","))
        except ValueError:
            raise ConfigError(f"--window must be LO,HI (train losses), got {args.window!r}") from None
        if len(window) != 2 or not 0 < window[0] < window[1]:
            raise ConfigError(f"--window must be LO,HI with 0 < LO < HI, got {args.window!r}")
    config = load_config(args.task, sets=args.set or [], data=args.data)
    problem = build_problem(config)
    set_threads(problem, args.threads, args.seed)
    dt = positive_arg(args.dt, "--dt", most=1.0) if args.dt else math.sqrt(0.1 * float(config["sgd"]["lr"]))
    out = out_arg(args.out, lambda: os.path.join("runs", f"md-{config['task']}"))
    os.makedirs(out, exist_ok=True)
    bar = Progress(steps * args.runs, "steps", not args.quiet)
    data = prepare(problem.make_model(args.seed), problem.train, problem.test)
    rec = langevin_md(problem.make_model, data, loss=problem.loss, metric=problem.metric, kT=kT, steps=steps, dt=dt,
                      runs=args.runs, seed=args.seed, record_every=max(1, steps // 400),
                      progress=lambda done, x: bar.update(done, f"ln(train loss) {x:.3f}"))
    bar.close()
    L = np.exp(rec[:, :, 1])
    if window is None:
        late = np.median(L[:, -max(1, L.shape[1] // 4):])
        window = (late * 0.975, late * 1.025)
    save_npz_atomic(os.path.join(out, "md.npz"), dict(records=rec), dict(kind="md", task=config["task"], kT=kT, dt=dt,
                                                                        window=list(window)))
    inside = (L >= window[0]) & (L <= window[1])
    first, last = rec[:, : max(1, rec.shape[1] // 10), 2], rec[:, -max(1, rec.shape[1] // 10):, 2]
    summary = dict(task=config["task"], network=problem.label, kT=kT, dt=dt, steps=steps, runs=args.runs,
                   metric=problem.metric, train_loss_end=float(L[:, -1].mean()),
                   test_metric_first_tenth=float(first.mean()), test_metric_last_tenth=float(last.mean()),
                   window=list(window), steps_in_window=int(inside.sum()))
    write_atomic(os.path.join(out, "md.json"), json_bytes(summary))
    _figure(rec, window, problem.metric, os.path.join(out, "md.png"), f"{config['task']} ({problem.label}), kT = {kT:g}")
    print(f"md: {args.runs} runs x {steps:,} steps; train loss {summary['train_loss_end']:.4g} at the end; test "
          f"{problem.metric} {summary['test_metric_first_tenth']:.4f} (first tenth) -> "
          f"{summary['test_metric_last_tenth']:.4f} (last tenth); {summary['steps_in_window']} records in the "
          f"window {window[0]:.4g}..{window[1]:.4g} -> {out}", file=sys.stdout)


def _figure(rec, window, metric, path, title):
    from ..analysis.plot import _plt

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    steps = rec[0, :, 0]
    L = np.exp(rec[:, :, 1])
    a.plot(steps, L.mean(0), color="tab:blue", label="train loss (energy)")
    a.fill_between(steps, L.mean(0) - L.std(0), L.mean(0) + L.std(0), color="tab:blue", alpha=0.2, lw=0)
    a.set_xlabel("step")
    a.set_ylabel("train loss", color="tab:blue")
    a2 = a.twinx()
    m = rec[:, :, 2]
    a2.plot(steps, m.mean(0), color="tab:red")
    a2.fill_between(steps, m.mean(0) - m.std(0), m.mean(0) + m.std(0), color="tab:red", alpha=0.2, lw=0)
    a2.set_ylabel("test accuracy" if metric == "accuracy" else "ln(test loss)", color="tab:red")
    a.set_title(title + f"; mean +- s.d. of {rec.shape[0]} runs", fontsize=9)
    inside = (L >= window[0]) & (L <= window[1])
    for r in range(rec.shape[0]):
        b.plot(steps[inside[r]], m[r][inside[r]], ".", ms=3)
    b.set_xlabel("step")
    b.set_ylabel("test accuracy" if metric == "accuracy" else "ln(test loss)")
    b.set_title(f"steps with {window[0]:.4g} < train loss < {window[1]:.4g}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
