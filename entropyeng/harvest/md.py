"""Harvest by molecular dynamics: networks of a chosen train loss from a finished landscape, sampled
by a WLMD walker under the landscape's frozen marginal bias (no hills: ``f_max = 0``), for the
networks a WLMC walker cannot move (a CNN) and the landscapes WLMD learned.

A WLMD landscape is S = kT_c ln g (kT_c: the integrator's configurational temperature), so the
marginal is kT_c log sum_y exp(S / kT_c); under it the walker is flat in ln L and, within a train
loss, samples the networks with the box's uniform weight (the Langevin dynamics at kT_c), as the
WLMC harvest does. The bias is smooth where WLMD needs it smooth: outside the reach it climbs by
:data:`~entropyeng.harvest.bias.CONFINE_PER_COLUMN` per column (the walker drifts back in), and the
columns the landscape never visited continue that ramp from the nearest visited one instead of a
wall of 10^4 nats (whose force would throw the walker off the grid)."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import torch

from .bias import frozen_bias
from .core import Harvest, Samples, check_settings

__all__ = ["harvest_wlmd", "FROZEN", "md_bias", "descend_to"]

#: the schedule of a harvesting WLMD walker: no hills, the landscape stays as it is
FROZEN = dict(f_max=0.0, t1=1.0, t2=1.0, t3=0.0)


def md_bias(landscape, lo, hi, temperature=1.0):
    """The (nx, ny) bias of a WLMD harvest in [lo, hi]: :func:`~entropyeng.harvest.frozen_bias` at
    ``temperature`` (kT_c), the confining ramp outside the reach, unvisited columns continuing the
    ramp of the nearest visited column."""
    return frozen_bias(landscape, lo, hi, temperature=temperature, unvisited="ramp")


def descend_to(model, train, loss, ln_train_loss, *, bound="paper", lr=1e-2, max_steps=20_000):
    """Adam on the train loss from ``model``'s parameters, clamped into the samplers' box, until
    ln(train loss) <= ``ln_train_loss``; returns the flat parameters (the WLMD harvest's start: its
    walker moves in ln L by diffusion, millions of steps a unit, so it starts at the target rather
    than walking there). ``loss``: "mse", "ce" or "bce". ValueError when ``max_steps`` do not get there."""
    from ..tasks.box import into_box
    from ..wlmd.physics import make_loss

    loss_fn = make_loss(loss)[1]
    X, y = train
    p0 = next(model.parameters())
    X, y = torch.as_tensor(X).to(p0.device, p0.dtype), torch.as_tensor(y).to(p0.device)
    y = y.long() if loss == "ce" else y.to(p0.dtype)
    into_box(model, bound)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(max_steps):
        value = loss_fn(model(X), y)
        if math.log(float(value.detach())) <= ln_train_loss:
            break
        opt.zero_grad()
        value.backward()
        opt.step()
        into_box(model, bound)
    else:
        raise ValueError(f"the descent to ln L = {ln_train_loss:.3f} did not get there in {max_steps:,} Adam steps")
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu().numpy().astype(np.float64)


def harvest_wlmd(make_sampler, landscape, ln_train_loss, *, window=0.1, reach=0.3, steps=200_000, every=20,
                 count=None, progress=None, start=None) -> Harvest:
    """Harvest networks with ln(train loss) in ``ln_train_loss`` ± ``window`` / 2 by molecular dynamics.

    ``make_sampler(schedule=...)``: a one-walker :class:`entropyeng.WLMD` on the landscape's model,
    data and grid (its integrator, dt, gamma and walls as the landscape's run had them); the harvest
    gives it the frozen schedule :data:`FROZEN` and sets its landscape to :func:`md_bias`. It moves
    ``steps`` steps; every ``every`` steps its network is a sample, kept when in the window.
    ``start``: parameters to start from, best at the target (:func:`descend_to`: the walker moves
    in ln L by diffusion, slowly; a start far from the reach may not arrive within the harvest).
    ``count``, ``progress``: as for :func:`entropyeng.harvest.harvest_wlmc`. The test metric is the landscape's y (ln test loss, or
    the logit of the smoothed accuracy for a classification landscape)."""
    x0, lo, hi, below, above = check_settings(landscape, ln_train_loss, window, reach, steps, every)
    w = make_sampler(schedule=dict(FROZEN))
    if w.K != 1:
        raise ValueError("make_sampler: a harvest runs one walker")
    if start is not None:
        with torch.no_grad():
            w.theta.copy_(torch.as_tensor(np.asarray(start), dtype=w.theta.dtype))
    with torch.no_grad():
        w.S.copy_(torch.from_numpy(md_bias(landscape, x0 - below, x0 + above, w.config_temperature)))
    w.planned_steps = steps
    n = steps // every
    samples = Samples(n, lo, hi, w.n_params)
    from ..wlmd import WLMDError

    with tempfile.TemporaryDirectory() as tmp:  # (where a failing walker's last good state would go)
        last_good = os.path.join(tmp, "last-good.npz")
        for k in range(n):
            try:
                w.run(every, checkpoint=last_good)
            except WLMDError as e:
                raise ValueError(f"the harvest's WLMD walker stopped after {k * every:,} steps: "
                                 f"{str(e).split('; the last good state')[0]}") from None
            samples.add(k, w._xv, w._yv, lambda: w.theta.detach().cpu().numpy())
            if progress is not None and (k + 1) % max(1, n // 100) == 0:
                progress((k + 1) * every, len(samples.kept_at))
    return samples.harvest(landscape, x0, below, above, w.H.cpu().numpy().sum(axis=1), count=count, every=every,
                           metric="loss" if w.cv_y == "test_loss" else w.cv_y,
                           meta=dict(walker="WLMD", config_temperature=w.config_temperature))
