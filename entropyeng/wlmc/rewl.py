"""Replica-exchange Wang-Landau (Vogel, Li, Wüst and Landau, Phys. Rev. E 90, 023302 (2014)) over the
WLMC chain: the ln(train loss) axis is split into overlapping windows, each sampled by its own
walkers (independent WLMC chains restricted to the window: a move that leaves it is rejected);
neighbouring windows exchange configurations, ln g is averaged over a window's walkers after every
stage, and at the end the windows are joined into one landscape on the full grid.

The walkers run concurrently in threads: each chain runs inside C++ with the GIL released, so on one
machine threads give the parallelism of processes without copying the chains between them. Across
processes or machines (``distributed=True`` under ``torchrun``) each rank owns whole windows
(window k on rank k mod world); at every exchange the ranks all-gather their walkers' states, take
the same exchange decisions from a shared random stream and each applies the swaps of its own
walkers, so that the run is the one a single process would make with the same seed.

Stages and walkers: REWL's walkers do not share one ln g during a stage; each adds the full ln f to
its own, and the window's ln g is their average after the stage (Vogel et al.), so a stage of S steps
is S steps of every walker and deposits, after the average, the mass of S steps. The many-walker rule
of :mod:`entropyeng.wlmc.chain` (one shared ln g, the clock in walker-steps) is for walkers that share.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .._io import load_npz, save_npz_atomic
from ..grid import Grid
from ..landscape import Landscape
from .chain import WLMC, paper_schedule
from .protocol import ReplicaProtocol

__all__ = ["REWL", "window_ranges"]


def window_ranges(nx: int, windows: int, overlap: float):
    """Bin ranges [a, b) of ``windows`` windows over ``nx`` bins, neighbours sharing a fraction
    ``overlap`` of a window's width; together they cover every bin."""
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ValueError(f"windows: expected an integer >= 1, got {windows!r}")
    if not 0 < overlap < 1:
        raise ValueError(f"overlap: expected a fraction in (0, 1), got {overlap!r}")
    width = math.ceil(nx / (windows - (windows - 1) * overlap))
    shift = width * (1 - overlap)
    if windows > 1 and (width - round(shift) < 1 or round(shift) < 1):
        raise ValueError(f"windows: {windows} windows of overlap {overlap} do not fit {nx} bins")
    out = []
    for k in range(windows):
        a = min(int(round(k * shift)), nx - width)
        out.append((a, nx if k == windows - 1 else a + width))
    return out


@dataclass
class JoinInfo:
    """How window k was joined to the windows below it: the shift added to its ln g, the cells of
    the overlap used, and the spread (std) of the ln g differences over them (0: a perfect match)."""

    window: int
    cells: int
    shift: float
    spread: float


class REWL(ReplicaProtocol):
    """Replica-exchange Wang-Landau sampler of S(ln train loss, test metric).

    Parameters
    ----------
    model, train, test, loss, metric, bound :
        As for :class:`WLMC`.
    grid : Grid
        The full grid; its x range is split into ``windows`` overlapping windows.
    windows, overlap : int, float
        Number of windows and the fraction of a window shared with each neighbour (Vogel et al.
        use 0.75).
    walkers_per_window : int
    exchange_every : int
        Steps of every walker between exchange attempts.
    seed : int
        Seed of the run: walker i of window k gets a seed derived from it, exchanges draw from it.
    seed_steps : int
        Budget of the global WLMC pre-run that finds a starting configuration inside every window
        (it runs until each window has been visited).
    threads : int, optional
        Walkers run concurrently (default: the number of cores).
    distributed : bool
        Spread the windows over the ranks of a ``torch.distributed`` job (joined from the ``torchrun``
        environment if needed); needs at least as many windows as ranks. ``join``, ``landscape`` and
        ``save`` are then collectives: every rank must call them.
    timeout_s : float
        How long a collective waits for a rank before raising (distributed only).
    """

    def __init__(self, model, train, test, *, loss, metric, grid, windows=4, overlap=0.75, walkers_per_window=1,
                 exchange_every=10_000, seed=0, bound="paper", seed_steps=10_000_000, threads=None,
                 distributed=False, timeout_s=120.0):
        if not isinstance(grid, Grid):
            raise TypeError(f"grid: expected an entropyeng.Grid, got {type(grid).__name__}")
        if isinstance(walkers_per_window, bool) or not isinstance(walkers_per_window, int) or walkers_per_window < 1:
            raise ValueError(f"walkers_per_window: expected an integer >= 1, got {walkers_per_window!r}")
        if isinstance(exchange_every, bool) or not isinstance(exchange_every, int) or exchange_every < 1:
            raise ValueError(f"exchange_every: expected an integer >= 1, got {exchange_every!r}")
        self.grid, self.seed = grid, int(seed)
        self.ranges = window_ranges(grid.nx, windows, float(overlap))
        self.overlap = float(overlap)
        self.m = walkers_per_window
        self.exchange_every = exchange_every
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.window_grids = [Grid(grid.x_min + a * grid.dx, grid.x_min + b * grid.dx, b - a, grid.y_min, grid.y_max,
                                  grid.ny) for a, b in self.ranges]
        self._args = dict(loss=loss, metric=metric, bound=bound)
        self._train, self._test = train, test
        self.distributed = bool(distributed)
        self.rank, self.world = 0, 1
        if self.distributed:
            from ..wlmd.ranks import init_distributed

            self.rank, self.world = init_distributed(timeout_s=timeout_s)
            if self.world > len(self.ranges):
                raise ValueError(f"windows: {len(self.ranges)} windows cannot be spread over {self.world} ranks")
        starts = self._seed_windows(model, seed_steps)  # the same on every rank: it is deterministic
        self.walkers = []  # walkers[k][i]: walker i of window k (empty for the windows of other ranks)
        for k, (g, params) in enumerate(zip(self.window_grids, starts)):
            row = []
            if self.owns(k):
                for i in range(self.m):
                    row.append(self._walker(model, params, g, self._walker_seed(k, i)))
            self.walkers.append(row)
        self.stage = 0
        self.exchanges = np.zeros((len(self.ranges) - 1, 2), dtype=np.int64)  # (accepted, attempted) per pair
        self._rng = np.random.default_rng([self.seed, 0x5EED])

    # -- set-up -------------------------------------------------------------------------------
    def owns(self, k) -> bool:
        """Whether window k's walkers live on this rank."""
        return k % self.world == self.rank

    def _gather(self, obj):
        """Every rank's ``obj`` in rank order (a collective when distributed)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        try:
            dist.all_gather_object(out, obj)
        except RuntimeError as e:
            raise RuntimeError(f"distributed: REWL's all-gather at stage {self.stage} failed on rank {self.rank} "
                               f"(another rank died or timed out): {e}") from None
        return out

    def _walker_seed(self, k, i):
        return (self.seed * 1_000_003 + 1 + k * self.m + i) % 2**64

    def _walker(self, model, params, grid, seed):
        m = copy.deepcopy(model)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=torch.float64),
                                                [p for p in m.parameters()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return WLMC(m, self._train, self._test, grid=grid, seed=seed, **self._args)

    def _seed_windows(self, model, budget):
        """A configuration inside every window, from a global WLMC walker (ln f = 1: it spreads over
        the grid quickly) watched every 1,000 steps."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = WLMC(copy.deepcopy(model), self._train, self._test, grid=self.grid, seed=self.seed, **self._args)
        starts = [None] * len(self.ranges)
        done, chunk = 0, 1000
        while True:
            i = int((math.log(w.train_loss) - self.grid.x_min) // self.grid.dx)
            for k, (a, b) in enumerate(self.ranges):
                if starts[k] is None and a <= i < b:
                    starts[k] = w.params.copy()
            if all(s is not None for s in starts) or done >= budget:
                break
            w.run(chunk, 1.0)
            done += chunk
        missing = [k for k, s in enumerate(starts) if s is None]
        if missing:
            lo = [(self.grid.x_min + self.ranges[k][0] * self.grid.dx) for k in missing]
            raise ValueError(f"windows {missing} (from ln train loss {min(lo):.3g}) were not reached in {budget:,} "
                             "seeding steps; raise seed_steps or narrow the grid")
        return starts

    # -- running ------------------------------------------------------------------------------
    def _all(self):
        return [w for row in self.walkers for w in row]

    def run_stages(self, n_stages, steps_per_stage, schedule=None, callback=None):
        """``n_stages`` stages of ``steps_per_stage`` steps per walker at ln f = schedule(stage)
        (the paper's 5 / (n + 10) by default), with exchanges every ``exchange_every`` steps and ln g
        averaged within each window at the end of each stage. ``callback(dict)`` after each stage."""
        schedule = schedule or paper_schedule
        walkers = self._all()
        with ThreadPoolExecutor(max_workers=min(self.threads, len(walkers))) as pool:
            for _ in range(int(n_stages)):
                ln_f = float(schedule(self.stage))
                left = int(steps_per_stage)
                while left > 0:
                    n = min(self.exchange_every, left)
                    list(pool.map(lambda w: w.run(n, ln_f), walkers))
                    left -= n
                    self._exchange()
                self._average_windows()
                self.stage += 1
                if callback is not None:
                    callback(dict(stage=self.stage - 1, ln_f=ln_f, acceptance=self.exchange_acceptance().tolist()))

    def _snapshot(self):
        """(window, walker) -> (params, lnG, x, y) of every walker of every rank."""
        mine = {}
        for k, row in enumerate(self.walkers):
            for i, w in enumerate(row):
                x, y = math.log(w.train_loss), w.test_metric
                mine[(k, i)] = (w.params.copy(), w._chain.lnG, x, math.log(y) if w.metric == "loss" else y)
        out = {}
        for part in self._gather(mine):
            out.update(part)
        return out

    def _cell(self, x, y, grid):
        i = math.floor((x - grid.x_min) / grid.dx)
        j = math.floor((y - grid.y_min) / grid.dy)
        return (i, j) if 0 <= i < grid.nx and 0 <= j < grid.ny else None

    def _exchange(self):
        """One sweep of configuration exchanges between neighbouring windows (even pairs, then odd
        pairs, alternating between sweeps). Every rank takes the same decisions from the gathered
        states and the shared random stream, and applies the swaps of its own walkers."""
        snap = self._snapshot()
        start = int(self._rng.integers(2))
        swaps = []
        for k in range(start, len(self.ranges) - 1, 2):
            partners = self._rng.permutation(self.m)
            ga, gb = self.window_grids[k], self.window_grids[k + 1]
            for a in range(self.m):
                b = int(partners[a])
                pa, La, xa, ya = snap[(k, a)]
                pb, Lb, xb, yb = snap[(k + 1, b)]
                self.exchanges[k, 1] += 1
                a_in_b, b_in_a = self._cell(xa, ya, gb), self._cell(xb, yb, ga)
                if a_in_b is None or b_in_a is None:
                    continue
                a_in_a, b_in_b = self._cell(xa, ya, ga), self._cell(xb, yb, gb)
                ln_p = La[a_in_a] - La[b_in_a] + Lb[b_in_b] - Lb[a_in_b]
                if ln_p >= 0 or self._rng.random() < math.exp(ln_p):
                    swaps.append(((k, a), pb))
                    swaps.append(((k + 1, b), pa))
                    self.exchanges[k, 0] += 1
        for (k, i), params in swaps:
            if self.owns(k):
                self.walkers[k][i]._chain.set_params(np.ascontiguousarray(params))

    def _average_windows(self):
        if self.m == 1:
            return
        for row in self.walkers:
            mean = np.mean([w._chain.lnG for w in row], axis=0)
            for w in row:
                w._chain.lnG = mean

    def exchange_acceptance(self) -> np.ndarray:
        """Accepted / attempted exchanges per neighbouring pair of windows."""
        return self.exchanges[:, 0] / np.maximum(self.exchanges[:, 1], 1)

    # -- results ------------------------------------------------------------------------------
    def window_landscapes(self):
        """Each window's landscape (ln g averaged and histograms summed over its walkers)."""
        mine = {k: (np.mean([w._chain.lnG for w in row], axis=0), np.sum([w._chain.H for w in row], axis=0))
                for k, row in enumerate(self.walkers) if row}
        parts = {}
        for part in self._gather(mine):
            parts.update(part)
        return [Landscape(parts[k][0], parts[k][1], self.window_grids[k], dict(sampler="REWL window", window=k))
                for k in range(len(self.ranges))]

    def join(self):
        """The windows joined into one landscape on the full grid, and a :class:`JoinInfo` per joint.

        Window k's ln g is shifted by the mean difference to the windows below over the cells both
        visited; below the middle of the overlap the lower windows' values are kept, above it
        window k's."""
        g = self.grid
        S = np.zeros(g.shape)
        H = np.zeros(g.shape)
        have = np.zeros(g.shape, dtype=bool)
        infos = []
        for k, (L, (a, b)) in enumerate(zip(self.window_landscapes(), self.ranges)):
            vis = L.visited
            if k == 0:
                S[a:b] = L.entropy
                have[a:b] = vis
            else:
                common = have[a:b] & vis
                if not common.any():
                    raise ValueError(f"windows {k - 1} and {k} share no visited cell: run longer or overlap more")
                diff = S[a:b][common] - L.entropy[common]
                shift = float(diff.mean())
                infos.append(JoinInfo(k, int(common.sum()), shift, float(diff.std())))
                mid = (a + self.ranges[k - 1][1]) // 2
                above = (np.arange(a, b) >= mid)[:, None]
                take = vis & (~have[a:b] | above)
                S[a:b] = np.where(take, L.entropy + shift, S[a:b])
                have[a:b] |= vis
            H[a:b] += L.histogram
        S = np.where(have, S, 0.0)
        H = np.where(have, np.maximum(H, have.astype(float)), 0.0)
        meta = dict(sampler="REWL", windows=len(self.ranges), overlap=self.overlap, walkers_per_window=self.m,
                    stages=self.stage, steps=int(sum(self._gather(sum(w.counters["t"] for w in self._all())))),
                    world_size=self.world,
                    loss=self._args["loss"], metric=self._args["metric"],
                    exchange_acceptance=self.exchange_acceptance().tolist(),
                    joins=[vars(i) for i in infos])
        return Landscape(S, H, g, meta), infos

    @property
    def landscape(self) -> Landscape:
        return self.join()[0]

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path) -> None:
        """Every walker's state, the exchange counters and the stage, in one .npz (atomically; a
        collective when distributed, rank 0 writes)."""
        mine = {}
        for k, row in enumerate(self.walkers):
            for i, w in enumerate(row):
                s = w.state_dict()
                mine[(k, i)] = ({key: np.asarray(s[key]) for key in ("params", "cache", "lnG", "H")},
                                dict(counters=s["counters"], stage=s["stage"]))
        every = {}
        for part in self._gather(mine):
            every.update(part)
        if self.rank != 0:
            return
        arrays, states = {}, {}
        for (k, i), (arr, st) in sorted(every.items()):
            for key, value in arr.items():
                arrays[f"w{k}_{i}_{key}"] = value
            states[f"{k}_{i}"] = st
        arrays["exchanges"] = self.exchanges
        meta = dict(kind="rewl-checkpoint", stage=self.stage, states=states, ranges=self.ranges, m=self.m,
                    rng=self._rng.bit_generator.state)
        save_npz_atomic(path, arrays, dict(meta, **getattr(self, "run_meta", {})))

    def load_checkpoint(self, path) -> None:
        """Continue from :meth:`save` (a sampler built with the same arguments)."""
        arrays, meta = load_npz(path, "rewl-checkpoint")
        if [tuple(r) for r in meta["ranges"]] != list(self.ranges) or int(meta["m"]) != self.m:
            raise ValueError("state: the checkpoint's windows or walkers differ from this sampler's")
        for k, row in enumerate(self.walkers):
            for i, w in enumerate(row):
                st = meta["states"][f"{k}_{i}"]
                w._chain.set_params(np.ascontiguousarray(arrays[f"w{k}_{i}_params"]))
                w._chain.import_cache(np.ascontiguousarray(arrays[f"w{k}_{i}_cache"]))
                w._chain.lnG = np.ascontiguousarray(arrays[f"w{k}_{i}_lnG"])
                w._chain.H = np.ascontiguousarray(arrays[f"w{k}_{i}_H"])
                w._chain.counters = dict(st["counters"])
                w.stage = int(st["stage"])
        self.exchanges[...] = arrays["exchanges"]
        self.stage = int(meta["stage"])
        self._rng.bit_generator.state = meta["rng"]
