"""Checkpoints of :class:`entropyeng.WLMD`: the state as a dict, the self-describing ``.npz`` file
(atomic writes; every rank's walkers gathered to rank 0), and the checks of a file read back
(shapes, dtypes, finiteness, counters, the box) before anything of the sampler changes.

One walker in one process keeps the layout of earlier versions (``theta`` and ``v`` of shape (P,));
K walkers over R ranks store (R, K, P) and the walkers' ``active``, ``trips`` and ``ends`` (R, K).
The step form the run had is recorded (``form``); files of earlier versions that say "per-step"
continue on the eager step."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from .._io import hash_arrays, load_npz, save_npz_atomic
from ..grid import Grid
from . import reads

__all__ = ["state_dict", "load_state_dict", "save", "read", "restore", "load_sampler", "FORMS_OF_FILES"]

_KINDS = ("wlmd-checkpoint", "wlmd-walkers-checkpoint")  # the second: files of WalkersWLMD (<= 0.1)
#: the step form recorded in a file -> the form a resumed run takes ("per-step": versions <= 0.1)
FORMS_OF_FILES = {"native": "native", "compiled": "compiled", "eager": "eager", "per-step": "eager"}
# the end a walker touched last, and whether its passages between the ends are odd so far (files
# written before 2026-12-06 hold -1, 0 and 1: even, as their counter had no parity)
_ENDS = {-1: None, 0: "low", 1: "high", 2: "low, odd", 3: "high, odd"}


def _host(a):
    return a.detach().cpu().numpy().copy() if isinstance(a, torch.Tensor) else np.array(a)


def config(w) -> dict:
    return dict(loss=w.loss_name, cv_y=w.cv_y, alpha=w.alpha, logit_y=w.logit_y, grid=w.grid.to_dict(),
                sigma=w.sigma, cutoff=w.cutoff, walls=w.walls, wall_c=w.wall_c, schedule=w.schedule, dt=w.dt,
                gamma=w.gamma, kT=w.kT, seed=w.seed, integrator=w.integrator,
                dtype=str(w.dtype).replace("torch.", ""), n_params=w.n_params)


def state_dict(w) -> dict:
    """Parameters, velocities (this process's walkers: (P,) for one, (K, P) for K), landscape,
    histogram, step counter, the walkers' flags and round-trip state, and the configuration."""
    s = w.state
    bound = w.bound if isinstance(w.bound, float) else _host(w.bound)
    ends = _host(s.last_end)
    return dict(theta=_host(w.theta), v=_host(w.v), S=_host(s.S), H=_host(s.H), t=w.t, round_trips=w.round_trips,
                last_end=_ENDS[int(ends[0])], bound=bound, config=config(w), active=_host(s.active),
                trips=_host(s.trips), ends=ends)


def _check_values(key, a, dtype) -> None:
    """A state field's values: of the run's ``dtype`` (a torch dtype) and finite."""
    want = str(dtype).replace("torch.", "")
    if a.dtype != np.dtype(want):
        raise ValueError(f"state: field '{key}' must be {want} (the run's dtype), got {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError(f"state: field '{key}' holds non-finite values")


def load_state_dict(w, state: dict) -> None:
    """Restore :func:`state_dict` into the sampler (checked whole before anything changes)."""
    K, P = w.K, w.n_params
    cfg = state["config"]
    if int(cfg["n_params"]) != P:
        raise ValueError(f"state: the checkpoint has {cfg['n_params']} parameters, this model {P}")
    if Grid.from_dict(cfg["grid"]) != w.grid:
        raise ValueError("state: the checkpoint's grid differs from this sampler's")
    walker_shape = (P,) if K == 1 else (K, P)
    for key, shape in (("theta", walker_shape), ("v", walker_shape), ("S", w.grid.shape), ("H", w.grid.shape)):
        a = np.asarray(state[key])
        if K == 1 and key in ("theta", "v") and a.shape == (1, P):
            a = a[0]
        if a.shape != shape or a.dtype.kind != "f":
            raise ValueError(f"state: field '{key}' must be floating point of shape {shape}, got {a.dtype} {a.shape}")
        _check_values(key, a, w.dtype if key in ("theta", "v") else torch.float64)
    if (np.asarray(state["H"]) < 0).any():
        raise ValueError("state: field 'H' holds negative counts")
    t = state["t"]
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0 or t > 10**15:
        raise ValueError(f"state: field 't' must be a step count in [0, 1e15], got {t!r}")
    most = (int(t) + 1) * K * max(int(cfg.get("world_size", w.world) or 1), w.world)
    if float(np.asarray(state["H"]).sum()) > most:
        raise ValueError(f"state: field 'H' counts {float(np.asarray(state['H']).sum()):.3g} visits, more than the "
                         f"{most:,} walker-steps of {int(t):,} steps")
    limit = _host(w.bound) if isinstance(w.bound, torch.Tensor) else w.bound
    if (np.abs(np.asarray(state["theta"], dtype=np.float64)) > limit * (1 + 1e-6)).any():
        raise ValueError("state: field 'theta' has parameters outside their box")
    walkers = {}
    for key, default, kind in (("active", True, "b"), ("trips", 0, "i"), ("ends", -1, "i")):
        a = np.asarray(state.get(key, np.full(K, default)))
        a = a.astype(bool if kind == "b" else np.int64) if a.dtype.kind in "biuf" else a
        if a.shape != (K,) or (kind == "i" and key == "ends" and not np.isin(a, tuple(_ENDS)).all()) \
                or (key == "trips" and (a < 0).any()):
            raise ValueError(f"state: field '{key}' must hold one valid entry per walker ({K}), got {a!r}")
        walkers[key] = a
    if K == 1 and "trips" not in state:  # a file of one walker: round_trips and last_end
        walkers["trips"] = np.array([int(state.get("round_trips", 0))], dtype=np.int64)
        walkers["ends"] = np.array([{v: k for k, v in _ENDS.items()}[state.get("last_end")]], dtype=np.int64)
    s = w.state
    with torch.no_grad():
        for target, value in ((s.theta, state["theta"]), (s.v, state["v"])):
            target.copy_(torch.as_tensor(np.asarray(value)).reshape(K, -1))
        s.good_theta.copy_(s.theta)
        s.good_v.copy_(s.v)
        s.S.copy_(torch.as_tensor(state["S"]))
        s.H.copy_(torch.as_tensor(state["H"]))
        s.t.fill_(int(t))
        s.bad.fill_(-1)
        s.active.copy_(torch.from_numpy(walkers["active"]))
        s.trips.copy_(torch.from_numpy(walkers["trips"]))
        s.last_end.copy_(torch.from_numpy(walkers["ends"]))
    if w._share is not None:
        w._share.reset()
    w._active_seen = w.active
    reads.evaluate(w)


def _gather(w, a) -> np.ndarray:
    """Every rank's array (K, ...) stacked (R, K, ...) (a collective: every rank calls it)."""
    a = torch.as_tensor(a).detach()
    if not w.distributed:
        return a.cpu().numpy()[None].copy()
    from .ranks import all_gather

    try:
        parts = all_gather(a)
    except RuntimeError as e:  # gloo: "Connection closed by peer", or the timeout
        raise RuntimeError(f"distributed: the checkpoint's all-gather at step {w.t} failed on rank {w.rank} "
                           f"(another rank died or timed out): {e}") from None
    return torch.stack(parts).cpu().numpy()


def save(w, path) -> None:
    """Write a self-describing .npz checkpoint atomically (distributed: a collective that gathers
    every rank's walkers; rank 0 writes)."""
    s = state_dict(w)
    meta = dict(kind="wlmd-checkpoint", t=s["t"], round_trips=s["round_trips"], last_end=s["last_end"],
                config=s["config"], bound=s["bound"] if isinstance(s["bound"], float) else "array",
                walkers=w.K, world_size=w.world, info=asdict(w.info()), form=w.step_form, data_digest=data_digest(w))
    if w.K == 1 and w.world == 1:
        arrays = {k: s[k] for k in ("theta", "v", "S", "H")}
    else:
        st = w.state
        arrays = dict(theta=_gather(w, st.theta), v=_gather(w, st.v), active=_gather(w, st.active),
                      trips=_gather(w, st.trips), ends=_gather(w, st.last_end), S=s["S"], H=s["H"])
        if w.rank != 0:
            return
        meta["round_trips"] = int(arrays["trips"].sum())
    if not isinstance(s["bound"], float):
        arrays["bound"] = s["bound"]
    save_npz_atomic(path, arrays, dict(meta, **getattr(w, "run_meta", {})), cropped=("S", "H"))


def read(path):
    """(arrays, meta) of a WLMD checkpoint file (either kind)."""
    try:
        return load_npz(path, _KINDS[0])
    except ValueError as e:
        if "expected a" not in str(e):
            raise
        try:
            return load_npz(path, _KINDS[1])
        except ValueError:
            raise e from None


def data_digest(w) -> str:
    """A digest of the sampler's train and test arrays (computed once): a checkpoint carries it, and
    a sampler built on other data refuses the checkpoint."""
    if getattr(w, "_data_digest", None) is None:
        import hashlib

        h = hashlib.sha256()
        hash_arrays(h, (w.X_tr, w.y_tr, w.X_te, w.y_te))
        w._data_digest = h.hexdigest()[:32]
    return w._data_digest


def restore(w, arrays, meta, path) -> None:
    """This rank's part of a checkpoint file into the sampler (after the checks); the run continues
    on the form the file records. A file that records the digest of its data must be restored onto the
    same data (files of earlier versions carry none)."""
    if "data_digest" in meta and meta["data_digest"] != data_digest(w):
        raise ValueError(f"{path}: the checkpoint was made on other data (its data digest differs from this "
                         "sampler's train and test arrays)")
    walkers, world = int(meta.get("walkers", 1)), int(meta.get("world_size", 1))
    if walkers != w.K or world != w.world:
        raise ValueError(f"{path}: the checkpoint has {walkers} walkers on {world} ranks, this run {w.K} "
                         f"on {w.world}")
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
                state[key] = a[w.rank].reshape((w.K, -1) if key in ("theta", "v") else (w.K,))
        if w.K == 1:
            state["theta"], state["v"] = state["theta"][0], state["v"][0]
    try:
        load_state_dict(w, state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if w.compile == "auto":
        w._forced_form = FORMS_OF_FILES.get(meta.get("form"))


def model_and_data(problem, train, test, loss):
    """``(model, train, test, loss)`` of WLMD.load's arguments: a problem object (``make_model(seed)``,
    ``train``, ``test``, ``loss``), or a model with its train and test data."""
    if isinstance(problem, torch.nn.Module):
        model = problem
    elif problem is not None and hasattr(problem, "make_model"):
        model, train, test = problem.make_model(0), problem.train, problem.test
        loss = loss if loss is not None else getattr(problem, "loss", None)
    else:
        raise TypeError("load: expected a problem (make_model, train, test) or a model with train and test, got "
                        f"{type(problem).__name__}")
    if train is None or test is None:
        raise TypeError("load: the model needs its train and test data")
    return model, train, test, loss


def load_sampler(cls, path, model, train, test, *, loss, compile, threads, sync_every, timeout_s):
    """:meth:`entropyeng.WLMD.load`: a sampler of class ``cls`` built from the file's configuration on
    ``model`` (its parameters overwritten) and the data, then restored."""
    arrays, meta = read(path)
    cfg = dict(meta["config"])
    if cfg["loss"] == "callable":
        if loss is None:
            raise ValueError("loss: the checkpoint was made with a callable loss; pass it again")
        cfg["loss"] = loss
    walkers, world = int(meta.get("walkers", 1)), int(meta.get("world_size", 1))
    n_model = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n_model != int(cfg.get("n_params", -1)):
        raise ValueError(f"{path}: the checkpoint has {cfg.get('n_params')} parameters, this model {n_model}: "
                         "load it onto the model of its run")
    for key in ("theta", "v"):  # (checked before the model is touched: a cast would hide an edit)
        if key in arrays:
            try:
                _check_values(key, np.asarray(arrays[key]), next(model.parameters()).dtype)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
    if walkers == 1 and world == 1 and np.ndim(arrays["theta"]) == 1:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(
                torch.as_tensor(arrays["theta"]).to(next(model.parameters()).dtype),
                [p for p in model.parameters() if p.requires_grad])
    metric = {"smoothed_accuracy": "accuracy", "test_loss": "loss"}.get(cfg["cv_y"], cfg["cv_y"])  # (else refused)
    w = cls(model, train, test, loss=cfg["loss"], metric=metric, alpha=cfg["alpha"],
               logit_y=cfg["logit_y"] if cfg["cv_y"] == "smoothed_accuracy" else None,
               grid=Grid.from_dict(cfg["grid"]), sigma=cfg["sigma"], cutoff=cfg["cutoff"], walls=cfg["walls"],
               wall_c=cfg["wall_c"], schedule=cfg["schedule"], dt=cfg["dt"], gamma=cfg["gamma"], kT=cfg["kT"],
               bound="paper" if meta["bound"] == "array" else meta["bound"], seed=cfg["seed"],
               integrator=cfg["integrator"], compile=compile, threads=threads, sync_every=sync_every,
               walkers=walkers, distributed=world > 1, timeout_s=timeout_s)
    restore(w, arrays, meta, path)
    return w
