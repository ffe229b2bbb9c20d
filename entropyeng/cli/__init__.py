"""The ``entropyeng`` command: run / resume / plot / compare / sweep / harvest / train / md / tasks /
bench.

    entropyeng run spiral                      # the demo: landscape, SGD baseline, summary, figure
    entropyeng run house --steps 2e5           # any task of `entropyeng tasks`
    entropyeng run cifar --data ~/cifar-10-batches-py
    entropyeng run CONFIG.toml --out DIR       # a task from a TOML config
    entropyeng run spiral --steps 2e7 --set sgd.runs=20
    entropyeng resume DIR                      # continue an interrupted run
    entropyeng plot DIR                        # redraw the figure of a run
    entropyeng compare DIR... --out FIG.png    # Fig. 1b: equilibrium vs SGD across runs
    entropyeng sweep fig1b-reduced --out DIR   # many runs (a spec's axes) on Dask; entropyeng compare DIR
    entropyeng harvest runs/spiral --train-loss 0.2   # networks of that train loss from the run's landscape
    entropyeng bench                           # the benchmark table
    entropyeng train spiral --method maxent --target-loss 0.15   # a max-entropy network at that train loss
    entropyeng md digits --kT 0.005            # plain Langevin dynamics: the paper's Fig. 4
    entropyeng run house --walkers 8           # 8 WLMD walkers sharing one landscape
    torchrun --standalone --nproc_per_node 2 -m entropyeng run house --walkers 4   # 2 processes x 4 walkers

A run directory holds config.toml, checkpoint.npz (atomic), landscape.npz, metrics.jsonl, sgd.npz,
summary.json and landscape.png. Ctrl-C writes a checkpoint and exits; ``resume`` picks up there.

The package loads nothing heavy at import: :func:`main` imports the commands (and with them torch and
the compiled engine) while Ctrl-C only sets a flag, and the commands run with a Ctrl-C that waits
for the import under way to end (:mod:`entropyeng.runs.sigint`), so an interrupt at any moment is
one line and exit 130.
"""

from __future__ import annotations

import importlib
import signal
import sys

from ..runs.sigint import SigintHandler, between_imports, stop_swallowing, swallow_further

__all__ = ["main", "load_config", "ConfigError", "TASKS"]

EXIT_USAGE = 2  # exit statuses of every command
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def main(argv=None):
    """Run the ``entropyeng`` command with ``argv`` (default ``sys.argv[1:]``); returns its exit status."""
    entry = signal.getsignal(signal.SIGINT)
    try:
        return _main(argv)
    finally:
        # a caller that goes on (argv given: a script, a test) gets its Ctrl-C handler back; the command
        # itself (argv None: the process ends after this) keeps swallowing a late second Ctrl-C through
        # the interpreter's shutdown, which can take a second (atexit, threads)
        if argv is not None:
            stop_swallowing(entry)


def _main(argv):
    if argv is None:  # the process is the command: a sweep's worker that started it may ask it to die with it
        from .._procs import die_with_parent_named

        die_with_parent_named()
    try:
        with SigintHandler() as sigint:
            from .dispatch import main as dispatch
            try:
                from .. import _core  # noqa: F401  (the compiled engine, if built: loaded here too)
            except ImportError:
                pass
        if sigint.stop:
            raise KeyboardInterrupt
        with SigintHandler(between_imports):  # the commands import more (scipy, sklearn) as they go
            return dispatch(argv)
    except KeyboardInterrupt:  # while torch loads, or before a command's own handler is in place
        swallow_further()
        print("entropyeng: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def __getattr__(name):  # the names of entropyeng.cli before its commands moved into dispatch.py
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(f"{__name__}.dispatch"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
