"""The ``entropyeng`` command: run / resume / plot / compare / tasks / bench.

    entropyeng run spiral                      # the demo: landscape, SGD baseline, summary, figure
    entropyeng run house --steps 2e5           # any task of `entropyeng tasks`
    entropyeng run cifar --data ~/cifar-10-batches-py
    entropyeng run CONFIG.toml --out DIR       # a task from a TOML config
    entropyeng run spiral --steps 2e7 --set sgd.runs=20
    entropyeng resume DIR                      # continue an interrupted run
    entropyeng plot DIR                        # redraw the figure of a run
    entropyeng compare DIR... --out FIG.png    # Fig. 1b: equilibrium vs SGD across runs
    entropyeng bench                           # the benchmark table (from the source tree)
    entropyeng train spiral --method maxent --target-loss 0.15   # a max-entropy network at that train loss
    entropyeng md digits --kT 0.005            # plain Langevin dynamics: the paper's Fig. 4
    entropyeng run house --walkers 8           # 8 WLMD walkers sharing one landscape
    torchrun --standalone --nproc_per_node 2 -m entropyeng run house --walkers 4   # 2 processes x 4 walkers

A run directory holds config.toml, checkpoint.npz (atomic), landscape.npz, metrics.jsonl, sgd.npz,
summary.json and landscape.png. Ctrl-C writes a checkpoint and exits; ``resume`` picks up there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys

import numpy as np

from ._config import ConfigError, dump_toml, load_config
from ._io import json_bytes, remove_stale_temporaries, savez_atomic, write_atomic
from ._rundir import RunLock, RunLocked, check_out_dir, run_files
from .tasks.catalog import DATA_FILES, TASKS, TaskError

__all__ = ["main", "load_config", "ConfigError", "TASKS"]

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _paths(out):
    return {k: os.path.join(out, v) for k, v in dict(config="config.toml", checkpoint="checkpoint.npz",
                                                         landscape="landscape.npz", metrics="metrics.jsonl",
                                                         sgd="sgd.npz", summary="summary.json",
                                                         figure="landscape.png").items()}


def _build(config):
    from .tasks.catalog import build

    try:
        return build(config)
    except TaskError as e:
        raise ConfigError(str(e)) from None


def _run_sgd(config, problem, paths, progress=True):
    from ._runloop import Progress
    from .baselines import sgd_trajectories

    if os.path.exists(paths["sgd"]):
        with np.load(paths["sgd"], allow_pickle=False) as f:
            return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]
    s = config["sgd"]
    seed = config["wlmc" if "wlmc" in config else "wlmd"]["seed"]
    sizes = [s["batch_size"]]
    if s.get("more_batch_sizes"):
        from .tasks.catalog import parse_ints

        try:
            sizes += list(parse_ints(s["more_batch_sizes"], "sgd.more_batch_sizes"))
        except TaskError as e:
            raise ConfigError(str(e)) from None
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
    from . import analysis
    from .landscape import Landscape
    from .plot import landscape_figure

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
    from ._runloop import Interrupted, run_wlmc, run_wlmd
    from .wlmd import WLMDError

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


def _apply_steps(config, steps_arg):
    try:
        steps = int(float(steps_arg))
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--steps must be a number of walker-steps (e.g. 2e7), got {steps_arg!r}") from None
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps_arg}")
    if "wlmc" in config:
        per = min(config["wlmc"]["steps_per_stage"], steps)
        config["wlmc"]["steps_per_stage"] = per
        config["wlmc"]["stages"] = max(1, math.ceil(steps / per))
    else:
        # Eq. 4's t1, t2, t3 keep their fractions of the budget
        w = config["wlmd"]
        ratio = steps / w["steps"]
        for key in ("t1", "t2", "t3"):
            w[key] = w[key] * ratio
        w["steps"] = steps
        w["checkpoint_every"] = min(w["checkpoint_every"], steps)


def _apply_threads(config, section, threads):
    """--threads N: torch's intra-op threads for the whole command (SGD included) and the WLMD step."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    if section == "wlmd":
        config["wlmd"]["threads"] = threads


def cmd_run(args):
    from ._runloop import new_sampler

    config = load_config(args.source, args.set or [], data=args.data)
    section = "wlmc" if "wlmc" in config else "wlmd"
    if args.seed is not None:
        config[section]["seed"] = args.seed
    if args.steps is not None:
        _apply_steps(config, args.steps)
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
        try:
            sampler = new_sampler(config, problem)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        sampler.run_meta = {"run_digest": run_digest(config, problem)}
        wall, steps_run = _advance(sampler, config, problem, paths, args.quiet)
        if not lead:
            return None
        return _finish(config, problem, paths, wall, steps_run, progress=not args.quiet)


# keys that set a run's budget or its speed, not its trajectory: a resume may change them
_NOT_IN_DIGEST = {"wlmc": {"stages", "checkpoint_every"},
                  "wlmd": {"steps", "checkpoint_every", "report_every", "threads", "compile", "sync_every"},
                  "data": {"path"}, "model": {"device"}}


def run_digest(config, problem) -> str:
    """A digest of what decides a run's trajectory: its configuration (less the budget, the SGD
    baseline and the data's file path) and its data arrays. A checkpoint carries it; resume refuses
    a checkpoint whose digest differs (another model, seed, grid or data)."""
    import hashlib

    cfg = {k: ({kk: vv for kk, vv in v.items() if kk not in _NOT_IN_DIGEST.get(k, ())} if isinstance(v, dict) else v)
           for k, v in config.items() if k != "sgd"}
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
    for part in (problem.train, problem.test):
        for a in part:
            arr = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:32]


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


def _load_checked(config, problem, path):
    """The sampler of a checkpoint, checked against this run; every failure is one line naming the
    file (and the field where known), and nothing of the run is touched."""
    from ._runloop import load_sampler

    meta = _checkpoint_meta(path)
    digest = run_digest(config, problem)
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
    from ._runloop import new_sampler, total_steps

    config = load_config(paths["config"])
    _apply_threads(config, "wlmc" if "wlmc" in config else "wlmd", args.threads)
    problem = _build(config)
    if os.path.exists(paths["checkpoint"]):
        sampler = _load_checked(config, problem, paths["checkpoint"])
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
    print(f"resuming {args.dir} at step {done:,}/{total_steps(config):,}", file=sys.stderr)
    wall, steps_run = _advance(sampler, config, problem, paths, args.quiet)
    if getattr(sampler, "rank", 0) != 0:
        return None
    return _finish(config, problem, paths, wall, steps_run, progress=not args.quiet)


def cmd_plot(args):
    from .landscape import Landscape
    from .plot import landscape_figure
    from .tasks.catalog import metric_of

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
    from .analysis import combine_summaries
    from .plot import advantage_figure

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


def cmd_tasks(args):
    from .tasks.catalog import metric_of

    for name, cfg in TASKS.items():
        sampler = "WLMC" if "wlmc" in cfg else "WLMD"
        steps = cfg["wlmc"]["stages"] * cfg["wlmc"]["steps_per_stage"] if "wlmc" in cfg else cfg["wlmd"]["steps"]
        print(f"{name:18s} {sampler}  {metric_of(name):8s}  default {steps:.0e} steps"
              + (f"\n{'':18s} --data: {DATA_FILES[name]}" if name in DATA_FILES else ""))


def cmd_bench(args):
    try:
        from bench.__main__ import main as bench_main
    except ImportError:
        raise ConfigError("the benchmarks live in the source tree: run 'entropyeng bench' (or 'python -m bench') "
                          "from the repository root") from None
    bench_main(["--quick"] if args.quick else [])


def main(argv=None):
    from . import __version__

    parser = argparse.ArgumentParser(prog="entropyeng", description="Entropy landscapes of neural networks.")
    parser.add_argument("--version", action="version", version=f"entropyeng {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a task (or a TOML config) into a run directory")
    p.add_argument("source", help=f"a task ({', '.join(TASKS)}) or a config .toml")
    p.add_argument("--steps", help="the budget in walker-steps, over all walkers (e.g. 2e7: with 4 walkers 5e6 "
                                   "each); for WLMD the schedule's t1, t2, t3 scale with it")
    p.add_argument("--walkers", type=int, help="WLMD: walkers per process sharing the landscape (under torchrun: "
                                                "per rank, all ranks sharing one landscape); WLMC: replica-exchange "
                                                "walkers (wlmc.windows windows)")
    p.add_argument("--seed", type=int, help="the sampler's seed")
    p.add_argument("--threads", type=int, help="torch's intra-op threads (default: 1 for small WLMD models, where "
                                               "more threads only add synchronisation; torch's own otherwise)")
    p.add_argument("--data", help="a local data file or folder (digits: MNIST; cifar; polymer)")
    p.add_argument("--out", help="run directory (default runs/TASK)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. sgd.runs=20")
    p.add_argument("--force", action="store_true", help="start again in a directory that holds a run or other "
                                                         "files: replaces only the files a run writes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("resume", help="continue an interrupted run")
    p.add_argument("dir", help="the run directory")
    p.add_argument("--threads", type=int, help="torch's intra-op threads (see run --threads)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_resume)
    p = sub.add_parser("plot", help="redraw the figure of a run")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_plot)
    p = sub.add_parser("compare", help="Fig. 1b: equilibrium vs SGD across finished runs (error bars over "
                                       "runs of the same network, e.g. independent data sets)")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default="compare.png")
    p.add_argument("--title")
    p.set_defaults(fn=cmd_compare)
    from ._train_cmd import add_parser as add_train_parser

    add_train_parser(sub, TASKS)
    from ._md_cmd import add_parser as add_md_parser

    add_md_parser(sub, TASKS)
    p = sub.add_parser("tasks", help="list the tasks")
    p.set_defaults(fn=cmd_tasks)
    p = sub.add_parser("bench", help="the benchmark table")
    p.add_argument("--quick", action="store_true")
    p.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    handler = _log_to_stderr(quiet=getattr(args, "quiet", False))
    try:
        args.fn(args)
        _leave_process_group()
    except ConfigError as e:
        print(f"entropyeng: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RunLocked as e:
        print(f"entropyeng: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except SystemExit as e:
        return e.code
    except KeyboardInterrupt:  # outside the samplers' deferred Ctrl-C (the SGD phase, set-up)
        where = getattr(args, "dir", None) or getattr(args, "out", None)
        print("entropyeng: interrupted" + (f"; 'entropyeng resume {where}' continues (finished phases are kept)"
                                          if args.command in ("run", "resume") and where else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # a full disk, a read-only folder: one line; the last good files are intact
        what = f" '{e.filename}'" if getattr(e, "filename", None) else ""
        print(f"entropyeng: error: could not read or write{what}: {e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        logging.getLogger("entropyeng").removeHandler(handler)
    return 0


class _StderrLines(logging.Handler):
    """The package's INFO lines (the step's form and why, compiling, CUDA graphs) on stderr, each on
    a line of its own below a progress bar."""

    def emit(self, record):
        try:
            sys.stderr.write(("\n" if sys.stderr.isatty() else "") + f"entropyeng: {record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 (logging must not break a run)
            self.handleError(record)


def _log_to_stderr(quiet):
    """The command speaks at INFO (the library is quiet by default); --quiet keeps warnings only."""
    handler = _StderrLines(logging.WARNING if quiet else logging.INFO)
    logger = logging.getLogger("entropyeng")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _leave_process_group():
    """Under torchrun: wait for every rank, then tear the process group down before the interpreter
    exits (a gloo group left to the interpreter's shutdown aborted a rank now and then: 'terminate
    called without an active exception')."""
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
