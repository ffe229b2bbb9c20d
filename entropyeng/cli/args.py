"""The command's own checks of its numeric options (each a ConfigError naming the option)."""

from __future__ import annotations

import math

from ..runs.config import ConfigError

__all__ = ["positive_arg", "count_arg", "seed_arg", "out_arg"]


def positive_arg(text, name, kind=float, most=None):
    """A command-line number that must be finite and > 0 (``kind`` int or float) and at most ``most``
    (a limit of :mod:`entropyeng.limits`), or ConfigError."""
    try:
        value = kind(float(text))
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be > 0, got {text}")
    if most is not None and value > most:
        raise ConfigError(f"{name} must be <= {most:.6g}, got {text}")
    return value


def count_arg(value, name, most):
    """An integer option in [1, most], or ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ConfigError(f"{name} must be an integer in [1, {most:,}], got {value!r}")
    return value


def seed_arg(value, name="--seed"):
    """A seed the samplers' 64-bit streams and numpy take: an integer in [0, 2^63 - 1]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ConfigError(f"{name} must be an integer in [0, 2^63 - 1], got {value!r}")
    return value


def out_arg(value, default):
    """``--out``: the path given, or ``default()`` when the option was not given; an empty path is a
    ConfigError (it is not "the default": a command must not write where the user did not say)."""
    if value is None:
        return default()
    if not str(value).strip():
        raise ConfigError("--out: expected a path, got an empty one")
    return value
