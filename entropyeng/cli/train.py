"""``entropyeng train TASK --method maxent|anneal|sgd|swa|sam --target-loss X``: one trained network
of a task (``model.pt``, a state dict) and its numbers (``result.json``) in a folder."""

from __future__ import annotations

import math
import os
import sys

from .._io import json_bytes, write_atomic
from .. import limits as L
from ..runs.build import set_threads
from ..runs.config import ConfigError, load_config
from .args import count_arg, out_arg, positive_arg, seed_arg


def add_parser(sub, tasks):
    from ..train import METHODS

    p = sub.add_parser("train", help="train one network of a task to a target train loss (max-entropy or a peer)")
    p.add_argument("task", help=f"a task ({', '.join(tasks)}) or a config .toml")
    p.add_argument("--method", default="maxent", choices=METHODS,
                   help="maxent (descent, then Langevin dynamics in the target's train-loss shell; default), "
                        "harmonic (the shell held by quadratic walls), anneal (Langevin with kT lowered to the "
                        "target), harvest (a network of a landscape's harvest at the target), sgd (the paper's SGD/Adam settings), swa, sam (needs entropyeng[sam])")
    p.add_argument("--target-loss", required=True, help="the train loss to stop at (e.g. 0.05)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", help="Langevin steps of each walker (maxent, harmonic, anneal; default 20000); the "
                                   "harvest's walker-steps (harvest; default 2e6 for a WLMC landscape, 2e5 for WLMD)")
    p.add_argument("--walkers", type=int, default=1, help="independent walkers whose predictions are averaged")
    p.add_argument("--threads", type=int, help="torch's intra-op threads (default: 1 for small models, where more "
                                               "threads only synchronise; torch's own otherwise)")
    p.add_argument("--data", help="a local data file or folder (digits: MNIST; cifar; polymer)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. sgd.lr=0.01")
    p.add_argument("--out", help="output folder (default runs/train-TASK-METHOD-seedN)")
    p.add_argument("--landscape", help="a finished 'entropyeng run' directory of the same task: draw the trained "
                                       "network on its landscape (on-landscape.png); harvest: the landscape to harvest "
                                       "(default: runs/TASK, run first at the task's budget when not finished there)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_train)


def cmd_train(args):
    import torch

    from ..train import TrainError, train
    from ..runs.build import build_problem
    from ..runs.loop import Progress

    target = positive_arg(args.target_loss, "--target-loss")
    steps = positive_arg(args.steps, "--steps", int, most=L.MAX_STEPS) if args.steps is not None else None
    count_arg(args.walkers, "--walkers", L.MAX_WALKERS)
    seed_arg(args.seed)
    config = load_config(args.task, sets=args.set or [], data=args.data)
    problem = build_problem(config)
    set_threads(problem, args.threads, args.seed)
    out = out_arg(args.out, lambda: os.path.join("runs", f"train-{config['task']}-{args.method}-seed{args.seed}"))
    os.makedirs(out, exist_ok=True)
    s = config["sgd"]
    landscape = args.landscape
    if landscape:
        _check_landscape_task(landscape, config["task"])
    if args.method == "harvest":
        landscape = _landscape_for(args, config)
    walking = args.method in ("maxent", "harmonic", "anneal", "harvest")
    if args.method == "harvest":
        from ..harvest.run import DEFAULT_STEPS, run_sampler

        total = steps or DEFAULT_STEPS[run_sampler(landscape)][0]
    else:
        total = (steps or 20_000) * args.walkers
    bar = Progress(total if walking else int(s["epochs"]), "steps" if walking else "epochs", not args.quiet)
    try:
        result = train(problem.make_model(args.seed), problem.train, problem.test, loss=problem.loss,
                       metric=problem.metric, method=args.method, target_loss=target, seed=args.seed,
                       optimizer=s["optimizer"], lr=float(s["lr"]), batch_size=int(s["batch_size"]),
                       max_epochs=max(int(s["epochs"]), 1), steps=steps, walkers=args.walkers, landscape=landscape,
                       progress=lambda done, x: bar.update(done, f"ln(train loss) {x:.3f}"))
    except TrainError as e:
        bar.close()
        print(f"entropyeng: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    bar.close()
    torch.save(result.model.state_dict(), os.path.join(out, "model.pt"))
    summary = dict(result.summary(), task=config["task"], metric=problem.metric, network=problem.label, seed=args.seed)
    write_atomic(os.path.join(out, "result.json"), json_bytes(summary))
    if landscape:
        _on_landscape(landscape, result, problem, os.path.join(out, "on-landscape.png"), args.method)
    metric = "test accuracy" if problem.metric == "accuracy" else "ln(test loss)"
    note = "" if result.reached else "  (target not reached: the nearest point of the trajectory)"
    print(f"{args.method}: train loss {result.train_loss:.4g} (target {target:g}), {metric} {result.test_metric:.4f}, "
          f"{result.seconds:.1f} s -> {out}{note}")


def _check_landscape_task(run_dir, task):
    """--landscape must be a run of this task: another task's landscape has other axes (a metric of
    other units, another network's losses), and a star drawn on it would mean nothing."""
    path = os.path.join(run_dir, "config.toml")
    if not os.path.isfile(path):
        raise ConfigError(f"--landscape: '{run_dir}' holds no run (no config.toml)")
    theirs = load_config(path)["task"]
    if theirs != task:
        raise ConfigError(f"--landscape: '{run_dir}' is a {theirs} run, not a {task} one: its landscape's axes are "
                          "another task's")


def _landscape_for(args, config):
    """The run directory method harvest harvests: --landscape, or runs/TASK (the task's run at its
    default budget, run now when it is not finished there)."""
    if args.landscape:
        return args.landscape
    from ..runs.task import run_landscape

    run_dir = os.path.join("runs", config["task"])
    if not os.path.exists(os.path.join(run_dir, "summary.json")):
        print(f"entropyeng: method harvest: the {config['task']} landscape first (entropyeng run {config['task']} "
              f"--out {run_dir}; give --landscape DIR to use another)", file=sys.stderr)
        sets = [f"{t}.{k}={v}" for t in ("data", "model") for k, v in config.get(t, {}).items()
                if not isinstance(v, str) or v]
        run_landscape(config["task"], run_dir, sets, quiet=args.quiet)
    return run_dir


def _on_landscape(run_dir, result, problem, path, method):
    """The trained network as a star on the landscape figure of a finished run of the task."""
    from ..analysis.plot import landscape_figure
    from ..landscape import Landscape

    try:
        L = Landscape.load(os.path.join(run_dir, "landscape.npz"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"--landscape: no landscape of a finished run in {run_dir} ({e})") from None
    y = result.test_metric
    landscape_figure(L, path, curve=problem.curve, y_label=problem.y_label, higher_is_better=problem.higher_is_better,
                     points=[(f"{method} (train loss {result.train_loss:.3g})", math.log(result.train_loss), y)],
                     title=f"{problem.label}: {method} on the landscape")
