"""The tasks the ``entropyeng`` command runs: each a default configuration (the paper's settings,
Supplementary Tables 1-6) and a builder that turns a configuration into a :class:`Problem` (data,
a picklable model factory, loss and metric).

Sections of a configuration: ``data``, ``model``, ``sgd`` (the baseline) and either ``wlmc`` (the
spiral classification task) or ``wlmd`` and ``grid`` (every other task).
"""

from __future__ import annotations

import copy
import functools
import math
import os
from dataclasses import dataclass

from ..grid import PAPER_GRID as _PAPER_GRID

__all__ = ["TASKS", "Problem", "build", "TaskError"]


_INF = math.inf


class TaskError(ValueError):
    """A configuration value a task cannot use (reported by the command as one line, exit 2)."""


def _wlmd(preset, steps, **over):
    from ..wlmd.presets import PRESETS

    p = PRESETS[preset]
    w = dict(steps=steps, seed=0, walkers=1, sync_every=100, checkpoint_every=10_000, report_every=1000,
             integrator="paper", compile="auto", threads=0,
             sigma=p["sigma"], cutoff=p["cutoff"], wall_x_max=p["walls"].get("x_max", _INF),
             wall_y_max=p["walls"].get("y_max", _INF), f_max=p["schedule"]["f_max"], t1=p["schedule"]["t1"],
             t2=p["schedule"]["t2"], t3=p["schedule"]["t3"], dt=p["dt"], gamma=p["gamma"])
    w.update(over)
    return w


TASKS = {
    "spiral": {
        "task": "spiral",
        "data": {"n_per_class": 20, "train_seed": 0, "test_seed": 1000},
        "model": {"depth": 4, "width": 8, "activation": "relu"},
        "wlmc": {"stages": 500, "steps_per_stage": 200_000, "seed": 0, "checkpoint_every": 25,
                 # replica exchange (entropyeng.REWL) when walkers > 1: `windows` windows over ln(train
                 # loss) (0: one per walker), walkers / windows walkers in each
                 "walkers": 1, "windows": 0, "overlap": 0.75, "exchange_every": 10_000},
        # no table in the paper: tuned on a held-out part of the training set (docs/sgd-tuning.md;
        # lr 0.1-0.3 with batches 8-16 are equivalent within a standard error)
        "sgd": {"runs": 100, "epochs": 400, "lr": 0.1, "batch_size": 10, "optimizer": "sgd", "curve": "mean"},
    },
    "spiral_regression": {
        "task": "spiral_regression",
        "data": {"n": 250, "train_seed": 0, "test_seed": 1000},
        "model": {"width": 30, "activation": "tanh", "dtype": "float32", "device": "cpu"},
        "wlmd": _wlmd("spiral_regression", 20_000_000),
        "grid": dict(_PAPER_GRID),
        "sgd": {"runs": 100, "epochs": 300, "lr": 2e-3, "batch_size": 5, "optimizer": "adam", "curve": "mean"},
    },
    "house": {
        "task": "house",
        "data": {"n": 1460, "seed": 0},
        "model": {"width": 20, "activation": "relu", "dtype": "float32", "device": "cpu"},
        "wlmd": _wlmd("house", 10_000_000),
        "grid": dict(_PAPER_GRID),
        # the paper trained the house networks with three batch sizes "to collect enough data for the
        # full range of train loss"; it names only the best one (16), so the other two are our choice
        # within its tuning range [16, 128]
        "sgd": {"runs": 100, "epochs": 300, "lr": 5e-4, "batch_size": 16, "optimizer": "sgd",
                "more_batch_sizes": "64,128", "curve": "mean"},
    },
    "digits": {
        "task": "digits",
        "data": {"path": "", "n_train": 250, "n_test": 250, "seed": 0},
        "model": {"channels": 2, "activation": "relu", "dtype": "float32", "device": "cpu"},
        "wlmd": _wlmd("mnist", 20_000_000),
        "grid": dict(_PAPER_GRID),
        "sgd": {"runs": 100, "epochs": 100, "lr": 3e-3, "batch_size": 4, "optimizer": "sgd", "curve": "mean"},
    },
    "cifar": {
        "task": "cifar",
        "data": {"path": "", "classes": "deer,frog", "n_train": 2500, "n_test": 2500, "seed": 0},
        "model": {"channels": "6,6,12,12,12", "activation": "relu", "dtype": "float32", "device": "cpu"},
        "wlmd": _wlmd("cifar", 30_000_000),
        "grid": dict(_PAPER_GRID),
        "sgd": {"runs": 100, "epochs": 50, "lr": 1e-4, "batch_size": 64, "optimizer": "sgd", "curve": "mean"},
    },
    "polymer": {
        "task": "polymer",
        "data": {"path": "", "seed": 0},
        "model": {"width": 50, "activation": "silu", "dtype": "float32", "device": "cpu"},
        "wlmd": _wlmd("polymer", 10_000_000),
        "grid": dict(_PAPER_GRID),
        "sgd": {"runs": 100, "epochs": 300, "lr": 1e-2, "batch_size": 64, "optimizer": "sgd", "curve": "mean"},
    },
}

#: which task needs a local data file (``--data PATH``) and what it is
DATA_FILES = {
    "digits": "optional: a local MNIST .npz (x_train, y_train) or a folder of IDX files; default: "
              "scikit-learn's 8 x 8 digits",
    "cifar": "required: the folder cifar-10-batches-py of the CIFAR-10 python version",
    "polymer": "required: an .npz with X (n, 768) TransPolymer embeddings and y (n,) band gaps, or a CSV",
}


@dataclass
class Problem:
    """What a run needs: data, a model factory ``make_model(seed)``, the loss and the test metric."""

    train: tuple
    test: tuple
    make_model: object
    loss: str  # "bce", "ce", "mse"
    metric: str  # "accuracy" or "loss" (ln test loss)
    sampler: str  # "wlmc" or "wlmd"
    label: str  # the network, e.g. "4x8 relu" (Fig. 1b's points)

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def curve(self) -> str:
        """The readout the paper draws: Eq. 1's equilibrium for the WLMC spiral (Fig. 1), the
        max-entropy cell per train loss for the WLMD tasks (the magenta dots of Figs. 2 and 3)."""
        return "equilibrium" if self.sampler == "wlmc" else "max_entropy"

    @property
    def y_label(self) -> str:
        return "test accuracy" if self.metric == "accuracy" else "ln(test loss)"


# Supplementary Tables 1, 3 and 4: the best SGD (Adam for the spiral regression) learning rate and
# batch size per network width; MNIST (3e-3, 4) and CIFAR (1e-4, 64) have one setting, the tasks'
# defaults. A width between the tabulated ones takes the nearest (on a log scale).
SGD_TABLES = {
    "house": {10: (5e-4, 16), 20: (5e-4, 16), 50: (5e-3, 16), 100: (8e-3, 64)},
    "polymer": {2: (5e-3, 32), 10: (1e-2, 32), 50: (1e-2, 64), 100: (1e-2, 64)},
    "spiral_regression": {30: (2e-3, 5), 100: (5e-3, 10), 300: (2e-3, 5), 1000: (2e-3, 10)},
}


def paper_sgd(task: str, width: int):
    """(learning rate, batch size) of the paper's table for this task and width, or None."""
    table = SGD_TABLES.get(task)
    if not table:
        return None
    best = min(table, key=lambda w: abs(math.log(w) - math.log(max(int(width), 1))))
    return table[best]


def defaults(task: str) -> dict:
    return copy.deepcopy(TASKS[task])


# -- model factories (module level, so that the SGD pool can pickle them) ----------------------
def _activation(name):
    from torch import nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
    if name not in acts:
        raise TaskError(f"key 'model.activation' must be one of {sorted(acts)}, got {name!r}")
    return acts[name]


def _make(kind, kwargs, placement, seed):
    import torch

    from .. import tasks

    kw = dict(kwargs)
    if "activation" in kw:
        kw["activation"] = _activation(kw["activation"])
    model = getattr(tasks, kind)(seed=seed, **kw)
    if placement:
        model = model.to(dtype=getattr(torch, placement[0]), device=placement[1])
    return model


def _placement(model_cfg):
    """(dtype, device) of a model table, checked; None for a float64 model on the CPU (what the task
    factories build). The WLMD tasks default to float32: measured faster on every one of them (the
    compiled step of spiral regression W = 30: 246 us against 355 us in float64; the 28 x 28 CNN:
    17.7 ms against 25.9 ms in float64 on the since removed per-step path), with the exact case's slopes
    unchanged (tests/test_ops.py); ``model.dtype = "float64"`` keeps the old arithmetic."""
    import torch

    dtype, device = model_cfg.get("dtype", "float64"), model_cfg.get("device", "cpu")
    if dtype not in ("float32", "float64"):
        raise TaskError(f"key 'model.dtype' must be 'float32' or 'float64', got {dtype!r}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TaskError(f"key 'model.device' must name a torch device ('cpu', 'cuda', 'cuda:1'), got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TaskError(f"key 'model.device' is {device!r} but torch sees no CUDA device")
    return None if (dtype, dev.type) == ("float64", "cpu") else (dtype, device)


def _factory(kind, model_cfg=None, **kwargs):
    if "activation" in kwargs:
        _activation(kwargs["activation"])  # fail early, with the key's name
    return functools.partial(_make, kind, kwargs, _placement(model_cfg or {}))


def parse_ints(text, key):
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise TaskError(f"key '{key}' must be comma-separated integers, got {text!r}") from None


def _need_path(config, what):
    path = config["data"].get("path", "")
    if not path:
        raise TaskError(f"key 'data.path' is required for the {config['task']} task ({what}); "
                        "pass --data PATH") from None
    return path


def _load(fn, *args, **kwargs):
    """Run a data loader, turning its file / value errors into one-line task errors."""
    try:
        return fn(*args, **kwargs)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise TaskError(str(e)) from None


# -- builders ---------------------------------------------------------------------------------
def _spiral(c):
    from .spiral import spiral_classification

    d, m = c["data"], c["model"]
    train = spiral_classification(d["n_per_class"], seed=d["train_seed"])
    test = spiral_classification(d["n_per_class"], seed=d["test_seed"])
    make = _factory("spiral_mlp", depth=m["depth"], width=m["width"], activation=m["activation"])
    return Problem(train, test, make, "bce", "accuracy", "wlmc", f"{m['depth']}x{m['width']} {m['activation']}")


def _spiral_regression(c):
    from .spiral import spiral_regression

    d, m = c["data"], c["model"]
    train, test = spiral_regression(d["n"], seed=d["train_seed"]), spiral_regression(d["n"], seed=d["test_seed"])
    make = _factory("regression_mlp", m, width=m["width"], activation=m["activation"])
    return Problem(train, test, make, "mse", "loss", "wlmd", f"W={m['width']} N={d['n']}")


def _house(c):
    from .house import ames_housing

    d, m = c["data"], c["model"]
    train, test, _ = _load(ames_housing, n=d["n"], seed=d["seed"])
    make = _factory("house_mlp", m, n_features=train[0].shape[1], width=m["width"], activation=m["activation"])
    return Problem(train, test, make, "mse", "loss", "wlmd", f"W={m['width']}")


def _digits(c):
    from .digits import load_mnist, sklearn_digits

    d, m = c["data"], c["model"]
    if d["path"]:
        train, test = _load(load_mnist, d["path"], d["n_train"], d["n_test"], seed=d["seed"])
    else:
        train, test = _load(sklearn_digits, d["n_train"], d["n_test"], seed=d["seed"])
    make = _factory("mnist_cnn", m, image_size=train[0].shape[-1], channels=m["channels"], activation=m["activation"])
    return Problem(train, test, make, "ce", "accuracy", "wlmd", f"{m['channels']} channels")


def _cifar(c):
    from .cifar import load_cifar_pair

    d, m = c["data"], c["model"]
    path = _need_path(c, DATA_FILES["cifar"])
    classes = tuple(s.strip() for s in d["classes"].split(","))
    if len(classes) != 2:
        raise TaskError(f"key 'data.classes' must name two CIFAR-10 classes, got {d['classes']!r}")
    train, test = _load(load_cifar_pair, path, classes, d["n_train"], d["n_test"], seed=d["seed"])
    make = _factory("resnet10_ln", m, channels=parse_ints(m["channels"], "model.channels"), num_classes=2,
                    image_size=train[0].shape[-1], activation=m["activation"])
    return Problem(train, test, make, "ce", "accuracy", "wlmd", f"ResNet-10 {m['channels']}")


def _polymer(c):
    from .polymer import load_embeddings

    d, m = c["data"], c["model"]
    train, test = _load(load_embeddings, _need_path(c, DATA_FILES["polymer"]), seed=d["seed"])
    make = _factory("regressor_head", m, in_features=train[0].shape[1], width=m["width"], activation=m["activation"])
    return Problem(train, test, make, "mse", "loss", "wlmd", f"W={m['width']}")


_BUILDERS = {"spiral": _spiral, "spiral_regression": _spiral_regression, "house": _house, "digits": _digits,
             "cifar": _cifar, "polymer": _polymer}


def build(config: dict) -> Problem:
    """The :class:`Problem` of a checked configuration."""
    return _BUILDERS[config["task"]](config)


def wlmd_kwargs(config: dict, problem: Problem) -> dict:
    """The keyword arguments of :class:`entropyeng.WLMD` from a configuration's wlmd and grid tables.
    Walls are in the metric's units (a smoothed accuracy for classification); an infinite wall is
    no wall."""
    from ..grid import Grid
    from ..wlmd.presets import accuracy_to_logit

    w, g = config["wlmd"], config["grid"]
    walls = {}
    if math.isfinite(w["wall_x_max"]):
        walls["x_max"] = float(w["wall_x_max"])
    if math.isfinite(w["wall_y_max"]):
        walls["y_max"] = accuracy_to_logit(w["wall_y_max"]) if problem.metric == "accuracy" else float(w["wall_y_max"])
    try:
        grid = Grid(float(g["x_min"]), float(g["x_max"]), int(g["nx"]), float(g["y_min"]), float(g["y_max"]),
                    int(g["ny"]))
    except (TypeError, ValueError) as e:
        raise TaskError(f"table 'grid': {e}") from None
    if w["walkers"] < 1 or w["sync_every"] < 1:
        raise TaskError(f"keys 'wlmd.walkers' and 'wlmd.sync_every' must be >= 1, got {w['walkers']} and "
                        f"{w['sync_every']}")
    kw = dict(loss=problem.loss, metric=problem.metric, grid=grid, sigma=w["sigma"], cutoff=w["cutoff"], walls=walls,
              schedule=dict(f_max=w["f_max"], t1=w["t1"], t2=w["t2"], t3=w["t3"]), dt=w["dt"], gamma=w["gamma"],
              seed=int(w["seed"]), integrator=w["integrator"])
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    compile_modes = {"auto": "auto", "native": "native", "true": True, "eager": "eager", "false": False}
    if str(w["compile"]).lower() not in compile_modes:
        raise TaskError(f"key 'wlmd.compile' must be one of auto, native, true, eager, false; got {w['compile']!r}")
    if int(w["threads"]) < 0:
        raise TaskError(f"key 'wlmd.threads' must be >= 0 (0: chosen by the model's size), got {w['threads']}")
    kw.update(walkers=int(w["walkers"]), distributed=distributed, sync_every=int(w["sync_every"]),
              compile=compile_modes[str(w["compile"]).lower()], threads=int(w["threads"]) or None)
    return kw


def metric_of(task: str) -> str:
    """"accuracy" for the classification tasks, "loss" (ln test loss) for the regressions."""
    return "accuracy" if task in ("spiral", "digits", "cifar") else "loss"
