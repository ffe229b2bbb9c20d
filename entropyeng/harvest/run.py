"""Harvest from a finished ``entropyeng run`` directory: its config, data and landscape. A WLMC run
is harvested by a WLMC walker started from the run's last state (its network an MLP: Linear layers
and ReLU / Tanh / SiLU / Identity; mse, ce or bce); a WLMD run by a WLMD walker with the run's own
integrator, dt, friction and walls, started at the target by descent (any network, the CNN too): a
WLMD landscape is kT_c ln g of its own dynamics, hundreds of nats from the ln g a WLMC walker needs
at the budgets measured (docs/harvest.md)."""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from .core import Harvest, harvest_wlmc
from .md import descend_to, harvest_wlmd

__all__ = ["harvest_run", "load_model", "harvestable", "run_sampler", "HarvestError", "DEFAULT_STEPS"]


class HarvestError(ValueError):
    """A run that cannot be harvested, or settings that cannot work (one line, naming what)."""


def run_sampler(run_dir) -> str:
    """"wlmd" or "wlmc": the sampler of the run in ``run_dir`` (by its config; "wlmc" when unreadable,
    the harvest then says what is wrong)."""
    from ..runs.config import ConfigError, load_config

    try:
        return "wlmd" if "wlmd" in load_config(os.path.join(run_dir, "config.toml")) else "wlmc"
    except (ConfigError, OSError):
        return "wlmc"


def _run(run_dir):
    from ..runs.build import build_problem
    from ..runs.config import ConfigError, load_config
    from ..landscape import Landscape

    cfg = os.path.join(run_dir, "config.toml")
    land = os.path.join(run_dir, "landscape.npz")
    if not os.path.exists(cfg):
        raise HarvestError(f"'{run_dir}' holds no run (no config.toml)")
    if not os.path.exists(land):
        raise HarvestError(f"'{run_dir}' holds no landscape.npz: finish the run first (entropyeng resume {run_dir})")
    try:
        config = load_config(cfg)
        problem = build_problem(config)
    except ConfigError as e:
        raise HarvestError(f"{cfg}: {e}") from None
    try:
        landscape = Landscape.load(land)
    except (OSError, ValueError, KeyError) as e:
        raise HarvestError(f"{land}: cannot be read as a landscape ({e})") from None
    return config, problem, landscape


def harvestable(problem):
    """None when the harvest's walker (the problem's sampler's) can move the problem's network, else
    why not (a line): a WLMD walker moves any network; a WLMC walker an MLP."""
    if problem.sampler == "wlmd":
        return None
    from ..tasks.box import into_box
    from ..wlmc.chain import WLMC

    try:
        WLMC(into_box(problem.make_model(0)), problem.train, problem.test, loss=problem.loss, metric=problem.metric)
    except (TypeError, ValueError) as e:
        why = str(e).splitlines()[0][:120]
        return f"its network cannot be moved by the harvest's WLMC walker ({why}); harvests need an MLP"
    return None


def _start(run_dir, n_params):
    """The run's last parameters (WLMC's ``params``, WLMD's ``theta``; of several walkers the first):
    a point the landscape knows, where the harvest's walker starts (the model's initialisation may lie
    where the landscape's S is far from ln g, at a train loss its walkers left early)."""
    path = os.path.join(run_dir, "checkpoint.npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            key = next((k for k in ("params", "theta") if k in f.files), None)
            if key is None:
                return None
            p = np.asarray(f[key], dtype=np.float64).reshape(-1)
    except (OSError, ValueError):
        return None
    return p[:n_params] if p.size % n_params == 0 else None


#: the defaults of a harvest by walker: (steps, every); a WLMD step costs a hundred WLMC steps and more
DEFAULT_STEPS = {"wlmc": (2_000_000, 200), "wlmd": (200_000, 20)}


def harvest_run(run_dir, *, train_loss, window=0.1, reach=0.3, steps=None, every=None, count=None, seed=0,
                progress=None, threads=None) -> Harvest:
    """Harvest networks of train loss ``train_loss`` (ln L within ``window`` / 2 of its log) from the
    run in ``run_dir``: a WLMC run by :func:`entropyeng.harvest.harvest_wlmc`, a WLMD run by
    :func:`entropyeng.harvest.harvest_wlmd` (``steps``, ``every`` default to :data:`DEFAULT_STEPS`).
    The result's ``meta`` names the run and carries its config, so :func:`load_model` rebuilds a
    kept network in one call. ``threads``: torch's intra-op threads (default: the run's rule,
    :func:`entropyeng.runs.build.set_threads`)."""
    from ..runs.build import set_threads
    from ..tasks.box import into_box
    from ..wlmc.chain import WLMC

    if not (isinstance(train_loss, (int, float)) and math.isfinite(train_loss) and train_loss > 0):
        raise HarvestError(f"train_loss: expected a number > 0, got {train_loss!r}")
    config, problem, landscape = _run(run_dir)
    set_threads(problem, threads)
    kind = problem.sampler
    steps = DEFAULT_STEPS[kind][0] if steps is None else steps
    every = DEFAULT_STEPS[kind][1] if every is None else every
    seed_model = config[kind].get("seed", 0)
    model = into_box(problem.make_model(seed_model))  # (the walkers start elsewhere: see the module's note)
    n_params = sum(p.numel() for p in model.parameters())
    if kind == "wlmd":
        return _harvest_md(run_dir, config, problem, landscape, model, train_loss=train_loss,
                           window=window, reach=reach, steps=steps, every=every, count=count, seed=seed,
                           progress=progress)

    def walker(**kw):
        return WLMC(model, problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                    grid=landscape.grid, seed=1_000_003 + int(seed), **kw)

    why = harvestable(problem)
    if why:
        raise HarvestError(f"the {config['task']} task: {why}")
    try:
        h = harvest_wlmc(walker, landscape, math.log(train_loss), window=window, reach=reach, steps=steps,
                         every=every, count=count, progress=progress, start=_start(run_dir, n_params))
    except ValueError as e:
        raise HarvestError(str(e)) from None
    return _with_run(h, run_dir, config, seed, landscape)


def _with_run(h, run_dir, config, seed, landscape):
    with open(os.path.join(run_dir, "config.toml")) as fh:
        h.meta.update(run=os.path.abspath(run_dir), task=config["task"], seed=int(seed), sampler=landscape.meta.get(
            "sampler", "WLMC"), config=fh.read())
    return h


def _harvest_md(run_dir, config, problem, landscape, model, *, train_loss, seed, **kw):
    """A WLMD run's harvest: as many WLMD walkers as the run had, one after the other (each its own
    harvest, pooled by :meth:`Harvest.pool`), with the run's settings and the frozen schedule,
    started at the target by :func:`~entropyeng.harvest.md.descend_to`."""
    from ..tasks.catalog import wlmd_kwargs
    from ..wlmd import WLMD

    args = wlmd_kwargs(config, problem)
    args.update(walkers=1, grid=landscape.grid, distributed=False)
    y_walls = {k: v for k, v in (args.get("walls") or {}).items() if k.startswith("y")}

    def sampler(walls, walker_seed, **over):  # the harvest's x walls in place of the run's; its y walls kept
        return WLMD(model, problem.train, problem.test, **dict(args, seed=walker_seed, walls=dict(y_walls, **walls),
                                                               **over))

    walkers = int(config["wlmd"].get("walkers", 1))
    harvests = []
    try:  # each walker starts at the target, by descent from the model's initialisation (harvest_wlmd's note)
        start = descend_to(model, problem.train, problem.loss, math.log(train_loss), bound=args.get("bound", "paper"))
        for k in range(walkers):  # a run of K walkers: K walkers harvest, each its own random stream
            walker = functools.partial(sampler, walker_seed=1_000_003 + int(seed) + 7_919 * k)
            harvests.append(harvest_wlmd(walker, landscape, math.log(train_loss), start=start, **kw))
        h = Harvest.pool(harvests, count=kw.get("count"))
    except ValueError as e:
        raise HarvestError(str(e)) from None
    return _with_run(h, run_dir, config, seed, landscape)


def load_model(path, k=0):
    """The k-th network of a harvest file written by ``entropyeng harvest``: the task's model (built
    from the run's config) with its parameters."""
    from ..runs.config import config_of, toml_module
    from ..tasks.catalog import build

    h = Harvest.load(path)
    if "config" not in h.meta:
        raise HarvestError(f"{path}: no run config in the file (a library harvest: use Harvest.network(k, model))")
    config = config_of(toml_module().loads(h.meta["config"]))
    problem = build(config)
    model = problem.make_model(config.get("wlmc", config.get("wlmd", {})).get("seed", 0))
    return h.network(k, model)
