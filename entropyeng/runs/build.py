"""From a configuration to a sampler: the task's problem (data, model factory, loss, metric), the
budget (``--steps``) and threads, and a fresh sampler or one continued from a checkpoint."""

from __future__ import annotations

import math
import os

from .. import limits as L
from ..tasks.catalog import TaskError
from .config import ConfigError

#: the most walker-steps one run takes (documented in docs/reliability.md)
MAX_STEPS = L.MAX_STEPS

__all__ = ["MAX_STEPS", "MIN_SGD_RUNS", "build_problem", "apply_steps", "apply_threads", "total_steps",
           "new_sampler", "load_sampler", "loop_plan", "set_threads"]


def build_problem(config):
    """The task's :class:`entropyeng.tasks.catalog.Problem` of a configuration (ConfigError for a
    value the task cannot use)."""
    from ..tasks.catalog import build

    try:
        return build(config)
    except TaskError as e:
        raise ConfigError(str(e)) from None


#: the fewest SGD runs a baseline scaled down with --steps keeps (its mean curve needs a few)
MIN_SGD_RUNS = 10


def apply_steps(config, steps_arg, keep_sgd_runs=False):
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


def apply_threads(config, section, threads):
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
        single.steps_per_stage = w["steps_per_stage"]
        if w["walkers"] <= 1:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise ValueError("wlmc.walkers: under torchrun the spiral task runs replica exchange; give "
                                 "--walkers at least the number of processes")
            return single
        from ..wlmc.rewl import REWL

        windows = w["windows"] or w["walkers"]
        if windows > w["walkers"]:
            raise ValueError(f"wlmc.windows: {windows} windows need at least as many walkers, got {w['walkers']}")
        r = REWL(into_box(problem.make_model(seed)), problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                 grid=single.grid, windows=windows, overlap=w["overlap"], walkers_per_window=w["walkers"] // windows,
                 exchange_every=w["exchange_every"], seed=seed, distributed=int(os.environ.get("WORLD_SIZE", "1")) > 1)
        r.steps_per_stage = w["steps_per_stage"]
        return r
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


def loop_plan(config, sampler) -> dict:
    """The run loop's clock for this configuration, in walker-steps (:func:`entropyeng.runs.loop.run_sampler`):
    ``total`` (the budget), ``chunk`` (a WLMC stage; ``min(report_every, checkpoint_every)`` WLMD
    steps of every walker) and ``checkpoint_every``."""
    if "wlmc" in config:
        w = config["wlmc"]
        stage = w["steps_per_stage"] * int(getattr(sampler, "n_walkers", 1))
        return dict(total=w["stages"] * stage, chunk=stage, checkpoint_every=w["checkpoint_every"] * stage)
    w = config["wlmd"]
    k = int(sampler.deposits_per_step)
    return dict(total=math.ceil(w["steps"] / k) * k, chunk=max(1, min(w["report_every"], w["checkpoint_every"])) * k,
                checkpoint_every=w["checkpoint_every"] * k)


def set_threads(problem, threads=None, seed=0):
    """torch's intra-op threads for a command that runs ``problem``'s model outside a sampler (the
    trainer, ``md``, the harvest): ``threads``, else WLMD's rule (:func:`entropyeng.wlmd.runners.default_threads`:
    one thread up to 2e7 parameters x rows, where a small model's products only synchronise more
    threads; measured on the spiral maxent trainer, 31 steps/s on torch's default threads beside
    another job against 336 on one)."""
    import torch

    from ..wlmd.runners import default_threads

    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4096:
            raise ConfigError(f"--threads must be an integer in [1, 4096], got {threads!r}")
    else:
        n_params = sum(p.numel() for p in problem.make_model(seed).parameters())
        rows = len(problem.train[0]) + len(problem.test[0])
        threads = default_threads(n_params, rows, 1)
    if threads is not None:
        torch.set_num_threads(threads)
    return threads
