"""The run loop: any sampler of the protocol (:class:`entropyeng.Sampler`) advanced in chunks, with
a progress line, a metrics log, periodic atomic checkpoints, and Ctrl-C taken at the next chunk
boundary (a WLMC stage runs inside C++), so that a checkpoint always holds whole chunks."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, is_dataclass

from .._io import open_append
from .sigint import SigintHandler, swallow_further

__all__ = ["Progress", "Interrupted", "run_sampler", "duration", "is_lead"]


def duration(seconds) -> str:
    """A time a person reads at once: seconds, minutes or hours ("-" for none)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Interrupted(Exception):
    """Ctrl-C during a run: the checkpoint has been written."""


class Progress:
    """Progress on stderr: on a terminal one status line (done / total, rate, ETA) redrawn in place;
    elsewhere (a batch job's log) a plain line every ``interval`` seconds. ``enabled=False`` is
    silent; ``"force"`` draws the terminal line even when stderr is not a terminal."""

    def __init__(self, total, unit, enabled=True, interval=30.0):
        self.total, self.unit = total, unit
        self.enabled = bool(enabled)
        self.tty = enabled == "force" or (self.enabled and sys.stderr.isatty())
        self.interval = interval
        self.t0 = time.perf_counter()
        self.start = None
        self.last_line = -math.inf  # a piped log gets its first line at the first update, then every interval

    def _text(self, done, extra):
        dt = time.perf_counter() - self.t0
        rate = (done - self.start) / dt if dt > 0 else 0.0
        speed = "rate pending"
        if rate > 0:  # a slow rate reads as the seconds one item takes
            one = self.unit[:-1] if self.unit.endswith("s") else self.unit
            pace = f"{rate:,.0f}/s" if rate >= 1 else f"{1 / rate:,.1f} s per {one}"
            speed = f"{pace}  ETA {(self.total - done) / rate:5.0f} s"
        return f"{done:,}/{self.total:,} {self.unit}  {speed} {extra}".rstrip()

    def update(self, done, extra=""):
        if self.start is None:
            self.start = done
        if not self.enabled:
            return
        if self.tty:
            frac = done / self.total if self.total else 1.0
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            sys.stderr.write(f"\r[{bar}] {self._text(done, extra)}   ")
            sys.stderr.flush()
        elif time.perf_counter() - self.last_line >= self.interval or done >= self.total:
            self.last_line = time.perf_counter()
            print(f"{time.strftime('%H:%M:%S')} progress: {self._text(done, extra)}", file=sys.stderr, flush=True)

    def note(self, message):
        """A line of its own (the status line is redrawn by the next update)."""
        if not self.enabled:
            return
        print(("\n" if self.tty else f"{time.strftime('%H:%M:%S')} ") + message, file=sys.stderr, flush=True)

    def close(self):
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def is_lead(sampler) -> bool:
    """Rank 0 (or a run without torch.distributed) writes the run's files."""
    return getattr(sampler, "rank", 0) == 0


def _any_rank(sampler, flag: bool) -> bool:
    """Whether any rank has the flag (Ctrl-C reaches the ranks at different moments; they must stop
    at the same chunk so that their collectives stay matched)."""
    if not getattr(sampler, "distributed", False):
        return flag
    import torch
    import torch.distributed as dist

    from ..wlmd.ranks import all_reduce

    t = all_reduce(torch.tensor([1.0 if flag else 0.0]), op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _interrupted(sampler, paths, where):
    swallow_further()  # a second Ctrl-C while the checkpoint is written is not a second interrupt
    sampler.save(paths["checkpoint"])
    if not is_lead(sampler):
        raise Interrupted
    print(f"interrupted at {where}; checkpoint written. Continue with: "
          f"entropyeng resume {os.path.dirname(paths['checkpoint']) or '.'}", file=sys.stderr)
    raise Interrupted


def run_sampler(sampler, paths, *, total, chunk, checkpoint_every, progress=True):
    """Advance any :class:`entropyeng.Sampler` until ``total`` walker-steps (its ``walker_steps``
    clock), ``chunk`` walker-steps a call, each chunk's ``info`` a line of the metrics log, a
    checkpoint whenever the clock reaches a multiple of ``checkpoint_every`` and at the end, and the
    landscape written last; returns (seconds, walker-steps run). Ctrl-C is taken between chunks: the
    checkpoint is written and :class:`Interrupted` raised. Under torch.distributed rank 0 writes the
    files and every rank stops at the same chunk."""
    bar = Progress(total, "steps", progress)
    t0, start = time.perf_counter(), sampler.walker_steps
    if hasattr(sampler, "plan"):
        sampler.plan(total - start)  # a sampler that chooses how to run by the run's length (WLMD's compile="auto")
    if hasattr(sampler, "failure_path"):
        sampler.failure_path = os.path.join(os.path.dirname(paths["checkpoint"]), "last-good.npz")
    lead = is_lead(sampler)
    if not lead:
        bar.enabled = False
    with SigintHandler() as sig, (open_append(paths["metrics"]) if lead else open(os.devnull, "a")) as log:
        def record(info):
            log.write(json.dumps(_plain(info)) + "\n")

        while sampler.walker_steps < total:
            if _any_rank(sampler, bool(sig.stop)):
                bar.close()
                _interrupted(sampler, paths, f"step {sampler.walker_steps:,}")
            now = sampler.walker_steps
            sampler.advance(min(chunk - now % chunk, total - now), callback=record)
            log.flush()
            now = sampler.walker_steps
            bar.update(now, _status(sampler.info()))
            if now % checkpoint_every == 0:
                sampler.save(paths["checkpoint"])
    bar.close()
    sampler.save(paths["checkpoint"])
    landscape = sampler.landscape  # a collective for a distributed sampler
    if lead:
        landscape.save(paths["landscape"])
    return time.perf_counter() - t0, sampler.walker_steps - start


def _plain(info) -> dict:
    """A chunk's info as a dict (a sampler's info is a dict or a dataclass of plain fields)."""
    return asdict(info) if is_dataclass(info) else dict(info)


def _status(info) -> str:
    """The progress line's tail: the hill height and the walker's (x, y), or the stage."""
    info = _plain(info)
    if "x" in info:
        return f"f {info.get('f', 0):.3g} x {info['x']:.2f} y {info['y']:.2f}"
    return f"stage {info['stage']}" if "stage" in info else ""
