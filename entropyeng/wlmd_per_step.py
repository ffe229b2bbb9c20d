"""The per-step path of :class:`entropyeng.WLMD` for one walker in one process (``compile=False``,
or what ``compile="auto"`` keeps when it measures faster): one torch autograd step at a time, the
landscape kernels called from the host. ``sync_every = 1`` checks the state on the host every step;
``sync_every > 1`` keeps the checks on the device and reads them every ``sync_every`` steps,
restoring the state of the last read on a failure."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from . import kernels
from .integrators import INTEGRATORS, grad_scale
from .wlmd_common import WLMDError

__all__ = ["PerStepMixin"]


class PerStepMixin:
    """The per-step half of :class:`entropyeng.WLMD` (one walker, one process)."""

    def _wall_force(self, xv, yv):
        """(dV_wall/dx, dV_wall/dy) of the fixed walls at (x, y)."""
        w, c = self.walls, self.wall_c
        gx = gy = 0.0
        if "x_max" in w and xv > w["x_max"]:
            gx += 2 * c * (xv - w["x_max"])
        if "x_min" in w and xv < w["x_min"]:
            gx += 2 * c * (xv - w["x_min"])
        if "y_max" in w and yv > w["y_max"]:
            gy += 2 * c * (yv - w["y_max"])
        if "y_min" in w and yv < w["y_min"]:
            gy += 2 * c * (yv - w["y_min"])
        return gx, gy

    def _track_round_trips(self, xv):
        lo = self.walls.get("x_min", self.grid.x_min)
        hi = self.walls.get("x_max", self.grid.x_max)
        span = hi - lo
        end = 0 if xv < lo + 0.1 * span else 1 if xv > hi - 0.1 * span else -1
        if end < 0 or end == self._ends[0]:
            return
        if end == 0 and self._ends[0] == 1:
            self._trips[0] += 1
        self._ends[0] = end

    def _save_last_good(self, failure_path):
        """Write the current (last good) state where the failure checkpoint goes; returns the path."""
        path = failure_path or os.path.join(os.getcwd(), "wlmd-last-good.npz")
        self.save(path)
        return path

    def _step(self, failure_path):
        if not self._x.requires_grad:  # the step function's last read, without the graph
            self._evaluate_current(graph=True)
        xv, yv = self._xv, self._yv
        gx, gy = kernels.gradient(self.S, self.grid, xv, yv, backend=self.backend)
        wx, wy = self._wall_force(xv, yv)
        scale = grad_scale(self.integrator, self.t == 0)
        self.grad.zero_()
        # dV/dtheta = (dS/dx + wall) dx/dtheta + (dS/dy + wall) dy/dtheta: one backward with the two
        # derivatives as the seeds of x and y
        self._seed_x.fill_((gx + wx) * scale)
        self._seed_y.fill_((gy + wy) * scale)
        torch.autograd.backward((self._x, self._y), (self._seed_x, self._seed_y))
        theta0, v0 = self._theta0, self._v0
        theta0.copy_(self.theta)
        v0.copy_(self.v)
        th, v, g, z, b = self._view
        INTEGRATORS[self.integrator](th, v, g, z, b, self.dt, self.gamma, self.kT, self._noise_seed, self.t,
                                     self.t == 0, self._kernels)
        with torch.enable_grad():
            x1, y1, err1 = self._cvs()
        x1v, y1v = x1.item(), y1.item()
        problem = self._check_state(x1v, y1v, self.t + 1)
        if problem:
            with torch.no_grad():
                self.theta.copy_(theta0)
                self.v.copy_(v0)
            self._evaluate_current()
            path = self._save_last_good(failure_path)
            raise WLMDError(f"WLMD stopped: {problem}; the last good state (step {self.t}) was written to {path}",
                            self.t + 1, path)
        kernels.deposit(self.S, self.grid, xv, yv, self.f(), self.sigma, self.cutoff, backend=self.backend)
        g = self.grid
        i = min(int((xv - g.x_min) / g.dx), g.nx - 1)
        j = min(int((yv - g.y_min) / g.dy), g.ny - 1)
        self.H[i, j] += 1
        self._track_round_trips(xv)
        self._x, self._y, self._smooth_err, self._xv, self._yv = x1, y1, err1, x1v, y1v
        self.t += 1

    # -- the step without host synchronisation (sync_every > 1) -----------------------------------
    def _take_snapshot(self):
        # into the buffers of the last snapshot when there is one: a fresh 2000 x 2000 clone of S and H
        # every sync cost 8x the copy (allocation and first-touch of 64 MB; 52 against 6 ms measured)
        old = getattr(self, "_snapshot_buffers", None)  # kept when _snapshot is reset
        arrays = dict(theta=self.theta, v=self.v, S=self.S, H=self.H)
        if old is not None and all(old[k].shape == a.shape and old[k].dtype == a.dtype and old[k].device == a.device
                                   for k, a in arrays.items()):
            with torch.no_grad():
                for k, a in arrays.items():
                    old[k].copy_(a)
            snap = old
        else:
            snap = {k: a.detach().clone() for k, a in arrays.items()}
        snap.update(t=self.t, trips=self._trips.copy(), ends=self._ends.copy())
        self._snapshot = self._snapshot_buffers = snap
        self._bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)

    def _sync(self, failure_path):
        """Read the device-side checks; on a failure restore and save the last checked state."""
        if self._snapshot is None:
            return
        bad = int(self._bad_step)
        if bad < 0:
            self._take_snapshot()
            return
        snap = self._snapshot
        with torch.no_grad():
            self.theta.copy_(snap["theta"])
            self.v.copy_(snap["v"])
            self.S.copy_(snap["S"])
            self.H.copy_(snap["H"])
        self.t, self._trips, self._ends = snap["t"], snap["trips"], snap["ends"]
        self._evaluate_current()
        path = self._save_last_good(failure_path)
        raise WLMDError(f"WLMD stopped: the loss went non-finite or the walker left the grid at step {bad}; "
                        f"the last checked good state (step {self.t}) was written to {path}", bad, path)

    def _step_on_device(self, failure_path):
        if not self._x.requires_grad:  # the step function's last read, without the graph
            self._evaluate_current(graph=True)
        if self._snapshot is None:
            self._take_snapshot()
        g, w = self.grid, self.walls
        xd, yd = self._x.detach(), self._y.detach()
        if self.backend == "cpp" and not bool(torch.isfinite(xd) & torch.isfinite(yd)):
            gx = gy = np.zeros(1)  # the cpp binding refuses a non-finite point; the device kernel gives NaN
        else:
            gx, gy = self._kernels.gradient(self.S, g, xd.reshape(1).to(torch.float64),
                                            yd.reshape(1).to(torch.float64))
        gx = torch.as_tensor(gx, device=self.device).reshape(())
        gy = torch.as_tensor(gy, device=self.device).reshape(())
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        x64, y64 = xd.to(torch.float64), yd.to(torch.float64)
        if "x_max" in w:
            gx = gx + torch.where(x64 > w["x_max"], 2 * self.wall_c * (x64 - w["x_max"]), zero)
        if "x_min" in w:
            gx = gx + torch.where(x64 < w["x_min"], 2 * self.wall_c * (x64 - w["x_min"]), zero)
        if "y_max" in w:
            gy = gy + torch.where(y64 > w["y_max"], 2 * self.wall_c * (y64 - w["y_max"]), zero)
        if "y_min" in w:
            gy = gy + torch.where(y64 < w["y_min"], 2 * self.wall_c * (y64 - w["y_min"]), zero)
        scale = grad_scale(self.integrator, self.t == 0)
        self.grad.zero_()
        torch.autograd.backward((self._x, self._y), ((gx * scale).to(self.dtype), (gy * scale).to(self.dtype)))
        th, v, gr, z, b = self._view
        INTEGRATORS[self.integrator](th, v, gr, z, b, self.dt, self.gamma, self.kT, self._noise_seed, self.t,
                                     self.t == 0, self._kernels)
        with torch.enable_grad():
            x1, y1, err1 = self._cvs()
        x1d, y1d = x1.detach().to(torch.float64), y1.detach().to(torch.float64)
        bad = ~(torch.isfinite(x1d) & torch.isfinite(y1d) & (x1d >= g.x_min) & (x1d <= g.x_max)
                & (y1d >= g.y_min) & (y1d <= g.y_max))
        self._bad_step = torch.where(bad & (self._bad_step < 0), torch.full_like(self._bad_step, self.t + 1),
                                     self._bad_step)
        if self.device.type != "cpu" or bool(torch.isfinite(x64) & torch.isfinite(y64)):
            # (a non-finite centre deposits nothing; the device kernel skips it by itself)
            self._kernels.deposit(self.S, g, x64.reshape(1), y64.reshape(1),
                                  torch.full((1,), self.f(), dtype=torch.float64, device=self.device),
                                  self.sigma, self.cutoff)
        # a non-finite point counts nothing (index 0, weight 0): an out-of-range index on the GPU
        # would be a device-side assert
        ok = torch.isfinite(x64) & torch.isfinite(y64)
        i = torch.clamp(torch.floor((torch.nan_to_num(x64) - g.x_min) / g.dx), 0, g.nx - 1).to(torch.int64)
        j = torch.clamp(torch.floor((torch.nan_to_num(y64) - g.y_min) / g.dy), 0, g.ny - 1).to(torch.int64)
        self.H.index_put_((i.reshape(1), j.reshape(1)), ok.to(self.H.dtype).reshape(1), accumulate=True)
        self._x, self._y, self._smooth_err = x1, y1, err1
        self.t += 1
        if self.t % self.sync_every == 0:
            self._xv, self._yv = float(x1d), float(y1d)
            self._sync(failure_path)

    def _run_steps(self, n_steps, callback, every, checkpoint, per_step=False):
        t0 = time.perf_counter()
        step = self._step if self.sync_every == 1 or per_step else self._step_on_device
        for k in range(n_steps):
            step(checkpoint)
            if callback is not None and (k + 1) % every == 0:
                callback(self.info(time.perf_counter() - t0))
        if self.sync_every > 1 and not per_step:
            self._sync(checkpoint)
