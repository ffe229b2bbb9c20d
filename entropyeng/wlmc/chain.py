"""Wang-Landau Monte Carlo over small MLPs (Wang & Landau 2001; the paper's Methods).

The chain runs inside C++ with the GIL released (``backend="cpp"``), on an incremental forward pass
that recomputes only what a single-parameter move touches (contracts 5-6 of docs/design.md), or as
the pure-torch reference with a full forward per move (``backend="torch"``). Several walkers sharing
one ln g run on CPU threads (``backend="cpp"``) or on a GPU (``backend="cuda"``), the same per-walker
code in both places (``csrc/wlmc_walker.h``).

Many walkers, one ln g: the rule
    Every walker adds the full ln f to the shared ln g (and 1 to H) at every one of its steps, and
    the schedule's clock counts walker-steps: a stage of S steps is S walker-steps in all (S // W
    per walker), and ``schedule="1/t"`` reads t as total walker-steps. So W walkers deposit per
    stage exactly what one walker deposits, and a run's budget is its total walker-steps whatever W.
This is the parallel WL of Yin & Landau (Phys. Rev. E 85, 056701, 2012: one shared density of states,
full increments, the flatness of the shared histogram deciding the stage) with the paper's fixed-length
stages counted in the shared histogram's entries. Scaling each walker's increment by 1/W instead
would make a stage of S steps per walker deposit the mass of S steps, i.e. W times the walker-steps
for the same schedule; at equal total walker-steps the two rules coincide for the 1/t tail and
differ only in how the stages are cut. Vogel et al.'s REWL (Phys. Rev. E 90, 023302, 2014) keeps
one ln g per walker and averages them per stage; `entropyeng.REWL` does that, with its stages counted
per walker (see its docstring).
The walkers start from independent draws in the box that land on the grid (walker 0 at the model's
parameters): a shared start makes W walkers pile W ln f per step on the same cells before the
feedback of ln g can spread them.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .. import _checks
from ..limits import MAX_STEPS
from ..grid import Grid
from ..statistics import one_over_t_ln_f, paper_ln_f
from ..kernels import backends
from ..kernels.mlp_spec import (
    ACT_NAMES,
    LOSSES,
    METRICS,
    bounds_for,
    outside_box,
    read_data,
    read_mlp,
)
from ..landscape import Landscape
from . import checkpoint
from .default_grid import default_grid
from .protocol import ChainProtocol

__all__ = ["WLMC", "StageInfo", "paper_schedule"]


#: the largest modification factor a WL step takes (ln g would overflow within a few visits beyond)
MAX_LN_F = 1000.0


paper_schedule = paper_ln_f  # ln f = 5 / (n + 10) at stage n (the paper's Methods)


@dataclass
class StageInfo:
    """Diagnostics of one finished stage (passed to the ``run_stages`` callback)."""

    stage: int
    ln_f: float
    steps: int
    acceptance: float
    step: float
    visited: int
    flatness: float
    seconds: float


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WLMC(ChainProtocol):
    """Wang-Landau Monte Carlo sampler of the entropy S(ln train loss, test metric) of an MLP.

    Parameters
    ----------
    model : torch.nn.Sequential
        ``Linear`` layers with ``ReLU``, ``Tanh``, ``SiLU`` or ``Identity`` between them; its current
        parameters are the starting point (clamped into the box, with a warning, if outside).
    train, test : (X, y)
        Inputs (n, d_0) and targets: labels 0/1 for ``"bce"``, class indices for ``"ce"``, values
        (n,) or (n, d_L) for ``"mse"``. numpy arrays or tensors; the engine computes in float64.
    loss : {"bce", "ce", "mse"}
        BCE with logits (one output), softmax cross-entropy, or mean squared error.
    metric : {"accuracy", "loss"}
        The y axis: test accuracy, or ln test loss.
    grid : Grid, optional
        The (x, y) grid. Default: x (ln train loss) from 8 below the lowest to 1 above the highest
        value seen in 256 random parameter draws in the box, bins of 0.05; y for accuracy: one bin per
        attainable accuracy k / N_test (centres at k / N_test); y for loss: as x, on ln test loss.
    bound : "paper", float, or one float per parameter tensor
        The box [-b, b] of each parameter. ``"paper"``: b = 2 / sqrt(width) with width =
        numel / in_features of the tensor, i.e. the output width of a Linear weight, and the output
        width for its bias (the authors' scripts; docs/design.md).
    step : float, optional
        Initial move width (default: a tenth of the median bound); adapted every 1000 steps.
    seed : int
        Key of the counter-based random stream.
    backend : {"cpp", "torch", "cuda"}, optional
        Default ``"cpp"`` when the extension is built (``"cuda"`` for several walkers when a GPU is
        visible). With ``walkers > 1``: ``"cpp"`` runs them on CPU threads, ``"cuda"`` one per thread
        block on a GPU; both share one ln g (see the module docstring for the rule).
    walkers : int
        Number of walkers sharing ln g (not on ``"torch"``). ``run`` and ``run_stages`` count
        walker-steps in all, whatever the number of walkers.
    threads : int, optional
        CPU threads for several walkers on ``"cpp"`` (default: one per usable core, at most one per
        walker). One thread is deterministic (a resumed run continues bit for bit); several threads
        interleave their atomic adds to ln g as the scheduler runs them, so the run is reproducible
        statistically, not bitwise.
    walker_starts : {"draws", "model"}
        Where walkers 1..W-1 start: independent uniform draws in the box that land on the grid
        (default; a draw off the grid is redrawn, up to 50 times, then the model's parameters are
        used), or all at the model's parameters.
    refresh_every : int
        Steps between full recomputations of the cached activations (0: never; per walker).
    adapt_every : int
        Steps between adaptations of the move width (wider above an acceptance of 0.7, narrower below
        0.3; default 1000). 0 freezes it at ``step``: the chain is then a Markov chain with a fixed
        proposal, as a sampler of a fixed bias (the harvest's production) must be. One walker only.

    References
    ----------
    F. Wang and D. P. Landau, Phys. Rev. Lett. 86, 2050 (2001); Yang, Zhang, Shang, Zhang,
    "High-entropy Advantage in Neural Networks' Generalizability" (2025), Methods.
    """

    def __init__(self, model, train, test, *, loss, metric, grid=None, bound="paper", step=None, seed=0,
                 backend=None, refresh_every=10_000, walkers=1, threads=None, walker_starts="draws",
                 adapt_every=1000):
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("model: it has no trainable parameters")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
        if metric == "accuracy" and loss == "mse":
            raise ValueError("metric: 'accuracy' needs a classification loss ('bce' or 'ce'), got loss 'mse'")
        if isinstance(walkers, bool) or not isinstance(walkers, (int, np.integer)) or walkers < 1:
            raise ValueError(f"walkers: expected an integer >= 1, got {walkers!r}")
        self.walkers = int(walkers)
        if walker_starts not in ("draws", "model"):
            raise ValueError(f"walker_starts: expected 'draws' or 'model', got {walker_starts!r}")
        self.walker_starts = walker_starts
        if threads is None:
            threads = min(self.walkers, _usable_cores())
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 4096:
            raise ValueError(f"threads: expected an integer in [1, 4096], got {threads!r}")
        self.threads = int(threads)
        self.spec, params = read_mlp(model)
        if loss == "bce" and self.spec.sizes[-1] != 1:
            raise ValueError(f"loss: 'bce' needs a model with one output, got {self.spec.sizes[-1]}")
        if loss == "ce" and self.spec.sizes[-1] < 2:
            raise ValueError("loss: 'ce' needs a model with at least two outputs")
        self.loss, self.metric = loss, metric
        self.bounds = bounds_for(self.spec, bound)
        outside = np.abs(params) > self.bounds
        if outside.any():
            warnings.warn(outside_box([n for n, _ in self.spec.tensors], [int(np.prod(sh)) for _, sh in self.spec.tensors],
                                      outside, self.bounds, bound), stacklevel=_checks.user_stacklevel())
            params = np.clip(params, -self.bounds, self.bounds)
        self._train = read_data(train, "train", self.spec, loss)
        self._test = read_data(test, "test", self.spec, loss)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise ValueError(f"seed: expected an integer in [0, 2^64), got {seed!r}")
        self.seed = int(seed)
        self.grid = (default_grid(self.spec, self.bounds, self._train, self._test, self.loss, self.metric)
                     if grid is None else grid)
        if not isinstance(self.grid, Grid):
            raise TypeError(f"grid: expected an entropyeng.Grid, got {type(self.grid).__name__}")
        _checks.fits_in_memory(2 * 8 * self.grid.nx * self.grid.ny,
                               f"grid: {self.grid.nx} x {self.grid.ny} cells (ln g and H, float64)")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float, np.number))):
            raise TypeError(f"step: expected a number, got {type(step).__name__}")
        self.step0 = float(np.median(self.bounds) / 10) if step is None else float(step)
        if not (self.step0 > 0 and math.isfinite(self.step0)):
            raise ValueError(f"step: expected a finite number > 0, got {step}")
        if isinstance(refresh_every, bool) or not isinstance(refresh_every, (int, np.integer)) or refresh_every < 0:
            raise ValueError(f"refresh_every: expected an integer >= 0, got {refresh_every!r}")
        self.refresh_every = int(refresh_every)
        if isinstance(adapt_every, bool) or not isinstance(adapt_every, (int, np.integer)) or adapt_every < 0:
            raise ValueError(f"adapt_every: expected a whole number >= 0, got {adapt_every!r}")
        if adapt_every != 1000 and walkers > 1:
            raise ValueError("adapt_every: several walkers adapt their steps every 1000 steps; give one walker")
        self.adapt_every = int(adapt_every)
        self.backend = self._resolve_backend(backend)
        self.stage = 0
        self.schedule_log = []  # (stage, ln_f, steps) of every run
        self.schedule_name = "paper"
        self._chain = self._make_chain(params)
        if self._chain.current_bin() is None:
            x = math.log(self._chain.train_loss)
            raise ValueError(f"grid: the initial state (ln train loss {x:.4g}, test metric "
                             f"{self._chain.test_metric:.4g}) lies off the grid {self.grid}")

    # -- construction -----------------------------------------------------------------------
    def _resolve_backend(self, backend):
        return backends.select(backend, walkers=self.walkers)  # the one rule (entropyeng.kernels.backends)

    def _make_chain(self, params):
        g = self.grid
        args = dict(sizes=self.spec.sizes, acts=self.spec.acts, bias=self.spec.bias, loss=LOSSES.index(self.loss),
                    metric=METRICS.index(self.metric), params=params, X_train=self._train[0],
                    y_train=self._train[1], X_test=self._test[0], y_test=self._test[1], bounds=self.bounds,
                    x_min=g.x_min, x_max=g.x_max, nx=g.nx, y_min=g.y_min, y_max=g.y_max, ny=g.ny, seed=self.seed,
                    walker=0, step=self.step0, refresh_every=self.refresh_every, y_log=self.metric == "loss")
        if self.walkers == 1 and self.backend != "cuda":
            args["adapt_every"] = self.adapt_every
        if self.backend == "cuda" or self.walkers > 1:
            return self._make_walkers(args, params)
        return backends.get(self.backend).wlmc_chain(**args)

    def _make_walkers(self, args, params):
        """The walkers' chain, every walker started on the grid (see ``walker_starts``)."""
        from .walkers import COL, WalkersChain

        W, P = self.walkers, params.size
        starts = np.repeat(params[None, :], W, axis=0)
        rng = np.random.default_rng([self.seed, 0x57A2])
        draw = self.walker_starts == "draws"
        if draw:
            starts[1:] = rng.uniform(-1.0, 1.0, size=(W - 1, P)) * self.bounds
        chain = WalkersChain(backends.core(), args, starts, backend=self.backend, threads=self.threads)
        for attempt in range(51):
            state = chain.states
            off = state[:, COL["i"]] < 0
            if not off.any() or off[0]:  # walker 0 (the model's start) off the grid is reported by the caller
                break
            starts[off] = (rng.uniform(-1.0, 1.0, size=(int(off.sum()), P)) * self.bounds if attempt < 50
                           else params)
            chain.restart_walkers(starts, state)
        return chain

    # -- running ------------------------------------------------------------------------------
    def run(self, n_steps: int, ln_f: float) -> None:
        """Run ``n_steps`` WL steps at modification factor ``ln_f`` (entirely in C++ on cpp). With
        several walkers, ``n_steps`` walker-steps in all: ``n_steps // W`` per walker, one more for the
        first ``n_steps % W``."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or not 0 <= n_steps <= MAX_STEPS:
            raise ValueError(f"n_steps: expected an integer in [0, {MAX_STEPS:.0e}], got {n_steps!r}")
        if isinstance(ln_f, bool) or not isinstance(ln_f, (int, float, np.number)):
            raise TypeError(f"ln_f: expected a number, got {type(ln_f).__name__}")
        ln_f = float(ln_f)
        if not (0 <= ln_f <= MAX_LN_F):
            raise ValueError(f"ln_f: expected a number in [0, {MAX_LN_F:g}] (the paper's stages start at 0.5; a "
                             f"larger factor overflows ln g), got {ln_f}")
        self._chain.run(int(n_steps), ln_f)
        self.schedule_log.append((self.stage, ln_f, int(n_steps)))

    def run_stages(self, n_stages: int, steps_per_stage: int, schedule=None, callback=None, progress=False):
        """Run ``n_stages`` stages of ``steps_per_stage`` walker-steps each (in all, whatever the
        number of walkers); stage n (counted over the sampler's life, so a resumed run continues the
        schedule) uses ``ln f = schedule(n)``.

        ``schedule``: ``"paper"`` (default) 5 / (n + 10); ``"1/t"``: min(5 / (n + 10), N / t) with t
        the walker-steps done before the stage and N the cells visited so far (Belardinelli &
        Pereyra, Phys. Rev. E 75, 046701 (2007): time in sweeps over the visited cells; the 1/t tail
        takes over once it falls below the paper's stages); or a callable of the stage index.
        ``callback(StageInfo)`` after each stage; ``progress=True`` prints a line per stage to
        stderr."""
        for name, value, low in (("n_stages", n_stages, 0), ("steps_per_stage", steps_per_stage, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= MAX_STEPS:
                raise ValueError(f"{name}: expected a whole number in [{low}, {MAX_STEPS:.0e}], got {value!r}")
        if schedule is None or schedule == "paper":
            schedule_fn = paper_schedule
        elif schedule == "1/t":
            schedule_fn = self._one_over_t
        elif callable(schedule):
            schedule_fn = schedule
        else:
            raise ValueError(f"schedule: expected 'paper', '1/t' or a callable, got {schedule!r}")
        self.schedule_name = schedule if isinstance(schedule, str) else ("paper" if schedule is None else "custom")
        self._schedule = schedule
        for _ in range(int(n_stages)):
            n = self.stage
            ln_f = float(schedule_fn(n))
            before = self._chain.counters
            t0 = time.perf_counter()
            self.run(int(steps_per_stage), ln_f)
            after = self._chain.counters
            self.stage += 1
            acc = (after["accepted"] - before["accepted"]) / max(1, steps_per_stage)
            visited, flatness = self._visited_flatness()
            info = StageInfo(stage=n, ln_f=ln_f, steps=int(steps_per_stage), acceptance=acc, step=after["step"],
                             visited=visited, flatness=flatness, seconds=time.perf_counter() - t0)
            if callback is not None:
                callback(info)
            if progress:
                print(f"stage {n:6d}  ln f {ln_f:.4g}  acceptance {acc:.3f}  step {info.step:.3g}  "
                      f"visited {info.visited}  flatness {info.flatness:.3f}  {info.seconds:.2f} s",
                      file=sys.stderr, flush=True)

    def set_full_recompute(self, on: bool) -> None:
        """Every move recomputes the whole forward pass instead of its cached activations (the
        benchmark's measure of what the cache saves; the chain's results are the same)."""
        self._chain.set_full_recompute(bool(on))

    def _visited_flatness(self):
        """Visited cells and flatness (min / mean of H over them), without fetching ln g from the
        walkers' side."""
        if hasattr(self._chain, "stats"):
            s = self._chain.stats()
            return int(s["visited"]), float(s["flatness"])
        land = self.landscape
        return int(land.visited.sum()), land.flatness()

    def _one_over_t(self, n):
        visited, _ = self._visited_flatness()
        return one_over_t_ln_f(n, int(self._chain.counters["t"]), visited)

    # -- results ------------------------------------------------------------------------------
    @property
    def landscape(self) -> Landscape:
        """The current ln g and histogram as a :class:`Landscape`."""
        c = self._chain.counters
        meta = dict(sampler="WLMC", backend=self.backend, walkers=self.walkers, loss=self.loss, metric=self.metric,
                    x="ln train loss", y="test accuracy" if self.metric == "accuracy" else "ln test loss",
                    schedule={"paper": "5/(n+10)", "1/t": "min(5/(n+10), N/t)"}.get(
                        getattr(self, "schedule_name", "paper"), "custom"), stages=self.stage, steps=int(c["t"]), seed=self.seed,
                    model=dict(sizes=self.spec.sizes, acts=[ACT_NAMES[a] for a in self.spec.acts],
                               bias=self.spec.bias))
        return Landscape(self._chain.lnG, self._chain.H, self.grid, meta)

    @property
    def params(self) -> np.ndarray:
        """The current parameters (flat, float64, in the model's parameter order)."""
        return self._chain.params

    @property
    def train_loss(self) -> float:
        return self._chain.train_loss

    @property
    def test_metric(self) -> float:
        return self._chain.test_metric

    @property
    def counters(self) -> dict:
        """Steps done, current step width, accepted and rejected moves (box, grid, WL)."""
        return self._chain.counters

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: parameters, cached activations, ln g, histogram,
        counters (the random stream's position), stage, and the configuration. Several walkers add
        ``walker_state`` (W x 11) and their parameters as ``params`` (W x P)."""
        common = dict(sampler="WLMC", lnG=self._chain.lnG, H=self._chain.H, counters=self._chain.counters,
                      stage=self.stage, seed=self.seed, grid=self.grid.to_dict(), bounds=self.bounds, loss=self.loss,
                      metric=self.metric, sizes=list(self.spec.sizes), acts=list(self.spec.acts),
                      bias=list(self.spec.bias), backend=self.backend, walkers=self.walkers,
                      refresh_every=self.refresh_every, adapt_every=self.adapt_every, schedule_name=self.schedule_name,
                      schedule_log=[list(x) for x in self.schedule_log])
        if hasattr(self._chain, "export_walkers"):
            params, state, work = self._chain.export_walkers()
            return dict(common, params=params, walker_state=state, cache=work)
        return dict(common, params=self._chain.params, cache=self._chain.export_cache())

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (the sampler must be built on the same model
        architecture, data, grid and bounds; checked before anything changes)."""
        checkpoint.load_state_dict(self, state)

    def save(self, path) -> None:
        """Write the whole sampler state to an .npz checkpoint (atomically)."""
        checkpoint.save(self, path)

    def load_checkpoint(self, path) -> None:
        """Continue this sampler (built on the run's model, data, grid and seed) from :meth:`save`'s
        file; unlike :meth:`load`, the data and seed are this sampler's, never the file's."""
        checkpoint.restore(self, path)

    @classmethod
    def load(cls, path, problem=None, *, backend=None, threads=None) -> "WLMC":
        """A sampler restored from :meth:`save`, ready to continue (``threads``: default the
        checkpoint's). The file holds the network's layout and the data, so ``problem`` (the
        protocol's argument) is not needed; given, its data must be the file's."""
        w = checkpoint.load(cls, path, backend=backend, threads=threads)
        if problem is not None:
            for name, (X, _) in (("train", problem.train), ("test", problem.test)):
                ours = (w._train if name == "train" else w._test)[0]  # stored feature-major
                if int(np.prod(tuple(X.shape))) != ours.size:
                    raise ValueError(f"problem: its {name} inputs ({int(np.prod(tuple(X.shape)))} values) are not the file's "
                                     f"({ours.size})")
        return w
