"""The optimisers a user would pick instead, from maintained libraries, each stopped at the target
train loss: SGD or Adam (the paper's Supplementary settings), SWA (``torch.optim.swa_utils``) and SAM
(``pytorch_optimizer.SAM``, the optional extra ``entropyeng[sam]``)."""

from __future__ import annotations

import copy
import functools
import math
import time

import numpy as np
import torch

from ..analysis.baselines import _loss
from ..analysis import descent
from ..analysis.descent import OPTIMIZERS
from ._common import TrainError, TrainResult, evaluate, nearest

__all__ = ["descend"]

def _sam_class():
    try:
        from pytorch_optimizer import SAM
    except ImportError:
        raise TrainError("method 'sam' needs pytorch-optimizer: pip install 'entropyeng[sam]'") from None
    return SAM


def descend(model, data, *, loss, metric, target, method="sgd", optimizer="sgd", lr, batch_size, max_epochs,
            seed=0, rho=0.05, swa_start=2.0, boxed=False, progress=None) -> TrainResult:
    """Minibatch training of ``model`` (in place) until its full-batch train loss is at most
    ``target``, checked after every epoch; the result is the epoch nearest the target on a log scale
    (the last one, or the one before it). ``method``: "sgd" (``optimizer`` "sgd" or "adam"), "swa"
    (the running average of the epochs' weights from the first epoch whose loss is below ``swa_start``
    times the target, learning rate held by ``SWALR``; the average is what is checked and returned)
    or "sam" (sharpness-aware steps of radius ``rho`` around ``optimizer``). ``boxed``: the parameters
    start in the paper's box (:func:`entropyeng.wlmd.physics.paper_bounds`) and are clamped back into it
    after every step (projected descent: the start of the max-entropy walk, whose ensemble is the box)."""
    if optimizer not in OPTIMIZERS:
        raise TrainError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
    if method not in ("sgd", "swa", "sam"):
        raise TrainError(f"method: expected 'sgd', 'swa' or 'sam', got {method!r}")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    X, y, _, _ = data
    project = None
    if boxed:
        from ..tasks.box import box_projection

        project = box_projection(model, "paper")
        project()
    if method == "sam":
        opt = _sam_class()(model.parameters(), OPTIMIZERS[optimizer], rho=rho, lr=lr)
    else:
        opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    L, m = evaluate(model, data, loss, metric)
    records, states = [(math.log(L), m)], [copy.deepcopy(model.state_dict())]
    averaged, swa_sched = None, None
    out = model

    def after_epoch(epoch):
        nonlocal L, out, averaged, swa_sched
        if epoch == 0:
            return L <= target
        if method == "swa":
            started = False
            if averaged is None and evaluate(model, data, loss, metric)[0] <= swa_start * target:
                averaged = torch.optim.swa_utils.AveragedModel(model)
                swa_sched = torch.optim.swa_utils.SWALR(opt, swa_lr=lr, anneal_epochs=1)
                started = True
            if averaged is not None:
                averaged.update_parameters(model)
                if not started:  # the scheduler steps after an epoch of the optimizer's steps under it
                    swa_sched.step()
                out = averaged.module
        L, m = evaluate(out, data, loss, metric)
        if not math.isfinite(L):
            raise TrainError(f"{method}: the train loss went non-finite at epoch {epoch} (learning rate {lr})")
        records.append((math.log(L), m))
        states.append(copy.deepcopy(out.state_dict()))
        del states[:-2]  # the nearest record is the last or the one before it
        if progress is not None:
            progress(epoch, L)
        return L <= target

    epoch = descent.descend(model, X, y, functools.partial(_loss, loss=loss), opt, epochs=max_epochs,
                            batch_size=batch_size, generator=torch.Generator().manual_seed(seed),
                            project=project, closure_step=method == "sam",
                            after_epoch=after_epoch)
    steps = epoch * -(-X.shape[0] // batch_size)
    records = np.array(records)
    best = nearest(records[-2:], target) + len(records) - min(2, len(records))
    result_model = copy.deepcopy(out)
    result_model.load_state_dict(states[best - len(records)])
    L, m = evaluate(result_model, data, loss, metric)
    return TrainResult(method=method if method != "sgd" else optimizer, model=result_model, target_loss=target,
                       train_loss=L, test_metric=m, reached=bool(records[:, 0].min() <= math.log(target)),
                       seconds=time.perf_counter() - t0, steps=steps, trajectory=records,
                       details=dict(epochs=epoch, lr=lr, batch_size=batch_size))
