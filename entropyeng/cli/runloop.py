"""The loops behind ``entropyeng run``: a sampler advanced in chunks, with a progress line, a
metrics log, periodic atomic checkpoints, and Ctrl-C taken at the next chunk boundary (a WLMC stage
runs inside C++), so that a checkpoint always holds whole chunks."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict

from .._io import open_append
from .sigint import SigintHandler, swallow_further

__all__ = ["Progress", "Interrupted", "new_sampler", "load_sampler", "run_wlmc", "run_wlmd", "total_steps", "duration"]


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
        self.last_line = self.t0

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


def total_steps(config) -> int:
    if "wlmc" in config:
        return config["wlmc"]["stages"] * config["wlmc"]["steps_per_stage"]
    return config["wlmd"]["steps"]


def new_sampler(config, problem):
    """A fresh sampler of a configuration, its model started inside the paper's box (clamped there, as
    the sampler would do with a warning; the SGD baseline starts from the factory's model as drawn)."""
    from ..tasks.box import into_box

    if problem.sampler == "wlmc":
        from ..wlmc.chain import WLMC

        w = config["wlmc"]
        seed = w["seed"]
        single = WLMC(into_box(problem.make_model(seed)), problem.train, problem.test, loss=problem.loss,
                      metric=problem.metric, seed=seed)
        if w["walkers"] <= 1:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise ValueError("wlmc.walkers: under torchrun the spiral task runs replica exchange; give "
                                 "--walkers at least the number of processes")
            return single
        from ..wlmc.rewl import REWL

        windows = w["windows"] or w["walkers"]
        if windows > w["walkers"]:
            raise ValueError(f"wlmc.windows: {windows} windows need at least as many walkers, got {w['walkers']}")
        return REWL(into_box(problem.make_model(seed)), problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                    grid=single.grid, windows=windows, overlap=w["overlap"], walkers_per_window=w["walkers"] // windows,
                    exchange_every=w["exchange_every"], seed=seed,
                    distributed=int(os.environ.get("WORLD_SIZE", "1")) > 1)
    from ..tasks.catalog import wlmd_kwargs
    from ..wlmd import WLMD

    kw = wlmd_kwargs(config, problem)
    return WLMD(into_box(problem.make_model(kw["seed"]), kw.get("bound", "paper")), problem.train, problem.test, **kw)


def load_sampler(config, problem, path):
    """The sampler of a checkpoint written by a run of this configuration: built from the
    configuration and its data (never the file's copy of them, nor its seed), then continued from
    the file's state (checked against it field by field)."""
    sampler = new_sampler(config, problem)
    sampler.load_checkpoint(path)
    return sampler


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


def run_wlmc(sampler, config, paths, progress=True):
    """Stages of the paper's schedule until ``wlmc.stages``; returns (seconds, steps run)."""
    w = config["wlmc"]
    bar = Progress(w["stages"] * w["steps_per_stage"], "steps", progress)
    t0, stage0 = time.perf_counter(), sampler.stage
    lead = is_lead(sampler)
    if not lead:
        bar.enabled = False
    with SigintHandler() as sig, (open_append(paths["metrics"]) if lead else open(os.devnull, "a")) as log:
        while sampler.stage < w["stages"]:
            if _any_rank(sampler, bool(sig.stop)):
                bar.close()
                _interrupted(sampler, paths, f"stage {sampler.stage}")
            sampler.run_stages(1, w["steps_per_stage"], callback=lambda info: log.write(
                json.dumps(info if isinstance(info, dict) else dict(info.__dict__)) + "\n"))
            log.flush()
            bar.update(sampler.stage * w["steps_per_stage"], f"stage {sampler.stage}/{w['stages']}")
            if sampler.stage % w["checkpoint_every"] == 0:
                sampler.save(paths["checkpoint"])
    bar.close()
    sampler.save(paths["checkpoint"])
    landscape = sampler.landscape  # a collective for a distributed REWL
    if lead:
        landscape.save(paths["landscape"])
    return time.perf_counter() - t0, (sampler.stage - stage0) * w["steps_per_stage"] * max(1, w["walkers"])


def run_wlmd(sampler, config, paths, progress=True):
    """WLMD until ``wlmd.steps`` walker-steps in all (with K walkers over all ranks, steps / K steps
    of each walker: the schedule's clock counts walker-steps), a metrics line every
    ``report_every`` and a checkpoint every ``checkpoint_every`` steps of the sampler; returns
    (seconds, walker-steps run). A walker that fails (non-finite loss, off the grid) raises
    :class:`entropyeng.WLMDError` after writing its last good state."""
    w = config["wlmd"]
    k = int(getattr(sampler, "deposits_per_step", 1))
    total, every = math.ceil(w["steps"] / k), max(1, min(w["report_every"], w["checkpoint_every"]))
    bar = Progress(total, "steps", progress)
    t0, step0 = time.perf_counter(), sampler.t
    sampler.planned_steps = total - sampler.t  # lets compile="auto" decide on the whole run, not a chunk
    failure = os.path.join(os.path.dirname(paths["checkpoint"]), "last-good.npz")
    lead = is_lead(sampler)
    if not lead:
        bar.enabled = False
    with SigintHandler() as sig, (open_append(paths["metrics"]) if lead else open(os.devnull, "a")) as log:
        while sampler.t < total:
            if _any_rank(sampler, bool(sig.stop)):
                bar.close()
                _interrupted(sampler, paths, f"step {sampler.t:,}")
            n = min(every - sampler.t % every, total - sampler.t)
            sampler.run(n, checkpoint=failure)
            info = sampler.info(time.perf_counter() - t0)
            log.write(json.dumps(asdict(info)) + "\n")
            log.flush()
            bar.update(sampler.t, f"f {info.f:.3g} x {info.x:.2f} y {info.y:.2f}")
            if sampler.t % w["checkpoint_every"] == 0:
                sampler.save(paths["checkpoint"])
    bar.close()
    sampler.save(paths["checkpoint"])
    if lead:
        sampler.landscape.save(paths["landscape"])
    return time.perf_counter() - t0, (sampler.t - step0) * k
