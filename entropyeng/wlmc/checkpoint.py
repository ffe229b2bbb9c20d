"""Checkpoints of :class:`entropyeng.WLMC`: the checks of a state read back, the self-describing
``.npz`` file (atomic writes), and a sampler rebuilt from one."""

from __future__ import annotations

import numpy as np
import torch

from .._io import load_npz, save_npz_atomic
from ..grid import Grid

__all__ = ["load_state_dict", "save", "load", "restore"]


#: the most visits or steps a checkpoint may count (10^15 walker-steps: years at a microsecond a step)
_MAX_COUNT = 1e15


def load_state_dict(w, state: dict) -> None:
    """Restore a state from :meth:`state_dict` (the sampler must be built on the same model
    architecture, data, grid and bounds)."""
    for key in ("sizes", "acts", "bias"):
        if list(state[key]) != list(getattr(w.spec, key)):
            raise ValueError(f"state: the checkpoint's {key} {state[key]} differ from this model's "
                             f"{getattr(w.spec, key)}")
    if Grid.from_dict(state["grid"]) != w.grid:
        raise ValueError(f"state: the checkpoint's grid {state['grid']} differs from {w.grid.to_dict()}")
    if int(state["seed"]) != w.seed:
        raise ValueError(f"state: the checkpoint's seed {state['seed']} differs from {w.seed}")
    if not np.array_equal(np.asarray(state["bounds"]), w.bounds):
        raise ValueError("state: the checkpoint's bounds differ from this sampler's")
    stage = state["stage"]
    if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or stage < 0:
        raise ValueError(f"state: the checkpoint's stage must be a whole number of stages >= 0, got {stage!r}")
    stage = int(stage)
    for key in ("lnG", "H"):
        a = np.asarray(state[key])
        if a.shape != w.grid.shape or a.dtype != np.float64:
            raise ValueError(f"state: field '{key}' must be float64 of the grid's shape {w.grid.shape}, got "
                             f"{a.dtype} {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"state: field '{key}' holds non-finite values")
    if (np.asarray(state["H"]) < 0).any():
        raise ValueError("state: field 'H' holds negative counts")
    if (np.asarray(state["H"]) > _MAX_COUNT).any():
        raise ValueError(f"state: field 'H' holds counts beyond {_MAX_COUNT:.0e} (more visits than any run makes)")
    for key in ("params", "cache"):  # float64 of the run's own values: a float32 or int64 copy changes the result
        a = np.asarray(state[key])
        if a.dtype != np.float64:
            raise ValueError(f"state: field '{key}' must be float64, got {a.dtype}")
        if not np.isfinite(a).all():
            raise ValueError(f"state: field '{key}' holds non-finite values")
    if (np.abs(np.asarray(state["params"])) > np.asarray(w.bounds) * (1 + 1e-9)).any():
        raise ValueError("state: field 'params' lies outside the sampler's box")
    counters = dict(state["counters"])
    for key in ("t", "accepted"):
        if key in counters and not (isinstance(counters[key], (int, np.integer)) and 0 <= counters[key] <= _MAX_COUNT):
            raise ValueError(f"state: field 'counters.{key}' must be a count in [0, {_MAX_COUNT:.0e}], got "
                             f"{counters[key]!r}")
    step = counters.get("step")
    if step is not None and not (isinstance(step, (int, float, np.number)) and 0 < float(step) < 1e6
                                 and np.isfinite(float(step))):
        raise ValueError(f"state: field 'counters.step' (the move width) must be finite and > 0, got {step!r}")
    if hasattr(w._chain, "import_all"):
        params = np.asarray(state["params"])
        if "walker_state" not in state or params.ndim != 2 or params.shape[0] != w.walkers:
            raise ValueError(f"state: expected a checkpoint of {w.walkers} walkers (params W x P and "
                             "walker_state), got another")
        work = state.get("cache") if state.get("backend") == w.backend else None
        w._chain.import_all(state["lnG"], state["H"], params, state["walker_state"], work)
    else:
        w._chain.set_params(np.ascontiguousarray(state["params"], dtype=np.float64))
        if w.backend == state.get("backend", w.backend):
            w._chain.import_cache(np.ascontiguousarray(state["cache"], dtype=np.float64))
        w._chain.lnG = np.ascontiguousarray(state["lnG"], dtype=np.float64)
        w._chain.H = np.ascontiguousarray(state["H"], dtype=np.float64)
        w._chain.counters = {k: v for k, v in dict(state["counters"]).items()}
    w.stage = stage
    w.schedule_name = state.get("schedule_name", "paper")
    w.schedule_log = [tuple(x) for x in state.get("schedule_log", [])]


def save(w, path) -> None:
    """Write the whole sampler state to an .npz checkpoint (atomically)."""
    s = w.state_dict()
    arrays = {k: np.asarray(s[k]) for k in ("params", "cache", "lnG", "H", "bounds")}
    if "walker_state" in s:
        arrays["walker_state"] = s["walker_state"]
    arrays["X_train"], arrays["y_train"] = w._train
    arrays["X_test"], arrays["y_test"] = w._test
    meta = {k: s[k] for k in ("sampler", "counters", "stage", "seed", "grid", "loss", "metric", "sizes", "acts",
                              "bias", "backend", "refresh_every", "adapt_every", "schedule_name", "schedule_log") if k in s}
    meta["kind"] = "wlmc-checkpoint"
    meta["walkers"] = w.walkers
    meta["threads"] = w.threads
    meta["walker_starts"] = w.walker_starts
    meta["step0"] = w.step0
    save_npz_atomic(path, arrays, dict(meta, **getattr(w, "run_meta", {})), cropped=("lnG", "H"))


def load(cls, path, *, backend=None, threads=None):
    """A sampler restored from :meth:`save`, ready to continue (``threads``: default the
    checkpoint's)."""
    arrays, meta = load_npz(path, "wlmc-checkpoint")
    model = _model_from(meta["sizes"], meta["acts"], meta["bias"])
    loss, metric = meta["loss"], meta["metric"]
    train = (arrays["X_train"].T, arrays["y_train"].T if loss == "mse" else arrays["y_train"])
    test = (arrays["X_test"].T, arrays["y_test"].T if loss == "mse" else arrays["y_test"])
    walkers = int(meta.get("walkers", 1))
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.tensor(arrays["params"].reshape(walkers, -1)[0]),
                                            model.parameters())
    bounds, per_tensor, off = arrays["bounds"], [], 0
    for p in model.parameters():
        per_tensor.append(float(bounds[off]))
        off += p.numel()
    w = cls(model.double(), train, test, loss=loss, metric=metric, grid=Grid.from_dict(meta["grid"]),
            bound=per_tensor, step=meta["step0"], seed=meta["seed"], backend=backend or meta["backend"],
            refresh_every=meta["refresh_every"], adapt_every=meta.get("adapt_every", 1000), walkers=walkers,
            threads=threads if threads is not None else int(meta.get("threads", 1)),
            walker_starts=meta.get("walker_starts", "draws"))
    load_state_dict(w, _state_of(arrays, meta))
    return w


def restore(w, path) -> None:
    """Continue the sampler ``w`` (built from its run's configuration and data) from a checkpoint
    file: the file's chain state is checked against ``w`` (architecture, grid, seed, box, counters)
    and loaded; its copy of the data is not used."""
    arrays, meta = load_npz(path, "wlmc-checkpoint")
    load_state_dict(w, _state_of(arrays, meta))


def _state_of(arrays, meta) -> dict:
    """The :meth:`entropyeng.WLMC.state_dict` a checkpoint file holds."""
    state = dict(meta, params=arrays["params"], cache=arrays["cache"], lnG=arrays["lnG"], H=arrays["H"],
                 bounds=arrays["bounds"])
    if "walker_state" in arrays:
        state["walker_state"] = arrays["walker_state"]
    return state


def _model_from(sizes, acts, bias):
    layers = []
    mods = {1: torch.nn.ReLU, 2: torch.nn.Tanh, 3: torch.nn.SiLU}
    for l, a in enumerate(acts):
        layers.append(torch.nn.Linear(sizes[l], sizes[l + 1], bias=bool(bias[l])))
        if a:
            layers.append(mods[a]())
    return torch.nn.Sequential(*layers)
