"""The host's reads of a WLMD run: every walker's (x, y) without an autograd graph, what is wrong
with a point, and the read every ``sync_every`` steps (the distributed all-reduce, the walkers the
steps dropped, the check of the last update, the stop when no walker is left)."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch

from .. import _checks as C
from .state import WalkerDropped, WLMDError

__all__ = ["evaluate", "evaluated", "problem", "host_read", "Thermometer", "KineticTemperatureWarning"]


class Thermometer:
    """The kinetic temperature (mean v^2 of the active walkers' parameters) read at every host read,
    and one warning (:class:`KineticTemperatureWarning`) when its mean over the last ``window`` steps
    leaves [low, high] x kT: a model that heats (the hills' forces outpace the thermostat) or freezes
    samples at another temperature than the landscape assumes. For P parameters the mean of one read
    scatters by kT sqrt(2 / P); over a window of 10,000 steps the band (0.5 kT, 1.5 kT) holds the exact
    case's five parameters (tested)."""

    def __init__(self, kT, window=10_000, low=0.5, high=1.5):
        self.kT, self.window, self.low, self.high = kT, window, low, high
        self.reads, self.warned = [], False

    def read(self, step, v, active):
        if self.kT <= 0 or self.warned or not active.any():
            return None
        live = (v if active.all() else v[torch.from_numpy(active).to(v.device)]).reshape(-1)
        self.reads.append((step, float(torch.dot(live, live)) / live.numel()))  # (one op, not a mean of squares)
        while len(self.reads) > 1 and self.reads[-1][0] - self.reads[1][0] >= self.window:
            self.reads.pop(0)
        if self.reads[-1][0] - self.reads[0][0] < self.window:
            return None
        mean = sum(T for _, T in self.reads[1:]) / (len(self.reads) - 1)
        if self.low * self.kT <= mean <= self.high * self.kT:
            return None
        self.warned = True
        how = ("the dynamics heat up (the hills' and walls' forces outpace the thermostat): lower dt, or raise "
               "gamma (the friction per step)" if mean > self.high * self.kT else
               "the dynamics freeze: raise dt, or check kT and gamma")
        return (f"the kinetic temperature averaged {mean:.3g} over steps {self.reads[0][0]:,}-{step:,} at kT = "
                f"{self.kT:g}: {how}; the landscape assumes the walkers sample at kT")


class KineticTemperatureWarning(UserWarning):
    """The walkers' kinetic temperature left its band around kT over a window of steps."""


def evaluate(w):
    """(x, y) and the smoothing error of every walker (``_xs``, ``_ys``, ``_errs``) and (x, y) of
    the first active one (``_xv``, ``_yv``), read on the host (no autograd graph). Before the first
    run, through ``functional_call``; then the way the step runs the model."""
    fns = w._host_models()
    with torch.no_grad():
        x, y, err = fns.evaluate(w.state.theta)
    w._xs, w._ys, w._errs = torch.stack((x, y, err)).double().cpu().numpy()  # (one copy to the host)
    active = w.active
    k = int(np.argmax(active)) if active.any() else 0
    w._xv, w._yv = float(w._xs[k]), float(w._ys[k])
    w._cvs_stale = False


def evaluated(w):
    """``w`` with its walkers' (x, y) as of the last host read: a read inside a run leaves them to
    be evaluated when asked for (:func:`info`, ``cvs()``), since the model's forward pass at every
    read cost 2-4 % of a native run's steps."""
    if getattr(w, "_cvs_stale", False):
        evaluate(w)
    return w


def problem(grid, x, y, step):
    """What is wrong with (x, y) at ``step`` (the grid check of :func:`physics.on_grid`: edges included,
    NaN off the grid; on Python floats, which compare as its float64 tensors), or None."""
    if grid.x_min <= x <= grid.x_max and grid.y_min <= y <= grid.y_max:
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return f"the loss is not finite at step {step} (x = {x}, y = {y})"
    return f"the walker left the grid at step {step} (x = {x:.6g}, y = {y:.6g}; grid {grid})"


def host_read(w, checkpoint_path, last):
    """The host's read of the state every ``sync_every`` steps: the distributed all-reduce, the
    walkers the steps dropped since the last read (warned), and at the end of a run the check of
    the last update (which the next step would make). Stops with :class:`WLMDError` when no
    walker is left (one walker: when it failed)."""
    w.share()
    s = w.state
    was = w._active_seen
    now = w.active
    news = [(k, problem(w.grid, *(float(a) for a in s.bad_xy[k]), int(s.bad[k]))) for k in np.nonzero(was & ~now)[0]]
    w._cvs_stale = True  # evaluated when asked for, and at the run's end
    if last:
        evaluate(w)
        for k in np.nonzero(now)[0]:
            what = problem(w.grid, w._xs[k], w._ys[k], w.t)
            if what:
                with torch.no_grad():  # back to the state this last step started from
                    s.theta[k] = s.good_theta[k]
                    s.v[k] = s.good_v[k]
                    s.active[k] = False
                    s.bad[k] = w.t
                news.append((k, what))
        if news:
            evaluate(w)
            now = w.active
    w._active_seen = now
    message = w._thermometer.read(w.t, s.v, now)
    if message:
        warnings.warn(message, KineticTemperatureWarning, stacklevel=C.user_stacklevel())
    if w.K > 1 or w.world > 1:
        for k, what in news:
            warnings.warn(f"walker {k} (rank {w.rank}) dropped: {what}; it is back at its last checked state "
                          "and deposits no more hills", WalkerDropped, stacklevel=C.user_stacklevel())
    alive = int(now.sum())
    if w.distributed:
        from .ranks import all_reduce

        alive = int(all_reduce(torch.tensor([alive], dtype=torch.int64)))
    if alive > 0:
        return
    # the library writes no file unasked: without a checkpoint path the last good state stays in the
    # sampler (w.save(path) keeps it)
    path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
    where = (f"the last good state was written to {path}" if path is not None else
             "the sampler holds the last good state (sampler.save(path) keeps it; run(..., checkpoint=path) "
             "writes it when this happens)")
    if w.K == 1 and w.world == 1:
        failed = int(s.bad[0])
        with torch.no_grad():
            s.t.fill_(failed)
            s.active.fill_(True)  # the last good state is a state to continue from
        w._active_seen = w.active
        evaluate(w)
        if path is not None:
            w.save(path)
        raise WLMDError(f"WLMD stopped: {news[0][1]}; {where}", failed, path)
    if path is not None:
        w.save(path)
    raise WLMDError(f"WLMD stopped: every walker was dropped by step {w.t}; {where}", w.t, path)


def info(w, seconds=0.0):
    """:meth:`entropyeng.WLMD.info`: the diagnostics of ``w``'s state as of the last host read."""
    from ..statistics import flatness
    from .state import WLMDInfo

    evaluated(w)
    H = w.H.cpu().numpy()
    act = w.active if w.active.any() else np.ones(w.K, dtype=bool)
    err = float(np.abs(w._errs[act]).max())
    kinetic = float((w.state.v[torch.from_numpy(act).to(w.device)] ** 2).mean())
    return WLMDInfo(step=w.t, x=w._xv, y=w._yv, f=w.f(), kinetic_temperature=kinetic, smoothing_error=err,
                    flatness=flatness(H), visited=int((H > 0).sum()), round_trips=w.round_trips, seconds=seconds)
