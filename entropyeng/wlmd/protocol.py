"""WLMD's members of the sampler protocol (:class:`entropyeng.Sampler`): the walker-step clock,
``advance``, the walkers' (x, y) and positions, a frozen bias. :class:`entropyeng.WLMD` takes them
from :class:`WLMDProtocol`; the run loop and the harvest use nothing else of it."""

from __future__ import annotations

import time

import numpy as np
import torch

from . import reads

__all__ = ["WLMDProtocol"]


class WLMDProtocol:
    """The protocol's members of :class:`entropyeng.WLMD` (they use its state, ``run`` and ``info``)."""

    #: where ``advance`` writes the last good state when the walkers fail (None: no file; the run
    #: loop sets it to the run directory's last-good.npz)
    failure_path = None

    @property
    def deposits_per_step(self) -> int:
        """Walkers in the whole job (every rank's): the hills one step deposits, and the factor
        between a walker's steps and the schedule's clock."""
        return self.K * self.world

    @property
    def walker_steps(self) -> int:
        """Walker-steps done, over every walker of every rank (Eq. 4's clock)."""
        return self.t * self.deposits_per_step

    def advance(self, steps: int, callback=None) -> int:
        """At least ``steps`` walker-steps in all: ``ceil(steps / deposits_per_step)`` steps of every
        walker (:meth:`run`); ``callback(WLMDInfo)`` at the end. Returns the walker-steps done."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
        n = -(-int(steps) // self.deposits_per_step)
        t0 = time.perf_counter()
        self.run(n, checkpoint=self.failure_path)
        if callback is not None:
            callback(self.info(time.perf_counter() - t0))
        return n * self.deposits_per_step

    def plan(self, walker_steps: int) -> None:
        """Tell the sampler how long the run driving it in chunks will go on (``compile="auto"``
        compiles for a long run, not for a short chunk of it)."""
        self.planned_steps = max(0, -(-int(walker_steps) // self.deposits_per_step))

    def cvs(self) -> np.ndarray:
        """(K, 2): each walker's (x, y) as of the last host read."""
        reads.evaluated(self)
        return np.stack([self._xs, self._ys], axis=1).astype(np.float64)

    @property
    def positions(self) -> np.ndarray:
        """The walkers' parameters, (K, P) float64 (a copy)."""
        return self.state.theta.detach().double().cpu().numpy().copy()

    @positions.setter
    def positions(self, value) -> None:
        value = torch.as_tensor(np.asarray(value), dtype=self.dtype)
        if value.shape not in ((self.n_params,), (self.K, self.n_params)):
            raise ValueError(f"positions: expected shape ({self.n_params},) or ({self.K}, {self.n_params}), got "
                             f"{tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError("positions: expected finite values")
        with torch.no_grad():
            self.state.theta.copy_(value.to(self.device).expand_as(self.state.theta))
        reads.evaluate(self)

    def set_bias(self, bias, *, frozen=True, columns=None) -> None:
        """The landscape S replaced by ``bias`` ((nx, ny), in S's units: config_temperature times
        nats); ``columns``: only those x columns. ``frozen``: no more hills (Eq. 4's f_max set to 0)."""
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != tuple(self.grid.shape) or not np.isfinite(bias[slice(None) if columns is None else columns]).all():
            raise ValueError(f"bias: expected finite values of the grid's shape {tuple(self.grid.shape)}, got "
                             f"{bias.shape}")
        cols = slice(None) if columns is None else columns
        with torch.no_grad():
            self.S[cols] = torch.from_numpy(np.ascontiguousarray(bias[cols])).to(self.S)
        if frozen and self.schedule["f_max"] != 0.0:
            self.schedule = dict(self.schedule, f_max=0.0)
            self._runner = None  # the step holds the schedule: built again at the next run
