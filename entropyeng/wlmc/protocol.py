"""The sampler protocol's members (:class:`entropyeng.Sampler`) of the Monte Carlo samplers: of one
chain (:class:`ChainProtocol`, for :class:`entropyeng.WLMC`) and of replica exchange
(:class:`ReplicaProtocol`, for :class:`entropyeng.REWL`). The run loop and the harvest use nothing
else of them."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ChainProtocol", "ReplicaProtocol"]


class ChainProtocol:
    """The protocol's members of :class:`entropyeng.WLMC` (they use its chain, ``run`` and ``run_stages``)."""

    #: the stage length of :meth:`advance` (walker-steps in all; the run layer sets the config's
    #: ``wlmc.steps_per_stage``; the paper's spiral runs 500 stages of 2e5)
    steps_per_stage = 200_000
    #: True after ``set_bias(..., frozen=True)``: :meth:`advance` runs at ln f = 0 and counts no stage
    frozen = False

    @property
    def walker_steps(self) -> int:
        """Walker-steps done in all (the chain's counter)."""
        return int(self._chain.counters["t"])

    def advance(self, steps: int, callback=None) -> int:
        """At least ``steps`` walker-steps: whole stages of :attr:`steps_per_stage` on the schedule of
        the last :meth:`run_stages` (the paper's by default), ``callback(StageInfo)`` after each; with
        a frozen bias exactly ``steps`` steps at ln f = 0. Returns the walker-steps done."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
        if self.frozen:
            self.run(int(steps), 0.0)
            return int(steps)
        per = int(self.steps_per_stage)
        stages = -(-int(steps) // per)
        schedule = getattr(self, "_schedule", None) or self.schedule_name
        self.run_stages(stages, per, schedule=schedule if schedule != "custom" else None, callback=callback)
        return stages * per

    def info(self) -> dict:
        """Stage, walker-steps, the move width and its acceptance, visited cells and flatness."""
        c = self._chain.counters
        visited, flatness = self._visited_flatness()
        return dict(stage=self.stage, steps=int(c["t"]), step=float(c["step"]), accepted=int(c["accepted"]),
                    visited=visited, flatness=flatness)

    def cvs(self) -> np.ndarray:
        """(1, 2): the (first) walker's ln train loss and test metric (ln test loss for metric "loss")."""
        y = self._chain.test_metric
        return np.array([[math.log(self._chain.train_loss), math.log(y) if self.metric == "loss" else y]])

    @property
    def positions(self) -> np.ndarray:
        """The walkers' parameters, (W, P) float64 (a copy)."""
        if hasattr(self._chain, "export_walkers"):
            return np.array(self._chain.export_walkers()[0], dtype=np.float64)
        return np.array(self._chain.params, dtype=np.float64)[None, :]

    @positions.setter
    def positions(self, value) -> None:
        if hasattr(self._chain, "export_walkers"):
            raise ValueError("positions: several walkers start where walker_starts puts them; set the position of "
                             "a one-walker WLMC")
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        if value.size != self.spec.n_params or not np.isfinite(value).all():
            raise ValueError(f"positions: expected {self.spec.n_params} finite parameters, got {value.size}")
        self._chain.set_params(np.ascontiguousarray(value))

    def set_bias(self, bias, *, frozen=True, columns=None) -> None:
        """ln g replaced by ``bias`` (nx, ny) (only its x ``columns`` if given); ``frozen``: ln f = 0
        from now on (a Markov chain of the fixed bias, as a harvest samples)."""
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != tuple(self.grid.shape) or not np.isfinite(bias[slice(None) if columns is None else columns]).all():
            raise ValueError(f"bias: expected finite values of the grid's shape {tuple(self.grid.shape)}, got "
                             f"{bias.shape}")
        if columns is not None:
            full = np.array(self._chain.lnG, dtype=np.float64)
            full[columns] = bias[columns]
            bias = full
        self._chain.lnG = np.ascontiguousarray(bias)
        self.frozen = bool(frozen)


class ReplicaProtocol:
    """The protocol's members of :class:`entropyeng.REWL` (they use its windows' walkers and ``run_stages``)."""

    #: the stage length of :meth:`advance`: steps of every walker (the run layer sets the config's)
    steps_per_stage = 200_000
    #: True after ``set_bias(..., frozen=True)``: stages run at ln f = 0
    frozen = False

    @property
    def backend(self) -> str:
        """The walkers' kernels (every window's walkers are one-walker :class:`WLMC` chains)."""
        mine = self._all()
        return mine[0].backend if mine else "cpp"

    @property
    def n_walkers(self) -> int:
        """Walkers of every window, on every rank."""
        return len(self.ranges) * self.m

    @property
    def walker_steps(self) -> int:
        """Walker-steps done in all: stages x steps_per_stage x every walker."""
        return self.stage * int(self.steps_per_stage) * self.n_walkers

    def advance(self, steps: int, callback=None) -> int:
        """Whole stages (:meth:`run_stages`, :attr:`steps_per_stage` steps of every walker) until at
        least ``steps`` walker-steps in all; ``callback(dict)`` after each stage. Returns the
        walker-steps done."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
        per = int(self.steps_per_stage) * self.n_walkers
        stages = -(-int(steps) // per)
        self.run_stages(stages, int(self.steps_per_stage), schedule=(lambda n: 0.0) if self.frozen else None,
                        callback=callback)
        return stages * per

    def info(self) -> dict:
        """Stage and the exchange acceptance of each neighbouring pair of windows."""
        return dict(stage=self.stage, exchange_acceptance=self.exchange_acceptance().tolist())

    def cvs(self) -> np.ndarray:
        """(K, 2): (x, y) of this rank's walkers, window by window."""
        mine = self._all()
        return np.concatenate([w.cvs() for w in mine]) if mine else np.zeros((0, 2))

    @property
    def positions(self) -> np.ndarray:
        """This rank's walkers' parameters, window by window, (K, P) float64."""
        return np.concatenate([w.positions for w in self._all()])

    @positions.setter
    def positions(self, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        mine = self._all()
        rows = value.reshape(1, -1).repeat(len(mine), 0) if value.ndim == 1 else value
        if rows.shape[0] != len(mine):
            raise ValueError(f"positions: expected one row per walker of this rank ({len(mine)}), got {rows.shape[0]}")
        for w, row in zip(mine, rows):
            w.positions = row  # a walker set outside its window is refused by its next move (off its grid)

    def set_bias(self, bias, *, frozen=True, columns=None) -> None:
        """Every window's walkers take ``bias`` (the full grid's shape) over their window's x columns
        (only ``columns`` of the full grid, if given); ``frozen``: stages run at ln f = 0."""
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != tuple(self.grid.shape) or not np.isfinite(bias[slice(None) if columns is None else columns]).all():
            raise ValueError(f"bias: expected finite values of the grid's shape {tuple(self.grid.shape)}, got "
                             f"{bias.shape}")
        keep = np.zeros(self.grid.nx, dtype=bool)
        keep[slice(None) if columns is None else columns] = True
        for (a, b), row in zip(self.ranges, self.walkers):
            for w in row:
                w.set_bias(bias[a:b], frozen=frozen, columns=keep[a:b])
        self.frozen = bool(frozen)

    @classmethod
    def load(cls, path, problem=None, **options) -> "REWL":
        """A sampler continued from :meth:`save`: built on ``problem`` (``make_model(seed)``, data,
        loss, metric) with ``options`` the constructor's arguments (grid, windows, overlap,
        walkers_per_window, exchange_every, seed, ...; the file records the windows and walkers and
        refuses others), then restored from the file."""
        if problem is None or not hasattr(problem, "make_model"):
            raise TypeError("load: REWL's file holds the walkers' states, not the model and data: pass a problem "
                            "(make_model, train, test, loss, metric)")
        seed = int(options.get("seed", 0))
        r = cls(problem.make_model(seed), problem.train, problem.test, loss=problem.loss, metric=problem.metric,
                **options)
        r.load_checkpoint(path)
        return r
