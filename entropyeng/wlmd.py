"""Wang-Landau molecular dynamics for any torch model (the paper's Methods, Eq. 2-4).

All parameters move together under Langevin dynamics in the bias potential V(theta) = S(x, y) plus
fixed quadratic walls, with x = ln(train loss) and y = ln(test loss) or the smoothed test accuracy;
every step deposits a Gaussian hill of height f(t) on the S grid at (x, y).

One class runs one walker or K walkers sharing the landscape, in one process or over the ranks of a
``torch.distributed`` job (multiple-walker metadynamics; Raiteri, Laio, Gervasio, Micheletti and
Parrinello, J. Phys. Chem. B 110, 3533 (2006)). The walkers' parameters live in one (K, P) buffer
(walker 0's row holds the model's parameters as views); the step is one function of tensors for all
K walkers (:mod:`entropyeng.wlmd_step`: the K models batched with ``vmap``, the K hills in one
kernel call, the K * P parameters in one Langevin call), run and compiled by
:mod:`entropyeng.wlmd_function`. One walker in one process may also take the per-step path of
:mod:`entropyeng.wlmd_per_step`. Checkpoints: :mod:`entropyeng.wlmd_state`; ranks:
:mod:`entropyeng.wlmd_ranks`.

The schedule's clock counts walker-steps: K walkers over R ranks deposit K R hills per step, step
t's hills are deposits (t - 1) K R + 1 ... t K R of Eq. 4 and all get f of the first of them, so
t1, t2, t3 mean the same budget whatever K and R.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from . import _checks as C
from . import backends, kernels
from .grid import Grid
from .integrators import INTEGRATORS
from .landscape import Landscape
from .wlmd_common import (_EPS, _INIT_STEP, _NORMS, NORM_BOUND, WalkerDropped, WLMDError, WLMDInfo,  # noqa: F401
                          f_schedule, paper_bounds, torch_threads)
from .wlmd_function import StepFunctionMixin
from .wlmd_per_step import PerStepMixin
from .wlmd_ranks import RANK_STRIDE, LandscapeShare, init_distributed
from .wlmd_state import CheckpointMixin

__all__ = ["WLMD", "WLMDError", "WLMDInfo", "WalkerDropped", "f_schedule", "paper_bounds"]

_ENDS = {-1: None, 0: "low", 1: "high"}
MAX_WALKERS = 65536  # walkers per process


def default_threads(n_params: int, n_rows: int, walkers: int, processes: int = 1):
    """The intra-op threads a WLMD run takes by default: 1, or None (torch's own setting).

    Measured on 2 cores, spiral regression W = 30 (1,051 parameters, 500 rows), float32 compiled,
    walker-steps/s on 2 threads against 1: K = 1 slower (the threads only synchronise a small
    model's products), K = 2 1.15x, K = 4 1.41x, K = 16 1.70x (batched MLP; 1.61x and 1.72x at
    K = 4 and 16 through functional_call), K = 64 1.6x. Several processes (``distributed``) share
    the cores already: each keeps one thread up to 2e7 parameters x rows x walkers, as one walker."""
    work = n_params * n_rows * walkers
    if walkers > 1 and processes == 1:
        return 1 if work <= 1e6 else None
    return 1 if work <= 2e7 else None


class WLMD(StepFunctionMixin, PerStepMixin, CheckpointMixin):
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
        Kernel backend of the per-step path (default: the fastest for the model's device); the step
        function's operators (:mod:`entropyeng.ops`) dispatch on the tensors' device themselves.
    integrator : {"paper", "baoab"}
        "paper": the paper's kick, friction and noise, drift in one kernel call. It damps the kick
        in its own step, so at friction ``gamma`` per step it samples configurations at
        :attr:`config_temperature` = kT (2 - gamma) / (2 (1 - gamma)) however small dt is, and the
        landscape comes out in those units (+5.6 % at gamma = 0.1, +0.5 % at 0.01; exact for a
        harmonic well, tested). "baoab" (Leimkuhler-Matthews) samples at kT.
    walkers : int
        K walkers in this process, sharing the landscape. They start from the model's parameters
        with independent velocities and noise and each deposits a hill every step (``steps`` of
        ``run`` are steps of every walker: K walker-steps each). A walker whose loss turns
        non-finite or that leaves the grid is dropped with a :class:`WalkerDropped` warning (back at
        its last checked state, it deposits no more hills); :class:`WLMDError` when none is left.
        With K > 1 the step is always the step function (``compile=False`` means it uncompiled).
    distributed : bool
        Share the landscape with the other ranks of the ``torch.distributed`` job (joined from the
        ``torchrun`` environment if needed; gloo on CPU, NCCL on GPUs): the ranks all-reduce their
        landscape increments every ``sync_every`` steps; their noise seeds are made distinct.
    timeout_s : float
        How long a collective waits for a rank before raising (distributed only).
    sync_every : int, optional
        Steps between host reads (and, distributed, all-reduces of the landscape). With the per-step
        path (``compile=False``, one walker): 1 (the default on CPU) checks every step
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
        torch's intra-op threads during ``run`` (restored after). Default (:func:`default_threads`):
        one walker of a small model (parameters x data rows <= 2e7) on one thread, where more only
        add synchronisation (spiral regression W = 30 ran 2,000 steps in 41.8 s with torch's default
        and 4.6 s with one thread on a shared 2-core machine); many walkers in one process, whose
        models the threads split between them, on torch's own setting unless all of them together
        are tiny (parameters x rows x walkers <= 1e6); in a distributed run each process as one
        walker; larger models on torch's own setting.
    """

    #: How the step function runs the model: "auto" (an MLP or a small CNN on the CPU through the C++
    #: batched operators, ``entropyeng::mlp_batch`` / ``net_batch``, when the operator library is
    #: loaded; any other model through ``torch.func.functional_call``) or "torch" (always
    #: ``functional_call``). Set it before the first ``run``; ``model_path`` says which the step uses
    #: once built ("mlp_batch", "net_batch" or "functional_call").
    model_kernel = "auto"
    model_path = None
    #: Steps per CUDA graph on a CUDA device (:mod:`entropyeng.wlmd_graph`): between two host reads
    #: the step function's steps are replayed in captured graphs of ``min(sync_every, graph_steps)``
    #: steps, so that a step costs its kernels' device time (no Python or kernel launch from the host
    #: per step); the first run of that many steps captures it (``graph_info``: steps and seconds).
    #: 0 turns the graphs off. No graphs on the CPU, nor on the per-step path (``compile=False``).
    graph_steps = 100
    graph_info = None
    _graph_capture = None  # the tests' CPU stand-in for the CUDA capture (entropyeng.wlmd_graph)

    def __init__(self, model, train, test, *, loss, cv_y="test_loss", alpha=5.0, logit_y=None, grid, sigma,
                 cutoff, walls=None, wall_c=3000.0, schedule, dt, gamma, kT=1.0, bound="paper", seed=0,
                 backend=None, integrator="paper", sync_every=None, walkers=1, distributed=False, timeout_s=120.0,
                 compile="auto", threads=None, compile_min_steps=2000):
        if isinstance(walkers, bool) or not isinstance(walkers, (int, np.integer)) or not 1 <= walkers <= MAX_WALKERS:
            raise ValueError(f"walkers: expected an integer in [1, {MAX_WALKERS}], got {walkers!r}")
        if not isinstance(distributed, bool):
            raise TypeError(f"distributed: expected True or False, got {distributed!r}")
        self.K, self.distributed = int(walkers), distributed
        timeout_s = C.positive(timeout_s, "timeout_s")
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
        if self.gamma == 1 and integrator == "paper":
            raise ValueError("gamma: 1 with integrator 'paper' resamples the velocity after the kick, so the "
                             "landscape's force never acts (use gamma < 1, or integrator='baoab')")
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
        if not (isinstance(compile, bool) or (isinstance(compile, str) and compile in ("auto", "eager"))):
            # (1 == True: an int would pass an `in` test and then fail `compile is True` later)
            raise ValueError(f"compile: expected 'auto', True, 'eager' or False, got {compile!r}")
        self.compile = compile
        self.compile_min_steps = C.counter(compile_min_steps, "compile_min_steps")
        self.compile_info = None
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or not 1 <= threads <= 4096):
            raise ValueError(f"threads: expected an integer in [1, 4096], got {threads!r}")
        self._threads_arg = threads
        if sync_every is None:
            if not self._uses_step_function():
                sync_every = 1000 if self.device.type == "cuda" else 1
            else:
                sync_every = 1000 if self.device.type == "cuda" else 100
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ValueError(f"sync_every: expected an integer >= 1, got {sync_every!r}")
        self.sync_every = sync_every
        if isinstance(bound, str) and bound != "paper":
            raise ValueError(f"bound: expected 'paper' or a number, got {bound!r}")
        # join the job only once the arguments are known to be good: a rank that fails alone before
        # its first collective would leave the others waiting for it until the timeout
        self.rank, self.world = init_distributed(timeout_s=timeout_s) if distributed else (0, 1)
        self._noise_seed = (self.seed + self.rank * RANK_STRIDE) % 2**64
        self._flatten(params, bound)
        self.S = self._grid_array()
        self.H = self._grid_array()
        self._share = LandscapeShare(torch.as_tensor(self.S), torch.as_tensor(self.H)) if distributed else None
        self.t = 0
        self.active = np.ones(self.K, dtype=bool)
        self._trips = np.zeros(self.K, dtype=np.int64)  # round trips of each walker
        self._ends = np.full(self.K, -1, dtype=np.int64)  # the end each walker touched last: -1, 0 low, 1 high
        self._evaluate_current()
        for k in range(self.K):
            problem = self._check_state(self._xs[k], self._ys[k], 0)
            if problem:
                raise ValueError(f"grid: the initial state does not fit: {problem}")
        n_rows = int(self.X_tr.shape[0]) + int(self.X_te.shape[0])
        self.threads = threads if threads is not None else default_threads(self.n_params, n_rows, self.K, self.world)
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
        """One (K, P) buffer for the walkers' parameters and one for their velocities; walker 0's row
        holds the model's parameters (each a view into it, its .grad a view into one flat gradient
        buffer of the per-step path)."""
        n = sum(p.numel() for p in params)
        self.n_params, K = n, self.K
        self._names = [name for name, p in self.model.named_parameters() if p.requires_grad]
        self._shapes = [tuple(p.shape) for p in params]
        self._sizes = [p.numel() for p in params]
        self._theta_kp = torch.empty(K, n, dtype=self.dtype, device=self.device)
        row = self._theta_kp[0]
        self.grad = torch.zeros(n, dtype=self.dtype, device=self.device)
        self.zeros = torch.zeros(n, dtype=self.dtype, device=self.device)
        b = torch.empty(n, dtype=self.dtype, device=self.device) if isinstance(bound, str) else \
            C.positive(bound, "bound", allow_inf=True)
        off = 0
        boxes = paper_bounds(self.model, params)
        with torch.no_grad():
            for p, box in zip(params, boxes):
                k = p.numel()
                row[off:off + k] = p.reshape(-1)
                if isinstance(b, torch.Tensor):
                    b[off:off + k] = box
                p.data = row[off:off + k].view_as(p)
                p.grad = self.grad[off:off + k].view_as(p)
                off += k
        self.bound = b
        limit = b if isinstance(b, torch.Tensor) else torch.full_like(row, b)
        outside = (row.abs() > limit)
        if bool(outside.any()):
            warnings.warn(f"{int(outside.sum())} initial parameters lie outside their box; clamped into it",
                          stacklevel=3)
            with torch.no_grad():
                torch.clamp_(row, -limit, limit)
        with torch.no_grad():
            self._theta_kp[1:] = row
        # velocities from N(0, kT), drawn from the counter-based stream at a reserved step
        xi = kernels.normal(self._noise_seed, _INIT_STEP, K * n, backend="torch",
                            dtype=str(self.dtype).replace("torch.", ""))
        self._v_kp = (math.sqrt(self.kT) * xi).to(self.device).reshape(K, n)
        self.theta = row if K == 1 else self._theta_kp
        self.v = self._v_kp[0] if K == 1 else self._v_kp
        self._view = self._views()
        # buffers of the per-step path: the previous state (restored on failure) and the backward seeds
        self._theta0, self._v0 = torch.empty_like(row), torch.empty_like(row)
        self._seed_x = torch.zeros((), dtype=self.dtype, device=self.device)
        self._seed_y = torch.zeros((), dtype=self.dtype, device=self.device)

    def _views(self):
        """(theta, v, grad, zeros, bound) of walker 0 as the kernel backend takes them (zero copy)."""
        th, v = self._theta_kp[0], self._v_kp[0]
        if self.backend == "cpp":
            b = self.bound if isinstance(self.bound, float) else self.bound.numpy()
            return th.numpy(), v.numpy(), self.grad.numpy(), self.zeros.numpy(), b
        return th, v, self.grad, self.zeros, self.bound

    def _grid_array(self):
        if self.backend == "cuda" or self.sync_every > 1 or self.distributed:
            return torch.zeros(self.grid.shape, dtype=torch.float64, device=self.device)
        return np.zeros(self.grid.shape)

    # -- collective variables -----------------------------------------------------------------
    def _cvs_batched(self, theta_kp):
        """(x, y, hard - smoothed accuracy) of every row of ``theta_kp`` as (K,) tensors."""
        from torch.func import vmap

        def one(row):
            pieces = torch.split(row, self._sizes)
            x, y, err = self._cvs({n: t.view(s) for n, t, s in zip(self._names, pieces, self._shapes)})
            return x, y, torch.zeros_like(x) if err is None else err

        return vmap(one)(theta_kp)

    def _cvs(self, params=None):
        """(x, y) as 0-d tensors with their graph, and hard - smoothed test accuracy (or None), of the
        model (default) or of the model with ``params``."""
        if params is None:
            out_tr, out_te = self.model(self.X_tr), self.model(self.X_te)
        else:
            out_tr = functional_call(self.model, params, (self.X_tr,))
            out_te = functional_call(self.model, params, (self.X_te,))
        return self._cvs_of_outputs(out_tr, out_te)

    def _cvs_of_outputs(self, out_tr, out_te):
        """:meth:`_cvs` from the model's outputs on the train and test rows."""
        x = torch.log(self._loss(out_tr, self.y_tr))
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

    def _evaluate_current(self, graph=None):
        """(x, y) of every walker (``_xs``, ``_ys``) and of the first active one (``_xv``, ``_yv``).
        One walker: with the autograd graph that the per-step path's next backward uses (``graph``
        True; the default unless the step function runs the model through a batched operator, whose
        one-walker forward then evaluates it: 1.8 ms for the MNIST CNN against 17-20 ms for the torch
        model with its graph; the per-step path asks for the graph again if it finds none)."""
        fn = getattr(self, "_fn", None)
        outputs = fn.get("outputs") if fn is not None and self.step_form in ("compiled", "eager") else None
        if self.K == 1:
            if outputs is not None and not graph:
                with torch.no_grad():
                    self._x, self._y, self._smooth_err = self._cvs_of_outputs(*outputs(self._theta_kp))
            else:
                with torch.enable_grad():
                    self._x, self._y, self._smooth_err = self._cvs()
            self._xv, self._yv = self._x.item(), self._y.item()
            self._xs, self._ys = np.array([self._xv]), np.array([self._yv])
            self._errs = np.array([0.0 if self._smooth_err is None else float(self._smooth_err.detach())])
        else:  # every walker at once (vmap over the rows of the (K, P) buffer)
            with torch.no_grad():
                x, y, err = self._cvs_batched(self._theta_kp)
            self._xs = x.double().cpu().numpy()
            self._ys = y.double().cpu().numpy()
            self._errs = err.double().cpu().numpy()
            k = int(np.argmax(self.active)) if self.active.any() else 0
            self._xv, self._yv = float(self._xs[k]), float(self._ys[k])
        self._snapshot = None

    def _check_state(self, xv, yv, step):
        if not (math.isfinite(xv) and math.isfinite(yv)):
            return f"the loss is not finite at step {step} (x = {xv}, y = {yv})"
        g = self.grid
        if not (g.x_min <= xv <= g.x_max and g.y_min <= yv <= g.y_max):
            return f"the walker left the grid at step {step} (x = {xv:.6g}, y = {yv:.6g}; grid {self.grid})"
        return None

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

    # -- the schedule ---------------------------------------------------------------------------
    @property
    def deposits_per_step(self) -> int:
        """Walkers in the whole job (every rank's): the hills one step deposits, and the factor
        between a walker's steps and the schedule's clock."""
        return self.K * self.world

    def f(self, t=None) -> float:
        """The hill height of step t (default: the next step): Eq. 4 at deposit (t - 1) K R + 1, the
        first of the step's K R hills (K walkers on each of R ranks; one walker: f(t) of Eq. 4)."""
        t = self.t + 1 if t is None else t
        return f_schedule((t - 1) * self.deposits_per_step + 1, **self.schedule)

    @property
    def config_temperature(self) -> float:
        """The temperature at which the integrator samples configurations (small dt, friction
        ``gamma`` per step): kT (2 - gamma) / (2 (1 - gamma)) for the paper's scheme, kT for BAOAB.
        The learned landscape estimates config_temperature / kT times the entropy (divide by that
        ratio to compare with an exact entropy)."""
        if self.integrator == "paper":
            return self.kT * (2.0 - self.gamma) / (2.0 * (1.0 - self.gamma))
        return self.kT

    @property
    def round_trips(self) -> int:
        """Round trips in x between the lowest and the highest tenth of the walled range, summed over
        this process's walkers (a diagnostic of the sampling)."""
        return int(self._trips.sum())

    @property
    def _last_end(self):
        return _ENDS[int(self._ends[0])]

    # -- running --------------------------------------------------------------------------------
    def run(self, n_steps: int, callback=None, every: int = 1000, checkpoint=None) -> None:
        """Run ``n_steps`` steps of every walker (``n_steps * deposits_per_step`` walker-steps, which
        advance Eq. 4's clock by as much). ``callback(WLMDInfo)`` every ``every`` steps. If the loss
        of the only walker (or of every walker) turns non-finite or leaves the grid, the last good
        state is saved to ``checkpoint`` (default ./wlmd-last-good.npz) and :class:`WLMDError` says
        at which step. Distributed runs end with a sync of the landscape."""
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
        """Whether runs go through the step function (entropyeng.wlmd_function): always for many
        walkers or ranks, else unless compile=False."""
        return self.compile is not False or self.K > 1 or self.distributed

    def share(self) -> None:
        """All-reduce the landscape and histogram increments since the last sync over the ranks (a
        collective; ``run`` calls it every ``sync_every`` steps and at its end)."""
        if self._share is not None:
            self._share(self.rank, self.t)

    # -- diagnostics and results ----------------------------------------------------------------
    def info(self, seconds=0.0) -> WLMDInfo:
        H = np.asarray(self.H.cpu() if isinstance(self.H, torch.Tensor) else self.H)
        visited = H > 0
        flat = float(H[visited].min() / H[visited].mean()) if visited.any() else 0.0
        act = self.active if self.active.any() else np.ones(self.K, dtype=bool)
        if self.K == 1:
            err = 0.0 if self._smooth_err is None else abs(float(self._smooth_err.detach()))
        else:
            err = float(np.abs(self._errs[act]).max())
        kinetic = float((self._v_kp[torch.from_numpy(act).to(self.device)] ** 2).mean())
        return WLMDInfo(step=self.t, x=self._xv, y=self._yv, f=self.f(), kinetic_temperature=kinetic,
                        smoothing_error=err, flatness=flat, visited=int(visited.sum()), round_trips=self.round_trips,
                        seconds=seconds)

    @property
    def landscape(self) -> Landscape:
        """The learned entropy (the walls are not in it), the histogram, the grid and metadata
        (``steps``: steps of each walker; ``walker_steps``: over every walker of every rank)."""
        S = self.S.cpu().numpy() if isinstance(self.S, torch.Tensor) else self.S
        H = self.H.cpu().numpy() if isinstance(self.H, torch.Tensor) else self.H
        meta = dict(sampler="WLMD", integrator=self.integrator, loss=self.loss_name, cv_y=self.cv_y,
                    logit_y=self.logit_y, schedule=self.schedule, steps=self.t, seed=self.seed, dt=self.dt,
                    gamma=self.gamma, kT=self.kT, sigma=self.sigma, cutoff=self.cutoff, walls=self.walls,
                    wall_c=self.wall_c, round_trips=self.round_trips, walkers=self.K, world_size=self.world,
                    active=int(self.active.sum()), walker_steps=self.t * self.deposits_per_step,
                    config_temperature=self.config_temperature,
                    schedule_clock="walker-steps")
        return Landscape(np.array(S), np.array(H), self.grid, meta)
