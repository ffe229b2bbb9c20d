"""What the commands share: exit codes, a run directory's files, building a task's problem, the
budget and thread options, and the digest that ties a checkpoint to its run."""

from __future__ import annotations

import json
import math
import os

from .. import limits as L
from .._io import hash_arrays
from ..tasks.catalog import TaskError
from .config import ConfigError

#: the most walker-steps one run takes (documented in docs/reliability.md)
MAX_STEPS = L.MAX_STEPS

__all__ = ["EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED", "_paths", "_build", "_apply_steps", "_apply_threads",
           "run_digest"]

from . import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE  # noqa: E402 (defined where main needs them: light)


def _paths(out):
    return {k: os.path.join(out, v) for k, v in dict(config="config.toml", checkpoint="checkpoint.npz",
                                                         landscape="landscape.npz", metrics="metrics.jsonl",
                                                         sgd="sgd.npz", summary="summary.json",
                                                         figure="landscape.png").items()}


def _build(config):
    from ..tasks.catalog import build

    try:
        return build(config)
    except TaskError as e:
        raise ConfigError(str(e)) from None


#: the fewest SGD runs a baseline scaled down with --steps keeps (its mean curve needs a few)
MIN_SGD_RUNS = 10


def _apply_steps(config, steps_arg, keep_sgd_runs=False):
    """Set the budget to ``steps_arg`` walker-steps (WLMC: stages of at most the config's
    steps_per_stage; WLMD: t1, t2, t3 keep their fractions). A budget below the task's default also
    scales the SGD baseline's runs (at least MIN_SGD_RUNS), unless ``keep_sgd_runs`` (sgd.runs given):
    a short run is not dominated by a full baseline. Returns a note saying so, or None."""
    try:
        steps = int(float(steps_arg))
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--steps must be a number of walker-steps (e.g. 2e7), got {steps_arg!r}") from None
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps_arg}")
    if steps > MAX_STEPS:
        raise ConfigError(f"--steps must be <= {MAX_STEPS:.0e} walker-steps (at a microsecond a step, 115 days on one "
                          f"core), got {steps_arg}")
    from ..tasks.catalog import TASKS

    default = TASKS[config["task"]]
    default_steps = (default["wlmc"]["stages"] * default["wlmc"]["steps_per_stage"] if "wlmc" in default
                     else default["wlmd"]["steps"])
    note = None
    sgd = config.get("sgd")
    if sgd and not keep_sgd_runs and steps < default_steps and sgd["runs"] > MIN_SGD_RUNS:
        runs = max(MIN_SGD_RUNS, math.ceil(sgd["runs"] * steps / default_steps))
        note = (f"{runs} SGD runs, not {sgd['runs']}: the baseline scaled with --steps ({steps:.2g} of the task's "
                f"{default_steps:.2g}); --set sgd.runs=N sets it")
        sgd["runs"] = runs
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
    return note


def _apply_threads(config, section, threads):
    """--threads N: torch's intra-op threads for the whole command (SGD included) and the WLMD step."""
    if threads is None:
        return
    limit = max(1, 4 * (os.cpu_count() or 1))
    if not 1 <= threads <= limit:
        raise ConfigError(f"--threads must be in [1, {limit}] (4 per core of this machine), got {threads}")
    import torch

    torch.set_num_threads(threads)
    if section == "wlmd":
        config["wlmd"]["threads"] = threads


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
    hash_arrays(h, [*problem.train, *problem.test])
    return h.hexdigest()[:32]
