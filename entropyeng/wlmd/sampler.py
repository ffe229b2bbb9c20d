"""Wang-Landau molecular dynamics for any torch model (the paper's Methods, Eq. 2-4): the sampler.

All parameters move together under Langevin dynamics in the bias potential V(theta) = S(x, y) plus
fixed quadratic walls, with x = ln(train loss) and y = ln(test loss) or the smoothed test accuracy;
every step deposits a Gaussian hill of height f(t) on the S grid at (x, y).

One class runs one walker or K walkers sharing the landscape, in one process or over the ranks of a
``torch.distributed`` job (multiple-walker metadynamics; Raiteri, Laio, Gervasio, Micheletti and
Parrinello, J. Phys. Chem. B 110, 3533 (2006)). This class holds the configuration, runs the step
with host reads every ``sync_every`` steps, and reports; the rest of the package holds the state
(:mod:`.state`), the physics (:mod:`.physics`), the model's forward and vector-Jacobian product
(:mod:`.models`), the step (:mod:`.step`), how it is called (:mod:`.runners`, :mod:`.graph`),
checkpoints (:mod:`.checkpoint`) and ranks (:mod:`.ranks`).

The schedule's clock counts walker-steps (K walkers over R ranks deposit K R hills a step, see
:meth:`WLMD.f`), so t1, t2, t3 mean the same budget whatever K and R.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .. import _checks as C
from ..limits import MAX_STEPS
from ..grid import Grid
from ..kernels import backends
from ..landscape import Landscape
from . import checkpoint, models, native, physics, reads, setup
from .integrators import INTEGRATORS
from .protocol import WLMDProtocol
from .ranks import RANK_STRIDE, LandscapeShare, init_distributed
from .runners import Runner, build_runner, default_threads, torch_threads
from .state import WLMDInfo, new_state

__all__ = ["WLMD", "MAX_WALKERS"]

MAX_WALKERS = 65536  # walkers per process


class WLMD(WLMDProtocol):
    """Wang-Landau molecular dynamics sampler of S(ln train loss, y).

    Parameters
    ----------
    model : torch.nn.Module
        Any model with floating-point parameters (one dtype, one device); its parameters become
        views into the sampler's flat buffer.
    train, test : (X, y)
        Tensors or arrays; X is fed to ``model``; y: targets for the loss.
    loss : {"mse", "ce", "bce"} or callable
        Required (keyword). ``callable(output, target) -> scalar`` for any other loss (the torch
        step then runs; the native form needs a built-in loss).
    metric : {"loss", "accuracy"}, default "loss"
        The y axis, named as WLMC names it: y = ln(test loss), or the smoothed test accuracy of Eq. 2,
        mean of sigmoid(alpha (correct logit - highest wrong logit)) (classification only).
    cv_y : {"test_loss", "smoothed_accuracy"}, optional
        The older name of ``metric`` ("test_loss" is "loss", "smoothed_accuracy" is "accuracy"),
        accepted with a FutureWarning; :attr:`cv_y` keeps saying which.
    alpha : float
        Sharpness of the smoothed accuracy (the paper: 5).
    logit_y : bool, optional
        For the smoothed accuracy, y = logit(eps + (1 - 2 eps) A_s), eps = 1e-4, so that the walker is
        not squeezed against accuracy 1 (the default, as in the authors' scripts); False keeps A_s.
    grid : Grid, optional
        The (x, y) window and its cells; default the paper's: -20 to 20 on both axes, bins of 0.02.
    sigma, cutoff : float, optional
        Hill width and cutoff, in axis units; default the paper's 0.2 (10 bins) and 4 sigma.
    walls : dict, optional
        Any of x_min, x_max, y_min, y_max: fixed bias ``wall_c (x - x_max)^2`` beyond each (Eq. 3),
        kept apart from the learned landscape; ``wall_c`` >= 0 (default 3000, the authors' scripts).
    wall_c : float
    schedule : dict, optional
        f_max, t1, t2, t3 of Eq. 4, the hill height at deposit t (t counts walker-steps from 1):
        f(t) = f_max t / t1 for t <= t1; f_max for t1 < t <= t2; f_max (t2 - t3) / (t - t3) after t2
        (a 1/t decay; f_max = 0: no hills, a frozen landscape). Default, from ``steps``: the shape of
        the paper's spiral-regression schedule scaled to the budget: f_max = 5, t1, t2, t3 = 1, 50, 40 %
        of ``steps`` (``entropyeng.wlmd.presets.preset(name, steps=N)`` scales a paper task's the same way).
    steps : int, optional
        The run's budget in walker-steps, from which the default schedule is made (needed when
        ``schedule`` is not given).
    dt : float, default 1e-3
        Time step. The default suits small MLPs; tune it to your model (the paper's Table 6 goes
        down to 3e-6) and watch the kinetic temperature the run reports: it should stay near kT.
    gamma : float, default 0.01
        Friction per step, in [0, 1].
    kT : float, default 1.0
        Temperature (the paper: kT = 1).
    bound : "paper" or float
        Box of each parameter tensor: "paper" is 2 / sqrt(numel / in) (2/sqrt(out) for a Linear
        weight) and 2/sqrt(out) for a bias; +-2 for the gains and biases of normalisation layers
        (see :func:`paper_bounds`).
    seed : int
    integrator : {"paper", "baoab"}
        "paper": the paper's kick, friction and noise, drift in one kernel call; at friction
        ``gamma`` per step it samples configurations at :attr:`config_temperature` = kT (2 - gamma)
        / (2 (1 - gamma)) however small dt is, and the landscape comes out in those units (+5.6 %
        at gamma = 0.1, +0.5 % at 0.01). "baoab" (Leimkuhler-Matthews) samples at kT.
    walkers : int
        K walkers in this process, sharing the landscape. They start from the model's parameters
        with independent velocities and noise and each deposits a hill every step (``steps`` of
        ``run`` are steps of every walker: K walker-steps each). A walker whose loss turns
        non-finite or that leaves the grid is dropped with a :class:`WalkerDropped` warning (back at
        its last checked state, it deposits no more hills); :class:`WLMDError` when none is left.
    distributed : bool
        Share the landscape with the other ranks of the ``torch.distributed`` job (joined from the
        ``torchrun`` environment if needed; gloo on CPU, NCCL on GPUs): the ranks all-reduce their
        landscape increments every ``sync_every`` steps; their noise seeds are made distinct.
    timeout_s : float
        How long a collective waits for a rank before raising (distributed only).
    sync_every : int, optional
        Steps between host reads (default 100 on the CPU, 1000 on CUDA): the checks (a non-finite
        loss, a walker off the grid) always run on the device inside the step; the host reads the
        step counter and the failure flags every k steps (and, distributed, all-reduces the
        landscape).
    compile : {"auto", "native", True, "eager", False}
        How the step is run (:mod:`entropyeng.wlmd.runners`). ``"auto"`` (default): the native form
        (:mod:`entropyeng.wlmd.native`: the whole step in C++, many steps a call, nothing to
        compile) wherever the model fits it (an MLP or small CNN the batched C++ kernels take, on
        the CPU, with a built-in loss); for any other model the torch step
        (:mod:`entropyeng.wlmd.step`), compiled once a run of at least ``compile_min_steps`` steps
        starts (the call's steps, or ``planned_steps`` if a caller driving a long run in chunks sets
        it), eager before. ``"native"``: the native form or a ValueError naming what does not fit.
        ``True``: the torch step compiled with ``torch.compile(fullgraph=True)`` (if tracing fails,
        eagerly with one warning); ``"eager"`` or ``False``: the torch step, not compiled. The forms
        agree to rounding. A resumed run keeps the form its checkpoint records. ``step_form`` says which form
        runs, ``form_reason`` why, ``compile_info`` what compiling cost.
    compile_min_steps : int
        The shortest run ``compile="auto"`` compiles (default 2000).
    threads : int, optional
        torch's intra-op threads during ``run`` (restored after); default :func:`default_threads`
        (one thread for one walker of a small model, where more only synchronise; torch's own
        setting for many walkers or large models).
    """

    #: How the step runs the model: "auto" (an MLP or a small CNN on the CPU through the C++ batched
    #: operators, ``entropyeng::mlp_batch`` / ``net_batch``, when the operator library is loaded; any
    #: other model through ``torch.func.functional_call``) or "torch" (always ``functional_call``).
    #: Set it before the first ``run``; ``model_path`` says which the step uses once built.
    model_kernel = "auto"
    model_path = None
    #: Steps per CUDA graph on a CUDA device (:mod:`entropyeng.wlmd.graph`): between two host reads
    #: the steps are replayed in captured graphs of ``min(sync_every, graph_steps)`` steps, so that a
    #: step costs its kernels' device time; the first run of that many steps captures it
    #: (``graph_info``: steps and seconds). 0 turns the graphs off. No graphs on the CPU.
    graph_steps = 100
    _graph_capture = None  # the tests' CPU stand-in for the CUDA capture (entropyeng.wlmd.graph)
    #: compiled blocks of steps on the CPU for runs of at least this many steps (see Runner.add_block)
    BLOCK_MIN_STEPS = Runner.BLOCK_MIN_STEPS
    #: the length of the whole run, which a caller driving it in chunks may set (the form's rule reads it)
    planned_steps = 0
    _forced_form = None  # the form a checkpoint's run had (compile="auto" continues on it)

    def __init__(self, model, train, test, *, loss, metric=None, cv_y=None, alpha=5.0, logit_y=None, grid=None,
                 sigma=None, cutoff=None, walls=None, wall_c=3000.0, schedule=None, steps=None, dt=1e-3, gamma=0.01,
                 kT=1.0, bound="paper", seed=0, integrator="paper", sync_every=None, walkers=1,
                 distributed=False, timeout_s=120.0, compile="auto", threads=None, compile_min_steps=2000):
        if isinstance(walkers, bool) or not isinstance(walkers, (int, np.integer)) or not 1 <= walkers <= MAX_WALKERS:
            raise ValueError(f"walkers: expected an integer in [1, {MAX_WALKERS}], got {walkers!r}")
        if not isinstance(distributed, bool):
            raise TypeError(f"distributed: expected True or False, got {distributed!r}")
        self.K, self.distributed = int(walkers), distributed
        timeout_s = C.positive(timeout_s, "timeout_s")
        params, self.dtype, self.device = setup.check_model(model)
        self.model = model
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator: expected one of {sorted(INTEGRATORS)}, got {integrator!r}")
        self.integrator = integrator
        grid, sigma, cutoff, schedule = setup.defaults(grid, sigma, cutoff, schedule, steps)
        if not isinstance(grid, Grid):
            raise TypeError(f"grid: expected an entropyeng.Grid, got {type(grid).__name__}")
        self.grid = grid
        C.fits_in_memory(3 * 8 * grid.nx * grid.ny, f"grid: {grid.nx} x {grid.ny} cells (S, H and a copy, float64)")
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
        self.schedule = setup.check_schedule(schedule)
        self.walls = setup.check_walls(walls)
        self.wall_c = C.finite(wall_c, "wall_c")
        if self.wall_c < 0:
            raise ValueError(f"wall_c: expected a number >= 0 (a wall pushes back), got {self.wall_c}")
        self.alpha = C.positive(alpha, "alpha")
        self.loss_name, self._loss = physics.make_loss(loss)
        self.cv_y, self.logit_y = setup.check_cvs(loss, setup.cv_y_of(metric, cv_y), logit_y)
        self.metric = "accuracy" if self.cv_y == "smoothed_accuracy" else "loss"
        self.X_tr, self.y_tr = setup.check_data(train, "train", self.dtype, self.device, self.loss_name)
        self.X_te, self.y_te = setup.check_data(test, "test", self.dtype, self.device, self.loss_name)
        if self.cv_y == "smoothed_accuracy" and self.y_te.dtype.is_floating_point:
            raise ValueError("cv_y: 'smoothed_accuracy' needs class labels (an integer test target), got "
                             f"{self.y_te.dtype} targets; use metric='loss' for regression")
        # the step's operators dispatch on the tensors' device: what the model's device decides
        self.backend = backends.for_operator(torch.empty(0, device=self.device))
        self.compile, self.sync_every = setup.check_running(compile, threads, sync_every, self.device)
        self.compile_min_steps = C.counter(compile_min_steps, "compile_min_steps")
        if isinstance(bound, str) and bound != "paper":
            raise ValueError(f"bound: expected 'paper' or a number, got {bound!r}")
        # join the job only once the arguments are known to be good: a rank that fails alone before
        # its first collective would leave the others waiting for it until the timeout
        self.rank, self.world = init_distributed(self.device, timeout_s=timeout_s) if distributed else (0, 1)
        self._noise_seed = (self.seed + self.rank * RANK_STRIDE) % 2**64
        theta, v, self.bound = setup.flatten(model, params, bound, self.K, self.kT, self._noise_seed)
        self.n_params = theta.shape[1]
        self.state = new_state(theta, v, grid.shape)
        self._share = LandscapeShare(self.state.S, self.state.H) if distributed else None
        self._thermometer = reads.Thermometer(self.kT)
        self._active_seen = np.ones(self.K, dtype=bool)  # the walkers active at the last host read
        self._fns = self._fns_torch = None  # the model's functions (models.ModelFns), built when first needed
        self._runner = None
        self._native_codes, self._native_reason = native.fit(self) if compile in ("auto", "native") else (None, None)
        if compile == "native" and self._native_codes is None:
            raise ValueError(f"compile: 'native' does not fit this model: {self._native_reason}")
        try:
            reads.evaluate(self)
        except RuntimeError as e:  # the model cannot take the data (a shape, a dtype): torch's message, one line
            raise ValueError(f"model: it cannot evaluate the data (train X {tuple(self.X_tr.shape)}, test X "
                             f"{tuple(self.X_te.shape)}): {str(e).splitlines()[0][:200]}") from None
        for k in range(self.K):
            problem = reads.problem(self.grid, self._xs[k], self._ys[k], 0)
            if problem:
                raise ValueError(f"grid: the initial state does not fit: {problem}")
        n_rows = int(self.X_tr.shape[0]) + int(self.X_te.shape[0])
        self.threads = threads if threads is not None else default_threads(self.n_params, n_rows, self.K, self.world)

    # -- the state as the host sees it ------------------------------------------------------------
    @property
    def theta(self) -> torch.Tensor:
        """The walkers' parameters: (P,) for one walker (the model's parameters are views into it), (K, P)."""
        return self.state.theta[0] if self.K == 1 else self.state.theta

    @property
    def v(self) -> torch.Tensor:
        return self.state.v[0] if self.K == 1 else self.state.v

    @property
    def S(self) -> torch.Tensor:
        """The learned entropy (float64 tensor on the model's device, updated in place)."""
        return self.state.S

    @property
    def H(self) -> torch.Tensor:
        return self.state.H

    @property
    def t(self) -> int:
        """Steps taken by each walker."""
        return int(self.state.t)

    @property
    def active(self) -> np.ndarray:
        """(K,) bool: the walkers still sampling."""
        return self.state.active.cpu().numpy().copy()

    def _host_models(self) -> models.ModelFns:
        """The model's functions the host reads with: the step's once it is built, before that
        ``functional_call``'s (built once)."""
        if self._fns is not None:
            return self._fns
        if self._fns_torch is None:
            self._fns_torch = self._build_models("torch")
        return self._fns_torch

    def _models(self) -> models.ModelFns:
        """The model's functions the step runs (built once, on ``model_kernel``)."""
        if self._fns is None:
            self._fns = self._build_models(self.model_kernel)
            self.model_path = self._fns.path
        return self._fns

    def _build_models(self, kernel):
        return models.build(self.model, self._loss, self.X_tr, self.y_tr, self.X_te, self.y_te, self.cv_y, self.alpha,
                            self.logit_y, self.K, kernel, self.loss_name)

    def wall_energy(self, x, y):
        """The fixed wall bias at (x, y) (arrays allowed)."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        xy = torch.from_numpy(np.stack([x.reshape(-1), y.reshape(-1)], axis=1))
        return physics.wall_energy(xy, physics.wall_box(self.walls), self.wall_c).numpy().reshape(x.shape)

    def _wall_force(self, x, y):
        """(dV_wall/dx, dV_wall/dy) at (x, y) (floats)."""
        g = physics.wall_force(torch.tensor([[float(x), float(y)]], dtype=torch.float64),
                               physics.wall_box(self.walls), self.wall_c)[0]
        return float(g[0]), float(g[1])

    # -- the schedule ---------------------------------------------------------------------------
    def f(self, t=None) -> float:
        """The hill height of step t (default: the next step): Eq. 4 at deposit (t - 1) K R + 1, the
        first of the step's K R hills (K walkers on each of R ranks; one walker: f(t) of Eq. 4).

        Eq. 4: f(t) = f_max t / t1 for t <= t1; f_max for t1 < t <= t2; f_max (t2 - t3) / (t - t3)
        after t2 (t counts deposits from 1)."""
        t = self.t + 1 if t is None else t
        return physics.f_schedule((t - 1) * self.deposits_per_step + 1, **self.schedule)

    @property
    def config_temperature(self) -> float:
        """The temperature at which the integrator samples configurations (small dt, friction
        ``gamma`` per step): kT (2 - gamma) / (2 (1 - gamma)) for the paper's scheme, kT for BAOAB.
        The learned landscape estimates config_temperature / kT times the entropy (divide by that
        ratio to compare with an exact entropy)."""
        return physics.config_temperature(self.integrator, self.kT, self.gamma)

    @property
    def round_trips(self) -> int:
        """Round trips in x between the lowest and the highest tenth of the walled range, summed over
        this process's walkers (a diagnostic of the sampling): two passages between the ends make
        one trip, the rule of :func:`entropyeng.statistics.round_trips`."""
        return int(self.state.trips.sum())

    # -- the step and its form ------------------------------------------------------------------
    def _build(self):
        self._runner = build_runner(self, self._models())

    @property
    def step_form(self):
        """The form the steps run in: "native", "compiled" or "eager" (:mod:`entropyeng.wlmd.runners`),
        None while ``compile="auto"`` waits for a long enough run (a model without the native form)."""
        r = self._runner
        if r is None or not r.decided:
            if self.compile in (False, "eager"):
                return "eager"
            if self.compile == "native" or (self.compile == "auto" and self._native_codes is not None
                                            and self._forced_form in (None, "native")):
                return "native"
            return None
        return r.form

    @property
    def form_reason(self):
        """Why the step runs in its form (None before the first run)."""
        return None if self._runner is None else self._runner.reason

    @property
    def compile_info(self):
        """What compiling cost (form, reason, compile_seconds, compiled_step_s; or an error), None
        where nothing was compiled."""
        return None if self._runner is None else self._runner.info

    @property
    def graph_info(self):
        """The CUDA graph's steps, whether it was captured and the capture's seconds, or None."""
        return None if self._runner is None else self._runner.graph_info

    # -- running --------------------------------------------------------------------------------
    def run(self, n_steps: int, callback=None, every: int = 1000, checkpoint=None) -> None:
        """Run ``n_steps`` steps of every walker (``n_steps * deposits_per_step`` walker-steps, which
        advance Eq. 4's clock by as much). ``callback(WLMDInfo)`` every ``every`` steps. If the loss
        of the only walker (or of every walker) turns non-finite or leaves the grid, the last good
        state is saved to ``checkpoint`` (if given: the library writes no file unasked; the sampler
        holds that state either way) and :class:`WLMDError` says
        at which step. Distributed runs end with a sync of the landscape."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or not 0 <= n_steps <= MAX_STEPS:
            raise ValueError(f"n_steps: expected an integer in [0, {MAX_STEPS:.0e}], got {n_steps!r}")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every: expected an integer >= 1, got {every!r}")
        n_steps = int(n_steps)
        with torch_threads(self.threads):
            if self._runner is None:
                self._build()
            r = self._runner
            length = max(n_steps, int(self.planned_steps or 0))
            r.choose(self.compile, length, self.compile_min_steps, self._forced_form)
            r.add_block(length, self.BLOCK_MIN_STEPS)
            s = self.state
            with torch.no_grad():
                s.good_theta.copy_(s.theta)
                s.good_v.copy_(s.v)
                s.bad.fill_(-1)
            t0, done, start = time.perf_counter(), 0, self.t
            while done < n_steps:
                k = min(self.sync_every, n_steps - done, every - done % every if callback is not None else n_steps)
                with torch.no_grad():
                    r.advance(k, start + done, self.sync_every, self.graph_steps, self._graph_capture)
                done += k
                reads.host_read(self, checkpoint, last=done == n_steps)
                if callback is not None and done % every == 0:
                    callback(self.info(time.perf_counter() - t0))

    def share(self) -> None:
        """All-reduce the landscape and histogram increments since the last sync over the ranks (a
        collective; ``run`` calls it every ``sync_every`` steps and at its end)."""
        if self._share is not None:
            self._share(self.rank, self.t)

    # -- diagnostics and results ----------------------------------------------------------------
    def info(self, seconds=0.0) -> WLMDInfo:
        """Diagnostics of the state as of the last host read (what ``run``'s callback receives)."""
        return reads.info(self, seconds)

    @property
    def landscape(self) -> Landscape:
        """The learned entropy (the walls are not in it), the histogram, the grid and metadata
        (``steps``: steps of each walker; ``walker_steps``: over every walker of every rank)."""
        meta = dict(sampler="WLMD", integrator=self.integrator, loss=self.loss_name, cv_y=self.cv_y,
                    logit_y=self.logit_y, schedule=self.schedule, steps=self.t, seed=self.seed, dt=self.dt,
                    gamma=self.gamma, kT=self.kT, sigma=self.sigma, cutoff=self.cutoff, walls=self.walls,
                    wall_c=self.wall_c, round_trips=self.round_trips, walkers=self.K, world_size=self.world,
                    active=int(self.active.sum()), walker_steps=self.t * self.deposits_per_step,
                    config_temperature=self.config_temperature, schedule_clock="walker-steps")
        return Landscape(self.S.cpu().numpy().copy(), self.H.cpu().numpy().copy(), self.grid, meta)

    # -- checkpoints (entropyeng.wlmd.checkpoint) ------------------------------------------------
    def state_dict(self) -> dict:
        """Parameters, velocities (this process's walkers: (P,) for one, (K, P) for K), landscape,
        histogram, step counter, the walkers' flags and round-trip state, and the configuration."""
        return checkpoint.state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (checked whole before anything changes)."""
        checkpoint.load_state_dict(self, state)

    def save(self, path) -> None:
        """Write a self-describing .npz checkpoint atomically (distributed: a collective that gathers
        every rank's walkers; rank 0 writes)."""
        checkpoint.save(self, path)

    def load_checkpoint(self, path) -> None:
        """Continue this sampler from :meth:`save` (the same model, walkers per rank and ranks)."""
        arrays, meta = checkpoint.read(path)
        checkpoint.restore(self, arrays, meta, path)

    @classmethod
    def load(cls, path, problem=None, train=None, test=None, *, loss=None, compile="auto", threads=None,
             sync_every=None, timeout_s=120.0):
        """A sampler restored from :meth:`save`. The file holds the state and the settings, not the
        model or the data: ``problem`` supplies them (``make_model(seed)``, ``train``, ``test``, and
        ``loss`` where the run used a built-in one; :class:`entropyeng.tasks.catalog.Problem`), or
        ``problem`` is the model itself with ``train`` and ``test`` beside it. The model's
        parameters are overwritten. ``loss`` is needed when the run used a callable loss;
        ``compile``, ``threads`` and ``sync_every`` as in the constructor (with ``compile="auto"``
        the run continues on the form the file records, so that it continues bit for bit). A file of
        a distributed run is loaded by every rank of a job of the same size."""
        model, train, test, loss = checkpoint.model_and_data(problem, train, test, loss)
        return checkpoint.load_sampler(cls, path, model, train, test, loss=loss, compile=compile,
                                       threads=threads, sync_every=sync_every, timeout_s=timeout_s)
