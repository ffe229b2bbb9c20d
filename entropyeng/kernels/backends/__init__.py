"""Kernel backends: ``"cpp"`` (compiled, CPU), ``"cuda"`` (compiled, CUDA tensors) and ``"torch"``
(the pure-torch reference). This is the one place that chooses among them: :func:`select` (the
checked API, WLMC and REWL), :func:`for_operator` (the torch operators' Python kernels, and so the
WLMD step) and :func:`requested` (the only reader of ``ENTROPYENG_BACKEND``); and only the three
backend modules call the compiled module or the reference (``wlmc_chain`` builds a WLMC chain).
Each backend module has the same functions: ``deposit``, ``gradient``, ``histogram``,
``landscape_step``, ``smooth``, ``langevin``, ``langevin_at`` and ``normal``.

``backend=None`` picks the fastest one available for the arrays given: ``cuda`` for CUDA tensors,
else ``cpp`` when the extension is built, else ``torch``. The environment variable
``ENTROPYENG_BACKEND`` overrides that default (an explicit ``backend=`` argument wins over both).
"""

from __future__ import annotations

import functools
import os

__all__ = ["available", "requested", "select", "get", "for_operator", "NAMES", "core"]

NAMES = ("cpp", "cuda", "torch")


@functools.lru_cache(maxsize=None)
def core():
    """The compiled module ``entropyeng._core``, or None when it is not built."""
    try:
        from ... import _core
    except ImportError:
        return None
    return _core


@functools.lru_cache(maxsize=None)
def _cuda_usable() -> bool:
    mod = core()
    if mod is None or not getattr(mod, "cuda_built", False):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available()) and mod.cuda_device_count() > 0


def available() -> list[str]:
    """Names of the backends that are built and usable here, fastest first."""
    names = []
    if _cuda_usable():
        names.append("cuda")
    if core() is not None:
        names.append("cpp")
    names.append("torch")
    return names


def _is_cuda(a) -> bool:
    return getattr(getattr(a, "device", None), "type", None) == "cuda"


def requested(backend=None):
    """The backend asked for: the argument, else the environment variable ``ENTROPYENG_BACKEND``
    (read here and nowhere else), else None (the fastest)."""
    return backend if backend is not None else os.environ.get("ENTROPYENG_BACKEND") or None


def select(backend=None, *arrays, walkers=1) -> str:
    """The backend to use: the explicit ``backend``, else ENTROPYENG_BACKEND, else the fastest
    available for the arrays' device. ``walkers`` > 1 is WLMC's chain of several walkers on host
    arrays: "cuda" runs them on a GPU (the default when one is usable), "cpp" on CPU threads, and the
    torch reference runs one walker only. Raises ValueError when the name is unknown, not available,
    or cannot take the arrays."""
    on_cuda = any(_is_cuda(a) for a in arrays)
    name = requested(backend)
    source = "backend" if backend is not None else "ENTROPYENG_BACKEND"
    if name is None:
        if on_cuda:
            if not _cuda_usable():
                return "torch"
            return "cuda"
        if walkers > 1 and _cuda_usable():
            return "cuda"
        return "cpp" if core() is not None else "torch"
    if name not in NAMES:
        raise ValueError(f"{source}: expected one of {', '.join(NAMES)}, got {name!r}")
    if name not in available():
        why = {"cpp": "the compiled extension entropyeng._core is not built",
               "cuda": "the extension was built without CUDA or no CUDA device is visible"}[name]
        raise ValueError(f"{source}: backend {name!r} is not available ({why}); available: {available()}")
    if name == "cpp" and on_cuda:
        raise ValueError(f"{source}: backend 'cpp' takes CPU arrays, got a CUDA tensor (use 'cuda')")
    if name == "cuda" and not on_cuda and arrays and walkers <= 1:
        raise ValueError(f"{source}: backend 'cuda' takes CUDA tensors, got CPU arrays")
    if walkers > 1 and name == "torch":
        raise ValueError("walkers: several walkers sharing one ln g need backend 'cpp' (CPU threads) or 'cuda'; "
                         "the torch reference runs one")
    return name


def for_operator(t) -> str:
    """The backend of the torch operators' Python kernels for tensor ``t``: ``cuda`` on a usable GPU,
    ``cpp`` on the CPU when the extension is built, else the reference (``torch``). The operators
    are the inside of a step, so ENTROPYENG_BACKEND does not reach them."""
    if _is_cuda(t):
        return "cuda" if _cuda_usable() else "torch"
    return "cpp" if core() is not None else "torch"


@functools.lru_cache(maxsize=None)
def get(name: str):
    """The backend module for a resolved name."""
    if name == "cpp":
        from . import cpp as mod
    elif name == "cuda":
        from . import cuda as mod
    elif name == "torch":
        from . import torch_ref as mod
    else:
        raise ValueError(f"backend: expected one of {', '.join(NAMES)}, got {name!r}")
    return mod
