"""Checkpoints of :class:`entropyeng.WLMD`: the state as a dict, the self-describing ``.npz`` file
(atomic writes; every rank's walkers gathered to rank 0), and the checks of a file read back
(shapes, dtypes, finiteness, counters, the box) before anything of the sampler changes.

One walker in one process keeps the layout of earlier versions (``theta`` and ``v`` of shape (P,));
K walkers over R ranks store (R, K, P) and the walkers' ``active``, ``trips`` and ``ends`` (R, K)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from ._io import load_npz, save_npz_atomic
from .grid import Grid

__all__ = ["CheckpointMixin"]

_KINDS = ("wlmd-checkpoint", "wlmd-walkers-checkpoint")  # the second: files of WalkersWLMD (<= 0.1)


def _host(a):
    return a.detach().cpu().numpy().copy() if isinstance(a, torch.Tensor) else np.array(a)


class CheckpointMixin:
    """The checkpoint half of :class:`entropyeng.WLMD`."""

    @property
    def _single(self) -> bool:
        return self.K == 1 and self.world == 1

    def _config(self):
        return dict(loss=self.loss_name, cv_y=self.cv_y, alpha=self.alpha, logit_y=self.logit_y,
                    grid=self.grid.to_dict(), sigma=self.sigma, cutoff=self.cutoff, walls=self.walls,
                    wall_c=self.wall_c, schedule=self.schedule, dt=self.dt, gamma=self.gamma, kT=self.kT,
                    seed=self.seed, integrator=self.integrator, dtype=str(self.dtype).replace("torch.", ""),
                    n_params=self.n_params)

    def state_dict(self) -> dict:
        """Parameters, velocities (this process's walkers: (P,) for one, (K, P) for K), landscape,
        histogram, step counter, the walkers' flags and round-trip state, and the configuration."""
        bound = self.bound if isinstance(self.bound, float) else _host(self.bound)
        return dict(theta=_host(self.theta), v=_host(self.v), S=_host(self.S), H=_host(self.H), t=self.t,
                    round_trips=self.round_trips, last_end=self._last_end, bound=bound, config=self._config(),
                    active=self.active.copy(), trips=self._trips.copy(), ends=self._ends.copy())

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (checked whole before anything changes)."""
        cfg = state["config"]
        if int(cfg["n_params"]) != self.n_params:
            raise ValueError(f"state: the checkpoint has {cfg['n_params']} parameters, this model {self.n_params}")
        if Grid.from_dict(cfg["grid"]) != self.grid:
            raise ValueError("state: the checkpoint's grid differs from this sampler's")
        walker_shape = (self.n_params,) if self.K == 1 else (self.K, self.n_params)
        for key, shape in (("theta", walker_shape), ("v", walker_shape), ("S", self.grid.shape),
                           ("H", self.grid.shape)):
            a = np.asarray(state[key])
            if self.K == 1 and key in ("theta", "v") and a.shape == (1, self.n_params):
                a = a[0]
            if a.shape != shape or a.dtype.kind != "f":
                raise ValueError(f"state: field '{key}' must be floating point of shape {shape}, got {a.dtype} {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"state: field '{key}' holds non-finite values")
        if (np.asarray(state["H"]) < 0).any():
            raise ValueError("state: field 'H' holds negative counts")
        t = state["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state: field 't' must be a step count >= 0, got {t!r}")
        limit = _host(self.bound) if isinstance(self.bound, torch.Tensor) else self.bound
        if (np.abs(np.asarray(state["theta"], dtype=np.float64)) > limit * (1 + 1e-6)).any():
            raise ValueError("state: field 'theta' has parameters outside their box")
        walkers = {}
        for key, default, kind in (("active", True, "b"), ("trips", 0, "i"), ("ends", -1, "i")):
            a = np.asarray(state.get(key, np.full(self.K, default)))
            a = a.astype(bool if kind == "b" else np.int64) if a.dtype.kind in "biuf" else a
            if a.shape != (self.K,) or (kind == "i" and key == "ends" and not np.isin(a, (-1, 0, 1)).all()) \
                    or (key == "trips" and (a < 0).any()):
                raise ValueError(f"state: field '{key}' must hold one valid entry per walker ({self.K}), got {a!r}")
            walkers[key] = a
        if self.K == 1 and "trips" not in state:  # a file of one walker: round_trips and last_end
            walkers["trips"] = np.array([int(state.get("round_trips", 0))], dtype=np.int64)
            walkers["ends"] = np.array([{None: -1, "low": 0, "high": 1}[state.get("last_end")]], dtype=np.int64)
        with torch.no_grad():
            self._theta_kp.copy_(torch.as_tensor(np.asarray(state["theta"])).reshape(self.K, -1))
            self._v_kp.copy_(torch.as_tensor(np.asarray(state["v"])).reshape(self.K, -1))
            if isinstance(self.S, torch.Tensor):
                self.S.copy_(torch.as_tensor(state["S"]))
                self.H.copy_(torch.as_tensor(state["H"]))
            else:
                self.S[...] = state["S"]
                self.H[...] = state["H"]
        self.t = int(t)
        self.active, self._trips, self._ends = walkers["active"], walkers["trips"], walkers["ends"]
        if self._share is not None:
            self._share.reset()
        self._evaluate_current()

    def _gather(self, a) -> np.ndarray:
        """Every rank's array (K, ...) stacked (R, K, ...) (a collective: every rank calls it)."""
        a = torch.as_tensor(a).detach()
        if not self.distributed:
            return a.cpu().numpy()[None].copy()
        import torch.distributed as dist

        parts = [torch.empty_like(a) for _ in range(self.world)]
        try:
            dist.all_gather(parts, a.contiguous())
        except RuntimeError as e:  # gloo: "Connection closed by peer", or the timeout
            raise RuntimeError(f"distributed: the checkpoint's all-gather at step {self.t} failed on rank {self.rank} "
                               f"(another rank died or timed out): {e}") from None
        return torch.stack(parts).cpu().numpy()

    def save(self, path) -> None:
        """Write a self-describing .npz checkpoint atomically (distributed: a collective that gathers
        every rank's walkers; rank 0 writes)."""
        s = self.state_dict()
        meta = dict(kind="wlmd-checkpoint", t=s["t"], round_trips=s["round_trips"], last_end=s["last_end"],
                    config=s["config"], bound=s["bound"] if isinstance(s["bound"], float) else "array",
                    walkers=self.K, world_size=self.world, info=asdict(self.info()), form=self.step_form)
        if self._single:
            arrays = {k: s[k] for k in ("theta", "v", "S", "H")}
        else:
            arrays = dict(theta=self._gather(self._theta_kp), v=self._gather(self._v_kp),
                          active=self._gather(torch.from_numpy(self.active)),
                          trips=self._gather(torch.from_numpy(self._trips)),
                          ends=self._gather(torch.from_numpy(self._ends)), S=s["S"], H=s["H"])
            if self.rank != 0:
                return
            meta["round_trips"] = int(arrays["trips"].sum())
        if not isinstance(s["bound"], float):
            arrays["bound"] = s["bound"]
        save_npz_atomic(path, arrays, dict(meta, **getattr(self, "run_meta", {})))

    def _restore(self, arrays, meta, path):
        """This rank's part of a checkpoint file into the sampler (after the checks)."""
        walkers, world = int(meta.get("walkers", 1)), int(meta.get("world_size", 1))
        if walkers != self.K or world != self.world:
            raise ValueError(f"{path}: the checkpoint has {walkers} walkers on {world} ranks, this run {self.K} "
                             f"on {self.world}")
        state = dict(t=meta["t"], round_trips=meta.get("round_trips", 0), last_end=meta.get("last_end"),
                     config=meta["config"], S=arrays["S"], H=arrays["H"])
        if walkers == 1 and world == 1 and np.ndim(arrays["theta"]) == 1:
            state.update(theta=arrays["theta"], v=arrays["v"])
        else:
            for key in ("theta", "v", "active", "trips", "ends"):
                if key in arrays:
                    a = np.asarray(arrays[key])
                    if a.ndim == 0 or a.shape[0] != world:
                        raise ValueError(f"{path}: field '{key}' must have one entry per rank ({world}), got {a.shape}")
                    state[key] = a[self.rank].reshape((self.K, -1) if key in ("theta", "v") else (self.K,))
            if self.K == 1:
                state["theta"], state["v"] = state["theta"][0], state["v"][0]
        try:
            self.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def load_checkpoint(self, path) -> None:
        """Continue this sampler from :meth:`save` (the same model, walkers per rank and ranks)."""
        arrays, meta = _load(path)
        self._restore(arrays, meta, path)
        if self.compile == "auto" and meta.get("form") in ("compiled", "per-step", "eager"):
            self._forced_form = meta["form"]

    @classmethod
    def load(cls, path, model, train, test, *, loss=None, backend=None, compile="auto", threads=None,
             sync_every=None, timeout_s=120.0):
        """A sampler restored from :meth:`save` onto ``model`` and the same data (the model's
        parameters are overwritten); ``loss`` is needed when the run used a callable loss;
        ``compile``, ``threads`` and ``sync_every`` as in the constructor (they do not change the
        trajectory beyond rounding: a compiled and an eager step agree to ~1e-15 per step). A file of
        a distributed run is loaded by every rank of a job of the same size."""
        arrays, meta = _load(path)
        cfg = dict(meta["config"])
        if cfg["loss"] == "callable":
            if loss is None:
                raise ValueError("loss: the checkpoint was made with a callable loss; pass it again")
            cfg["loss"] = loss
        walkers, world = int(meta.get("walkers", 1)), int(meta.get("world_size", 1))
        if walkers == 1 and world == 1 and np.ndim(arrays["theta"]) == 1:
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(
                    torch.as_tensor(arrays["theta"]).to(next(model.parameters()).dtype),
                    [p for p in model.parameters() if p.requires_grad])
        self = cls(model, train, test, loss=cfg["loss"], cv_y=cfg["cv_y"], alpha=cfg["alpha"],
                   logit_y=cfg["logit_y"] if cfg["cv_y"] == "smoothed_accuracy" else None,
                   grid=Grid.from_dict(cfg["grid"]), sigma=cfg["sigma"], cutoff=cfg["cutoff"], walls=cfg["walls"],
                   wall_c=cfg["wall_c"], schedule=cfg["schedule"], dt=cfg["dt"], gamma=cfg["gamma"], kT=cfg["kT"],
                   bound="paper" if meta["bound"] == "array" else meta["bound"], seed=cfg["seed"], backend=backend,
                   integrator=cfg["integrator"], compile=compile, threads=threads, sync_every=sync_every,
                   walkers=walkers, distributed=world > 1, timeout_s=timeout_s)
        self._restore(arrays, meta, path)
        if compile == "auto" and meta.get("form") in ("compiled", "per-step", "eager"):
            # continue on the form the run had chosen: the forms agree only to rounding, so a resumed
            # run is bitwise the uninterrupted one only on the same form
            self._forced_form = meta["form"]
        return self


def _load(path):
    try:
        return load_npz(path, _KINDS[0])
    except ValueError as e:
        if "expected a" not in str(e):
            raise
        try:
            return load_npz(path, _KINDS[1])
        except ValueError:
            raise e from None
