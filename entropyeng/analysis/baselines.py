"""SGD baselines: many independent training runs, recording (ln train loss, test metric) along each
trajectory (the paper's black curves and best-early-stopping points). Runs in parallel over the
cores, one single-threaded process per run."""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from .._procs import die_with_parent
from ..wlmd.physics import loss_value
from .descent import OPTIMIZERS, descend

__all__ = ["sgd_trajectories", "train_one"]


def _metric(out, y, loss, metric):
    if metric == "loss":
        return math.log(_loss(out, y, loss).item())
    if loss == "bce":
        return ((out.reshape(-1) > 0).to(y.dtype) == y.reshape(-1)).double().mean().item()
    return (out.argmax(dim=1) == y.long()).double().mean().item()


_loss = loss_value  # the one loss table (entropyeng.wlmd.physics.make_loss)


def train_one(make_model, train, test, *, loss, metric, epochs, lr, batch_size, optimizer="sgd", seed=0,
              record_every=1):
    """One training run; returns an array (n_records, 2) of (ln train loss, test metric), recorded
    every ``record_every`` epochs (and at the start)."""
    torch.manual_seed(seed)
    model = make_model(seed)
    X, y = (torch.as_tensor(a) for a in train)
    Xt, yt = (torch.as_tensor(a) for a in test)
    first = next(model.parameters())
    X, Xt = X.to(first.dtype).to(first.device), Xt.to(first.dtype).to(first.device)
    y, yt = y.to(first.device), yt.to(first.device)
    opt_cls = OPTIMIZERS.get(optimizer)
    if opt_cls is None:
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
    records = []

    def record(done):
        if done % record_every == 0:
            with torch.no_grad():
                L = _loss(model(X), y, loss).item()
                records.append((math.log(L) if L > 0 else -math.inf, _metric(model(Xt), yt, loss, metric)))
        return False

    descend(model, X, y, functools.partial(_loss, loss=loss), opt_cls(model.parameters(), lr=lr), epochs=epochs,
            batch_size=batch_size, generator=torch.Generator().manual_seed(seed), after_epoch=record)
    return np.array(records)


def _worker(args):
    torch.set_num_threads(1)
    make_model, train, test, kw, seed = args
    return train_one(make_model, train, test, seed=seed, **kw)


def sgd_trajectories(make_model, train, test, *, loss, metric, runs=100, epochs=400, lr=0.1, batch_size=10,
                     optimizer="sgd", seed=0, record_every=1, processes=None, progress=None):
    """``runs`` independent SGD (or Adam) trainings of ``make_model(seed)``, seeds seed .. seed + runs - 1.

    ``make_model`` must be picklable (a module-level function or functools.partial). Returns a list of
    arrays (n_records, 2) of (ln train loss, test metric). ``processes`` defaults to the cores;
    ``progress(done, runs)`` is called as runs finish."""
    kw = dict(loss=loss, metric=metric, epochs=int(epochs), lr=float(lr), batch_size=int(batch_size),
              optimizer=optimizer, record_every=int(record_every))
    jobs = [(make_model, train, test, kw, seed + r) for r in range(int(runs))]
    processes = processes or os.cpu_count() or 1
    probe = next(make_model(seed).parameters())
    if probe.device.type != "cpu":
        processes = 1  # one process owns the GPU; forked workers cannot use CUDA
    if processes == 1 or runs == 1:
        out = []
        for k, job in enumerate(jobs):
            out.append(_worker(job))
            if progress:
                progress(k + 1, runs)
        return out
    results = [None] * len(jobs)
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_worker, job): k for k, job in enumerate(jobs)}
        done = 0
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            done += 1
            if progress:
                progress(done, runs)
    return results
