"""Wang-Landau molecular dynamics for any torch model (the paper's Methods, Eq. 2-4).

All parameters move together under Langevin dynamics in the bias potential V(theta) = S(x, y) plus
fixed quadratic walls, with x = ln(train loss) and y = ln(test loss) or the smoothed test accuracy;
every step deposits a Gaussian hill of height f(t) on the S grid at (x, y). The parameters live in
one flat buffer (each ``nn.Parameter`` a view into it, and each ``.grad`` a view into one flat
gradient buffer), so the Langevin update is one kernel call over all of them.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import warnings
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from . import _checks as C
from . import backends, kernels
from ._io import load_npz, save_npz_atomic
from .grid import Grid
from .integrators import INTEGRATORS, grad_scale
from .landscape import Landscape
from .wlmd_common import (_EPS, _INIT_STEP, _NORMS, NORM_BOUND, WLMDError, WLMDInfo, f_schedule,  # noqa: F401
                          paper_bounds, torch_threads)
from .wlmd_function import StepFunctionMixin

__all__ = ["WLMD", "WLMDError", "WLMDInfo", "f_schedule", "paper_bounds"]

class WLMD(StepFunctionMixin):
    """Wang-Landau molecular dynamics sampler of S(ln train loss, y).

    Parameters
    ----------
    model : torch.nn.Module
        Any model with floating-point parameters (one dtype, one device); its parameters become
        views into the sampler's flat buffer.
    train, test : (X, y)
        Tensors or arrays; X is fed to ``model``; y: targets for the loss.
    loss : {"mse", "ce", "bce"} or callable
        ``callable(output, target) -> scalar``.
    cv_y : {"test_loss", "smoothed_accuracy"}
        y = ln(test loss), or the smoothed test accuracy of Eq. 2, mean of
        sigmoid(alpha (correct logit - highest wrong logit)) (classification only).
    alpha : float
        Sharpness of the smoothed accuracy (the paper: 5).
    logit_y : bool, optional
        For the smoothed accuracy, y = logit(eps + (1 - 2 eps) A_s), eps = 1e-4, so that the walker is
        not squeezed against accuracy 1 (the default, as in the authors' scripts); False keeps A_s.
    grid : Grid
    sigma, cutoff : float
        Hill width and cutoff, in axis units.
    walls : dict, optional
        Any of x_min, x_max, y_min, y_max: fixed bias ``wall_c (x - x_max)^2`` beyond each (Eq. 3),
        kept apart from the learned landscape.
    schedule : dict
        f_max, t1, t2, t3 of Eq. 4 (t counts steps from 1).
    dt, gamma, kT : float
        Time step, friction per step in [0, 1], temperature (the paper: kT = 1).
    bound : "paper" or float
        Box of each parameter tensor: "paper" is 2 / sqrt(numel / in) (2/sqrt(out) for a Linear
        weight) and 2/sqrt(out) for a bias; +-2 for the gains and biases of normalisation layers
        (see :func:`paper_bounds`).
    seed : int
    backend : {"cpp", "torch", "cuda"}, optional
        Kernel backend (default: the fastest for the model's device).
    integrator : {"paper", "baoab"}
    walkers, distributed :
        ``walkers=K > 1`` or ``distributed=True`` make a :class:`entropyeng.wlmd_walkers.WalkersWLMD`:
        K walkers per process sharing one landscape, across the ranks of a torch.distributed job.
    sync_every : int, optional
        Steps between host reads. With ``compile=False``: 1 (the default on CPU) checks every step
        for a non-finite loss or a walker off the grid; k > 1 (the default on CUDA: 1000) keeps the
        checks on the device, read every k steps, and restores the state of the last check on a
        failure. With the step function (``compile`` not False; default 100, 1000 on CUDA) the checks
        are always on the device; the host reads the step counter and the failure flag every k steps.
    compile : {"auto", True, "eager", False}
        ``True``: the whole step as one function of tensors (:mod:`entropyeng.wlmd_step`) compiled
        with ``torch.compile(fullgraph=True)``; if tracing fails, the eager step function with one
        warning. ``"eager"``: that function, not compiled. ``False``: the per-step path of earlier
        versions. ``"auto"`` (default): on the first ``run`` of at least ``compile_min_steps`` steps
        (or any run once ``planned_steps``, the length of the whole run that a caller running in
        chunks may set, reaches it) the step function is compiled and timed against the per-step
        path (on copies of the state or rolled back: the run's trajectory does not depend on the
        timing), and the faster is kept (``compile_info`` says which and what the compilation cost;
        for the CNNs on a CPU the per-step path can win). Shorter runs take the eager step function.
    threads : int, optional
        torch's intra-op threads during ``run`` (restored after). Default: 1 for small models
        (parameters x data rows <= 2e7, where more threads only add synchronisation: spiral
        regression W = 30 ran 2,000 steps in 41.8 s with torch's default and 4.6 s with one thread
        on a shared 2-core machine), else torch's own setting.
    """

    def __new__(cls, *args, walkers=1, distributed=False, **kwargs):
        if isinstance(walkers, bool) or not isinstance(walkers, (int, np.integer)) or walkers < 1:
            raise ValueError(f"walkers: expected an integer >= 1, got {walkers!r}")
        if not isinstance(distributed, bool):
            raise TypeError(f"distributed: expected True or False, got {distributed!r}")
        if cls is WLMD and (walkers != 1 or distributed):
            from .wlmd_walkers import WalkersWLMD

            return super().__new__(WalkersWLMD)
        return super().__new__(cls)

    def __init__(self, model, train, test, *, loss, cv_y="test_loss", alpha=5.0, logit_y=None, grid, sigma,
                 cutoff, walls=None, wall_c=3000.0, schedule, dt, gamma, kT=1.0, bound="paper", seed=0,
                 backend=None, integrator="paper", sync_every=None, walkers=1, distributed=False, compile="auto",
                 threads=None, compile_min_steps=2000):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model: it has no trainable parameters")
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise ValueError(f"model: expected floating-point parameters of one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = params[0].dtype
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"model: expected float32 or float64 parameters, got {self.dtype}")
        devices = {p.device for p in params}
        if len(devices) != 1:
            raise ValueError(f"model: expected parameters on one device, got {devices}")
        self.device = params[0].device
        self.model = model
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator: expected one of {sorted(INTEGRATORS)}, got {integrator!r}")
        self.integrator = integrator
        if not isinstance(grid, Grid):
            raise TypeError(f"grid: expected an entropyeng.Grid, got {type(grid).__name__}")
        self.grid = grid
        self.sigma, self.cutoff = C.hill(grid, sigma, cutoff)
        self.dt = C.positive(dt, "dt")
        self.gamma = C.finite(gamma, "gamma")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma: expected a number in [0, 1], got {self.gamma}")
        self.kT = C.finite(kT, "kT")
        if self.kT < 0:
            raise ValueError(f"kT: expected a number >= 0, got {self.kT}")
        self.seed = C.counter(seed, "seed")
        self.schedule = self._check_schedule(schedule)
        self.walls = self._check_walls(walls)
        self.wall_c = C.finite(wall_c, "wall_c")
        if self.wall_c < 0:
            raise ValueError(f"wall_c: expected a number >= 0 (a wall pushes back), got {self.wall_c}")
        self.alpha = C.positive(alpha, "alpha")
        self._setup_loss(loss, cv_y, logit_y)
        self.X_tr, self.y_tr = self._data(train, "train")
        self.X_te, self.y_te = self._data(test, "test")
        if self.cv_y == "smoothed_accuracy" and self.y_te.dtype.is_floating_point:
            raise ValueError("cv_y: 'smoothed_accuracy' needs class labels (an integer test target), got "
                             f"{self.y_te.dtype} targets; use cv_y='test_loss' for regression")
        self.backend = self._resolve_backend(backend)
        if compile not in ("auto", True, False, "eager"):
            raise ValueError(f"compile: expected 'auto', True, 'eager' or False, got {compile!r}")
        self.compile = compile
        self.compile_min_steps = C.counter(compile_min_steps, "compile_min_steps")
        self.compile_info = None
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
        self._threads_arg = threads
        if sync_every is None:
            if compile is False or type(self) is not WLMD:
                sync_every = 1000 if self.device.type == "cuda" else 1
            else:
                sync_every = 1000 if self.device.type == "cuda" else 100
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ValueError(f"sync_every: expected an integer >= 1, got {sync_every!r}")
        self.sync_every = sync_every
        self._flatten(params, bound)
        self.S = self._grid_array()
        self.H = self._grid_array()
        self.t = 0
        self.round_trips, self._last_end = 0, None
        self._evaluate_current()
        problem = self._check_state(self._xv, self._yv, 0)
        if problem:
            raise ValueError(f"grid: the initial state does not fit: {problem}")
        n_rows = int(self.X_tr.shape[0]) + int(self.X_te.shape[0])
        self.threads = threads if threads is not None else (1 if self.n_params * n_rows <= 2e7 else None)
        self._fn = None  # the step function and its buffers, built on the first run

    # -- set-up -------------------------------------------------------------------------------
    @staticmethod
    def _check_schedule(schedule):
        if not isinstance(schedule, dict) or set(schedule) != {"f_max", "t1", "t2", "t3"}:
            raise ValueError("schedule: expected dict(f_max=..., t1=..., t2=..., t3=...) (Eq. 4)")
        s = {k: C.finite(v, f"schedule['{k}']") for k, v in schedule.items()}
        if not s["f_max"] > 0 or not s["t1"] > 0 or not s["t2"] >= s["t1"] or not s["t3"] < s["t2"]:
            raise ValueError(f"schedule: expected f_max > 0, t1 > 0, t2 >= t1, t3 < t2, got {s}")
        return s

    @staticmethod
    def _check_walls(walls):
        walls = dict(walls or {})
        bad = set(walls) - {"x_min", "x_max", "y_min", "y_max"}
        if bad:
            raise ValueError(f"walls: unknown keys {sorted(bad)}; expected x_min, x_max, y_min, y_max")
        return {k: C.finite(v, f"walls['{k}']") for k, v in walls.items()}

    def _setup_loss(self, loss, cv_y, logit_y):
        if callable(loss):
            self.loss_name, self._loss = "callable", loss
        elif loss == "mse":
            self.loss_name, self._loss = loss, lambda out, y: F.mse_loss(out.reshape(y.shape), y)
        elif loss == "ce":
            self.loss_name, self._loss = loss, F.cross_entropy
        elif loss == "bce":
            self.loss_name, self._loss = loss, lambda out, y: F.binary_cross_entropy_with_logits(
                out.reshape(y.shape), y.to(out.dtype))
        else:
            raise ValueError(f"loss: expected 'mse', 'ce', 'bce' or a callable, got {loss!r}")
        if cv_y not in ("test_loss", "smoothed_accuracy"):
            raise ValueError(f"cv_y: expected 'test_loss' or 'smoothed_accuracy', got {cv_y!r}")
        if cv_y == "smoothed_accuracy" and loss == "mse":
            raise ValueError("cv_y: 'smoothed_accuracy' needs a classification loss, got loss 'mse' (a regression)")
        if cv_y == "test_loss" and logit_y:
            raise ValueError("logit_y: only applies to cv_y='smoothed_accuracy'")
        self.cv_y = cv_y
        self.logit_y = (cv_y == "smoothed_accuracy") if logit_y is None else bool(logit_y)

    def _data(self, data, name):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(f"{name}: expected a pair (X, y)")
        X, y = (torch.as_tensor(a) for a in data)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: X has {X.shape[0]} rows but y has {y.shape[0]}")
        if X.shape[0] == 0:
            raise ValueError(f"{name}: the data set is empty")
        if X.is_floating_point():
            X = X.to(self.dtype)
            if not torch.isfinite(X).all():
                raise ValueError(f"{name}: X contains NaN or infinite values")
        if self.loss_name == "ce":
            y = y.long()
        elif self.loss_name == "bce":
            y = y.to(self.dtype)
        elif y.is_floating_point():
            y = y.to(self.dtype)
        return X.to(self.device), y.to(self.device)

    def _resolve_backend(self, backend):
        name = backends.resolve(backend, torch.empty(0, device=self.device))
        # the flat buffers are validated once here; the step calls the backend directly
        self._kernels = backends.get(name)
        return name

    def _flatten(self, params, bound):
        """One flat buffer for the parameters and one for their gradients; every parameter and its
        .grad become views into them."""
        n = sum(p.numel() for p in params)
        self.n_params = n
        self.theta = torch.empty(n, dtype=self.dtype, device=self.device)
        self.grad = torch.zeros(n, dtype=self.dtype, device=self.device)
        self.zeros = torch.zeros(n, dtype=self.dtype, device=self.device)
        if isinstance(bound, str):
            if bound != "paper":
                raise ValueError(f"bound: expected 'paper' or a number, got {bound!r}")
            b = torch.empty(n, dtype=self.dtype, device=self.device)
        else:
            b = C.positive(bound, "bound", allow_inf=True)
        off = 0
        boxes = paper_bounds(self.model, params)
        with torch.no_grad():
            for p, box in zip(params, boxes):
                k = p.numel()
                self.theta[off:off + k] = p.reshape(-1)
                if isinstance(b, torch.Tensor):
                    b[off:off + k] = box
                p.data = self.theta[off:off + k].view_as(p)
                p.grad = self.grad[off:off + k].view_as(p)
                off += k
        self.bound = b
        limit = b if isinstance(b, torch.Tensor) else torch.full_like(self.theta, b)
        outside = (self.theta.abs() > limit)
        if bool(outside.any()):
            warnings.warn(f"{int(outside.sum())} initial parameters lie outside their box; clamped into it",
                          stacklevel=3)
            with torch.no_grad():
                torch.clamp_(self.theta, -limit, limit)
        # velocities from N(0, kT), drawn from the counter-based stream at a reserved step
        xi = kernels.normal(self.seed, _INIT_STEP, n, backend="torch", dtype=str(self.dtype).replace("torch.", ""))
        self.v = (math.sqrt(self.kT) * xi).to(self.device)
        self._view = self._views()
        # buffers of the step: the previous state (restored on failure) and the backward seeds
        self._theta0, self._v0 = torch.empty_like(self.theta), torch.empty_like(self.v)
        self._seed_x = torch.zeros((), dtype=self.dtype, device=self.device)
        self._seed_y = torch.zeros((), dtype=self.dtype, device=self.device)

    def _views(self):
        """(theta, v, grad, zeros, bound) as the kernel backend takes them (zero copy)."""
        if self.backend == "cpp":
            b = self.bound if isinstance(self.bound, float) else self.bound.numpy()
            return self.theta.numpy(), self.v.numpy(), self.grad.numpy(), self.zeros.numpy(), b
        return self.theta, self.v, self.grad, self.zeros, self.bound

    def _grid_array(self):
        if self.backend == "cuda" or self.sync_every > 1:
            return torch.zeros(self.grid.shape, dtype=torch.float64, device=self.device)
        return np.zeros(self.grid.shape)

    # -- collective variables -----------------------------------------------------------------
    def _cvs(self):
        """(x, y) as 0-d tensors with their graph, and the hard test accuracy (or None)."""
        out_tr = self.model(self.X_tr)
        x = torch.log(self._loss(out_tr, self.y_tr))
        out_te = self.model(self.X_te)
        if self.cv_y == "test_loss":
            return x, torch.log(self._loss(out_te, self.y_te)), None
        if out_te.dim() == 1 or out_te.shape[-1] == 1:  # one logit: binary
            z = out_te.reshape(-1)
            delta = torch.where(self.y_te.reshape(-1) > 0, z, -z)
        else:
            correct = out_te.gather(1, self.y_te.reshape(-1, 1)).squeeze(1)
            wrong = out_te.scatter(1, self.y_te.reshape(-1, 1), float("-inf")).amax(dim=1)
            delta = correct - wrong
        A_s = torch.sigmoid(self.alpha * delta).mean()
        hard = (delta > 0).to(A_s.dtype).mean()
        if self.logit_y:
            p = _EPS + (1 - 2 * _EPS) * A_s
            return x, torch.log(p) - torch.log1p(-p), hard - A_s
        return x, A_s, hard - A_s

    def _evaluate_current(self):
        with torch.enable_grad():
            self._x, self._y, self._smooth_err = self._cvs()
        self._xv, self._yv = self._x.item(), self._y.item()
        self._snapshot = None

    def _check_state(self, xv, yv, step):
        if not (math.isfinite(xv) and math.isfinite(yv)):
            return f"the loss is not finite at step {step} (x = {xv}, y = {yv})"
        g = self.grid
        if not (g.x_min <= xv <= g.x_max and g.y_min <= yv <= g.y_max):
            return f"the walker left the grid at step {step} (x = {xv:.6g}, y = {yv:.6g}; grid {self.grid})"
        return None

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

    def wall_energy(self, x, y):
        """The fixed wall bias at (x, y) (arrays allowed)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        w, c = self.walls, self.wall_c
        e = np.zeros(np.broadcast(x, y).shape)
        if "x_max" in w:
            e = e + c * np.maximum(x - w["x_max"], 0) ** 2
        if "x_min" in w:
            e = e + c * np.minimum(x - w["x_min"], 0) ** 2
        if "y_max" in w:
            e = e + c * np.maximum(y - w["y_max"], 0) ** 2
        if "y_min" in w:
            e = e + c * np.minimum(y - w["y_min"], 0) ** 2
        return e

    # -- the step -----------------------------------------------------------------------------
    def f(self, t=None) -> float:
        """The hill height f(t) of Eq. 4 at step t (default: the next step)."""
        return f_schedule(self.t + 1 if t is None else t, **self.schedule)

    def _step(self, failure_path):
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
        INTEGRATORS[self.integrator](th, v, g, z, b, self.dt, self.gamma, self.kT, self.seed, self.t,
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
            path = failure_path or os.path.join(os.getcwd(), "wlmd-last-good.npz")
            self.save(path)
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
        self._snapshot = dict(theta=self.theta.clone(), v=self.v.clone(), S=self.S.clone(), H=self.H.clone(),
                              t=self.t, round_trips=self.round_trips, last_end=self._last_end)
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
        self.t, self.round_trips, self._last_end = snap["t"], snap["round_trips"], snap["last_end"]
        self._evaluate_current()
        path = failure_path or os.path.join(os.getcwd(), "wlmd-last-good.npz")
        self.save(path)
        raise WLMDError(f"WLMD stopped: the loss went non-finite or the walker left the grid at step {bad}; "
                        f"the last checked good state (step {self.t}) was written to {path}", bad, path)

    def _step_on_device(self, failure_path):
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
        INTEGRATORS[self.integrator](th, v, gr, z, b, self.dt, self.gamma, self.kT, self.seed, self.t,
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

    def _track_round_trips(self, xv):
        lo = self.walls.get("x_min", self.grid.x_min)
        hi = self.walls.get("x_max", self.grid.x_max)
        span = hi - lo
        end = "low" if xv < lo + 0.1 * span else "high" if xv > hi - 0.1 * span else None
        if end is None or end == self._last_end:
            return
        if end == "low" and self._last_end == "high":
            self.round_trips += 1
        self._last_end = end

    def run(self, n_steps: int, callback=None, every: int = 1000, checkpoint=None) -> None:
        """Run ``n_steps`` steps. ``callback(WLMDInfo)`` every ``every`` steps. If the loss turns
        non-finite or the walker leaves the grid, the last good state is saved to ``checkpoint``
        (default ./wlmd-last-good.npz) and :class:`WLMDError` says at which step."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
            raise ValueError(f"n_steps: expected an integer >= 0, got {n_steps!r}")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every: expected an integer >= 1, got {every!r}")
        with torch_threads(self.threads):
            if not self._uses_step_function():
                self._run_steps(int(n_steps), callback, every, checkpoint)
                return
            if self._fn is None:
                self._build_function()
            self._choose_form(int(n_steps))
            if self._fn["form"] == "per-step":
                self._run_steps(int(n_steps), callback, every, checkpoint, per_step=True)
            else:
                self._run_function(int(n_steps), callback, every, checkpoint)

    def _uses_step_function(self) -> bool:
        """Whether runs go through the step function (entropyeng.wlmd_function); the many-walker
        subclass keeps its own per-step path."""
        return self.compile is not False and type(self) is WLMD

    def _run_steps(self, n_steps, callback, every, checkpoint, per_step=False):
        t0 = time.perf_counter()
        step = self._step if self.sync_every == 1 or per_step else self._step_on_device
        for k in range(n_steps):
            step(checkpoint)
            if callback is not None and (k + 1) % every == 0:
                callback(self.info(time.perf_counter() - t0))
        if self.sync_every > 1 and not per_step:
            self._sync(checkpoint)

    # -- diagnostics and results ----------------------------------------------------------------
    def info(self, seconds=0.0) -> WLMDInfo:
        H = np.asarray(self.H.cpu() if isinstance(self.H, torch.Tensor) else self.H)
        visited = H > 0
        flat = float(H[visited].min() / H[visited].mean()) if visited.any() else 0.0
        err = 0.0 if self._smooth_err is None else abs(float(self._smooth_err.detach()))
        return WLMDInfo(step=self.t, x=self._xv, y=self._yv, f=self.f(), kinetic_temperature=float((self.v ** 2).mean()),
                        smoothing_error=err, flatness=flat, visited=int(visited.sum()), round_trips=self.round_trips,
                        seconds=seconds)

    @property
    def landscape(self) -> Landscape:
        """The learned entropy (the walls are not in it), the histogram, the grid and metadata."""
        S = self.S.cpu().numpy() if isinstance(self.S, torch.Tensor) else self.S
        H = self.H.cpu().numpy() if isinstance(self.H, torch.Tensor) else self.H
        meta = dict(sampler="WLMD", integrator=self.integrator, loss=self.loss_name, cv_y=self.cv_y,
                    logit_y=self.logit_y, schedule=self.schedule, steps=self.t, seed=self.seed, dt=self.dt,
                    gamma=self.gamma, kT=self.kT, sigma=self.sigma, cutoff=self.cutoff, walls=self.walls,
                    wall_c=self.wall_c, round_trips=self.round_trips)
        return Landscape(np.array(S), np.array(H), self.grid, meta)

    # -- checkpoints ----------------------------------------------------------------------------
    def _config(self):
        return dict(loss=self.loss_name, cv_y=self.cv_y, alpha=self.alpha, logit_y=self.logit_y,
                    grid=self.grid.to_dict(), sigma=self.sigma, cutoff=self.cutoff, walls=self.walls,
                    wall_c=self.wall_c, schedule=self.schedule, dt=self.dt, gamma=self.gamma, kT=self.kT,
                    seed=self.seed, integrator=self.integrator, dtype=str(self.dtype).replace("torch.", ""),
                    n_params=self.n_params)

    def state_dict(self) -> dict:
        """Parameters, velocities, landscape, histogram, step counter, diagnostics and configuration."""
        def host(a):
            return a.detach().cpu().numpy().copy() if isinstance(a, torch.Tensor) else np.array(a)

        bound = self.bound if isinstance(self.bound, float) else host(self.bound)
        return dict(theta=host(self.theta), v=host(self.v), S=host(self.S), H=host(self.H), t=self.t,
                    round_trips=self.round_trips, last_end=self._last_end, bound=bound, config=self._config())

    def load_state_dict(self, state: dict) -> None:
        cfg = state["config"]
        if int(cfg["n_params"]) != self.n_params:
            raise ValueError(f"state: the checkpoint has {cfg['n_params']} parameters, this model {self.n_params}")
        if Grid.from_dict(cfg["grid"]) != self.grid:
            raise ValueError("state: the checkpoint's grid differs from this sampler's")
        for key, shape in (("theta", (self.n_params,)), ("v", (self.n_params,)), ("S", self.grid.shape),
                           ("H", self.grid.shape)):
            a = np.asarray(state[key])
            if a.shape != shape or a.dtype.kind != "f":
                raise ValueError(f"state: field '{key}' must be floating point of shape {shape}, got {a.dtype} {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"state: field '{key}' holds non-finite values")
        if (np.asarray(state["H"]) < 0).any():
            raise ValueError("state: field 'H' holds negative counts")
        t = state["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state: field 't' must be a step count >= 0, got {t!r}")
        limit = self.bound.detach().cpu().numpy() if isinstance(self.bound, torch.Tensor) else self.bound
        if (np.abs(np.asarray(state["theta"], dtype=np.float64)) > limit * (1 + 1e-6)).any():
            raise ValueError("state: field 'theta' has parameters outside their box")
        with torch.no_grad():
            self.theta.copy_(torch.as_tensor(state["theta"]))
            self.v.copy_(torch.as_tensor(state["v"]))
            if isinstance(self.S, torch.Tensor):
                self.S.copy_(torch.as_tensor(state["S"]))
                self.H.copy_(torch.as_tensor(state["H"]))
            else:
                self.S[...] = state["S"]
                self.H[...] = state["H"]
        self.t = int(state["t"])
        self.round_trips = int(state.get("round_trips", 0))
        self._last_end = state.get("last_end")
        self._evaluate_current()

    def save(self, path) -> None:
        """Write a self-describing .npz checkpoint (atomically)."""
        s = self.state_dict()
        arrays = {k: s[k] for k in ("theta", "v", "S", "H")}
        if not isinstance(s["bound"], float):
            arrays["bound"] = s["bound"]
        meta = dict(kind="wlmd-checkpoint", t=s["t"], round_trips=s["round_trips"], last_end=s["last_end"],
                    config=s["config"], bound=s["bound"] if isinstance(s["bound"], float) else "array",
                    info=asdict(self.info()), form=self.step_form)
        save_npz_atomic(path, arrays, dict(meta, **getattr(self, "run_meta", {})))

    @classmethod
    def load(cls, path, model, train, test, *, loss=None, backend=None, compile="auto", threads=None,
             sync_every=None) -> "WLMD":
        """A sampler restored from :meth:`save` onto ``model`` and the same data (the model's
        parameters are overwritten); ``loss`` is needed when the run used a callable loss;
        ``compile``, ``threads`` and ``sync_every`` as in the constructor (they do not change the
        trajectory beyond rounding: a compiled and an eager step agree to ~1e-15 per step)."""
        arrays, meta = load_npz(path, "wlmd-checkpoint")
        cfg = dict(meta["config"])
        if cfg["loss"] == "callable":
            if loss is None:
                raise ValueError("loss: the checkpoint was made with a callable loss; pass it again")
            cfg["loss"] = loss
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(
                torch.as_tensor(arrays["theta"]).to(next(model.parameters()).dtype),
                [p for p in model.parameters() if p.requires_grad])
        self = cls(model, train, test, loss=cfg["loss"], cv_y=cfg["cv_y"], alpha=cfg["alpha"],
                   logit_y=cfg["logit_y"] if cfg["cv_y"] == "smoothed_accuracy" else None,
                   grid=Grid.from_dict(cfg["grid"]), sigma=cfg["sigma"], cutoff=cfg["cutoff"], walls=cfg["walls"],
                   wall_c=cfg["wall_c"], schedule=cfg["schedule"], dt=cfg["dt"], gamma=cfg["gamma"], kT=cfg["kT"],
                   bound="paper" if meta["bound"] == "array" else meta["bound"], seed=cfg["seed"], backend=backend,
                   integrator=cfg["integrator"], compile=compile, threads=threads, sync_every=sync_every)
        self.load_state_dict(dict(theta=arrays["theta"], v=arrays["v"], S=arrays["S"], H=arrays["H"], t=meta["t"],
                                  round_trips=meta["round_trips"], last_end=meta["last_end"], config=meta["config"]))
        if compile == "auto" and meta.get("form") in ("compiled", "per-step", "eager"):
            # continue on the form the run had chosen: the forms agree only to rounding, so a resumed
            # run is bitwise the uninterrupted one only on the same form
            self._forced_form = meta["form"]
        return self


# WLMD.__new__ dispatches to WalkersWLMD; show the constructor's real parameters to help() and IDEs
WLMD.__signature__ = inspect.Signature(list(inspect.signature(WLMD.__init__).parameters.values())[1:])
