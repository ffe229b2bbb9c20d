"""Harvest by molecular dynamics: networks of a chosen train loss from a finished landscape, sampled
by a WLMD walker under the landscape's frozen marginal bias (no hills: ``f_max = 0``), for the
networks a WLMC walker cannot move (a CNN) and the landscapes WLMD learned.

A WLMD landscape is S = kT_c ln g (kT_c: the integrator's configurational temperature), so the
marginal is kT_c log sum_y exp(S / kT_c); under it the walker is flat in ln L and, within a train
loss, samples the networks with the box's uniform weight (the Langevin dynamics at kT_c), as the
WLMC harvest does. The bias is smooth where WLMD needs it smooth: outside the reach it climbs by
:data:`~entropyeng.harvest.bias.CONFINE_PER_COLUMN` per column (the walker drifts back in), and the
columns the landscape never visited take its marginal interpolated (with that ramp beyond the
reach) instead of a wall of 10^4 nats (whose force would throw the walker off the grid), and walls
at the reach's ends hold the walker. Where the landscape left a column of the reach unvisited (it
never reached the target), a tuning phase first builds the bias there (Wang-Landau on the x
columns, with Gaussian hills in x: the bias stays smooth and a function of ln L alone)."""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time

import numpy as np
import torch

from .bias import frozen_bias
from .core import Harvest, Samples, check_settings, reach_columns, refuse_unvisited
from .tune import XSchedule, hill_in_x

__all__ = ["harvest_wlmd", "FROZEN", "md_bias", "descend_to"]

#: columns beyond the reach that follow its tuning at once (where the ramp has climbed 2 nats a
#: column: further than any walker goes)
TUNE_MARGIN = 20

#: the tuning's first ln f (a hill of kT_c ln f in all, every ``every`` steps): the WLMC harvest's.
#: 10 was tried: it fills a reach the landscape never visited faster, but on a visited one (the
#: regression's) its first hills threw the walker to the reach's end, and 10^4 tuning steps did not
#: bring it back (1: the harvest's mean -1.005 against the landscape's -1.001)
TUNE_LN_F = 1.0

#: the schedule of a harvesting WLMD walker: no hills, the landscape stays as it is
FROZEN = dict(f_max=0.0, t1=1.0, t2=1.0, t3=0.0)


def md_bias(landscape, lo, hi, temperature=1.0):
    """The (nx, ny) bias of a WLMD harvest in [lo, hi]: :func:`~entropyeng.harvest.frozen_bias` at
    ``temperature`` (kT_c), the confining ramp outside the reach, unvisited columns interpolated
    (plus the ramp beyond the reach)."""
    return frozen_bias(landscape, lo, hi, temperature=temperature, unvisited="ramp")


def descend_to(model, train, loss, ln_train_loss, *, bound="paper", lr=1e-2, max_steps=20_000):
    """Adam on the train loss from ``model``'s parameters, clamped into the samplers' box, until
    ln(train loss) <= ``ln_train_loss``; returns the flat parameters (the WLMD harvest's start: its
    walker moves in ln L by diffusion, millions of steps a unit, so it starts at the target rather
    than walking there). ``loss``: "mse", "ce" or "bce". ValueError when ``max_steps`` do not get there."""
    from ..analysis.descent import descend
    from ..tasks.box import box_projection
    from ..wlmd.physics import loss_value

    X, y = train
    p0 = next(model.parameters())
    X, y = torch.as_tensor(X).to(p0.device, p0.dtype), torch.as_tensor(y).to(p0.device)
    loss_fn = functools.partial(loss_value, loss=loss)
    project = box_projection(model, bound)
    project()
    reached = False

    def there(done):
        nonlocal reached
        with torch.no_grad():
            reached = math.log(float(loss_fn(model(X), y))) <= ln_train_loss
        return reached

    descend(model, X, y, loss_fn, torch.optim.Adam(model.parameters(), lr=lr), epochs=max_steps, project=project,
            after_epoch=there)
    if not reached:
        raise ValueError(f"the descent to ln L = {ln_train_loss:.3f} did not get there in {max_steps:,} Adam steps")
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu().numpy().astype(np.float64)


def _advance(w, steps, done, checkpoint):
    """``steps`` steps of the walker; a walker that fails is a ValueError saying after how many."""
    from ..wlmd import WLMDError

    w.failure_path = checkpoint
    try:
        w.advance(steps)
    except WLMDError as e:
        raise ValueError(f"the harvest's WLMD walker stopped after {done:,} steps: "
                         f"{str(e).split('; the last good state')[0]}") from None


def _tune(w, bias, grid, lo, hi, steps, every, checkpoint):
    """Wang-Landau on the bias's x columns within [lo, hi] (:class:`~entropyeng.harvest.tune.XSchedule`),
    every ``every`` steps a Gaussian hill in x of kT_c ln f in all at the walker's ln L, reflected
    at the reach's ends (the bias stays a smooth function of x alone); the columns beyond the reach
    move with its edge's column, so the confining ramp stays a ramp above the tuned bias. What it did."""
    reach = reach_columns(grid, lo, hi)
    schedule = XSchedule(reach, TUNE_LN_F)
    first, last = np.flatnonzero(reach)[[0, -1]]
    # the bias the walker can reach while tuning (the ramp: 2 nats a column) follows each hill at
    # once; the rest of the grid catches up at the end (a copy of nx * ny values per hill would cost more
    # than the steps between hills)
    near = slice(max(0, first - TUNE_MARGIN), min(grid.nx, last + 1 + TUNE_MARGIN))
    correction, applied = np.zeros(grid.nx), np.zeros(grid.nx)

    def apply(cols):
        bias[cols] += (correction[cols] - applied[cols])[:, None]
        w.set_bias(bias, frozen=True, columns=cols)
        applied[cols] = correction[cols]

    for k in range(max(1, steps // every)):
        _advance(w, every, k * every, checkpoint)
        x = float(w.cvs()[0, 0])
        ln_f = schedule.visit(grid.column(x))
        if ln_f:
            correction[first:last + 1] += hill_in_x(grid, x, w.config_temperature * ln_f, slice(first, last + 1))
            correction[:first], correction[last + 1:] = correction[first], correction[last]
            apply(near)
    apply(slice(None))
    return schedule.summary()


def harvest_wlmd(make_sampler, landscape, ln_train_loss, *, window=0.1, reach=0.3, steps=200_000, every=20,
                 count=None, progress=None, start=None, tune=None) -> Harvest:
    """Harvest networks with ln(train loss) in ``ln_train_loss`` ± ``window`` / 2 by molecular dynamics.

    ``make_sampler(schedule=..., walls=...)``: a one-walker :class:`entropyeng.WLMD` on the
    landscape's model, data and grid (its integrator, dt, gamma and walls as the landscape's run had
    them, ``walls``' x_min and x_max, the reach's ends, in place of the run's x walls); the harvest
    gives it the frozen schedule :data:`FROZEN` and sets its landscape to :func:`md_bias`. The walls
    hold the walker near the reach where the landscape does not (beyond what it visited the bias is
    flat, and the entropy's pull up the train loss would win over the ramp). ``tune``
    steps first build that bias within the reach, Wang-Landau on the x columns with Gaussian hills
    in x (:func:`_tune`), so the window need not be one the landscape visited (without tuning it
    must be); by default (None) ``steps`` / 2 where the landscape left a column of the reach
    unvisited and none where it visited them all (a WLMD walker crosses a reach in 10^5-10^6 steps:
    a shorter tuning piles its hills where the walker started, the target, and pushes it away: on
    the regression's landscape 4 harvests in 5 never returned to the window, where untuned all 5
    did). Then ``steps`` steps of production on the bias, frozen: every ``every`` steps the network
    is a sample, kept when in the window.
    ``start``: parameters to start from, within the reach, best at the target (:func:`descend_to`:
    the walker moves in ln L by diffusion, slowly, and the walls at the reach's ends would throw a
    walker that starts far beyond them off the grid).
    ``count``, ``progress``: as for :func:`entropyeng.harvest.harvest_wlmc`. The test metric is the landscape's y (ln test loss, or
    the logit of the smoothed accuracy for a classification landscape)."""
    x0, lo, hi, below, above = check_settings(landscape, ln_train_loss, window, reach, steps, every, visited=False)
    if tune is None:
        columns = reach_columns(landscape.grid, x0 - below, x0 + above)
        tune = steps // 2 if (landscape.histogram[columns].sum(axis=1) == 0).any() else 0
    tune = int(tune)
    if not tune:  # an untuned bias needs the landscape in the window
        refuse_unvisited(landscape, lo, hi)
    t0 = time.perf_counter()
    w = make_sampler(schedule=dict(FROZEN), walls=dict(x_min=x0 - below, x_max=x0 + above))
    if len(w.cvs()) != 1:
        raise ValueError("make_sampler: a harvest runs one walker")
    if start is not None:
        w.positions = np.asarray(start)
    bias = md_bias(landscape, x0 - below, x0 + above, w.config_temperature)
    w.set_bias(bias, frozen=True)
    w.plan(steps + tune)
    n = steps // every
    samples = Samples(n, lo, hi, w.n_params, t0=t0)
    with tempfile.TemporaryDirectory() as tmp:  # (where a failing walker's last good state would go)
        last_good = os.path.join(tmp, "last-good.npz")
        tuned = _tune(w, bias, landscape.grid, x0 - below, x0 + above, tune, every, last_good) if tune else {}
        before = w.landscape.histogram  # production's visits: the histogram's growth from here
        for k in range(n):
            _advance(w, every, tune + k * every, last_good)
            x, y = w.cvs()[0]
            samples.add(k, x, y, lambda: w.positions[0])
            if progress is not None and (k + 1) % max(1, n // 100) == 0:
                progress((k + 1) * every, len(samples.kept_at))
    return samples.harvest(landscape, x0, below, above, (w.landscape.histogram - before).sum(axis=1), count=count,
                           every=every,
                           metric="loss" if w.cv_y == "test_loss" else w.cv_y,
                           meta=dict(tuned, tune_steps=tune, walker="WLMD", config_temperature=w.config_temperature))
