"""A sweep's spec: a task's config (the keys of ``entropyeng run``'s TOML) and axes whose product are
the runs, each checked before any run starts.

    task = "spiral"
    steps = 2e8                     # the budget of every run (as --steps); or an axis
    [sgd]
    runs = 100
    [axes]
    model.depth = [3, 4]
    model.width = [6, 8]
    data_set = [0, 1, 2]            # the data set: the task's data seeds derive from it

An axis is a config key (``table.key``), ``steps`` (the budget, as ``--steps``) or ``data_set``:
data set k sets ``data.train_seed = k`` and ``data.test_seed = 1000 + k`` for the tasks that draw
their train and test sets apart (the spiral tasks), ``data.seed = k`` for the others. A ``[sweep]``
table holds the sweep's own settings: ``threads`` (torch threads of each run, default 1).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
from dataclasses import dataclass, field

from .. import limits as L
from ..runs.build import apply_steps
from ..runs.config import ConfigError, config_of, dump_toml, toml_module
from ..tasks.catalog import DATA_FILES, TASKS

__all__ = ["RunPlan", "Spec", "load_spec", "shipped_specs", "shipped_path"]

SPECS_DIR = os.path.join(os.path.dirname(__file__), "specs")
_SWEEP_KEYS = {"threads": int}
_SPECIAL_AXES = ("steps", "data_set")


@dataclass
class RunPlan:
    """One run of a sweep: its directory name, its axis values and its config."""

    name: str
    axes: dict
    config: dict

    @property
    def config_text(self) -> str:
        return dump_toml(self.config)


@dataclass
class Spec:
    """A parsed spec: the base table, the axes (in the file's order) and the runs of their product."""

    path: str
    task: str
    axes: dict
    runs: list = field(default_factory=list)
    threads: int = 1


def shipped_specs() -> list:
    """The names of the specs that come with the package (``entropyeng sweep NAME``)."""
    return sorted(f[:-5] for f in os.listdir(SPECS_DIR) if f.endswith(".toml"))


def shipped_path(name: str):
    """The file of a shipped spec, or None."""
    path = os.path.join(SPECS_DIR, f"{name}.toml")
    return path if name in shipped_specs() else None


def _flatten(table, prefix=""):
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _value_text(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}".replace("+", "")
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(v)).strip("_") or "_"


def _names(axes: dict) -> dict:
    """The short name of each axis in a run's directory name: the key's last part, or all of it
    where two axes share that part."""
    last = [k.split(".")[-1] for k in axes]
    return {k: (k.split(".")[-1] if last.count(k.split(".")[-1]) == 1 else k.replace(".", "_")) for k in axes}


def _data_set(config, k):
    data = config["data"]
    if "train_seed" in data:
        data["train_seed"], data["test_seed"] = k, 1000 + k
    elif "seed" in data:
        data["seed"] = k
    else:
        raise ConfigError(f"axis 'data_set': the {config['task']} task has no data seed")


def read_text_file(path) -> bytes:
    """A spec's bytes: a regular file of at most ``limits.MAX_TEXT_BYTES`` (not /dev/zero, not a FIFO that
    would block), or ConfigError."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(f"spec '{path}' could not be read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"spec '{path}' is a directory, not a .toml file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"spec '{path}' is not a regular file (a device or a pipe); refused")
        if st.st_size > L.MAX_TEXT_BYTES:
            raise ConfigError(f"spec '{path}' is {st.st_size:,} bytes, more than a spec's {L.MAX_TEXT_BYTES:,}")
        with os.fdopen(fd, "rb") as fh:
            fd = None
            return fh.read(L.MAX_TEXT_BYTES + 1)[:L.MAX_TEXT_BYTES + 1]
    finally:
        if fd is not None:
            os.close(fd)


def load_spec(source: str, data=None) -> Spec:
    """The spec of a file (or of a shipped spec's name), every run's config built and checked: an
    unknown key, an empty axis or an axis over a key that is not a config key is one ConfigError."""
    path = source if os.path.exists(source) else shipped_path(source)
    if path is None:
        raise ConfigError(f"spec '{source}' not found (a .toml file, or one of the shipped specs: "
                          f"{', '.join(shipped_specs())})")
    tomllib = toml_module()
    try:
        raw = tomllib.loads(read_text_file(path).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as e:
        raise ConfigError(f"malformed TOML in '{path}': {e}") from None
    except RecursionError:
        raise ConfigError(f"malformed TOML in '{path}': nested too deeply") from None
    raw = dict(raw)
    axes_table = raw.pop("axes", {})
    sweep_table = raw.pop("sweep", {})
    steps = raw.pop("steps", None)
    if not isinstance(axes_table, dict) or not isinstance(sweep_table, dict):
        raise ConfigError(f"{path}: 'axes' and 'sweep' must be tables")
    for key, value in sweep_table.items():
        if key not in _SWEEP_KEYS:
            raise ConfigError(f"{path}: unknown key 'sweep.{key}' (expected one of: {', '.join(_SWEEP_KEYS)})")
        if not isinstance(value, _SWEEP_KEYS[key]) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{path}: key 'sweep.{key}' must be a whole number >= 1, got {value!r}")
    base = config_of(raw)  # the base alone: an unknown key is named before the axes are looked at
    task = base["task"]
    axes = _flatten(axes_table)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: axis '{key}' must be a non-empty list of values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"{path}: axis '{key}' repeats a value ({values})")
        if key in _SPECIAL_AXES:
            continue
        table, _, name = key.partition(".")
        schema = TASKS[task]
        if not name or "." in name or not isinstance(schema.get(table), dict) or name not in schema[table]:
            raise ConfigError(f"{path}: axis '{key}' is not a config key of the {task} task (axes are 'table.key' "
                              f"names such as model.width, or steps, or data_set)")
    if steps is not None and "steps" in axes:
        raise ConfigError(f"{path}: 'steps' is both a key and an axis")
    n_runs = math.prod(len(v) for v in axes.values())
    if n_runs > L.MAX_RUNS:
        raise ConfigError(f"{path}: the axes make {n_runs:,} runs, more than {L.MAX_RUNS:,}; split the sweep")
    names = _names(axes)
    runs = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        user = copy.deepcopy(raw)
        for key, value in point.items():
            if key not in _SPECIAL_AXES:
                table, name = key.split(".")
                user.setdefault(table, {})[name] = value
        try:
            explicit = set()
            config = config_of(user, explicit)
            if "data_set" in point:
                _data_set(config, _whole(point["data_set"], "data_set"))
            if data is not None:
                if "path" not in config["data"]:
                    raise ConfigError(f"--data: the {task} task reads no data file")
                config["data"]["path"] = os.path.abspath(data)
            if DATA_FILES.get(task, "").startswith("required") and not config["data"].get("path"):
                raise ConfigError(f"the {task} task needs its data: pass --data PATH ({DATA_FILES[task]})")
            budget = point.get("steps", steps)
            if budget is not None:
                apply_steps(config, budget, keep_sgd_runs="sgd.runs" in explicit)
        except ConfigError as e:
            where = ", ".join(f"{k} = {v!r}" for k, v in point.items())
            raise ConfigError(f"{path}: the run {where}: {e}") from None
        name = "-".join(f"{names[k]}{_value_text(v)}" for k, v in point.items()) or task
        runs.append(RunPlan(name, point, config))
    if len({r.name for r in runs}) != len(runs):
        raise ConfigError(f"{path}: two runs share a directory name; give the axes values that differ as text")
    return Spec(path=path, task=task, axes=axes, runs=runs, threads=sweep_table.get("threads", 1))


def _whole(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or int(value) != value:
        raise ConfigError(f"axis '{key}' must hold whole numbers >= 0, got {value!r}")
    return int(value)
