"""The ``harvest`` method: a network harvested from a finished landscape at the target train loss
(:mod:`entropyeng.harvest`), instead of one trained there. The landscape is the run's; its cost is
reported beside the harvest's (``details["landscape_seconds"]``), not hidden in it."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from ._common import TrainError, TrainResult, evaluate

__all__ = ["harvested"]


def _same_data(run_dir, train, test):
    from ..runs.build import build_problem
    from ..runs.config import load_config

    problem = build_problem(load_config(os.path.join(run_dir, "config.toml")))
    for name, mine, theirs in (("train", train, problem.train), ("test", test, problem.test)):
        for a, b in zip(mine, theirs):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape or not np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=0, atol=1e-6):
                raise TrainError(f"landscape: the run in {run_dir} was sampled on other {name} data than given")


def harvested(model, data, train, test, *, loss, metric, target, landscape, seed=0, steps=None, window=0.1,
              reach=0.3, progress=None) -> TrainResult:
    """One network of the harvest of ``landscape`` (a finished ``entropyeng run`` directory of this
    model and data) at ln ``target`` ± ``window`` / 2: the harvest's random stream is ``seed``, and
    the network is a kept one drawn by ``seed``; ``model`` (the run's architecture) receives it."""
    from ..harvest import HarvestError, harvest_run, load_params

    if not landscape or not os.path.isdir(landscape):
        raise TrainError(f"landscape: method 'harvest' needs a finished 'entropyeng run' directory of the task, "
                         f"got {landscape!r}")
    _same_data(landscape, train, test)
    try:
        h = harvest_run(landscape, train_loss=target, window=window, reach=reach, steps=steps, seed=seed,
                        progress=progress and (lambda done, n: progress(done, math.log(target))))
    except HarvestError as e:
        raise TrainError(str(e)) from None
    n = sum(p.numel() for p in model.parameters())
    if h.params.shape[1] != n:
        raise TrainError(f"model: {n} parameters, the landscape's network has {h.params.shape[1]}")
    k = int(np.random.default_rng(seed).integers(h.count))
    load_params(model, h.params[k])
    train_loss, test_metric = evaluate(model, data, loss, metric)
    try:
        with open(os.path.join(landscape, "summary.json")) as fh:
            landscape_seconds = json.load(fh).get("wall_seconds")
    except (OSError, ValueError):
        landscape_seconds = None
    details = dict(harvest_mean=h.mean, harvest_error=h.error, landscape_mean=h.landscape_mean, kept=h.count,
                   tau_steps=h.tau * h.every, round_trips=h.round_trips, landscape_seconds=landscape_seconds,
                   landscape=os.path.abspath(landscape))
    return TrainResult(method="harvest", model=model, target_loss=target, train_loss=train_loss,
                       test_metric=test_metric,
                       reached=abs(math.log(train_loss) - math.log(target)) <= window / 2 + 1e-6,
                       seconds=h.seconds, steps=h.steps, trajectory=np.c_[h.ln_train_loss, h.test_metric],
                       details=details)
