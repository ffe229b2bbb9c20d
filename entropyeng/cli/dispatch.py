"""The command's parser and its dispatch to one module per command, each failure one line and an
exit status (2 usage, 1 runtime, 130 Ctrl-C); :func:`entropyeng.cli.main` loads it."""

from __future__ import annotations

import argparse
import logging
import sys

from .._io import SymlinkRefused
from ..tasks.catalog import DATA_FILES, TASKS
from ..runs.config import ConfigError, load_config
from ..runs.loop import Interrupted
from ..runs.rundir import RunLocked
from ..runs.sigint import swallow_further
from ..runs.task import RunFailed
from . import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from .figures import cmd_compare, cmd_plot
from .run import cmd_resume, cmd_run

__all__ = ["main", "load_config", "ConfigError", "TASKS"]


def cmd_tasks(args):
    from ..tasks.catalog import metric_of

    for name, cfg in TASKS.items():
        sampler = "WLMC" if "wlmc" in cfg else "WLMD"
        steps = cfg["wlmc"]["stages"] * cfg["wlmc"]["steps_per_stage"] if "wlmc" in cfg else cfg["wlmd"]["steps"]
        print(f"{name:18s} {sampler}  {metric_of(name):8s}  default {steps:.0e} steps"
              + (f"\n{'':18s} --data: {DATA_FILES[name]}" if name in DATA_FILES else ""))


def cmd_bench(args):
    from ..benchmarks.__main__ import main as bench_main

    bench_main((["--quick"] if args.quick else []) + (["--section", args.section] if args.section else [])
               + (["--markdown", args.markdown] if args.markdown else []))


def main(argv=None):
    from .. import __version__

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
    p.add_argument("--trust", action="store_true", help="continue from a checkpoint without the digest that ties it "
                                                        "to this run (written by the library, not the command)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_resume)
    p = sub.add_parser("plot", help="redraw the figure of a run")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_plot)
    p = sub.add_parser("compare", help="Fig. 1b: equilibrium vs SGD across finished runs (error bars over "
                                       "runs of the same network, e.g. independent data sets)")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", help="the figure (.png, .pdf or .svg; default compare.png beside the run directories)")
    p.add_argument("--title")
    p.set_defaults(fn=cmd_compare)
    from .train import add_parser as add_train_parser

    add_train_parser(sub, TASKS)
    from .md import add_parser as add_md_parser

    add_md_parser(sub, TASKS)
    from .sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    from .harvest import add_parser as add_harvest_parser

    add_harvest_parser(sub)
    p = sub.add_parser("tasks", help="list the tasks")
    p.set_defaults(fn=cmd_tasks)
    p = sub.add_parser("bench", help="the benchmark table (python -m bench in a source tree: --avx2 too)")
    p.add_argument("--quick", action="store_true", help="shorter timing rounds")
    p.add_argument("--markdown", metavar="DIR", help="also write each section's table to DIR/<section>.md")
    p.add_argument("--section", choices=["kernels", "wlmc", "wlmd", "walkers", "tasks", "gpu", "sweep", "all"],
                   help="one section (default all)")
    p.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    # the benchmark's tables are not broken up by the samplers' INFO lines
    handler = _log_to_stderr(quiet=getattr(args, "quiet", False) or args.command == "bench")
    try:
        args.fn(args)
        _leave_process_group()
    except (ConfigError, SymlinkRefused) as e:
        print(f"entropyeng: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RunLocked as e:
        print(f"entropyeng: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except RunFailed as e:
        print(f"entropyeng: {e}", file=sys.stderr)
        if e.hint:
            print(e.hint, file=sys.stderr)
        return EXIT_FAILED
    except Interrupted:  # the run loop has written its checkpoint and said so
        return EXIT_INTERRUPTED
    except SystemExit as e:
        return e.code
    except KeyboardInterrupt:  # outside the samplers' deferred Ctrl-C (the SGD phase, set-up)
        swallow_further()
        where = getattr(args, "dir", None) or getattr(args, "out", None)
        print("entropyeng: interrupted" + (f"; 'entropyeng resume {where}' continues (finished phases are kept)"
                                          if args.command in ("run", "resume") and where else
                                          "; the same command continues the sweep (finished runs are kept, the others "
                                          "resume from their checkpoints)" if args.command == "sweep" else ""),
              file=sys.stderr)
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
    if "torch.distributed" not in sys.modules:  # a command that never loaded it has no group to leave
        return
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
