"""``entropyeng run`` and ``entropyeng resume``: a run directory from a task or a config, locked for
the life of the run; the sampler's phase, the SGD baseline, the summary and the figure."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time

import numpy as np

from .._io import json_bytes, remove_stale_temporaries, savez_atomic, write_atomic
from ..tasks.catalog import TaskError
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    _apply_steps,
    _apply_threads,
    _build,
    _paths,
    run_digest,
)
from .config import ConfigError, dump_toml, load_config
from .rundir import RunLock, check_out_dir, run_files

__all__ = ["cmd_run", "cmd_resume", "header", "run_landscape"]


def _batch_sizes(sgd) -> list:
    """The SGD baseline's batch sizes: ``sgd.batch_size`` and ``sgd.more_batch_sizes``."""
    from ..tasks.catalog import parse_ints

    try:
        return [sgd["batch_size"]] + list(parse_ints(sgd["more_batch_sizes"], "sgd.more_batch_sizes")
                                          if sgd.get("more_batch_sizes") else [])
    except TaskError as e:
        raise ConfigError(str(e)) from None


def _run_sgd(config, problem, paths, progress=True):
    from ..analysis.baselines import sgd_trajectories
    from .runloop import Progress

    if os.path.exists(paths["sgd"]):
        with np.load(paths["sgd"], allow_pickle=False) as f:
            return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]
    s = config["sgd"]
    seed = config["wlmc" if "wlmc" in config else "wlmd"]["seed"]
    sizes = _batch_sizes(s)
    bar = Progress(s["runs"] * len(sizes), "SGD runs", progress)
    traj = []
    for n, batch in enumerate(sizes):  # `runs` runs for each batch size, seeds kept apart
        done = len(traj)
        traj += sgd_trajectories(problem.make_model, problem.train, problem.test, loss=problem.loss,
                                 metric=problem.metric, runs=s["runs"], epochs=s["epochs"], lr=s["lr"],
                                 batch_size=batch, optimizer=s["optimizer"], seed=10_000 + seed + 1000 * n,
                                 progress=lambda d, _n: bar.update(done + d))
    bar.close()
    savez_atomic(paths["sgd"], **{f"run_{k}": t for k, t in enumerate(traj)})
    return traj


def _finish(config, problem, paths, wall, steps_run, progress=True):
    from .. import analysis
    from ..analysis.plot import landscape_figure
    from ..landscape import Landscape

    landscape = Landscape.load(paths["landscape"])
    traj = _run_sgd(config, problem, paths, progress)
    readout = config["sgd"].get("curve", "mean")
    better = problem.higher_is_better

    def compare(curve, sgd_readout):
        try:
            a = analysis.advantage(landscape, traj, higher_is_better=better, curve=curve, sgd_readout=sgd_readout)
        except ValueError as e:
            a = dict(error_message=str(e))
        try:
            gap = analysis.shared_gap(landscape, traj, higher_is_better=better, curve=curve, sgd_readout=sgd_readout)
        except ValueError:
            gap = None
        return a, gap

    adv, gap = compare(problem.curve, readout)
    readouts = {}
    for curve in ("equilibrium", "max_entropy"):  # every readout, for the record (the figure draws the paper's)
        for sgd_readout in ("mean", "best"):
            a, g = compare(curve, sgd_readout)
            readouts[f"{curve}_vs_sgd_{sgd_readout}"] = dict(
                {k: a.get(k) for k in ("x", "sgd", "equilibrium", "advantage", "error_message") if k in a},
                shared_gap=g)
    landscape_figure(landscape, paths["figure"], traj, title=f"{config['task']} ({problem.label})",
                     curve=problem.curve, y_label=problem.y_label, sgd_readout=readout, higher_is_better=better)
    # steps: walker-steps in all (the schedule's clock), whatever the number of walkers
    steps = int(landscape.meta.get("walker_steps", landscape.meta.get("steps", 0)))
    model = problem.make_model(0)
    walkers = int(landscape.meta.get("walkers", 1)) * int(landscape.meta.get("world_size", 1))
    summary = dict(task=config["task"], label=problem.label, metric=problem.metric, curve=problem.curve,
                   n_params=sum(p.numel() for p in model.parameters()), steps=steps, walkers=walkers,
                   wall_seconds=wall, steps_per_second=steps_run / walkers / wall if wall else None,
                   walker_steps_per_second=steps_run / wall if wall else None, **{
                       k: adv.get(k) for k in ("x", "sgd", "equilibrium", "advantage", "error", "error_message")
                       if k in adv}, shared_gap=gap, sgd_curve=readout, readouts=readouts,
                   figure=os.path.basename(paths["figure"]))
    write_atomic(paths["summary"], json_bytes(summary))
    what = problem.y_label
    print()
    print(f"{'task':12s} {config['task']} ({problem.label}, {summary['n_params']:,} parameters)")
    print(f"{'steps':12s} {steps:,} ({steps_run:,} in {wall:.1f} s)")
    if "advantage" in adv:
        print(f"{'ln L_train':12s} {adv['x']:.3f}   (SGD's best mean {what})")
        print(f"{'SGD':12s} {adv['sgd']:.3f}")
        print(f"{problem.curve.replace('_', '-'):12s} {adv['equilibrium']:.3f}")
        print(f"{'advantage':12s} {adv['advantage']:+.3f}   ({'higher' if problem.higher_is_better else 'lower'} "
              f"{what} than SGD when positive)")
    else:
        print(f"advantage: not available ({adv['error_message']})")
    if gap is not None:
        print(f"{'shared gap':12s} {gap['gap']:+.3f}   (mean over the {gap['cells']} train-loss cells both curves cover, "
              f"ln L {gap['x_min']:.2f} to {gap['x_max']:.2f}; positive: the landscape generalises better)")
    print(f"files in {os.path.dirname(paths['summary']) or '.'}: config.toml, checkpoint.npz, landscape.npz, "
          f"metrics.jsonl, sgd.npz, summary.json, landscape.png")
    return summary


def _advance(sampler, config, problem, paths, quiet):
    from ..wlmd import WLMDError
    from .runloop import Interrupted, run_wlmc, run_wlmd

    try:
        if problem.sampler == "wlmc":
            return run_wlmc(sampler, config, paths, progress=not quiet)
        return run_wlmd(sampler, config, paths, progress=not quiet)
    except Interrupted:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except WLMDError as e:
        print(f"entropyeng: {e}", file=sys.stderr)
        print("a smaller time step (--set wlmd.dt=...) or wider grid usually helps; the run directory "
              "keeps its last periodic checkpoint", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    except RuntimeError as e:
        if not str(e).startswith("distributed:"):
            raise
        print(f"entropyeng: {e}", file=sys.stderr)
        print("the run directory keeps its last periodic checkpoint: entropyeng resume (under torchrun with "
              "the same number of processes) continues from there", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None


def _baseline_seconds(config, problem):
    """The SGD baseline's wall time, from one epoch of one run timed now (the runs share the cores)."""
    from ..analysis.baselines import train_one

    s = config["sgd"]
    try:
        for _ in range(2):  # a second epoch when the first was short: it paid for torch's first calls
            t0 = time.perf_counter()
            train_one(problem.make_model, problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                      epochs=1, lr=s["lr"], batch_size=s["batch_size"], optimizer=s["optimizer"], seed=0)
            epoch = time.perf_counter() - t0
            if epoch > 2.0:  # a large task: one epoch is estimate enough, and a second would delay the run
                break
    except Exception:  # noqa: BLE001 (an estimate; the baseline itself reports its own errors)
        return None
    procs = 1 if str(config.get("model", {}).get("device", "cpu")).startswith("cuda") else min(
        os.cpu_count() or 1, s["runs"])
    return epoch * s["runs"] * len(_batch_sizes(s)) * s["epochs"] / procs


def header(config, out, problem=None, resuming=None) -> str:
    """The lines a run starts with (stderr, and the top of a batch job's log): versions and machine,
    the task and its run directory, the budget of both phases and the key that shrinks each, threads."""
    import platform

    import torch

    from .. import __version__
    from ..kernels import backends
    from .runloop import duration

    core = backends.core()
    section = "wlmc" if "wlmc" in config else "wlmd"
    w, s = config[section], config.get("sgd", {})
    steps = w["stages"] * w["steps_per_stage"] if section == "wlmc" else w["steps"]
    lines = [f"entropyeng {__version__}, torch {torch.__version__}, kernels {getattr(core, 'cpu_isa', 'none')}, "
             f"{platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M:%S')}",
             f"run      {config['task']} -> {out}" + (f" (resuming at {resuming})" if resuming else ""),
             f"budget   {steps:.3g} walker-steps of {section.upper()} (--steps)"]
    if s:
        estimate = _baseline_seconds(config, problem) if problem is not None else None
        lines.append(f"baseline {s.get('runs')} SGD runs x {len(_batch_sizes(s))} batch size(s) x {s.get('epochs')} "
                     "epochs, after the landscape" + (f", about {duration(estimate)}" if estimate else "")
                     + " (sgd.runs, sgd.epochs)")
    threads = w.get("threads") or "auto"
    lines.append(f"threads  torch {torch.get_num_threads()}, sampler {threads}")
    return "\n".join(lines)


def cmd_run(args):
    from .runloop import new_sampler

    explicit = set()
    config = load_config(args.source, args.set or [], data=args.data, explicit=explicit)
    section = "wlmc" if "wlmc" in config else "wlmd"
    if args.seed is not None:
        if not 0 <= args.seed <= 2**63 - 1:
            raise ConfigError(f"--seed must be in [0, 2^63 - 1], got {args.seed}")
        config[section]["seed"] = args.seed
    note = None
    if args.steps is not None:
        note = _apply_steps(config, args.steps, keep_sgd_runs="sgd.runs" in explicit)
    if args.walkers is not None:
        if args.walkers < 1:
            raise ConfigError(f"--walkers must be >= 1, got {args.walkers}")
        config[section]["walkers"] = args.walkers
    _apply_threads(config, section, args.threads)
    problem = _build(config)
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out: expected a directory, got an empty path")
    out = args.out or os.path.join("runs", config["task"])
    paths = _paths(out)
    lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 writes the files
    with contextlib.ExitStack() as stack:
        if lead:
            if os.path.exists(out) and not os.path.isdir(out):
                raise ConfigError(f"--out: '{out}' is a file, not a directory")
            os.makedirs(out, exist_ok=True)
            stack.enter_context(RunLock(out))  # one run per directory, before anything in it changes
            try:
                replace = check_out_dir(out, paths, args.force)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if replace:
                print(f"entropyeng: --force: replacing {', '.join(replace)} in '{out}'"
                      + ("; other files are kept" if set(os.listdir(out)) - run_files(paths) else ""), file=sys.stderr)
            for name in replace:
                os.unlink(os.path.join(out, name))
            remove_stale_temporaries(out)
            write_atomic(paths["config"], dump_toml(config).encode())
            if not args.quiet:
                print(header(config, out, problem), file=sys.stderr, flush=True)
            if note:
                print(f"entropyeng: {note}", file=sys.stderr)
        try:
            sampler = new_sampler(config, problem)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        sampler.run_meta = {"run_digest": run_digest(config, problem)}
        wall, steps_run = _advance(sampler, config, problem, paths, args.quiet)
        if not lead:
            return None
        return _finish(config, problem, paths, wall, steps_run, progress=not args.quiet)


def run_landscape(task, out, sets=(), steps=None, quiet=True, force=False):
    """``entropyeng run TASK --out OUT --set KEY=VALUE... [--steps N] --threads 1 [--force]`` from
    Python (the landscape a harvest needs): ConfigError for bad input (a directory holding another
    run without ``force``), SystemExit for a failed run."""
    import argparse

    args = argparse.Namespace(source=task, set=list(sets), data=None, seed=None, steps=steps, walkers=None, threads=1,
                              out=out, force=force, quiet=quiet)
    return cmd_run(args)


def _checkpoint_meta(path) -> dict:
    """The metadata of a checkpoint file, or a one-line ConfigError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "__meta__" not in f.files:
                raise ConfigError(f"{path}: not an entropyeng checkpoint (no metadata)")
            return json.loads(bytes(f["__meta__"]).decode())
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 (a truncated zip, a wrong file: whatever np.load raises)
        raise ConfigError(f"{path}: cannot be read as a checkpoint ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None


def _load_checked(config, problem, path, trust=False):
    """The sampler of a checkpoint, checked against this run; every failure is one line naming the
    file (and the field where known), and nothing of the run is touched. A checkpoint without the
    digest that ties it to its run is refused unless ``trust``."""
    from .runloop import load_sampler

    meta = _checkpoint_meta(path)
    digest = run_digest(config, problem)
    if "run_digest" not in meta and not trust:
        raise ConfigError(f"{path}: field 'run_digest' is missing, so nothing ties this checkpoint to config.toml "
                          f"and the data; 'entropyeng resume {os.path.dirname(path) or '.'} --trust' continues from "
                          "it anyway (its state is still checked against the run)")
    if "run_digest" in meta and meta["run_digest"] != digest:
        raise ConfigError(f"{path}: field 'run_digest' does not match config.toml and the data: the checkpoint "
                          "belongs to another run (model, seed, grid or data differ)")
    try:
        sampler = load_sampler(config, problem, path)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 (a missing or malformed field: one line, not a traceback)
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        field = f"field {e.args[0]!r}" if isinstance(e, KeyError) else f"{type(e).__name__}: {msg}"
        raise ConfigError(f"{path}: cannot continue from this checkpoint ({field})") from None
    if problem.sampler == "wlmc":
        if not 0 <= sampler.stage <= config["wlmc"]["stages"]:
            raise ConfigError(f"{path}: field 'stage' is {sampler.stage}, outside this run's 0..{config['wlmc']['stages']}")
    else:
        last = math.ceil(config["wlmd"]["steps"] / int(getattr(sampler, "deposits_per_step", 1)))  # as run_wlmd
        if not 0 <= sampler.t <= last:
            raise ConfigError(f"{path}: field 't' is {sampler.t}, outside this run's 0..{last} steps")
    return sampler


def _trim_metrics(path, sampler, problem):
    """Drop the metrics lines of stages or steps after the checkpoint (written before an interrupt
    that the checkpoint does not hold): a resumed run writes them again."""
    if not os.path.exists(path):
        return
    key, limit = ("stage", sampler.stage - 1) if problem.sampler == "wlmc" else ("step", sampler.t)
    keep = []
    with open(path) as fh:
        for line in fh:
            try:
                if json.loads(line).get(key, -1) <= limit:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except json.JSONDecodeError:
                continue  # a line cut by a kill
    write_atomic(path, "".join(keep).encode())


def cmd_resume(args):
    paths = _paths(args.dir)
    if not os.path.isdir(args.dir):
        raise ConfigError(f"'{args.dir}' holds no run (no such directory)")
    with contextlib.ExitStack() as stack:
        if int(os.environ.get("RANK", "0")) == 0:
            stack.enter_context(RunLock(args.dir))  # one run per directory, before anything is read
        if not os.path.exists(paths["config"]):
            raise ConfigError(f"'{args.dir}' holds no run (no config.toml)")
        return _resume(args, paths)


def _resume(args, paths):
    from .runloop import new_sampler, total_steps

    config = load_config(paths["config"])
    _apply_threads(config, "wlmc" if "wlmc" in config else "wlmd", args.threads)
    problem = _build(config)
    if os.path.exists(paths["checkpoint"]):
        sampler = _load_checked(config, problem, paths["checkpoint"], trust=getattr(args, "trust", False))
    else:
        sampler = new_sampler(config, problem)
    sampler.run_meta = {"run_digest": run_digest(config, problem)}
    done = (sampler.stage * config["wlmc"]["steps_per_stage"] if problem.sampler == "wlmc"
            else sampler.t * int(getattr(sampler, "deposits_per_step", 1)))
    if problem.sampler == "wlmc" and config["wlmc"]["walkers"] > 1:
        done *= config["wlmc"]["walkers"]
    if getattr(sampler, "rank", 0) == 0:
        remove_stale_temporaries(args.dir)
        _trim_metrics(paths["metrics"], sampler, problem)
    print(header(config, args.dir, problem, resuming=f"step {done:,}/{total_steps(config):,}") if not args.quiet
          else f"resuming {args.dir} at step {done:,}/{total_steps(config):,}", file=sys.stderr)
    wall, steps_run = _advance(sampler, config, problem, paths, args.quiet)
    if getattr(sampler, "rank", 0) != 0:
        return None
    return _finish(config, problem, paths, wall, steps_run, progress=not args.quiet)
