"""``entropyeng harvest RUN --train-loss X``: networks of that train loss from a finished run's
landscape (a walker under the landscape's frozen marginal bias), with the window's mean test metric
and its error beside the landscape's own readout there."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys

from .._io import json_bytes, write_atomic
from .. import limits as L
from ..runs.config import ConfigError
from .args import count_arg, out_arg, positive_arg, seed_arg

__all__ = ["add_parser", "cmd_harvest"]


def add_parser(sub):
    p = sub.add_parser("harvest", help="networks of a chosen train loss from a finished run's landscape")
    p.add_argument("dir", help="a finished run directory (entropyeng run; WLMC of an MLP, or WLMD of any network)")
    p.add_argument("--train-loss", required=True, help="the train loss L of the networks (the window is around ln L)")
    p.add_argument("--window", default="0.1", help="the window's width in ln(train loss) (default 0.1)")
    p.add_argument("--reach", default="0.3", help="the walker stays within this much of ln L (default 0.3)")
    p.add_argument("--steps", help="walker-steps of the harvest (default 2e6 for a WLMC run, 2e5 for a WLMD run)")
    p.add_argument("--every", help="walker-steps between samples (default 200 for a WLMC run, 20 for a WLMD run)")
    p.add_argument("--count", type=int, help="keep at most this many decorrelated networks (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the harvest's random stream")
    p.add_argument("--out", help="the harvest's file (default DIR/harvest-L{X}.npz; a .json of its numbers beside)")
    p.add_argument("--force", action="store_true", help="replace an existing harvest file (never a run's own files)")
    p.add_argument("--threads", type=int, help="torch's intra-op threads (default: 1 for small models, as run)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_harvest)


def check_harvest_out(run_dir: str, out: str, force: bool) -> None:
    """The harvest's --out is a citizen of the run directory: it never names a file a run owns (in
    the run directory or in any other run's), and never replaces an existing file without --force
    (its .json companion included)."""
    from ..runs.rundir import run_files, run_paths

    if not out.endswith(".npz"):
        raise ConfigError(f"--out: the harvest's file must end in .npz, got '{out}'")
    folder = os.path.dirname(os.path.abspath(out))
    companion = os.path.splitext(out)[0] + ".json"
    is_run = os.path.exists(os.path.join(folder, "config.toml")) or os.path.exists(os.path.join(folder, "checkpoint.npz"))
    same = os.path.isdir(folder) and os.path.isdir(run_dir) and os.path.samefile(folder, run_dir)
    if is_run or same:
        owned = run_files(run_paths(folder))
        for name in (os.path.basename(out), os.path.basename(companion)):
            if name in owned:
                raise ConfigError(f"--out: '{os.path.join(folder, name)}' is a file the run owns; the harvest writes "
                                  "beside it, never over it (choose another name)")
    if not force:
        for path in (out, companion):
            if os.path.lexists(path):
                raise ConfigError(f"--out: '{path}' exists; --force replaces it, or choose another --out")


def cmd_harvest(args):
    target = positive_arg(args.train_loss, "--train-loss")
    window = positive_arg(args.window, "--window")
    reach = positive_arg(args.reach, "--reach")
    steps = None if args.steps is None else positive_arg(args.steps, "--steps", int, most=L.MAX_STEPS)
    every = None if args.every is None else positive_arg(args.every, "--every", int, most=L.MAX_STEPS)
    if args.count is not None:
        count_arg(args.count, "--count", 10**9)
    seed_arg(args.seed)
    if args.threads is not None:
        count_arg(args.threads, "--threads", 4096)
    out = out_arg(args.out, lambda: os.path.join(args.dir, f"harvest-L{target:g}.npz"))
    check_harvest_out(args.dir, out, args.force)
    from ..runs.rundir import RunLock

    if not os.path.isdir(args.dir):
        raise ConfigError(f"'{args.dir}' is not a run directory")
    with contextlib.ExitStack() as stack:
        try:  # refused while a run or resume holds it: the landscape it reads is still changing
            stack.enter_context(RunLock(args.dir))
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # a read-only run directory: no run can be writing it (--out elsewhere)
        return _harvest(args, target, window, reach, steps, every, out)


def _harvest(args, target, window, reach, steps, every, out):
    from ..harvest import HarvestError, harvest_run
    from ..harvest.run import DEFAULT_STEPS, run_sampler
    from ..runs.loop import Progress

    kind = run_sampler(args.dir)
    steps = DEFAULT_STEPS[kind][0] if steps is None else steps
    if not args.quiet:
        how = (f"the walker walks into the reach, the bias is tuned there ({steps // 2:,} steps), then {steps:,} steps "
               "of production" if kind == "wlmc" else f"a WLMD walker started at the target (its bias tuned first, "
               f"{steps // 2:,} steps, where the landscape left the reach unvisited), then {steps:,} steps of production")
        print(f"harvest of {args.dir} at ln L = {math.log(target):.3f}: {how}", file=sys.stderr, flush=True)
    bar = Progress(steps, "steps", not args.quiet)
    try:
        h = harvest_run(args.dir, train_loss=target, window=window, reach=reach, steps=steps, every=every,
                        count=args.count, seed=args.seed, threads=args.threads,
                        progress=lambda done, n: bar.update(done, f"{n:,} in the window"))
    except HarvestError as e:
        bar.close()
        raise ConfigError(str(e)) from None
    bar.close()
    h.save(out)
    summary = h.summary()
    summary.pop("config", None)
    write_atomic(os.path.splitext(out)[0] + ".json", json_bytes(summary))
    what = "test accuracy" if h.metric == "accuracy" else "ln(test loss)"
    print(f"harvest of {args.dir} at ln L = {h.target:.3f} ± {(h.window[1] - h.window[0]) / 2:g} (L = {target:g}):",
          file=sys.stderr)
    print(f"  {h.samples:,} samples in the window over {h.steps:,} steps ({h.seconds:.1f} s); autocorrelation time "
          f"{h.tau:.1f} samples ({h.tau * h.every:,.0f} steps); {h.count} decorrelated networks kept", file=sys.stderr)
    readout = (f"{h.landscape_mean:.4f} (the landscape's Eq. 1 over the same cells)   difference "
               f"{h.mean - h.landscape_mean:+.4f}" if math.isfinite(h.landscape_mean)
               else "no readout (the landscape never visited these cells)")
    print(f"  {what}: {h.mean:.4f} ± {h.error:.4f} (harvest)   {readout}", file=sys.stderr)
    print(f"  round trips across the reach {h.round_trips}; flatness of its visits {h.flatness:.2f}", file=sys.stderr)
    if not math.isfinite(h.error) or h.round_trips < 2:
        print("  few samples or round trips: the error is not reliable; give more --steps", file=sys.stderr)
    else:
        print("  the error is one walk's: it misses drifts slower than the walk (see docs/harvest.md); for an error "
              "bar to trust, harvest 1e7 steps or more with a few --seed values and use their spread", file=sys.stderr)
    print(out)
    return h
