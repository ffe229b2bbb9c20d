"""``entropyeng run`` and ``entropyeng resume``: the options into :mod:`entropyeng.runs.task`, and
the summary of a finished run on stdout."""

from __future__ import annotations

import os
import sys

from ..runs.task import configure, resume, start

__all__ = ["cmd_run", "cmd_resume", "print_summary"]


def cmd_run(args):
    config, notes = configure(args.source, args.set, data=args.data, seed=args.seed, steps=args.steps,
                              walkers=args.walkers, threads=args.threads)
    out = args.out
    summary = start(config, out, force=args.force, quiet=args.quiet, notes=notes)
    if summary is not None:
        print_summary(summary, out or os.path.join("runs", config["task"]))
    return summary


def cmd_resume(args):
    summary = resume(args.dir, threads=args.threads, trust=getattr(args, "trust", False), quiet=args.quiet)
    if summary is not None:
        print_summary(summary, args.dir)
    return summary


def print_summary(summary, out, file=None):
    """The lines a finished run ends with: the task, the budget, the paper's readout against SGD."""
    file = file or sys.stdout
    what, wall = summary["y_label"], summary["wall_seconds"]
    print(file=file)
    print(f"{'task':12s} {summary['task']} ({summary['label']}, {summary['n_params']:,} parameters)", file=file)
    print(f"{'steps':12s} {summary['steps']:,} ({summary['steps_run']:,} in {wall:.1f} s)", file=file)
    if "advantage" in summary:
        print(f"{'ln L_train':12s} {summary['x']:.3f}   (SGD's best mean {what})", file=file)
        print(f"{'SGD':12s} {summary['sgd']:.3f}", file=file)
        print(f"{summary['curve'].replace('_', '-'):12s} {summary['equilibrium']:.3f}", file=file)
        print(f"{'advantage':12s} {summary['advantage']:+.3f}   ({'higher' if summary['higher_is_better'] else 'lower'} "
              f"{what} than SGD when positive)", file=file)
    else:
        print(f"advantage: not available ({summary.get('error_message')})", file=file)
    gap = summary.get("shared_gap")
    if gap is not None:
        print(f"{'shared gap':12s} {gap['gap']:+.3f}   (mean over the {gap['cells']} train-loss cells both curves "
              f"cover, ln L {gap['x_min']:.2f} to {gap['x_max']:.2f}; positive: the landscape generalises better)",
              file=file)
    print(f"files in {out or '.'}: config.toml, checkpoint.npz, landscape.npz, metrics.jsonl, sgd.npz, summary.json, "
          "landscape.png", file=file)
