"""Descent on a network's train loss, written once: the loop of the SGD baselines
(:func:`entropyeng.analysis.baselines.train_one`), of the optimisers a user would pick instead of
the max-entropy walk (:func:`entropyeng.train.peers.descend`: SGD, Adam, SWA, SAM, optionally in the
samplers' box) and of the WLMD harvest's way down to its target loss
(:func:`entropyeng.harvest.md.descend_to`: full-batch Adam in the box)."""

from __future__ import annotations

import torch

__all__ = ["OPTIMIZERS", "descend"]

#: The optimisers the baselines and the peers take by name.
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def descend(model, X, y, loss_fn, optimizer, *, epochs, batch_size=None, generator=None, project=None,
            closure_step=False, after_epoch=None) -> int:
    """Up to ``epochs`` epochs of ``optimizer`` on ``loss_fn(model(xb), yb)``, in place; returns the
    epochs run.

    Parameters
    ----------
    model, X, y : the network and its train rows (tensors of the model's device and dtype).
    loss_fn : callable ``(outputs, targets) -> scalar tensor``.
    optimizer : a ``torch.optim.Optimizer`` over the model's parameters.
    epochs : int
        The most epochs.
    batch_size : int or None
        None: one full-batch step an epoch, the rows in their order. Otherwise minibatches of
        ``batch_size`` rows of a permutation drawn from ``generator`` each epoch (the last one shorter).
    project : callable or None
        Called after every step: the projection of a projected descent (e.g.
        :func:`entropyeng.tasks.box.box_projection`).
    closure_step : bool
        Step as ``optimizer.step(closure)`` after a first evaluation of the closure (SAM's two
        gradients a step); otherwise the gradient, then ``optimizer.step()``.
    after_epoch : callable or None
        ``after_epoch(done) -> bool`` with the epochs done so far, called before the first epoch
        (``done = 0``) and after each one: a record, a progress line, the stop (True stops).
    """
    n = X.shape[0]
    done = 0
    while not (after_epoch is not None and after_epoch(done)) and done < epochs:
        if batch_size is None:
            batches = [(X, y)]
        else:
            perm = torch.randperm(n, generator=generator)
            batches = ((X[idx], y[idx]) for idx in (perm[k:k + batch_size] for k in range(0, n, batch_size)))
        for xb, yb in batches:
            def closure(xb=xb, yb=yb):
                optimizer.zero_grad()
                value = loss_fn(model(xb), yb)
                value.backward()
                return value

            closure()
            if closure_step:
                optimizer.step(closure)
            else:
                optimizer.step()
            if project is not None:
                project()
        done += 1
    return done
