"""Harvest: networks of a chosen train loss from a finished landscape, sampled by a WLMC walker under
the landscape's frozen marginal bias (:mod:`entropyeng.harvest.bias`), with the statistics that say
how far to trust them and the landscape's own readout over the same train losses."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .._io import save_npz_atomic
from .bias import UNVISITED, frozen_bias
from ..statistics import autocorrelation_time, flatness, round_trips, thin
from .tune import XSchedule

__all__ = ["Harvest", "harvest_wlmc", "load_params"]

#: the most memory the window's networks take during a harvest (their decorrelated ones are kept)
STORED_BYTES = 256 * 2**20


@dataclass
class Harvest:
    """The networks a harvest kept and what it measured.

    ``params`` (N, P): the kept networks (flat, in the model's parameter order: :func:`load_params`);
    ``ln_train_loss``, ``test_metric`` (N,): theirs (test accuracy, or ln test loss). ``mean`` and
    ``error``: the window's mean test metric over every sample in the window and its standard error
    (sqrt(tau / n) times the standard deviation); ``tau``: the integrated autocorrelation time of the
    test metric in the window, in samples (one sample every ``every`` walker-steps); the kept networks
    are every ceil(tau)-th sample. ``landscape_mean``: Eq. 1 of the landscape over the same x cells,
    weighted as the samples visited them (the readout the harvest must agree with). ``round_trips``
    between the ends of the reach and ``flatness`` (min / mean of the visits over the reach's x
    columns) say how well the walker moved."""

    params: np.ndarray
    ln_train_loss: np.ndarray
    test_metric: np.ndarray
    target: float
    window: tuple
    mean: float
    error: float
    tau: float
    samples: int
    landscape_mean: float
    round_trips: int
    flatness: float
    steps: int
    every: int
    seconds: float
    metric: str
    meta: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.params.shape[0])

    def summary(self) -> dict:
        """The numbers of the harvest (no arrays), JSON-ready."""
        return dict(ln_train_loss=self.target, window=list(self.window), metric=self.metric, kept=self.count,
                    samples_in_window=self.samples, tau_samples=self.tau, tau_steps=self.tau * self.every,
                    mean=self.mean, error=self.error, landscape_mean=self.landscape_mean,
                    difference=self.mean - self.landscape_mean, round_trips=self.round_trips, flatness=self.flatness,
                    steps=self.steps, sample_every=self.every, seconds=self.seconds, **self.meta)

    def save(self, path) -> None:
        """One .npz (atomic): the networks and their numbers; :meth:`load` reads it back."""
        save_npz_atomic(path, dict(params=self.params, ln_train_loss=self.ln_train_loss, test_metric=self.test_metric),
                        dict(self.summary(), kind="harvest"))

    @classmethod
    def load(cls, path) -> "Harvest":
        import json

        with np.load(path, allow_pickle=False) as f:
            s = json.loads(bytes(f["__meta__"]).decode())
            arrays = {k: f[k] for k in ("params", "ln_train_loss", "test_metric")}
        core = ("kind", "format_version", "ln_train_loss", "window", "metric", "kept", "samples_in_window",
                "tau_samples", "tau_steps", "mean", "error", "landscape_mean", "difference", "round_trips", "flatness",
                "steps", "sample_every", "seconds")
        return cls(arrays["params"], arrays["ln_train_loss"], arrays["test_metric"], target=s["ln_train_loss"],
                   window=tuple(s["window"]), mean=s["mean"], error=s["error"], tau=s["tau_samples"],
                   samples=s["samples_in_window"], landscape_mean=s["landscape_mean"], round_trips=s["round_trips"],
                   flatness=s["flatness"], steps=s["steps"], every=s["sample_every"], seconds=s["seconds"],
                   metric=s["metric"], meta={k: v for k, v in s.items() if k not in core})

    @classmethod
    def pool(cls, harvests, count=None) -> "Harvest":
        """One harvest of several independent walkers' harvests of the same window (a WLMD run's K
        walkers): their networks together (at most ``count``, spread evenly); the window's mean over
        every sample, its error from the walkers' errors (independent chains: sqrt(sum n_k^2 e_k^2)
        / sum n_k); tau, the samples' mean autocorrelation time; round trips, steps and seconds
        summed; flatness the lowest."""
        hs = list(harvests)
        if len(hs) == 1:
            return hs[0]
        if len({(h.target, tuple(h.window), h.every, h.metric) for h in hs}) != 1:
            raise ValueError("harvests: pooled harvests must share their window, sampling and metric")
        n = np.array([h.samples for h in hs], dtype=np.float64)
        share = n / n.sum()
        err = [h.error for h in hs]
        landscape = [h.landscape_mean for h in hs]
        pick = thin(sum(h.count for h in hs), 1, count)
        return cls(np.concatenate([h.params for h in hs])[pick], np.concatenate([h.ln_train_loss for h in hs])[pick],
                   np.concatenate([h.test_metric for h in hs])[pick], target=hs[0].target, window=hs[0].window,
                   mean=float(share @ [h.mean for h in hs]),
                   error=float(math.sqrt(float(share ** 2 @ np.square(err)))),
                   tau=float(share @ [h.tau for h in hs]), samples=int(n.sum()),
                   landscape_mean=float(share @ landscape), round_trips=sum(h.round_trips for h in hs),
                   flatness=min(h.flatness for h in hs), steps=sum(h.steps for h in hs), every=hs[0].every,
                   seconds=sum(h.seconds for h in hs), metric=hs[0].metric, meta=dict(hs[0].meta, walkers=len(hs)))

    def network(self, k, model):
        """``model`` (a network of the harvested architecture) with the k-th kept network's
        parameters, in place; returned."""
        if not -self.count <= k < self.count:
            raise IndexError(f"k: the harvest kept {self.count} networks, got {k}")
        return load_params(model, self.params[k])


def load_params(model, flat):
    """Copy a flat parameter vector (the samplers' order: ``model.parameters()``, each flattened)
    into ``model``, keeping its dtype and device; returns the model."""
    params = [p for p in model.parameters()]
    flat = np.asarray(flat)
    n = sum(p.numel() for p in params)
    if flat.shape != (n,):
        raise ValueError(f"flat: expected {n} parameters for this model, got shape {flat.shape}")
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(torch.as_tensor(flat[i:i + p.numel()]).view_as(p))
            i += p.numel()
    return model


class Samples:
    """A production run's samples: every sample's (x, y), and the networks of those in the window
    [lo, hi], every ``stride``-th of them, within :data:`STORED_BYTES` (the stride doubles, and every
    other stored network is dropped, when they would take more). :meth:`harvest` turns them into the
    :class:`Harvest`."""

    def __init__(self, n, lo, hi, n_params, t0=None):
        self.xs, self.ys = np.empty(n), np.empty(n)
        self.lo, self.hi = lo, hi
        self.cap = max(1000, STORED_BYTES // (8 * max(1, n_params)))
        self.stored, self.stride, self.kept_at = [], 1, []
        self.t0 = time.perf_counter() if t0 is None else t0  # (the harvest's seconds count from t0)

    def add(self, k, x, y, params):
        """Sample k at (x, y); ``params()`` gives its network (called only when it is stored)."""
        self.xs[k], self.ys[k] = x, y
        if self.lo <= x <= self.hi:
            if len(self.kept_at) % self.stride == 0:
                self.stored.append(np.array(params(), dtype=np.float64))
                if len(self.stored) > self.cap:
                    self.stored, self.stride = self.stored[::2], self.stride * 2
            self.kept_at.append(k)

    def harvest(self, landscape, x0, below, above, visits, *, count, every, metric, meta) -> "Harvest":
        """The Harvest: the window's mean and error (autocorrelation time of y in the window), the kept
        networks (every ceil(tau)-th), the landscape's readout over the same cells, round trips across
        the reach after the walker first entered it, and the flatness of ``visits`` (per x column)."""
        seconds = time.perf_counter() - self.t0
        xs, ys, n = self.xs, self.ys, self.xs.size
        inside = np.asarray(self.kept_at, dtype=int)
        if inside.size == 0:
            raise ValueError(f"the walker never reached ln L in [{self.lo:.3f}, {self.hi:.3f}] in {n * every:,} steps: "
                             "give it more steps (or a wider window)")
        y_in = ys[inside]
        tau = autocorrelation_time(y_in)
        stride = self.stride
        pick = thin(inside.size, stride * math.ceil(tau / stride), count)  # decorrelated, among the stored ones
        pick = pick[pick % stride == 0]
        err = float(y_in.std(ddof=1) * math.sqrt(tau / inside.size)) if inside.size > 1 else math.nan
        g = landscape.grid
        reach_cols = reach_columns(g, x0 - below, x0 + above) & ((landscape.histogram.sum(axis=1) > 0) | (visits > 0))
        in_reach = (xs >= x0 - below) & (xs <= x0 + above)
        first = int(np.argmax(in_reach)) if in_reach.any() else n  # the drift into the reach is not a trip
        return Harvest(params=np.stack(self.stored)[pick // stride], ln_train_loss=xs[inside][pick],
                       test_metric=y_in[pick], target=x0, window=(self.lo, self.hi), mean=float(y_in.mean()),
                       error=err, tau=tau, samples=int(inside.size),
                       landscape_mean=readout(landscape, g.index(xs[inside], y_in)[0]),
                       round_trips=round_trips(xs[first:], x0 - 0.9 * below, x0 + 0.9 * above),
                       flatness=flatness(visits[reach_cols]), steps=int(n * every), every=int(every), seconds=seconds,
                       metric=metric, meta=meta)


def check_settings(landscape, ln_train_loss, window, reach, steps, every, visited=True):
    """(x0, lo, hi, below, above): the target, its window and the reach below and above it, after
    checking a harvest's settings against the landscape (ValueError naming the setting); with
    ``visited``, a window the landscape never visited is refused."""
    below, above = (reach, reach) if isinstance(reach, (int, float)) else tuple(reach)
    for name, value in (("window", window), ("reach", below), ("reach", above)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a number > 0 (or two: below and above), got {value!r}")
    for name, value in (("steps", steps), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")
    if steps < every:
        raise ValueError(f"steps: expected at least one sample's worth (every = {every}), got {steps}")
    g = landscape.grid
    x0 = float(ln_train_loss)
    lo, hi = x0 - window / 2, x0 + window / 2
    if not (g.x_min <= lo and hi <= g.x_max):
        raise ValueError(f"ln_train_loss: the window [{lo:.3f}, {hi:.3f}] leaves the landscape's grid "
                         f"[{g.x_min:g}, {g.x_max:g}]")
    if visited:
        refuse_unvisited(landscape, lo, hi)
    return x0, lo, hi, below, above


def refuse_unvisited(landscape, lo, hi):
    """ValueError when the landscape never visited the window [lo, hi] of ln L."""
    g = landscape.grid
    if not (landscape.histogram[g.column(lo):g.column(hi) + 1] > 0).any():
        raise ValueError(f"ln_train_loss: the landscape never visited ln L in [{lo:.3f}, {hi:.3f}]")


def reach_columns(grid, lo, hi):
    """The boolean mask of the grid's x columns whose centres lie in [lo, hi]."""
    return (grid.centers[0] >= lo) & (grid.centers[0] <= hi)


def readout(landscape, cells):
    """Eq. 1 of the landscape in each x cell, averaged with the samples' weights over the cells."""
    from ..analysis import equilibrium

    _, eq, valid = equilibrium(landscape)
    cells = np.asarray(cells)
    if cells.size == 0:
        return math.nan
    counts = np.bincount(cells, minlength=eq.size)
    use = (counts > 0) & valid
    return float((counts[use] * eq[use]).sum() / counts[use].sum()) if use.any() else math.nan


def _enter(w, landscape, lo, hi, steps, every):
    """Walk the walker into the reach [lo, hi] under the marginal bias with a slope outside; the
    walker-steps it took. At most ``steps``, else ValueError."""
    w.set_bias(frozen_bias(landscape, lo, hi), frozen=True)
    done = 0
    while not lo <= w.cvs()[0, 0] <= hi:
        if done >= steps:
            raise ValueError(f"the walker did not reach ln L in [{lo:.3f}, {hi:.3f}] in {steps:,} steps: give it more "
                             "steps (or a wider reach)")
        w.advance(every)
        done += every
    return done


def _tune(w, bias, landscape, lo, hi, steps, every):
    """Wang-Landau on the bias's x columns within [lo, hi] (:class:`~entropyeng.harvest.tune.XSchedule`;
    the walker's column gets ln f every ``every`` steps); returns the corrected bias and what it did."""
    g = landscape.grid
    x = g.centers[0]
    schedule = XSchedule((x >= lo) & (x <= hi) & (bias[:, 0] < 0.5 * UNVISITED))
    if schedule.columns == 0:
        return bias, {}
    bias = bias.copy()
    # the chain takes its bias whole (a copy of nx * ny values): on a large grid (the paper's 2000 x 2000)
    # the corrections reach it every few samples, so that copying does not outweigh the walking
    push_every, unpushed = max(1, bias.size // 100_000), 0
    for _ in range(max(1, steps // every)):
        w.advance(every)
        i = g.column(w.cvs()[0, 0])
        ln_f = schedule.visit(i)
        if ln_f == 0.0:
            continue
        bias[i, :] += ln_f
        unpushed += 1
        if unpushed >= push_every:
            w.set_bias(bias, frozen=True)
            unpushed = 0
    return bias, schedule.summary()


def harvest_wlmc(make_walker, landscape, ln_train_loss, *, window=0.1, reach=0.3, steps=2_000_000, every=200,
                 count=None, progress=None, start=None, tune=None) -> Harvest:
    """Harvest networks with ln(train loss) in ``ln_train_loss`` ± ``window`` / 2.

    ``make_walker(**kw)``: a fresh single-walker :class:`entropyeng.WLMC` on the landscape's model,
    data and grid (its seed: the harvest's random stream), ``kw`` passed to WLMC (the production
    walker gets ``step`` and ``adapt_every=0``: a fixed move width). The walker moves ``steps``
    walker-steps under the landscape's frozen marginal bias, held within ``reach`` (one number, or
    two: below and above) of the target by walls (it first walks in under the marginal with a slope
    outside), with no learning; every ``every`` steps its network is a sample, kept when in the
    window. ``start``: parameters to start from (e.g. the run's last state; default the walker's
    own). ``count``: keep at most this many of the decorrelated networks. ``progress(done,
    in_window)``: called along.

    ``tune`` walker-steps (default ``steps`` / 2) first correct the bias within the reach, still a
    function of ln L alone: Wang-Landau on the x columns (the walker's column every ``every`` steps
    gets ln f more, ln f from 1 down to the 1/t schedule over the reach's columns). A short run's
    landscape has errors of several nats across the reach, enough to pin the walker at one end; the
    correction leaves every column's conditional distribution of the test metric as it was (the
    bias is the same in all of a column's cells), and production runs on the corrected bias, frozen."""
    x0, lo, hi, below, above = check_settings(landscape, ln_train_loss, window, reach, steps, every)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = make_walker()
    if getattr(w, "walkers", 1) != 1:
        raise ValueError("make_walker: a harvest runs one walker")
    if start is not None:
        w.positions = start
    t0 = time.perf_counter()
    entry = _enter(w, landscape, x0 - below, x0 + above, steps, every)
    bias = frozen_bias(landscape, x0 - below, x0 + above, walls=True)
    tune = steps // 2 if tune is None else int(tune)
    bias, tuned = _tune(w, bias, landscape, x0 - below, x0 + above, tune, every) if tune else (bias, {})
    # production: a walker with the move width the tuning ended on, frozen (an adapting width is a
    # proposal that depends on where the walker has been: not a Markov chain of this bias)
    step = float(w.counters["step"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w2 = make_walker(step=step, adapt_every=0)
    w2.positions = w.positions[0]
    w = w2
    tuned.update(entry_steps=entry, step=step)
    w.set_bias(bias, frozen=True)
    n = steps // every
    samples = Samples(n, lo, hi, w.params.size, t0=t0)
    for k in range(n):
        w.advance(every)
        x, y = w.cvs()[0]
        samples.add(k, x, y, lambda: w.positions[0])
        if progress is not None and (k + 1) % max(1, n // 100) == 0:
            progress((k + 1) * every, len(samples.kept_at))
    return samples.harvest(landscape, x0, below, above, w.landscape.histogram.sum(axis=1), count=count, every=every,
                           metric=w.metric, meta=dict(tuned, tune_steps=int(tune)))
