"""Run configurations: a task's defaults, a TOML file and ``--set key=value`` overrides, checked
key by key (unknown key, wrong type -> one line naming the key)."""

from __future__ import annotations

import copy
import json
import math
import os

from .tasks.catalog import TASKS

__all__ = ["ConfigError", "load_config", "dump_toml"]


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key (exit code 2)."""


def _check(config: dict, schema: dict, prefix=""):
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"unknown key '{name}' (expected one of: {', '.join(sorted(schema))})")
        ref = schema[key]
        if isinstance(ref, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"key '{name}' must be a table, got {type(value).__name__}")
            _check(value, ref, name + ".")
        elif isinstance(ref, bool) != isinstance(value, bool) or (
                isinstance(ref, (int, float)) and not isinstance(value, (int, float))) or (
                isinstance(ref, str) and not isinstance(value, str)) or (
                isinstance(ref, int) and not isinstance(ref, bool) and isinstance(value, float)
                and not value.is_integer()):
            raise ConfigError(f"key '{name}' must be {type(ref).__name__}, got {value!r}")


def _integers(config: dict, schema: dict):
    """Integer keys given as whole floats (2e7 in TOML) become ints."""
    for key, ref in schema.items():
        if key not in config:
            continue
        if isinstance(ref, dict):
            _integers(config[key], ref)
        elif isinstance(ref, int) and not isinstance(ref, bool) and isinstance(config[key], float):
            config[key] = int(config[key])


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _coerce(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def load_config(source: str, sets=(), data=None) -> dict:
    """The config of a task name or a TOML file, with ``--set key=value`` overrides and ``--data``
    (the task's ``data.path``), checked."""
    if source in TASKS:
        config = copy.deepcopy(TASKS[source])
    elif source.endswith(".toml") or os.path.exists(source):
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib
        try:
            with open(source, "rb") as fh:
                user = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file '{source}' not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"malformed TOML in '{source}': {e}") from None
        task = user.get("task")
        if task not in TASKS:
            raise ConfigError(f"key 'task' must name a task ({', '.join(TASKS)}), got {task!r}")
        _check(user, TASKS[task])
        config = _merge(TASKS[task], user)
    else:
        raise ConfigError(f"unknown task '{source}' (tasks: {', '.join(TASKS)}; or a .toml config)")
    schema = TASKS[config["task"]]
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        parts = key.split(".")
        over = node = {}
        for p in parts[:-1]:
            node[p] = {}
            node = node[p]
        node[parts[-1]] = _coerce(value)
        _check(over, schema)
        config = _merge(config, over)
    if data is not None:
        if "path" not in schema["data"]:
            raise ConfigError(f"--data: the {config['task']} task reads no data file")
        config["data"]["path"] = os.path.abspath(data)
    _check(config, schema)
    _integers(config, schema)
    return config


def dump_toml(config: dict) -> str:
    """A TOML text of a config of scalars and one level of tables."""
    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)

    lines = [f"{k} = {scalar(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
