"""What a person watching a sweep sees: each run's state and progress (read from its run directory,
so it works for runs on other machines of a shared file system), a live table on a terminal or a
plain line every 30 s in a log, and ``sweep.json``."""

from __future__ import annotations

import json
import os
import sys
import time

from .._io import json_bytes, tail_lines, write_atomic
from ..runs.build import total_steps
from ..runs.loop import duration

__all__ = ["RunState", "Board"]


class RunState:
    """A run's row: state (waiting, running, done, kept, failed), attempts, times, progress."""

    def __init__(self, plan, directory):
        self.plan, self.dir = plan, directory
        self.state, self.attempts, self.error = "waiting", 0, None
        self.started = self.finished = self.wall = None
        self.summary = None
        self.total = total_steps(plan.config)
        self.seen = []  # (time, steps done) observed while running, for the rate

    @property
    def name(self):
        return self.plan.name

    def done_steps(self) -> int:
        """Walker-steps done, from the last line of the run's metrics log (0 before the first)."""
        if self.state in ("done", "kept"):
            return self.total
        line = _last_json(os.path.join(self.dir, "metrics.jsonl"))
        c = self.plan.config
        if not line:
            return 0
        if "wlmc" in c:
            per_stage = c["wlmc"]["steps_per_stage"] * max(1, c["wlmc"]["walkers"])
            return min(self.total, int(line.get("stage", 0)) * per_stage)
        return min(self.total, int(line.get("step", 0)) * max(1, c["wlmd"]["walkers"]))

    def phase(self) -> str:
        if self.state != "running":
            return self.state
        if os.path.exists(os.path.join(self.dir, "landscape.npz")):
            return "baseline"  # the landscape is done: the SGD runs
        return "running"

    def observe(self, now):
        self.seen = (self.seen + [(now, self.done_steps())])[-20:]

    def rate(self):
        """Walker-steps per second over the last observations (None until two differ)."""
        if len(self.seen) < 2 or self.seen[-1][1] <= self.seen[0][1]:
            return None
        (t0, s0), (t1, s1) = self.seen[0], self.seen[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    def record(self) -> dict:
        return dict(name=self.name, dir=self.dir, axes=self.plan.axes, state=self.state, attempts=self.attempts,
                    started=self.started, finished=self.finished, wall_seconds=self.wall,
                    steps_done=self.done_steps(), steps_total=self.total, summary=self.summary, error=self.error)


def _last_json(path):
    """The last whole JSON line of a log (a kill may have cut the last one), or None."""
    for line in reversed(tail_lines(path)):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


class Board:
    """The sweep's table and its ``sweep.json`` (rewritten atomically at each change)."""

    def __init__(self, out, spec, runs, enabled=True, interval=30.0, stream=None):
        self.out, self.spec, self.runs = out, spec, runs
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.interval, self.last_line, self.drawn = interval, 0.0, 0
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.cluster = None

    def counts(self) -> dict:
        out = {}
        for r in self.runs:
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def write_json(self):
        record = dict(spec=self.spec.path, task=self.spec.task, axes=self.spec.axes, out=os.path.abspath(self.out),
                      started=self.started, updated=time.strftime("%Y-%m-%d %H:%M:%S"), cluster=self.cluster,
                      counts=self.counts(), runs=[r.record() for r in self.runs])
        write_atomic(os.path.join(self.out, "sweep.json"), json_bytes(record))

    def _rows(self):
        rows = []
        for r in self.runs:
            if r.state not in ("running", "failed") and not (r.state == "done" and self.tty):
                continue
            done, rate = r.done_steps(), r.rate()
            eta = (r.total - done) / rate if rate else None
            what = r.phase() + (f" (try {r.attempts})" if r.attempts > 1 else "")
            rows.append(f"{r.name[:40]:40s} {what:16s} {done:>14,} / {r.total:<14,} "
                        f"{(f'{rate:,.0f}/s' if rate else '-'):>12s} {duration(eta) if r.state == 'running' else '':>9s}")
        return rows

    def _headline(self):
        c = self.counts()
        parts = [f"{c.get(k, 0)} {k}" for k in ("done", "kept", "running", "waiting", "failed") if c.get(k)]
        return f"sweep {self.spec.task}: {len(self.runs)} runs: " + ", ".join(parts)

    def show(self, force=False):
        """Redraw the table (terminal) or print a line (every ``interval`` s, or when forced)."""
        if not self.enabled:
            return
        now = time.time()
        if self.tty:
            head = f"{'run':40s} {'state':16s} {'walker-steps done':>31s} {'rate':>12s} {'ETA':>9s}"
            lines = [self._headline(), head]
            lines += self._rows()
            if self.drawn:
                self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            self.drawn = len(lines)
        elif force or now - self.last_line >= self.interval:
            self.last_line = now
            running = [r for r in self.runs if r.state == "running"]
            detail = "; ".join(f"{r.name} " + ("SGD baseline" if r.phase() == "baseline" else
                                                f"{100 * r.done_steps() / max(1, r.total):.0f}%") for r in running[:6])
            line = f"{time.strftime('%H:%M:%S')} {self._headline()}" + (f" ({detail})" if detail else "")
            self.stream.write(line + "\n")
            self.stream.flush()

    def say(self, message):
        """A line of its own (also when the table is off): the sweep's start, failures and end."""
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0
        self.stream.write(message + "\n")
        self.stream.flush()
