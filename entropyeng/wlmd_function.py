"""The WLMD step as one function of tensors, run by :class:`entropyeng.WLMD` (``compile`` not False):
building it over the sampler's buffers (``entropyeng.wlmd_step``), compiling it, choosing between the
compiled step and the per-step path (``compile="auto"``), running it with host reads every
``sync_every`` steps, and the failure check at those reads."""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import torch

from .wlmd_common import WalkerDropped, WLMDError

__all__ = ["StepFunctionMixin"]


class StepFunctionMixin:
    """The step-function half of :class:`entropyeng.WLMD` (it holds the sampler's state; this holds
    how the traced step runs over it)."""

    def _build_function(self):
        from .wlmd_step import (make_batched_forward_vjp, make_batched_outputs, make_cvs, make_step, mlp_layout,
                                net_layout)

        K, dev = self.K, self.device
        cvs = make_cvs(self.model, self._loss, self.X_tr, self.y_tr, self.X_te, self.y_te, self.cv_y, self.alpha,
                       self.logit_y)
        if self.model_kernel not in ("auto", "torch"):
            raise ValueError(f"model_kernel: expected 'auto' or 'torch', got {self.model_kernel!r}")
        forward_vjp, outputs, self.model_path = None, None, "functional_call"
        if self.model_kernel == "auto":
            for kind, find in (("mlp", mlp_layout), ("net", net_layout)):
                layout = find(self.model, self.X_tr, self.X_te)
                if layout is not None:
                    forward_vjp = make_batched_forward_vjp(kind, layout, self._loss, self.X_tr, self.y_tr, self.X_te,
                                                           self.y_te, self.cv_y, self.alpha, self.logit_y, K)
                    self.model_path = f"{kind}_batch"
                    outputs = make_batched_outputs(kind, layout, self.X_tr, self.X_te)
                    break
        bound = self.bound if isinstance(self.bound, torch.Tensor) else torch.full_like(self._theta_kp[0], self.bound)
        step = make_step(cvs, K=K, deposits_per_step=self.deposits_per_step, grid=self.grid, sigma=self.sigma,
                         cutoff=self.cutoff, walls=self.walls, wall_c=self.wall_c, schedule=self.schedule, dt=self.dt,
                         gamma=self.gamma, kT=self.kT, seed=self._noise_seed, integrator=self.integrator,
                         bound=bound.reshape(1, -1).expand(K, -1),
                         ends=(self.walls.get("x_min", self.grid.x_min), self.walls.get("x_max", self.grid.x_max)),
                         forward_vjp=forward_vjp)
        S = self.S if isinstance(self.S, torch.Tensor) else torch.from_numpy(self.S)
        H = self.H if isinstance(self.H, torch.Tensor) else torch.from_numpy(self.H)
        theta, v = self._theta_kp, self._v_kp
        bufs = (theta, v, theta.clone(), v.clone(), S, H, torch.zeros((), dtype=torch.int64, device=dev),
                torch.full((K,), -1, dtype=torch.int64, device=dev),
                torch.zeros((K, 2), dtype=torch.float64, device=dev), torch.ones(K, dtype=torch.bool, device=dev),
                torch.zeros(K, dtype=torch.int64, device=dev), torch.full((K,), -1, dtype=torch.int64, device=dev))
        self._fn = dict(eager=step, run=step, bufs=bufs, form="eager", outputs=outputs)

    def _scratch(self):
        """Copies of the step's buffers (timing runs on them leave the run's state alone)."""
        return tuple(b.clone() for b in self._fn["bufs"])

    def _time(self, step, n=10):
        bufs = self._scratch()
        step(*bufs)  # warm-up (and, compiled, the first specialisation)
        t0 = time.perf_counter()
        for _ in range(n):
            step(*bufs)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - t0) / n

    def _time_per_step(self, n=10):
        """Seconds per step of the per-step path, timed on the sampler itself and rolled back."""
        import tempfile

        snap = (self.theta.clone(), self.v.clone(), np.array(self._host_array(self.S)),
                np.array(self._host_array(self.H)), self.t, self._trips.copy(), self._ends.copy())
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "timing.npz")
                self._step(path)
                t0 = time.perf_counter()
                for _ in range(n):
                    self._step(path)
                return (time.perf_counter() - t0) / n
        except WLMDError:
            return math.inf
        finally:
            with torch.no_grad():
                self.theta.copy_(snap[0])
                self.v.copy_(snap[1])
                for target, saved in ((self.S, snap[2]), (self.H, snap[3])):
                    if isinstance(target, torch.Tensor):
                        target.copy_(torch.from_numpy(saved))
                    else:
                        target[...] = saved
            self.t, self._trips, self._ends = snap[4], snap[5], snap[6]
            self._evaluate_current()

    @staticmethod
    def _host_array(a):
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a

    @property
    def step_form(self):
        """The form the steps run in: "compiled", "eager" (the step function, not compiled),
        "per-step" (the path of compile=False), or None while "auto" has not decided."""
        if not self._uses_step_function():
            return "per-step"
        if self._fn is None or (self.compile == "auto" and not self._fn.get("decided")):
            return "eager" if self.compile == "eager" else None
        return self._fn["form"]

    def _compiled(self, step):
        # the step is called only with its own buffers and the model is not changed during a run:
        # tensor guards on the inputs are enough (the module and global guards cost ~50 us a call);
        # a C++ wrapper around the kernels saves ~45 us of Python per call (measured on the CPU)
        options = {"guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe}
        if self.device.type == "cpu":
            options["cpp_wrapper"] = True
        return torch.compile(step, fullgraph=True, dynamic=False, options=options)

    def _run_length(self, n_steps):
        """The length of the run the decisions are for: this call's steps, or ``planned_steps`` (the
        whole run, which a caller running in chunks may set) if longer."""
        return max(n_steps, int(getattr(self, "planned_steps", 0) or 0))

    def _choose_form(self, n_steps):
        """Compile the step if asked; for "auto", on a long enough run, compile it and keep whichever
        of the compiled step function and the per-step path measures faster here (a resumed run
        keeps the form recorded in its checkpoint)."""
        fn = self._fn
        forced = getattr(self, "_forced_form", None)
        if forced is not None and not fn.get("decided"):
            fn["decided"] = True
            if forced == "compiled":
                fn["run"], fn["form"] = self._compiled(fn["eager"]), "compiled"
                fn["step_s"] = self._time(fn["run"], 3)  # (compiles it now)
            else:
                fn["form"] = forced
            return
        n_steps = self._run_length(n_steps)
        if self.compile in ("eager", False) or fn.get("decided") or (self.compile == "auto" and n_steps < self.compile_min_steps):
            return
        fn["decided"] = True
        t0 = time.perf_counter()
        try:
            compiled = self._compiled(fn["eager"])
            compiled_s = self._time(compiled, 3)
        except Exception as e:  # noqa: BLE001 (any tracing or compilation failure)
            fn["form"] = "per-step" if self.compile == "auto" and self._single else "eager"
            warnings.warn(f"compile: torch.compile could not trace the WLMD step ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]}); running the {fn['form']} step", stacklevel=4)
            self.compile_info = dict(form=fn["form"], error=f"{type(e).__name__}: {e}"[:500])
            return
        seconds = time.perf_counter() - t0
        compiled_s = self._time(compiled)
        # the rival: the per-step path for one walker, the eager step function for many
        per_step_s = self._time_per_step() if self.compile == "auto" and self._single else None
        eager_s = self._time(fn["eager"]) if self.compile == "auto" and not self._single else None
        other_s = per_step_s if per_step_s is not None else eager_s
        if self.compile is True or compiled_s < other_s:
            fn["run"], fn["form"], fn["step_s"] = compiled, "compiled", compiled_s
        else:
            fn["form"] = "per-step" if self._single else "eager"
        self.compile_info = dict(form=fn["form"], compile_seconds=seconds, compiled_step_s=compiled_s,
                                 per_step_s=per_step_s, eager_step_s=eager_s)

    #: steps per compiled call for a cheap step on the CPU (see _add_block), below which step time,
    #: and from which length of run (the run's steps or ``planned_steps``)
    BLOCK = 4
    BLOCK_BELOW_S = 1e-3
    BLOCK_MIN_STEPS = 10**6

    def _add_block(self, n_steps):
        """For a compiled step cheaper than BLOCK_BELOW_S on the CPU, in a run of BLOCK_MIN_STEPS
        steps or more, compile BLOCK steps as one call too: each call of a compiled function pays
        ~30 us of its own (guards, the wrapper), which 4 steps share (the W = 30 spiral step: 206 ->
        176 us measured). The block is a second graph to compile (four steps' kernels: 12-14 s with an
        empty compile cache on a 2-core machine, ~1.5 s once torch's cache holds it), so shorter runs
        do without (tried once per sampler, on its first run that long). The block runs the steps'
        arithmetic unchanged (tested bit for bit against single steps); the runner aligns blocks to
        multiples of BLOCK in the step counter. Not on CUDA, where the captured graphs do more
        (``_graph``)."""
        fn = self._fn
        n_steps = self._run_length(n_steps)
        if (fn["form"] != "compiled" or "block" in fn or self.device.type != "cpu" or n_steps < self.BLOCK_MIN_STEPS
                or not fn.get("step_s", math.inf) < self.BLOCK_BELOW_S):
            return
        from .wlmd_step import repeat_step

        fn["block"] = None  # tried
        t0 = time.perf_counter()
        block = self._compiled(repeat_step(fn["eager"], self.BLOCK))
        try:
            self._time(block, 1)  # compiles it now
        except Exception as e:  # noqa: BLE001 (a failure here keeps the single compiled step)
            warnings.warn(f"compile: the {self.BLOCK}-step block did not compile ({type(e).__name__}); running "
                          "single compiled steps", stacklevel=4)
            return
        fn["block"] = block
        if self.compile_info is not None:
            self.compile_info["block_seconds"] = time.perf_counter() - t0

    def _graph(self, k):
        """``(graph, n)``: the CUDA graph (:mod:`entropyeng.wlmd_graph`) of ``n = min(sync_every,
        graph_steps)`` calls of the current step function, captured on the first call of ``k`` steps at
        least; None where
        there is none (not on a CUDA device, ``graph_steps`` 0, fewer steps, or the capture
        failed). A capture is kept for its step function and length and made anew when either
        changes (``compile="auto"`` deciding after it); ``graph_info`` says what it cost."""
        n = min(self.sync_every, int(self.graph_steps))
        capture = self._graph_capture
        if n < 1 or k < n or (self.device.type != "cuda" and capture is None):
            return None
        fn = self._fn
        held = fn.get("graph")
        if held is None or held[0] is not fn["run"] or held[1] != n:
            from .wlmd_graph import capture_steps

            fn["graph"] = None  # the old capture's memory goes before the new one takes its own
            t0 = time.perf_counter()
            graph = capture_steps(fn["run"], fn["bufs"], n, self._scratch(), capture)
            fn["graph"] = held = (fn["run"], n, graph)
            self.graph_info = dict(steps=n, captured=graph is not None, capture_seconds=time.perf_counter() - t0)
        return None if held[2] is None else (held[2], n)

    def _advance(self, k, t0_host):
        """Run k steps from step t0_host: on a CUDA device, replays of the captured graph, then single
        steps; on the CPU, single steps up to a multiple of BLOCK, then blocks, then the remainder
        (so a resumed run calls blocks on the same steps as an uninterrupted one)."""
        bufs, step, block = self._fn["bufs"], self._fn["run"], self._fn.get("block")
        graphed = self._graph(k)
        if graphed is not None:
            graph, n = graphed
            for _ in range(k // n):
                graph.replay()
            for _ in range(k % n):
                step(*bufs)
            return
        if block is None:
            for _ in range(k):
                step(*bufs)
            return
        u = self.BLOCK
        lead = min(k, -t0_host % u)
        blocks = (k - lead) // u
        for _ in range(lead):
            step(*bufs)
        for _ in range(blocks):
            block(*bufs)
        for _ in range(k - lead - blocks * u):
            step(*bufs)

    def _run_function(self, n_steps, callback, every, checkpoint):
        if self._fn is None:
            self._build_function()
        self._choose_form(n_steps)
        self._add_block(n_steps)
        bufs = self._fn["bufs"]
        theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end = bufs
        t.fill_(self.t)
        good_theta.copy_(theta)
        good_v.copy_(v)
        bad.fill_(-1)
        active.copy_(torch.from_numpy(self.active))
        trips.copy_(torch.from_numpy(self._trips))
        last_end.copy_(torch.from_numpy(self._ends))
        t0, done, start = time.perf_counter(), 0, self.t
        while done < n_steps:
            k = min(self.sync_every, n_steps - done, every - done % every if callback is not None else n_steps)
            self._advance(k, start + done)
            done += k
            self._function_sync(checkpoint, last=done == n_steps)
            if callback is not None and done % every == 0:
                callback(self.info(time.perf_counter() - t0))

    def _function_sync(self, checkpoint, last):
        """The host read of the step function's state: the step counter, the walkers' flags, the
        round trips; distributed, the all-reduce of the landscape. At the end of a run also the check
        of the last update (which the next step would make)."""
        theta, v, good_theta, good_v, _, _, t, bad, bad_xy, active, trips, last_end = self._fn["bufs"]
        self.t = int(t)
        self._trips, self._ends = trips.cpu().numpy().copy(), last_end.cpu().numpy().copy()
        self.share()
        if not self._single:
            self._sync_walkers(checkpoint, last)
            return
        failed = int(bad[0])
        if failed < 0:
            self._evaluate_current()
            problem = self._check_state(self._xv, self._yv, self.t)
            if problem is None:
                return
            failed = self.t
            with torch.no_grad():  # back to the state this last step started from
                theta.copy_(good_theta)
                v.copy_(good_v)
        else:
            # the step that found the failure restored the walker's last good state
            bx, by = (float(a) for a in bad_xy[0])
            problem = self._check_state(bx, by, failed)
        self.t = failed
        self._evaluate_current()
        path = checkpoint or os.path.join(os.getcwd(), "wlmd-last-good.npz")
        self.save(path)
        raise WLMDError(f"WLMD stopped: {problem}; the last good state was written to {path}", failed, path)

    def _sync_walkers(self, checkpoint, last):
        """Many walkers: warn for each walker the steps dropped since the last read; at the end of a
        run drop those whose last update left the grid; stop when no walker of any rank is left."""
        theta, v, good_theta, good_v, _, _, _, bad, bad_xy, active, _, _ = self._fn["bufs"]
        now = active.cpu().numpy().copy()
        news = []
        for k in np.nonzero(self.active & ~now)[0]:
            bx, by = (float(a) for a in bad_xy[k])
            news.append((k, self._check_state(bx, by, int(bad[k]))))
        self.active = now
        self._evaluate_current()
        if last:
            for k in np.nonzero(self.active)[0]:
                problem = self._check_state(self._xs[k], self._ys[k], self.t)
                if problem:
                    with torch.no_grad():
                        theta[k] = good_theta[k]
                        v[k] = good_v[k]
                    active[k] = False
                    self.active[k] = False
                    news.append((k, problem))
            if news:
                self._evaluate_current()
        for k, problem in news:
            warnings.warn(f"walker {k} (rank {self.rank}) dropped: {problem}; it is back at its last checked state "
                          "and deposits no more hills", WalkerDropped, stacklevel=5)
        alive = int(self.active.sum())
        if self.distributed:
            import torch.distributed as dist

            n = torch.tensor([alive], dtype=torch.int64)
            dist.all_reduce(n)
            alive = int(n)
        if alive == 0:
            path = checkpoint or os.path.join(os.getcwd(), "wlmd-last-good.npz")
            self.save(path)
            raise WLMDError(f"WLMD stopped: every walker was dropped by step {self.t}; the last good state was "
                            f"written to {path}", self.t, path)
