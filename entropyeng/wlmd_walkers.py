"""Many WLMD walkers sharing one landscape: K walkers in one process, and the ranks of a
``torch.distributed`` job (multiple-walker metadynamics; Raiteri, Laio, Gervasio, Micheletti and
Parrinello, J. Phys. Chem. B 110, 3533 (2006)).

In one process the K copies of the model are evaluated at once (``torch.func.functional_call`` under
``vmap`` over stacked parameters, one backward for all of them), all K * P parameters move in one
Langevin kernel call, and the K hills of a step go to the shared landscape in one batched deposit.
Across processes every rank runs its own K walkers on its own copy of the landscape and every
``sync_every`` steps the ranks all-reduce their increments (landscape and histogram) since the last
sync, so that all ranks hold the same landscape afterwards.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from datetime import timedelta

import numpy as np
import torch

from . import _checks as C
from . import kernels
from ._io import load_npz, save_npz_atomic
from .grid import Grid
from .integrators import INTEGRATORS, grad_scale
from .landscape import Landscape
from .wlmd import _EPS, _INIT_STEP, WLMD, WLMDError, WLMDInfo, f_schedule, paper_bounds

__all__ = ["WalkersWLMD", "WalkerDropped", "init_distributed"]

_RANK_STRIDE = 1 << 40  # the seeds of different ranks are seed + rank * 2^40: disjoint Philox keys


class WalkerDropped(UserWarning):
    """A walker's loss went non-finite or it left the grid; it was dropped and its last hill
    discarded."""


def init_distributed(backend=None, timeout_s=120.0):
    """Join the ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` in the
    environment) if this process has not yet: gloo on CPU, NCCL on GPUs. Collectives that wait longer
    than ``timeout_s`` (a rank died) raise instead of hanging."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("distributed: this torch build has no torch.distributed")
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise RuntimeError("distributed: RANK / WORLD_SIZE are not set; start the script with torchrun "
                               "(torchrun --nproc_per_node P script.py) or call init_process_group first")
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


class WalkersWLMD(WLMD):
    """K walkers (per process) sharing one WLMD landscape; the arguments of :class:`WLMD` plus:

    walkers : int
        Walkers in this process. They start from the model's parameters with independent
        velocities and noise; each deposits a hill of height f(t) every step.
    distributed : bool
        Share the landscape with the other ranks of the ``torch.distributed`` job (initialised from
        the ``torchrun`` environment if needed). The ranks' seeds are made distinct.
    sync_every : int
        Steps between all-reduces of the landscape increments (distributed only; default 100).
    timeout_s : float
        How long a collective waits for a rank before raising (distributed only).

    Each step every walker is checked: one whose loss turns non-finite or that leaves the grid is
    dropped with a :class:`WalkerDropped` warning (its hill of that step is not deposited, its
    parameters stay at the last good state); the others go on. When no walker is left,
    :class:`WLMDError` is raised.
    """

    def __init__(self, model, train, test, *, walkers=1, distributed=False, sync_every=None, timeout_s=120.0,
                 loss, cv_y="test_loss", alpha=5.0, logit_y=None, grid, sigma, cutoff, walls=None, wall_c=3000.0,
                 schedule, dt, gamma, kT=1.0, bound="paper", seed=0, backend=None, integrator="paper"):
        if isinstance(walkers, bool) or not isinstance(walkers, (int, np.integer)) or walkers < 1:
            raise ValueError(f"walkers: expected an integer >= 1, got {walkers!r}")
        self.K = int(walkers)
        self.distributed = bool(distributed)
        if sync_every is None:
            sync_every = 100
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ValueError(f"sync_every: expected an integer >= 1, got {sync_every!r}")
        self.share_every = sync_every
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self._names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad]) \
            if any(p.requires_grad for p in model.parameters()) else ((), ())
        if not params:
            raise ValueError("model: it has no trainable parameters")
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
            raise ValueError(f"model: expected float32 or float64 parameters of one dtype, got {sorted(map(str, dtypes))}")
        self.dtype, self.device = params[0].dtype, params[0].device
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
        self.seed = C.counter(seed, "seed")
        self.schedule = self._check_schedule(schedule)
        self.walls = self._check_walls(walls)
        self.wall_c = C.finite(wall_c, "wall_c")
        self.alpha = C.positive(alpha, "alpha")
        self._setup_loss(loss, cv_y, logit_y)
        self.X_tr, self.y_tr = self._data(train, "train")
        self.X_te, self.y_te = self._data(test, "test")
        if self.cv_y == "smoothed_accuracy" and self.y_te.dtype.is_floating_point:
            raise ValueError("cv_y: 'smoothed_accuracy' needs class labels (an integer test target)")
        self.sync_every = 1
        self.backend = self._resolve_backend(backend)
        # join the job only once the arguments are known to be good: a rank that fails alone before
        # its first collective would leave the others waiting for it until the timeout
        self.rank, self.world = (init_distributed(timeout_s=timeout_s) if self.distributed else (0, 1))
        self._noise_seed = (self.seed + self.rank * _RANK_STRIDE) % 2**64
        self._stack(params, bound)
        self.S = self._grid_array()
        self.H = self._grid_array()
        self._S_synced, self._H_synced = self._copy(self.S), self._copy(self.H)
        self._dirty = None
        self.t = 0
        self.round_trips, self._last_end = 0, None
        self.active = np.ones(self.K, dtype=bool)
        self._evaluate_current()
        for k in range(self.K):
            problem = self._check_state(self._xs[k], self._ys[k], 0)
            if problem:
                raise ValueError(f"grid: the initial state does not fit: {problem}")

    def _grid_array(self):
        """The landscape and histogram: numpy for the cpp backend, float64 tensors on the model's
        device otherwise (the path a GPU takes; on the CPU it runs with backend="torch")."""
        if self.backend == "cpp":
            return np.zeros(self.grid.shape)
        return torch.zeros(self.grid.shape, dtype=torch.float64, device=self.device)

    def _points(self, a):
        """Host float64 values as the landscape kernels of this backend take them."""
        a = np.ascontiguousarray(a, dtype=np.float64)
        return a if self.backend == "cpp" else torch.as_tensor(a, device=self.device)

    @staticmethod
    def _host(a):
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

    @staticmethod
    def _copy(a):
        return a.clone() if isinstance(a, torch.Tensor) else a.copy()

    # -- set-up -------------------------------------------------------------------------------
    def _stack(self, params, bound):
        K = self.K
        self._shapes = [tuple(p.shape) for p in params]
        sizes = [p.numel() for p in params]
        self._offsets = np.cumsum([0] + sizes)
        P = self.n_params = int(self._offsets[-1])
        flat = torch.cat([p.detach().reshape(-1) for p in params]).to(self.dtype)
        if isinstance(bound, str):
            if bound != "paper":
                raise ValueError(f"bound: expected 'paper' or a number, got {bound!r}")
            b1 = torch.cat([torch.full((n,), box, dtype=self.dtype)
                            for box, n in zip(paper_bounds(self.model, params), sizes)])
            self.bound = b1.repeat(K).to(self.device)
            limit = b1.to(self.device)
        else:
            self.bound = C.positive(bound, "bound", allow_inf=True)
            limit = torch.full((P,), self.bound, dtype=self.dtype, device=self.device)
        flat = flat.to(self.device)
        if bool((flat.abs() > limit).any()):
            warnings.warn(f"{int((flat.abs() > limit).sum())} initial parameters lie outside their box; clamped "
                          "into it", stacklevel=3)
            flat = torch.minimum(torch.maximum(flat, -limit), limit)
        # theta is (K, P) and requires grad: the walkers' forward passes read it through vmap and one
        # backward fills self.grad (its .grad)
        self.theta = flat.repeat(K, 1).contiguous().requires_grad_(True)
        self.grad = torch.zeros_like(self.theta, requires_grad=False)
        self.theta.grad = self.grad
        self.zeros = torch.zeros(K * P, dtype=self.dtype, device=self.device)
        xi = kernels.normal(self._noise_seed, _INIT_STEP, K * P, backend="torch",
                            dtype=str(self.dtype).replace("torch.", ""))
        self.v = (math.sqrt(self.kT) * xi).to(self.device).reshape(K, P)
        self._good_theta = self.theta.detach().clone()
        self._good_v = self.v.clone()
        th = self.theta.detach().reshape(-1)
        if self.backend == "cpp":
            b = self.bound if isinstance(self.bound, float) else self.bound.numpy()
            self._view = (th.numpy(), self.v.reshape(-1).numpy(), self.grad.reshape(-1).numpy(),
                          self.zeros.numpy(), b)
        else:
            self._view = (th, self.v.reshape(-1), self.grad.reshape(-1), self.zeros, self.bound)
        from torch.func import functional_call, vmap

        model, names, shapes, offs = self.model, self._names, self._shapes, self._offsets

        def cvs_one(flat_params):
            p = {n: flat_params[offs[i]:offs[i + 1]].reshape(shapes[i]) for i, n in enumerate(names)}
            out_tr = functional_call(model, p, (self.X_tr,))
            out_te = functional_call(model, p, (self.X_te,))
            return self._cv_from_outputs(out_tr, out_te)

        self._cvs_batched = vmap(cvs_one)

    def _cv_from_outputs(self, out_tr, out_te):
        x = torch.log(self._loss(out_tr, self.y_tr))
        if self.cv_y == "test_loss":
            y = torch.log(self._loss(out_te, self.y_te))
            return x, y, torch.zeros_like(x)
        if out_te.dim() == 1 or out_te.shape[-1] == 1:
            z = out_te.reshape(-1)
            delta = torch.where(self.y_te.reshape(-1) > 0, z, -z)
        else:
            correct = out_te.gather(1, self.y_te.reshape(-1, 1)).squeeze(1)
            masked = out_te.scatter(1, self.y_te.reshape(-1, 1), float("-inf"))
            delta = correct - masked.amax(dim=1)
        A_s = torch.sigmoid(self.alpha * delta).mean()
        hard = (delta > 0).to(A_s.dtype).mean()
        if self.logit_y:
            p = _EPS + (1 - 2 * _EPS) * A_s
            return x, torch.log(p) - torch.log1p(-p), hard - A_s
        return x, A_s, hard - A_s

    # -- the step -----------------------------------------------------------------------------
    def _evaluate_current(self):
        with torch.enable_grad():
            self._x, self._y, self._smooth_errs = self._cvs_batched(self.theta)
        self._xs = self._x.detach().cpu().numpy().astype(float)
        self._ys = self._y.detach().cpu().numpy().astype(float)
        k = int(np.argmax(self.active)) if self.active.any() else 0
        self._xv, self._yv = float(self._xs[k]), float(self._ys[k])
        self._smooth_err = self._smooth_errs[k].detach()

    def _wall_forces(self, xs, ys):
        w, c = self.walls, self.wall_c
        gx, gy = np.zeros_like(xs), np.zeros_like(ys)
        if "x_max" in w:
            gx += np.where(xs > w["x_max"], 2 * c * (xs - w["x_max"]), 0.0)
        if "x_min" in w:
            gx += np.where(xs < w["x_min"], 2 * c * (xs - w["x_min"]), 0.0)
        if "y_max" in w:
            gy += np.where(ys > w["y_max"], 2 * c * (ys - w["y_max"]), 0.0)
        if "y_min" in w:
            gy += np.where(ys < w["y_min"], 2 * c * (ys - w["y_min"]), 0.0)
        return gx, gy

    def _step(self, failure_path):
        act = self.active
        xs, ys = self._xs, self._ys
        gx, gy = kernels.gradient(self.S, self.grid, self._points(np.where(act, xs, self.grid.x_min)),
                                  self._points(np.where(act, ys, self.grid.y_min)), backend=self.backend)
        gx, gy = self._host(gx), self._host(gy)
        wx, wy = self._wall_forces(xs, ys)
        scale = grad_scale(self.integrator, self.t == 0)
        sx = np.where(act, (np.asarray(gx) + wx) * scale, 0.0)
        sy = np.where(act, (np.asarray(gy) + wy) * scale, 0.0)
        self.grad.zero_()
        torch.autograd.backward((self._x, self._y), (torch.as_tensor(sx, dtype=self.dtype, device=self.device),
                                                     torch.as_tensor(sy, dtype=self.dtype, device=self.device)))
        th, v, g, z, b = self._view
        with torch.no_grad():
            INTEGRATORS[self.integrator](th, v, g, z, b, self.dt, self.gamma, self.kT, self._noise_seed, self.t,
                                         self.t == 0, self._kernels)
            if not act.all():  # dropped walkers stay where they were
                frozen = torch.as_tensor(~act, device=self.device)
                self.theta[frozen] = self._good_theta[frozen]
                self.v[frozen] = 0.0
        x_prev, y_prev = xs.copy(), ys.copy()
        self._evaluate_current()
        g_ = self.grid
        ok = (np.isfinite(self._xs) & np.isfinite(self._ys) & (self._xs >= g_.x_min) & (self._xs <= g_.x_max)
              & (self._ys >= g_.y_min) & (self._ys <= g_.y_max))
        bad = act & ~ok
        if bad.any():
            for k in np.nonzero(bad)[0]:
                warnings.warn(f"walker {k} (rank {self.rank}) dropped at step {self.t + 1}: "
                              f"{self._check_state(self._xs[k], self._ys[k], self.t + 1)}; its last hill is "
                              "discarded", WalkerDropped, stacklevel=4)
            act = self.active = act & ~bad
            with torch.no_grad():
                frozen = torch.as_tensor(bad, device=self.device)
                self.theta[frozen] = self._good_theta[frozen]
                self.v[frozen] = 0.0
            self._evaluate_current()
            if not act.any():
                path = failure_path or os.path.join(os.getcwd(), "wlmd-last-good.npz")
                self.save(path)
                raise WLMDError(f"WLMD stopped: every walker was dropped by step {self.t + 1}; the last good state "
                                f"was written to {path}", self.t + 1, path)
        with torch.no_grad():
            keep = torch.as_tensor(act, device=self.device)
            self._good_theta[keep] = self.theta.detach()[keep]
            self._good_v[keep] = self.v[keep]
        n = int(act.sum())
        kernels.deposit(self.S, g_, self._points(x_prev[act]), self._points(y_prev[act]),
                        self._points(np.full(n, self.f())), self.sigma, self.cutoff, backend=self.backend)
        i = np.minimum(((x_prev[act] - g_.x_min) / g_.dx).astype(np.int64), g_.nx - 1)
        j = np.minimum(((y_prev[act] - g_.y_min) / g_.dy).astype(np.int64), g_.ny - 1)
        if isinstance(self.H, torch.Tensor):
            self.H.index_put_((torch.as_tensor(i, device=self.device), torch.as_tensor(j, device=self.device)),
                              torch.ones(n, dtype=torch.float64, device=self.device), accumulate=True)
        else:
            np.add.at(self.H, (i, j), 1.0)
        if self.distributed:
            self._mark_dirty(i, j)
        self._track_round_trips(float(x_prev[act][0]))
        self.t += 1
        if self.distributed and self.t % self.share_every == 0:
            self.share()

    def _mark_dirty(self, i, j):
        """Grow the box of cells changed since the last sync by hills centred at cells (i, j)."""
        if i.size == 0:
            return
        g = self.grid
        ri, rj = int(math.ceil(self.cutoff / g.dx)) + 1, int(math.ceil(self.cutoff / g.dy)) + 1
        box = (max(int(i.min()) - ri, 0), min(int(i.max()) + ri + 1, g.nx),
               max(int(j.min()) - rj, 0), min(int(j.max()) + rj + 1, g.ny))
        d = self._dirty
        self._dirty = box if d is None else (min(d[0], box[0]), max(d[1], box[1]), min(d[2], box[2]),
                                             max(d[3], box[3]))

    def share(self):
        """All-reduce the landscape and histogram increments since the last sync over the ranks; all
        ranks then hold the same S and H. Only the union of the ranks' boxes of changed cells travels.
        A collective that times out (a rank died) raises :class:`RuntimeError` naming the step."""
        if not self.distributed:
            return
        import torch.distributed as dist

        g = self.grid
        d = self._dirty or (g.nx, 0, g.ny, 0)  # an empty box
        try:
            box = torch.tensor([-d[0], d[1], -d[2], d[3]], dtype=torch.int64)
            dist.all_reduce(box, op=dist.ReduceOp.MAX)
            i0, i1, j0, j1 = -int(box[0]), int(box[1]), -int(box[2]), int(box[3])
            if i1 > i0 and j1 > j0:
                sl = (slice(i0, i1), slice(j0, j1))
                if isinstance(self.S, torch.Tensor):  # stays on the device (NCCL on GPUs)
                    inc = torch.stack([self.S[sl] - self._S_synced[sl], self.H[sl] - self._H_synced[sl]])
                else:
                    inc = torch.from_numpy(np.stack([self.S[sl] - self._S_synced[sl],
                                                     self.H[sl] - self._H_synced[sl]]))
                dist.all_reduce(inc, op=dist.ReduceOp.SUM)
                total = inc if isinstance(self.S, torch.Tensor) else inc.numpy()
                self.S[sl] = self._S_synced[sl] + total[0]
                self.H[sl] = self._H_synced[sl] + total[1]
                self._S_synced[sl] = self.S[sl]
                self._H_synced[sl] = self.H[sl]
        except RuntimeError as e:
            raise RuntimeError(f"distributed: the landscape all-reduce at step {self.t} failed on rank {self.rank} "
                               f"(another rank died or timed out): {e}") from None
        self._dirty = None

    def run(self, n_steps: int, callback=None, every: int = 1000, checkpoint=None) -> None:
        """Run ``n_steps`` steps of every walker (see :meth:`WLMD.run`): ``n_steps *
        deposits_per_step`` walker-steps in all, which advance Eq. 4's clock by as much. Distributed
        runs end with a sync, so that a run of a multiple of nothing still leaves the ranks in
        agreement."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
            raise ValueError(f"n_steps: expected an integer >= 0, got {n_steps!r}")
        t0 = time.perf_counter()
        for k in range(int(n_steps)):
            self._step(checkpoint)
            if callback is not None and (k + 1) % every == 0:
                callback(self.info(time.perf_counter() - t0))
        if self.distributed and self.t % self.share_every:
            self.share()

    # -- results and checkpoints ------------------------------------------------------------------
    def info(self, seconds=0.0) -> WLMDInfo:
        H = self._host(self.H)
        visited = H > 0
        flat = float(H[visited].min() / H[visited].mean()) if visited.any() else 0.0
        err = float(self._smooth_errs.detach().abs().max()) if self.cv_y != "test_loss" else 0.0
        return WLMDInfo(step=self.t, x=self._xv, y=self._yv, f=self.f(),
                        kinetic_temperature=float((self.v[torch.as_tensor(self.active)] ** 2).mean()),
                        smoothing_error=err, flatness=flat, visited=int(visited.sum()),
                        round_trips=self.round_trips, seconds=seconds)

    @property
    def deposits_per_step(self) -> int:
        """Walkers in the whole job (every rank's): the hills one step deposits, and the factor
        between a walker's steps and the schedule's clock."""
        return self.K * self.world

    def f(self, t=None) -> float:
        """The hill height of step t (default: the next step). Eq. 4's clock counts deposits (walker-
        steps over every walker of every rank): step t's hills are deposits (t - 1) K_total + 1 ...
        t K_total and all get f at the first of them, so that K walkers deposit in a step what one
        walker deposits in K steps, and t1, t2, t3 mean the same budget whatever K (the rule of
        entropyeng.wlmc's docstring)."""
        t = self.t + 1 if t is None else t
        return f_schedule((t - 1) * self.deposits_per_step + 1, **self.schedule)

    @property
    def landscape(self) -> Landscape:
        L = super().landscape
        L.meta.update(walkers=self.K, world_size=self.world, active=int(self.active.sum()),
                      walker_steps=self.t * self.deposits_per_step, schedule_clock="walker-steps")
        return L

    def _gather(self, a: torch.Tensor) -> np.ndarray:
        """Every rank's (K, P) array, stacked (world, K, P) (a collective: all ranks call it)."""
        if not self.distributed:
            return a.detach().cpu().numpy()[None].copy()
        import torch.distributed as dist

        parts = [torch.empty_like(a) for _ in range(self.world)]
        dist.all_gather(parts, a.detach().contiguous())
        return torch.stack(parts).cpu().numpy()

    def save(self, path) -> None:
        """Checkpoint every walker of every rank (a collective when distributed; rank 0 writes)."""
        theta, v = self._gather(self._good_theta), self._gather(self._good_v)
        active = self._gather(torch.as_tensor(self.active).to(torch.float64).reshape(1, -1))
        if self.rank != 0:
            return
        meta = dict(kind="wlmd-walkers-checkpoint", t=self.t, round_trips=self.round_trips, last_end=self._last_end,
                    walkers=self.K, world_size=self.world, config=self._config())
        save_npz_atomic(path, dict(theta=theta, v=v, active=active, S=self._host(self.S), H=self._host(self.H)),
                        dict(meta, **getattr(self, "run_meta", {})))

    def load_checkpoint(self, path) -> None:
        """Continue from :meth:`save` (same walkers per rank and world size)."""
        arrays, meta = load_npz(path, "wlmd-walkers-checkpoint")
        if int(meta["walkers"]) != self.K or int(meta["world_size"]) != self.world:
            raise ValueError(f"state: the checkpoint has {meta['walkers']} walkers on {meta['world_size']} ranks, "
                             f"this run {self.K} on {self.world}")
        if int(meta["config"]["n_params"]) != self.n_params:
            raise ValueError("state: the checkpoint's model has a different number of parameters")
        with torch.no_grad():
            self.theta.copy_(torch.as_tensor(arrays["theta"][self.rank]))
            self.v.copy_(torch.as_tensor(arrays["v"][self.rank]))
            self._good_theta.copy_(self.theta.detach())
            self._good_v.copy_(self.v)
        self.active = arrays["active"][self.rank].reshape(-1) > 0
        for a, key in ((self.S, "S"), (self.H, "H"), (self._S_synced, "S"), (self._H_synced, "H")):
            if isinstance(a, torch.Tensor):
                a.copy_(torch.as_tensor(arrays[key]))
            else:
                a[...] = arrays[key]
        self.t = int(meta["t"])
        self.round_trips, self._last_end = int(meta["round_trips"]), meta["last_end"]
        self._evaluate_current()

    def state_dict(self):
        raise NotImplementedError("WalkersWLMD: use save() / load_checkpoint()")
