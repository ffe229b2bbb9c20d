"""A task's run in its directory, locked for the life of the run: the sampler's phase, the SGD
baseline, the summary and the figure. :func:`configure` turns a task (or a TOML config) and the
run's options into a checked configuration; :func:`start` runs it into a directory, :func:`resume`
continues a directory's run from its checkpoint. ``entropyeng run`` and ``entropyeng resume`` are
these three behind a parser; a script calls them directly (:func:`run_landscape`: all in one).

Failures: :class:`ConfigError` for bad input (nothing written), :class:`RunFailed` for a run that
cannot go on (the directory keeps its last periodic checkpoint), :class:`Interrupted` for Ctrl-C
(the checkpoint written)."""

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
from .build import apply_steps, apply_threads, build_problem, load_sampler, loop_plan, new_sampler
from .config import ConfigError, dump_toml, load_config
from .loop import Interrupted, Progress, duration, run_sampler
from .rundir import RunLock, check_out_dir, run_digest, run_files, run_paths

__all__ = ["configure", "start", "resume", "run_landscape", "header", "RunFailed", "Interrupted"]


class RunFailed(RuntimeError):
    """A run that cannot go on (a walker lost beyond recovery, a rank gone); ``hint`` says what
    usually helps. The run directory keeps its last periodic checkpoint."""

    def __init__(self, message, hint=""):
        super().__init__(message)
        self.hint = hint


def _batch_sizes(sgd) -> list:
    """The SGD baseline's batch sizes: ``sgd.batch_size`` and ``sgd.more_batch_sizes``."""
    from ..tasks.catalog import parse_ints

    try:
        return [sgd["batch_size"]] + list(parse_ints(sgd["more_batch_sizes"], "sgd.more_batch_sizes")
                                          if sgd.get("more_batch_sizes") else [])
    except TaskError as e:
        raise ConfigError(str(e)) from None


def read_sgd_runs(path):
    """``(runs, problem)``: the SGD runs of a run's sgd.npz (each an (n, 2) float64 array of ln train
    loss and test metric, in run order) and None, or the runs that are whole and a line saying what
    was left out or why none could be read (a truncated zip, a text file, object arrays)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            names = sorted(f.files, key=lambda k: (0, int(k.split("_")[1])) if k.startswith("run_")
                           and k.split("_")[1].isdigit() else (1, k))
            runs = [np.asarray(f[k], dtype=np.float64) for k in names]
    except Exception as e:  # noqa: BLE001 (whatever np.load raises on a file that is not a run's)
        return [], f"sgd.npz cannot be read ({type(e).__name__})"
    good = [r for r in runs if r.ndim == 2 and r.shape[1] == 2 and r.shape[0] > 0]  # (a diverged run's NaN is a result)
    if not runs or len(good) < len(runs):
        return good, (f"{len(runs) - len(good)} of the {len(runs)} SGD runs in sgd.npz are not (n, 2) arrays"
                      if runs else "sgd.npz holds no SGD runs")
    return good, None


def _run_sgd(config, problem, paths, progress=True):
    from ..analysis.baselines import sgd_trajectories

    if os.path.exists(paths["sgd"]):
        runs, problem_text = read_sgd_runs(paths["sgd"])
        if problem_text is None:
            return runs
        print(f"entropyeng: {paths['sgd']}: {problem_text}: the SGD baseline runs again", file=sys.stderr)
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
                   n_params=sum(p.numel() for p in model.parameters()), steps=steps, steps_run=steps_run, walkers=walkers,
                   wall_seconds=wall, steps_per_second=steps_run / walkers / wall if wall else None,
                   walker_steps_per_second=steps_run / wall if wall else None, **{
                       k: adv.get(k) for k in ("x", "sgd", "equilibrium", "advantage", "error", "error_message")
                       if k in adv}, shared_gap=gap, sgd_curve=readout, readouts=readouts,
                   figure=os.path.basename(paths["figure"]), y_label=problem.y_label, higher_is_better=better)
    write_atomic(paths["summary"], json_bytes(summary))
    return summary


def _advance(sampler, config, problem, paths, quiet):
    from ..wlmd import WLMDError

    try:
        return run_sampler(sampler, paths, progress=not quiet, **loop_plan(config, sampler))
    except WLMDError as e:
        raise RunFailed(str(e), "a smaller time step (--set wlmd.dt=...) or wider grid usually helps; the run "
                                "directory keeps its last periodic checkpoint") from None
    except RuntimeError as e:
        if not str(e).startswith("distributed:"):
            raise
        raise RunFailed(str(e), "the run directory keeps its last periodic checkpoint: entropyeng resume (under "
                                "torchrun with the same number of processes) continues from there") from None


def _baseline_seconds(config, problem):
    """The SGD baseline's wall time, measured the way the baseline runs: one epoch of one run on one
    torch thread (as each worker of the pool), after a warm-up epoch that pays for torch's first
    calls, times epochs x runs x batch sizes over the processes that run them. (Timed on the
    process's own threads, a small model's epoch beside another CPU job read 100x too long.)"""
    from ..analysis.baselines import train_one
    from ..wlmd.runners import torch_threads

    s = config["sgd"]

    def epoch_seconds(train, test):
        t0 = time.perf_counter()
        train_one(problem.make_model, train, test, loss=problem.loss, metric=problem.metric, epochs=1, lr=s["lr"],
                  batch_size=s["batch_size"], optimizer=s["optimizer"], seed=0)
        return time.perf_counter() - t0

    on_gpu = str(config.get("model", {}).get("device", "cpu")).startswith("cuda")
    b = int(s["batch_size"])
    try:
        with torch_threads(None if on_gpu else 1):
            # the warm-up: one batch, which pays for torch's first calls (2-3 s of imports and set-up,
            # once: timed into an epoch of the spiral it read 200x too long)
            epoch_seconds(tuple(a[:b] for a in problem.train), tuple(a[:b] for a in problem.test))
            epoch = epoch_seconds(problem.train, problem.test)
            if epoch < 0.5:  # a short epoch: the median of three (the runs share the cores with whatever runs)
                epoch = sorted([epoch, *(epoch_seconds(problem.train, problem.test) for _ in range(2))])[1]
    except Exception:  # noqa: BLE001 (an estimate; the baseline itself reports its own errors)
        return None
    procs = 1 if on_gpu else min(os.cpu_count() or 1, s["runs"])
    return epoch * s["runs"] * len(_batch_sizes(s)) * s["epochs"] / procs


def header(config, out, problem=None, resuming=None) -> str:
    """The lines a run starts with (stderr, and the top of a batch job's log): versions and machine,
    the task and its run directory, the budget of both phases and the key that shrinks each, threads."""
    import platform

    import torch

    from .. import __version__
    from ..kernels import backends

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


def configure(source, sets=(), data=None, seed=None, steps=None, walkers=None, threads=None):
    """``(config, notes)``: the checked configuration of a task name or a TOML file, with ``--set``
    overrides (``sets``), a data path, and the run's options (``None``: the config's own); ``notes``
    are lines worth telling the user (the SGD baseline scaled with the budget). ``threads`` also
    sets torch's intra-op threads of this process."""
    explicit = set()
    config = load_config(source, sets or [], data=data, explicit=explicit)
    section = "wlmc" if "wlmc" in config else "wlmd"
    if seed is not None:
        if not 0 <= seed <= 2**63 - 1:
            raise ConfigError(f"--seed must be in [0, 2^63 - 1], got {seed}")
        config[section]["seed"] = seed
    notes = []
    if steps is not None:
        note = apply_steps(config, steps, keep_sgd_runs="sgd.runs" in explicit)
        if note:
            notes.append(note)
    if walkers is not None:
        if walkers < 1:
            raise ConfigError(f"--walkers must be >= 1, got {walkers}")
        config[section]["walkers"] = walkers
    apply_threads(config, section, threads)
    return config, notes


def start(config, out=None, force=False, quiet=False, notes=()):
    """Run ``config`` into the directory ``out`` (default ``runs/TASK``): the sampler's phase, the
    SGD baseline, the summary (returned; None on a rank other than 0) and the figure. A directory
    that holds a run, or files that are not a run's, is refused unless ``force`` (which replaces
    only the files a run writes)."""
    problem = build_problem(config)
    if out is not None and not str(out).strip():
        raise ConfigError("--out: expected a directory, got an empty path")
    out = out or os.path.join("runs", config["task"])
    paths = run_paths(out)
    lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 writes the files
    with contextlib.ExitStack() as stack:
        if lead:
            if os.path.exists(out) and not os.path.isdir(out):
                raise ConfigError(f"--out: '{out}' is a file, not a directory")
            os.makedirs(out, exist_ok=True)
            stack.enter_context(RunLock(out))  # one run per directory, before anything in it changes
            try:
                replace = check_out_dir(out, paths, force)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if replace:
                print(f"entropyeng: --force: replacing {', '.join(replace)} in '{out}'"
                      + ("; other files are kept" if set(os.listdir(out)) - run_files(paths) else ""), file=sys.stderr)
            for name in replace:
                os.unlink(os.path.join(out, name))
            remove_stale_temporaries(out)
            write_atomic(paths["config"], dump_toml(config).encode())
            if not quiet:
                print(header(config, out, problem), file=sys.stderr, flush=True)
            for note in notes:
                print(f"entropyeng: {note}", file=sys.stderr)
        try:
            sampler = new_sampler(config, problem)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        sampler.run_meta = {"run_digest": run_digest(config, problem)}
        wall, steps_run = _advance(sampler, config, problem, paths, quiet)
        if not lead:
            return None
        return _finish(config, problem, paths, wall, steps_run, progress=not quiet)


def run_landscape(task, out, sets=(), steps=None, quiet=True, force=False):
    """``entropyeng run TASK --out OUT --set KEY=VALUE... [--steps N] --threads 1 [--force]`` from
    Python (the landscape a harvest needs); returns the summary. ConfigError for bad input (a
    directory holding another run without ``force``), RunFailed for a failed run."""
    config, notes = configure(task, sets, steps=steps, threads=1)
    return start(config, out, force=force, quiet=quiet, notes=notes)


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
        last = math.ceil(config["wlmd"]["steps"] / int(getattr(sampler, "deposits_per_step", 1)))  # as the run loop's clock
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


def resume(out, threads=None, trust=False, quiet=False):
    """Continue the run in the directory ``out`` from its checkpoint (from the start when it has
    none) to the end of its budget; returns the summary (None on a rank other than 0). A checkpoint
    is checked against config.toml and the data before anything of the run is touched; one without
    the digest that ties it to its run is refused unless ``trust``."""
    paths = run_paths(out)
    if not os.path.isdir(out):
        raise ConfigError(f"'{out}' holds no run (no such directory)")
    with contextlib.ExitStack() as stack:
        if int(os.environ.get("RANK", "0")) == 0:
            stack.enter_context(RunLock(out))  # one run per directory, before anything is read
        if not os.path.exists(paths["config"]):
            raise ConfigError(f"'{out}' holds no run (no config.toml)")
        return _resume(out, paths, threads, trust, quiet)


def _resume(out, paths, threads, trust, quiet):
    config = load_config(paths["config"])
    apply_threads(config, "wlmc" if "wlmc" in config else "wlmd", threads)
    problem = build_problem(config)
    if os.path.exists(paths["checkpoint"]):
        sampler = _load_checked(config, problem, paths["checkpoint"], trust=trust)
    else:
        sampler = new_sampler(config, problem)
    sampler.run_meta = {"run_digest": run_digest(config, problem)}
    done = sampler.walker_steps
    if getattr(sampler, "rank", 0) == 0:
        remove_stale_temporaries(out)
        _trim_metrics(paths["metrics"], sampler, problem)
    total = loop_plan(config, sampler)["total"]
    print(header(config, out, problem, resuming=f"step {done:,}/{total:,}") if not quiet
          else f"resuming {out} at step {done:,}/{total:,}", file=sys.stderr)
    wall, steps_run = _advance(sampler, config, problem, paths, quiet)
    if getattr(sampler, "rank", 0) != 0:
        return None
    return _finish(config, problem, paths, wall, steps_run, progress=not quiet)
