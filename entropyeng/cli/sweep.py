"""``entropyeng sweep``: the runs of a spec (its axes' product) on Dask, each an ``entropyeng run``
directory under ``--out``; idempotent (finished runs kept, unfinished ones resumed)."""

from __future__ import annotations

import os
import sys

from .. import limits as L
from ..runs.config import ConfigError
from . import EXIT_FAILED
from .args import out_arg

__all__ = ["add_parser", "cmd_sweep"]

EPILOG = """examples:
  entropyeng sweep fig1b-reduced --out runs/fig1b          # a shipped spec, on a local cluster
  entropyeng sweep my.toml --out runs/my --workers 4       # 4 runs at a time
  entropyeng sweep my.toml --out /shared/runs --scheduler tcp://head:8786   # a running Dask cluster
  entropyeng sweep --example fig1b-reduced > my.toml       # a shipped spec's text, to edit
  entropyeng compare runs/fig1b                            # Fig. 1b of the sweep's runs"""


def add_parser(sub):
    import argparse

    p = sub.add_parser("sweep", help="many runs (a spec's axes) on Dask: a local cluster or a running one",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="a spec .toml, or the name of a shipped spec (--list)")
    p.add_argument("--out", help="the sweep's directory: one run directory per run and sweep.json "
                                 "(default runs/SPEC-NAME)")
    p.add_argument("--workers", type=int, help="local cluster: runs at a time (default: cores / threads)")
    p.add_argument("--threads", type=int, help="torch threads of each run (default: the spec's sweep.threads, or 1)")
    p.add_argument("--scheduler", help="the address of a running Dask scheduler (tcp://HOST:8786); --out must be "
                                       "on a file system its workers share")
    p.add_argument("--data", help="a local data file or folder for every run (digits, cifar, polymer)")
    p.add_argument("--retries", type=int, default=3, help="times a run whose process was killed is resumed (default 3)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their directories; run nothing")
    p.add_argument("--list", action="store_true", help="list the shipped specs")
    p.add_argument("--example", metavar="NAME", help="print a shipped spec")
    p.add_argument("--quiet", action="store_true", help="no table; the summary lines only")
    p.set_defaults(fn=cmd_sweep)


def check_scheduler_address(address: str) -> None:
    """``tcp://HOST:PORT`` (or ``HOST:PORT``, which Dask reads as tcp), refused in one line otherwise:
    other protocols (tls, ucx, inproc) need settings this command does not take, and an address
    without a port is a typo."""
    import re

    m = re.fullmatch(r"(?:(tcp)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address.strip())
    if m is None:
        proto = address.split("://")[0] if "://" in address else None
        why = (f"the {proto}:// protocol is not supported here (tcp://HOST:PORT)" if proto and proto != "tcp"
               else "expected tcp://HOST:PORT")
        raise ConfigError(f"--scheduler: '{address}': {why}")
    if not 0 < int(m.group(3)) < 65536:
        raise ConfigError(f"--scheduler: '{address}': the port must be in 1..65535")


def cmd_sweep(args):
    from ..sweep.spec import load_spec, shipped_path, shipped_specs

    if args.list:
        for name in shipped_specs():
            with open(shipped_path(name)) as fh:
                first = fh.readline().lstrip("# ").strip()
            print(f"{name:22s} {first}")
        return None
    if args.example:
        path = shipped_path(args.example)
        if path is None:
            raise ConfigError(f"--example: no shipped spec '{args.example}' (shipped: {', '.join(shipped_specs())})")
        with open(path) as fh:
            sys.stdout.write(fh.read())
        return None
    if not args.spec:
        raise ConfigError("give a spec (.toml, or a shipped spec's name: entropyeng sweep --list)")
    if args.workers is not None and not 1 <= args.workers <= L.MAX_LOCAL_WORKERS:
        raise ConfigError(f"--workers must be in [1, {L.MAX_LOCAL_WORKERS}], got {args.workers}")
    if args.threads is not None and not 1 <= args.threads <= 4 * (os.cpu_count() or 1):
        raise ConfigError(f"--threads must be in [1, {4 * (os.cpu_count() or 1)}], got {args.threads}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be >= 0, got {args.retries}")
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    spec = load_spec(args.spec, data=args.data)
    name = os.path.splitext(os.path.basename(spec.path))[0]
    out = out_arg(args.out, lambda: os.path.join("runs", name))
    if args.dry_run:
        from ..sweep.driver import plan_dirs

        for r in plan_dirs(spec, out):
            print(f"{r.state:8s} {r.dir}   " + " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                         for k, v in r.plan.axes.items()))
        return None
    from ..sweep.driver import run_sweep

    workers = args.workers
    if workers is not None and args.scheduler is None:
        # a local cluster: more processes than runs or cores only wait (or fill the machine's process limit)
        bound = max(1, min(len(spec.runs), os.cpu_count() or 1))
        if workers > bound:
            print(f"entropyeng: --workers {workers}: {bound} (the runs and this machine's cores); --scheduler "
                  "spreads a sweep over more", file=sys.stderr)
            workers = bound
    from ..runs.rundir import RunLock

    os.makedirs(out, exist_ok=True)
    with RunLock(out):  # one driver per sweep directory (a second is refused, naming the first)
        runs = run_sweep(spec, out, workers=workers, scheduler=args.scheduler, threads=args.threads,
                         retries=args.retries, progress=not args.quiet)
    if any(r.state == "failed" for r in runs):
        raise SystemExit(EXIT_FAILED)
    return runs
