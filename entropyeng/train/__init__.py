"""Train toward high entropy: a max-entropy trainer, and the optimisers it is measured against, all
stopped at a target train loss so that they are compared where the paper compares them.

    from entropyeng.train import train
    result = train(model, (X, y), (Xt, yt), loss="ce", metric="accuracy", method="maxent", target_loss=0.05)
    result.model, result.train_loss, result.test_metric

Methods: ``maxent`` (descent to the target, then Langevin dynamics at kT = 1 held in the shell
|ln L - ln target| <= width: a typical member of the shell; :mod:`entropyeng.train.langevin`),
``anneal`` (Langevin dynamics on the train loss with kT lowered until the target is reached, from an
SGD solution at e times the target), ``harvest`` (a network of a finished landscape's harvest at the
target: :mod:`entropyeng.harvest`), and the peers ``sgd`` (or Adam: ``optimizer``), ``swa`` and
``sam`` (:mod:`entropyeng.train.peers`), each stopped at the first epoch at or below the target.
``walkers`` > 1 (maxent, anneal): independent walkers whose predictions are averaged.
"""

from __future__ import annotations

import math

from .._lazy import lazy_names

TYPE_CHECKING = False  # (the API docs and type checkers read the names here; at run time they load on use)
if TYPE_CHECKING:
    from ._common import Ensemble, TrainError, TrainResult
del TYPE_CHECKING

__all__ = ["train", "METHODS", "TrainResult", "TrainError", "Ensemble"]

#: the names of :mod:`._common`, loaded on first use (the command's parser reads METHODS without torch)
__getattr__, __dir__ = lazy_names(__name__, {n: "_common" for n in ("Ensemble", "TrainError", "TrainResult")},
                                  globals())

METHODS = ("maxent", "harmonic", "anneal", "harvest", "sgd", "swa", "sam")


def train(model, train, test, *, loss, metric, method="maxent", target_loss, seed=0, optimizer="sgd", lr=1e-2,
          batch_size=16, max_epochs=2000, steps=None, walkers=1, dt=1e-3, gamma=0.01, width=0.05,
          wall_c=3000.0, kT0=5e-3, kT1=5e-5, anneal_dt=None, rho=0.05, record_every=100,
          landscape=None, progress=None) -> TrainResult:
    """Train ``model`` (modified in place; the result's ``model`` is the network to use) with
    ``method`` (module docstring) to the train loss ``target_loss``.

    ``loss``: "mse", "ce" or "bce"; ``metric``: "accuracy" or "loss" (the test metric reported: test
    accuracy, or ln test loss). ``optimizer``, ``lr``, ``batch_size``, ``max_epochs``: the peers'
    settings and the descent of maxent and anneal (the paper's Supplementary settings per task: see
    :func:`train_task`). ``steps``, ``dt``, ``gamma``: each Langevin walker's steps (default 20,000; for ``harvest``
    the harvest's walker-steps, default 2e6 for a WLMC landscape, 2e5 for a WLMD one), time step and
    friction per step; ``width`` and ``wall_c``: the shell's half-width in ln(train loss) and its wall
    constant (``harmonic``); ``kT0``, ``kT1``: the annealing's temperatures (its friction is 0.1
    per step and its time step ``anneal_dt``, by default sqrt(0.1 lr): the drift of the descent).
    ``landscape``: method ``harvest``'s finished run directory of this model and data (its harvest
    takes ``steps`` walker-steps and the window ``2 width``). ``progress(step, ln_train_loss)``:
    called along the way. Raises :class:`TrainError` for a bad target or settings, and when the
    descent of maxent or anneal cannot reach the target."""
    import torch

    from ._common import TrainError, check_target, prepare
    from .langevin import maxent
    from .peers import descend

    target = check_target(target_loss)
    if method not in METHODS:
        raise TrainError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(model, torch.nn.Module):
        raise TrainError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if steps is None and method != "harvest":  # (a harvest's default depends on its run's sampler)
        steps = 20_000
    for name, value in (("steps", 1 if steps is None else steps), ("walkers", walkers), ("batch_size", batch_size), ("max_epochs", max_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrainError(f"{name}: expected an integer >= 1, got {value!r}")
    for name, value in (("lr", lr), ("dt", dt), ("width", width), ("kT0", kT0), ("kT1", kT1)):
        if not (isinstance(value, (int, float)) and value > 0 and value < float("inf")):
            raise TrainError(f"{name}: expected a finite number > 0, got {value!r}")
    # as floats: a Python int above 2^63 reaches torch's optimisers as an int64 and overflows there
    lr, dt, width, kT0, kT1 = float(lr), float(dt), float(width), float(kT0), float(kT1)
    data = prepare(model, train, test)
    if method == "harvest":
        from .harvested import harvested

        return harvested(model, data, train, test, loss=loss, metric=metric, target=target, landscape=landscape,
                         seed=seed, steps=steps, window=2 * width, progress=progress)
    descent = dict(optimizer=optimizer, lr=lr, batch_size=batch_size, max_epochs=max_epochs)
    if method in ("maxent", "harmonic", "anneal"):
        if method == "anneal":
            # friction 0.1 per step; Langevin's drift then moves like gradient descent of learning
            # rate dt^2 / gamma: by default the descent's learning rate
            gamma = 0.1
            dt = anneal_dt or math.sqrt(lr * gamma)
        return maxent(model, data, loss=loss, metric=metric, target=target,
                      kind={"maxent": "shell"}.get(method, method), steps=steps, dt=dt, gamma=gamma,
                      walkers=walkers, seed=seed, descent=descent, width=width, wall_c=wall_c, kT0=kT0, kT1=kT1,
                      record_every=record_every, progress=progress)
    return descend(model, data, loss=loss, metric=metric, target=target, method=method, seed=seed, rho=rho,
                   progress=progress, **descent)


def train_task(task, method, target_loss, *, seed=0, config=None, **kw):
    """:func:`train` on a task of ``entropyeng tasks`` (its data, the model of seed ``seed``, the
    paper's SGD settings for the peers and the descent): returns (result, problem)."""
    from ..runs.config import load_config
    from ..tasks.catalog import build

    config = config or load_config(task)
    problem = build(config)
    s = config["sgd"]
    settings = dict(optimizer=s["optimizer"], lr=float(s["lr"]), batch_size=int(s["batch_size"]))
    settings.update(kw)
    result = train(problem.make_model(seed), problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                   method=method, target_loss=target_loss, seed=seed, **settings)
    return result, problem
