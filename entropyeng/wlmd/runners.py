"""How the WLMD step is called: eagerly, compiled, compiled in blocks of steps, or replayed from CUDA
graphs. Runners hold no physics: the step (:mod:`entropyeng.wlmd.step`) is the same body in every
form.

The form follows a rule a user can read (:meth:`Runner.choose`):

- ``"native"``: the whole step in C++ (:mod:`entropyeng.wlmd.native`), n steps in one call, nothing
  to compile; ``compile="auto"`` (the default) takes it wherever the model fits (an MLP or a small
  CNN of the batched kernels on the CPU, a built-in loss), ``compile="native"`` insists on it;
- ``compile=False`` or ``"eager"``: the step function as Python calls it (no compilation);
- ``compile=True``: compiled with ``torch.compile(fullgraph=True)``;
- ``compile="auto"`` for any other model: compiled once a run of at least ``compile_min_steps``
  planned steps starts (the call's steps, or ``planned_steps`` of a run driven in chunks), eager before;
- a resumed run keeps the form its checkpoint records (the forms agree only to rounding);
- compiled on the CPU, runs of at least ``BLOCK_MIN_STEPS`` steps also compile ``BLOCK`` steps as
  one call when a step costs less than ``BLOCK_BELOW_S``;
- on a CUDA device, the steps between two host reads are replayed from a captured graph of
  ``min(sync_every, graph_steps)`` steps (:mod:`entropyeng.wlmd.graph`), whatever the form.

A step that cannot be traced falls back to the eager form with one warning.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings

import torch

from .. import _checks as C
from .graph import capture_steps
from .step import repeat_step

__all__ = ["Runner", "FORMS", "build_runner", "torch_threads", "default_threads"]

logging.getLogger("entropyeng").addHandler(logging.NullHandler())  # quiet unless the application configures logging
log = logging.getLogger("entropyeng.wlmd")


def _logging_configured(logger) -> bool:
    """Whether a handler other than a NullHandler would see ``logger``'s records."""
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def say(message, *args):
    """A long pause's line (compiling the step takes seconds to a minute): through logging at INFO
    where the application configured logging (the command does), else on stderr, so that a script
    that waits half a minute says why."""
    if _logging_configured(log):
        log.info(message, *args)
    else:
        print("entropyeng: " + (message % args if args else message), file=sys.stderr, flush=True)

FORMS = ("eager", "compiled", "native")


class Runner:
    """Calls ``step(*state)``: ``form`` is "eager" or "compiled" (None while ``compile="auto"`` waits
    for a long enough run), ``reason`` says why, ``block`` holds the compiled block of steps,
    ``graph`` the CUDA graph, ``info`` what compiling cost."""

    BLOCK = 4
    BLOCK_BELOW_S = 1e-3
    BLOCK_MIN_STEPS = 10**6

    def __init__(self, step, state, device, autograd=True, native=None, native_reason=None):
        self.step, self.state, self.device = step, state, device
        # the native form: native(n) runs n steps in C++; native_reason says why there is none
        self.native, self.native_reason = native, native_reason
        # an eager step that needs no autograd runs in inference mode (no version counters, no view
        # tracking: 329 against 373 us for the spiral's float64 step, measured)
        self.inference = not autograd
        self.call = step
        self.form, self.reason, self.decided = "eager", None, False
        self.block = None
        self.block_tried = False
        self.graph = None  # (function, steps, captured graph or None)
        self.info = None  # compile_info: form, reason, compile_seconds, compiled_step_s (or error)
        self.graph_info = None

    # -- the form ---------------------------------------------------------------------------------
    def choose(self, compile, run_length, compile_min_steps, forced=None):
        """Settle the form by the rule of the module docstring (once; ``compile="auto"`` waits while
        runs are shorter than ``compile_min_steps``)."""
        if self.decided:
            return
        if forced == "native" and self.native is None:
            forced = None  # (the run continues on the rule below: the native form is not there now)
        if forced in FORMS:
            form, reason = forced, "the form the checkpoint's run had"
        elif compile == "native":
            form, reason = "native", "compile='native'"
        elif compile == "auto" and self.native is not None:
            form, reason = "native", "compile='auto' and the model fits the native step (the whole step in C++)"
        elif compile is True:
            form, reason = "compiled", "compile=True"
        elif compile in (False, "eager"):
            form, reason = "eager", f"compile={compile!r}"
        elif run_length >= compile_min_steps:
            form, reason = "compiled", f"compile='auto' and a run of {run_length:,} steps >= compile_min_steps"
        else:
            self.reason = (f"compile='auto' and a run of {run_length:,} steps < compile_min_steps "
                           f"({compile_min_steps:,}): eager until a longer run")
            return
        self.decided = True
        self.reason = reason
        if form == "compiled":
            self._compile(reason)
        else:
            self.form = form
        log.info("WLMD step: %s (%s)", self.form, self.reason)

    def _compile(self, reason):
        t0 = time.perf_counter()
        say("WLMD step: compiling (%s); this takes seconds to a minute", reason)
        try:
            compiled = compiled_function(self.step, self.device)
            compiled_s = self.time(compiled, 3)  # (compiles it now, on copies of the state)
        except Exception as e:  # noqa: BLE001 (any tracing or compilation failure)
            warnings.warn(f"compile: torch.compile could not trace the WLMD step ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''}); running the eager step", stacklevel=C.user_stacklevel())
            self.form, self.reason = "eager", f"compiling failed ({type(e).__name__})"
            self.info = dict(form="eager", reason=self.reason, error=f"{type(e).__name__}: {e}"[:500])
            return
        seconds = time.perf_counter() - t0
        self.call, self.form = compiled, "compiled"
        self.info = dict(form="compiled", reason=reason, compile_seconds=seconds, compiled_step_s=compiled_s)
        say("WLMD step: compiled in %.1f s, %.0f us a step", seconds, compiled_s * 1e6)

    def add_block(self, run_length, min_steps):
        """For a compiled step cheaper than BLOCK_BELOW_S on the CPU, in a run of ``min_steps``
        (BLOCK_MIN_STEPS) steps or more, compile BLOCK steps as one call too: each call of a compiled
        function pays ~30 us of its own (guards, the wrapper), which 4 steps share (the W = 30 spiral
        step: 206 -> 176 us measured). The block is a second graph to compile (12-14 s with an empty
        compile cache on a 2-core machine, ~1.5 s once torch's cache holds it), so shorter runs do
        without (tried once). It runs the steps' arithmetic unchanged (tested bit for bit); blocks are
        aligned to multiples of BLOCK in the step counter. Not on CUDA, where graphs do more."""
        if (self.form != "compiled" or self.block_tried or self.device.type != "cpu" or run_length < min_steps
                or not self.info.get("compiled_step_s", math.inf) < self.BLOCK_BELOW_S):
            return
        self.block_tried = True
        t0 = time.perf_counter()
        block = compiled_function(repeat_step(self.step, self.BLOCK), self.device)
        try:
            self.time(block, 1)  # compiles it now
        except Exception as e:  # noqa: BLE001 (a failure here keeps the single compiled step)
            warnings.warn(f"compile: the {self.BLOCK}-step block did not compile ({type(e).__name__}); running "
                          "single compiled steps", stacklevel=C.user_stacklevel())
            return
        self.block = block
        self.info["block_seconds"] = time.perf_counter() - t0
        say("WLMD step: blocks of %d compiled steps (%.1f s to compile)", self.BLOCK, self.info["block_seconds"])

    def time(self, fn, n=10):
        """Seconds per call of ``fn`` over copies of the state (after one warm-up call)."""
        scratch = self.state.scratch()
        fn(*scratch)
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*scratch)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - t0) / n

    # -- calling it -------------------------------------------------------------------------------
    def _graph(self, k, sync_every, graph_steps, capture):
        """``(graph, n)``: the CUDA graph of ``n = min(sync_every, graph_steps)`` calls of the current
        step function, captured on the first call of ``k >= n`` steps; None where there is none (not
        on a CUDA device, ``graph_steps`` 0, fewer steps, or the capture failed). A capture is kept for
        its function and length and made anew when either changes."""
        n = min(sync_every, int(graph_steps))
        if n < 1 or k < n or (self.device.type != "cuda" and capture is None):
            return None
        held = self.graph
        if held is None or held[0] is not self.call or held[1] != n:
            self.graph = None  # the old capture's memory goes before the new one takes its own
            t0 = time.perf_counter()
            graph = capture_steps(self.call, self.state, n, self.state.scratch(), capture)
            self.graph = held = (self.call, n, graph)
            self.graph_info = dict(steps=n, captured=graph is not None, capture_seconds=time.perf_counter() - t0)
            if graph is not None:
                log.info("WLMD step: CUDA graph of %d steps captured in %.1f s", n, self.graph_info["capture_seconds"])
            else:
                log.info("WLMD step: the step could not be captured in a CUDA graph; one call per step")
        return None if held[2] is None else (held[2], n)

    def advance(self, k, t0, sync_every, graph_steps, capture=None):
        """Run k steps from step t0: on a CUDA device, replays of the captured graph, then single
        steps; on the CPU with a block, single steps up to a multiple of BLOCK, then blocks, then the
        remainder (so a resumed run calls blocks on the same steps as an uninterrupted one)."""
        if self.form == "native":
            self.native(k)
            return
        state, step = self.state, self.call
        graphed = self._graph(k, sync_every, graph_steps, capture)
        if graphed is not None:
            graph, n = graphed
            for _ in range(k // n):
                graph.replay()
            for _ in range(k % n):
                step(*state)
            return
        if self.block is None:
            with torch.inference_mode() if self.inference and self.form == "eager" else torch.no_grad():
                for _ in range(k):
                    step(*state)
            return
        u = self.BLOCK
        lead = min(k, -t0 % u)
        blocks = (k - lead) // u
        for _ in range(lead):
            step(*state)
        for _ in range(blocks):
            self.block(*state)
        for _ in range(k - lead - blocks * u):
            step(*state)


def build_runner(w, fns) -> Runner:
    """The runner of a sampler ``w`` (:class:`entropyeng.WLMD`) on its model functions ``fns``: the
    torch step's body, and the native form where the model fits it."""
    from . import native, setup
    from .step import make_step

    step = make_step(fns.forward_vjp, deposits_per_step=w.deposits_per_step, grid=w.grid, sigma=w.sigma,
                     cutoff=w.cutoff, walls=w.walls, wall_c=w.wall_c, schedule=w.schedule, dt=w.dt, gamma=w.gamma,
                     kT=w.kT, seed=w._noise_seed, integrator=w.integrator,
                     bound=setup.bound_vector(w).reshape(1, -1).expand(w.K, -1),
                     ends=setup.round_trip_ends(w.walls, w.grid))
    run_native = (native.make_native(w, w._native_codes)
                  if w._native_codes is not None and w.model_kernel == "auto" else None)
    return Runner(step, w.state, w.device, fns.autograd, run_native, w._native_reason)


def compiled_function(fn, device):
    """``torch.compile(fn, fullgraph=True)`` as the step wants it: the step is called only with its
    own state and the model is not changed during a run, so tensor guards are enough (the module
    and global guards cost ~50 us a call); on the CPU a C++ wrapper around the kernels saves ~45 us
    of Python per call."""
    options = {}
    keep_tensor_guards = getattr(torch.compiler, "keep_tensor_guards_unsafe", None)  # recent torch only
    if keep_tensor_guards is not None:
        options["guard_filter_fn"] = keep_tensor_guards
    if device.type == "cpu":
        options["cpp_wrapper"] = True
    return torch.compile(fn, fullgraph=True, dynamic=False, options=options)


class torch_threads:
    """torch's intra-op threads set for a block (None: leave them), restored after."""

    def __init__(self, n):
        self.n, self.old = n, None

    def __enter__(self):
        if self.n is not None and self.n != torch.get_num_threads():
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.old is not None:
            torch.set_num_threads(self.old)


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
