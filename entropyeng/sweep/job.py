"""One run of a sweep on a Dask worker: ``python -m entropyeng resume DIR`` in a child process that
dies with the worker (so a lost worker leaves no orphan holding the run's lock), its output appended to
``DIR/run.log``.

The sweep writes ``DIR/config.toml`` before it submits the run, so the same command starts a run
(no checkpoint yet: a fresh sampler, exactly ``entropyeng run`` of that config) or continues one
from its last checkpoint. A finished run (``summary.json``) is not run again.

Outcomes: a dict ``{"state": "done" | "kept" | "failed", ...}``; a child killed by a signal (the
out-of-memory killer, a node's shutdown) raises :class:`RunKilled`, which Dask retries. A worker
that dies is Dask's to handle: the scheduler gives the run to another worker, which resumes it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from .._io import open_append, tail_lines
from .._procs import PARENT_ENV

__all__ = ["RunKilled", "run_job", "summary_of"]

LOG_NAME = "run.log"


class RunKilled(RuntimeError):
    """The run's process was killed by a signal; its last checkpoint is intact (Dask retries)."""


def summary_of(directory) -> dict | None:
    """The figures of a finished run that a sweep lists (from its summary.json), or None."""
    path = os.path.join(directory, "summary.json")
    try:
        with open(path) as fh:
            s = json.load(fh)
    except (OSError, ValueError):
        return None
    keys = ("label", "x", "sgd", "equilibrium", "advantage", "error_message", "steps", "wall_seconds")
    out = {k: s[k] for k in keys if k in s}
    if s.get("shared_gap"):
        out["shared_gap"] = s["shared_gap"].get("gap")
    return out


def run_job(directory: str, threads: int = 1) -> dict:
    """Run (or continue) the run in ``directory``; see the module docstring."""
    directory = os.path.abspath(directory)
    summary = summary_of(directory)
    if summary is not None:
        return dict(state="kept", summary=summary)
    log_path = os.path.join(directory, LOG_NAME)
    # the command dies with this worker (PARENT_ENV: see entropyeng.cli.main)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{PARENT_ENV: str(os.getpid())})
    cmd = [sys.executable, "-m", "entropyeng", "resume", directory, "--threads", str(threads)]
    t0 = time.time()
    with open_append(log_path) as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} sweep worker on {socket.gethostname()} "
                  f"(pid {os.getpid()}): entropyeng resume {directory} --threads {threads}\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                            env=env).returncode
    wall = time.time() - t0
    if rc < 0 or rc == 130:
        raise RunKilled(f"{directory}: the run's process ended by signal {-rc if rc < 0 else 'SIGINT'} after "
                        f"{wall:.0f} s; its checkpoint is kept (see {log_path})")
    summary = summary_of(directory)
    if rc == 0 and summary is not None:
        return dict(state="done", wall=wall, host=socket.gethostname(), summary=summary)
    return dict(state="failed", wall=wall, host=socket.gethostname(), exit_code=rc,
                error=next((line for line in reversed(tail_lines(log_path, 4096)) if line.strip()), "")
                or f"exit code {rc}")
