"""The ``entropyeng`` command: run / resume / plot / bench.

    entropyeng run spiral                      # the demo: landscape, SGD baseline, summary, figure
    entropyeng run CONFIG.toml --out DIR       # a task from a TOML config
    entropyeng run spiral --steps 2e7 --set sgd.runs=20
    entropyeng resume DIR                      # continue an interrupted run
    entropyeng plot DIR                        # redraw the figures
    entropyeng bench                           # the benchmark table (from the source tree)

A run directory holds config.toml, checkpoint.npz (atomic), landscape.npz, metrics.jsonl, sgd.npz,
summary.json and the figures. Ctrl-C writes a checkpoint and exits; ``resume`` picks up there.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import signal
import sys
import time

import numpy as np

EXIT_USAGE = 2

# -- tasks ------------------------------------------------------------------------------------
TASKS = {
    "spiral": {
        "task": "spiral",
        "data": {"n_per_class": 20, "train_seed": 0, "test_seed": 1000},
        "model": {"depth": 4, "width": 8, "activation": "relu"},
        "wlmc": {"stages": 500, "steps_per_stage": 200_000, "seed": 0, "checkpoint_every": 25},
        "sgd": {"runs": 100, "epochs": 400, "lr": 0.1, "batch_size": 10, "optimizer": "sgd"},
    },
}


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key (exit code 2)."""


def _check(config: dict, schema: dict, prefix=""):
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"unknown key '{name}' (expected one of: {', '.join(sorted(schema))})")
        ref = schema[key]
        if isinstance(ref, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"key '{name}' must be a table, got {type(value).__name__}")
            _check(value, ref, name + ".")
        elif isinstance(ref, bool) != isinstance(value, bool) or (
                isinstance(ref, (int, float)) and not isinstance(value, (int, float))) or (
                isinstance(ref, str) and not isinstance(value, str)) or (
                isinstance(ref, int) and not isinstance(ref, bool) and isinstance(value, float)
                and not value.is_integer()):
            raise ConfigError(f"key '{name}' must be {type(ref).__name__}, got {value!r}")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _coerce(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def load_config(source: str, sets=()) -> dict:
    """The config of a task name or a TOML file, with ``--set key=value`` overrides, checked."""
    if source in TASKS:
        config = copy.deepcopy(TASKS[source])
    elif source.endswith(".toml") or os.path.exists(source):
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib
        try:
            with open(source, "rb") as fh:
                user = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file '{source}' not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"malformed TOML in '{source}': {e}") from None
        task = user.get("task")
        if task not in TASKS:
            raise ConfigError(f"key 'task' must name a task ({', '.join(TASKS)}), got {task!r}")
        _check(user, TASKS[task])
        config = _merge(TASKS[task], user)
    else:
        raise ConfigError(f"unknown task '{source}' (tasks: {', '.join(TASKS)}; or a .toml config)")
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        parts = key.split(".")
        over = node = {}
        for p in parts[:-1]:
            node[p] = {}
            node = node[p]
        node[parts[-1]] = _coerce(value)
        _check(over, TASKS[config["task"]])
        config = _merge(config, over)
    _check(config, TASKS[config["task"]])
    return config


def dump_toml(config: dict) -> str:
    """A TOML text of a config of scalars and one level of tables."""
    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)

    lines = [f"{k} = {scalar(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# -- the spiral task ---------------------------------------------------------------------------
_ACTS = {"relu": "ReLU", "tanh": "Tanh", "silu": "SiLU"}


def _spiral_model(depth, width, activation, seed):
    from torch import nn

    from .tasks import spiral_mlp

    return spiral_mlp(depth, width, getattr(nn, _ACTS[activation]), seed=seed)


def _spiral_setup(config):
    from .tasks import spiral_classification

    d, m = config["data"], config["model"]
    if m["activation"] not in _ACTS:
        raise ConfigError(f"key 'model.activation' must be one of {sorted(_ACTS)}, got {m['activation']!r}")
    train = spiral_classification(d["n_per_class"], seed=d["train_seed"])
    test = spiral_classification(d["n_per_class"], seed=d["test_seed"])
    make = functools.partial(_spiral_model, m["depth"], m["width"], m["activation"])
    return train, test, make


def _new_sampler(config):
    import warnings

    from .wlmc import WLMC

    train, test, make = _spiral_setup(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WLMC(make(config["wlmc"]["seed"]), train, test, loss="bce", metric="accuracy",
                    seed=config["wlmc"]["seed"])


# -- progress --------------------------------------------------------------------------------
class Progress:
    """One status line on stderr: done / total, rate, ETA."""

    def __init__(self, total, unit, enabled=True):
        self.total, self.unit, self.enabled = total, unit, enabled and sys.stderr.isatty() or enabled == "force"
        self.t0 = time.perf_counter()
        self.start = None

    def update(self, done, extra=""):
        if self.start is None:
            self.start = done
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = (done - self.start) / dt if dt > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        sys.stderr.write(f"\r[{bar}] {done:,}/{self.total:,} {self.unit}  {rate:,.0f}/s  ETA {eta:5.0f} s {extra}   ")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")


# -- commands ----------------------------------------------------------------------------------
def _paths(out):
    return {k: os.path.join(out, v) for k, v in dict(config="config.toml", checkpoint="checkpoint.npz",
                                                         landscape="landscape.npz", metrics="metrics.jsonl",
                                                         sgd="sgd.npz", summary="summary.json",
                                                         figure="landscape.png").items()}


def _run_wlmc(sampler, config, paths, progress=True):
    from .wlmc import StageInfo  # noqa: F401

    w = config["wlmc"]
    total = w["stages"] * w["steps_per_stage"]
    bar = Progress(total, "steps", progress)
    t0 = time.perf_counter()
    # Ctrl-C is taken at the next stage boundary (a stage runs inside C++), so that the checkpoint
    # always holds whole stages
    stop = []
    previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        with open(paths["metrics"], "a") as log:
            while sampler.stage < w["stages"]:
                if stop:
                    raise KeyboardInterrupt
                sampler.run_stages(1, w["steps_per_stage"], callback=lambda info: log.write(
                    json.dumps(dict(info.__dict__)) + "\n"))
                log.flush()
                bar.update(sampler.stage * w["steps_per_stage"], f"stage {sampler.stage}/{w['stages']}")
                if sampler.stage % w["checkpoint_every"] == 0:
                    sampler.save(paths["checkpoint"])
    except KeyboardInterrupt:
        bar.close()
        sampler.save(paths["checkpoint"])
        print(f"interrupted at stage {sampler.stage}; checkpoint written. Continue with: "
              f"entropyeng resume {os.path.dirname(paths['checkpoint']) or '.'}", file=sys.stderr)
        raise SystemExit(130)
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    sampler.save(paths["checkpoint"])
    sampler.landscape.save(paths["landscape"])
    return time.perf_counter() - t0


def _run_sgd(config, paths, progress=True):
    from .baselines import sgd_trajectories

    if os.path.exists(paths["sgd"]):
        with np.load(paths["sgd"]) as f:
            return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]
    train, test, make = _spiral_setup(config)
    s = config["sgd"]
    bar = Progress(s["runs"], "SGD runs", progress)
    traj = sgd_trajectories(make, train, test, loss="bce", metric="accuracy", runs=s["runs"], epochs=s["epochs"],
                            lr=s["lr"], batch_size=s["batch_size"], optimizer=s["optimizer"],
                            seed=10_000 + config["wlmc"]["seed"], progress=lambda d, n: bar.update(d))
    bar.close()
    np.savez(paths["sgd"], **{f"run_{k}": t for k, t in enumerate(traj)})
    return traj


def _finish(config, paths, wall, sampler=None):
    from . import analysis
    from .landscape import Landscape
    from .plot import landscape_figure

    landscape = Landscape.load(paths["landscape"])
    traj = _run_sgd(config, paths)
    try:
        adv = analysis.advantage(landscape, traj)
    except ValueError as e:
        adv = dict(error_message=str(e))
    landscape_figure(landscape, paths["figure"], traj, title=f"{config['task']}: entropy landscape")
    steps = int(landscape.meta.get("steps", 0))
    summary = dict(task=config["task"], steps=steps, stages=landscape.meta.get("stages"),
                   wall_seconds=wall, steps_per_second=steps / wall if wall else None, **{
                       k: adv.get(k) for k in ("x", "sgd", "equilibrium", "advantage", "error", "error_message")
                       if k in adv}, figure=os.path.basename(paths["figure"]))
    with open(paths["summary"], "w") as fh:
        json.dump(summary, fh, indent=2)
    print()
    print(f"{'task':12s} {config['task']}")
    print(f"{'steps':12s} {steps:,} in {wall:.1f} s")
    if "advantage" in adv:
        print(f"{'ln L_train':12s} {adv['x']:.3f}   (SGD's best mean test accuracy)")
        print(f"{'SGD':12s} {adv['sgd']:.3f}")
        print(f"{'equilibrium':12s} {adv['equilibrium']:.3f}")
        print(f"{'advantage':12s} {adv['advantage']:+.3f}")
    else:
        print(f"advantage: not available ({adv['error_message']})")
    print(f"files in {os.path.dirname(paths['summary']) or '.'}: config.toml, checkpoint.npz, landscape.npz, "
          f"metrics.jsonl, sgd.npz, summary.json, landscape.png")
    return summary


def cmd_run(args):
    config = load_config(args.source, args.set or [])
    if args.seed is not None:
        config["wlmc"]["seed"] = args.seed
    if args.steps is not None:
        steps = int(float(args.steps))
        if steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {args.steps}")
        per = min(config["wlmc"]["steps_per_stage"], steps)
        config["wlmc"]["steps_per_stage"] = per
        config["wlmc"]["stages"] = max(1, math.ceil(steps / per))
    if args.walkers not in (None, 1):
        raise ConfigError("--walkers: several walkers are not implemented yet (issue: many walkers)")
    out = args.out or os.path.join("runs", config["task"])
    paths = _paths(out)
    if os.path.exists(paths["checkpoint"]) and not args.force:
        raise ConfigError(f"'{out}' already holds a run; use 'entropyeng resume {out}' or --force")
    os.makedirs(out, exist_ok=True)
    for key in ("metrics", "sgd"):
        if os.path.exists(paths[key]):
            os.unlink(paths[key])
    with open(paths["config"], "w") as fh:
        fh.write(dump_toml(config))
    sampler = _new_sampler(config)
    wall = _run_wlmc(sampler, config, paths, progress=not args.quiet)
    return _finish(config, paths, wall)


def cmd_resume(args):
    from .wlmc import WLMC

    paths = _paths(args.dir)
    if not os.path.exists(paths["config"]):
        raise ConfigError(f"'{args.dir}' holds no run (no config.toml)")
    config = load_config(paths["config"])
    if os.path.exists(paths["checkpoint"]):
        sampler = WLMC.load(paths["checkpoint"])
    else:
        sampler = _new_sampler(config)
    print(f"resuming {args.dir} at stage {sampler.stage}/{config['wlmc']['stages']}", file=sys.stderr)
    wall = _run_wlmc(sampler, config, paths, progress=not args.quiet)
    return _finish(config, paths, wall)


def cmd_plot(args):
    paths = _paths(args.dir)
    if not os.path.exists(paths["landscape"]):
        raise ConfigError(f"'{args.dir}' holds no landscape.npz (finish or resume the run first)")
    from .landscape import Landscape
    from .plot import landscape_figure

    traj = None
    if os.path.exists(paths["sgd"]):
        with np.load(paths["sgd"]) as f:
            traj = [f[k] for k in f.files]
    landscape_figure(Landscape.load(paths["landscape"]), paths["figure"], traj)
    print(paths["figure"])


def cmd_bench(args):
    try:
        from bench.__main__ import main as bench_main
    except ImportError:
        raise ConfigError("the benchmarks live in the source tree: run 'entropyeng bench' (or 'python -m bench') "
                          "from the repository root") from None
    bench_main(["--quick"] if args.quick else [])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="entropyeng", description="Entropy landscapes of neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a task (or a TOML config) into a run directory")
    p.add_argument("source", help=f"a task ({', '.join(TASKS)}) or a config .toml")
    p.add_argument("--steps", help="total WLMC steps (e.g. 2e7)")
    p.add_argument("--walkers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run directory (default runs/TASK)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. sgd.runs=20")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("resume", help="continue an interrupted run")
    p.add_argument("dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_resume)
    p = sub.add_parser("plot", help="redraw the figures of a run")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_plot)
    p = sub.add_parser("bench", help="the benchmark table")
    p.add_argument("--quick", action="store_true")
    p.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except ConfigError as e:
        print(f"entropyeng: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
