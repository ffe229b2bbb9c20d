"""Argument checks of the public kernel API, shared by every backend.

They raise TypeError / ValueError naming the argument before any kernel runs (the compiled
bindings check again at their boundary: nothing unchecked reaches C++).
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

FLOAT_DTYPES = ("float32", "float64")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NP_NAMES = {"f": "float32", "d": "float64"}
MAX_HILL_CELLS = 2 ** 26


def is_tensor(a) -> bool:
    return type(a).__module__.startswith("torch") and hasattr(a, "is_contiguous")


def array_info(a, name: str):
    """(shape, dtype name, C-contiguous, device type) of a numpy array or torch tensor."""
    if isinstance(a, np.ndarray):
        dt = a.dtype
        if not dt.isnative:
            raise TypeError(f"{name}: expected native byte order, got dtype {dt.str}")
        return a.shape, _NP_NAMES.get(dt.char) or dt.name, a.flags.c_contiguous, "cpu"
    if is_tensor(a):
        if a.device.type not in ("cpu", "cuda"):  # meta, mps, ...: no kernel reads them
            raise ValueError(f"{name}: expected a CPU or CUDA tensor, got one on device '{a.device.type}'")
        return tuple(a.shape), str(a.dtype).replace("torch.", ""), bool(a.is_contiguous()), a.device.type
    raise TypeError(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(a).__name__}")


def float_array(a, name: str, *, shape=None, dtype=None, writeable=False, like=None):
    """Check a float32/float64 C-contiguous array; returns (shape, dtype name, device type)."""
    shp, dt, contiguous, dev = array_info(a, name)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {dt}")
    if dtype is not None and dt != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}{' (the dtype of ' + like + ')' if like else ''}, got {dt}")
    if shape is not None and shp != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}{' (the shape of ' + like + ')' if like else ''}, "
                         f"got {shp}")
    if not contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writeable and isinstance(a, np.ndarray) and not a.flags.writeable:
        raise ValueError(f"{name}: the array is read-only")
    return shp, dt, dev


def real(value, name: str) -> float:
    """A real number (Python, numpy or 0-d array/tensor) as float."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got bool")
    if isinstance(value, numbers.Real):
        return float(value)
    if (isinstance(value, np.ndarray) or is_tensor(value)) and tuple(value.shape) == ():
        return float(value)
    raise TypeError(f"{name}: expected a number, got {type(value).__name__}")


def finite(value, name: str) -> float:
    v = real(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    return v


def positive(value, name: str, *, allow_inf=False) -> float:
    v = real(value, name)
    if not (v > 0) or (math.isinf(v) and not allow_inf) or math.isnan(v):
        raise ValueError(f"{name}: expected a {'' if allow_inf else 'finite '}number > 0, got {v}")
    return v


def counter(value, name: str) -> int:
    """A non-negative integer below 2^64 (seed, step)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v < 2 ** 64:
        raise ValueError(f"{name}: expected an integer in [0, 2^64), got {v}")
    return v


def host_vector(a, name: str) -> tuple[np.ndarray, bool]:
    """(float64 1-D contiguous array, was_scalar) from a number, a 0-d/1-d array or CPU tensor."""
    if type(a) is float:  # the common case, fast
        if not math.isfinite(a):
            raise ValueError(f"{name}: expected finite values, element 0 is {a}")
        return np.array((a,)), True
    if isinstance(a, bool):
        raise TypeError(f"{name}: expected a number or a 1-D array, got bool")
    if is_tensor(a):
        if a.device.type != "cpu":
            raise ValueError(f"{name}: expected a CPU value here, got a tensor on {a.device}")
        a = a.detach().numpy()
    if isinstance(a, numbers.Real):
        return np.array([float(a)]), True
    if not isinstance(a, (np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a number or a 1-D array, got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a number or a 1-D array, got shape {arr.shape}")
    scalar = arr.ndim == 0
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.float64), scalar


def all_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{name}: expected finite values, element {k} is {arr[k]}")


def hill(grid, sigma, cutoff) -> tuple[float, float]:
    if type(sigma) is float and type(cutoff) is float and 0 < sigma <= cutoff < math.inf and (
            (2 * cutoff / grid.dx + 3) * (2 * cutoff / grid.dy + 3) <= MAX_HILL_CELLS):
        return sigma, cutoff  # fast path of the common, valid call
    sigma = positive(sigma, "sigma")
    cutoff = finite(cutoff, "cutoff")
    if not cutoff >= sigma:
        raise ValueError(f"cutoff: expected a number >= sigma ({sigma}), got {cutoff}")
    cells = (2 * cutoff / grid.dx + 3) * (2 * cutoff / grid.dy + 3)
    if cells > MAX_HILL_CELLS:
        raise ValueError(f"cutoff: a hill would span {cells:.3g} lattice cells, more than 2^26")
    return sigma, cutoff


def sigma_pair(sigma_bins) -> tuple[float, float]:
    if isinstance(sigma_bins, (tuple, list)):
        if len(sigma_bins) != 2:
            raise ValueError(f"sigma_bins: expected a number or a pair, got {len(sigma_bins)} values")
        pair = (real(sigma_bins[0], "sigma_bins[0]"), real(sigma_bins[1], "sigma_bins[1]"))
    else:
        s = real(sigma_bins, "sigma_bins")
        pair = (s, s)
    for k, s in enumerate(pair):
        if not 0 <= s <= 1e5:
            raise ValueError(f"sigma_bins: expected numbers in [0, 1e5] (bins), got {pair[k]}")
    return pair


def finite_elements(a) -> bool:
    """Whether every element of a host array or CPU tensor is finite."""
    if is_tensor(a):
        import torch

        return bool(torch.isfinite(a.detach()).all())
    return bool(np.isfinite(a).all())


def _abs_max(a) -> float:
    if is_tensor(a):
        return float(a.detach().abs().max()) if a.numel() else 0.0
    return float(np.abs(a).max()) if a.size else 0.0


def step_in_range(theta, v, grad, bound, dt: float, kT: float, dtype: str) -> None:
    """Refuse a Langevin step whose result could overflow the dtype (which would leave NaN in
    theta): |theta| + dt (|v| + dt |grad| + 7 sqrt(kT)) and the box must stay below a quarter of
    the largest finite number (the noise is a Box-Muller normal of 32-bit words: |xi| < 6.7)."""
    limit = float(np.finfo(np.float32 if dtype == "float32" else np.float64).max) / 4
    with np.errstate(over="ignore"):
        speed = _abs_max(v) + dt * _abs_max(grad) + 7.0 * math.sqrt(kT)
        reach = _abs_max(theta) + dt * speed
    if not reach <= limit:
        raise ValueError(f"dt: a step of {dt:g} could move theta beyond the {dtype} range (|theta| + dt |v| up to "
                         f"{reach:.3g}); take a smaller dt")
    b = bound if isinstance(bound, float) else _abs_max(bound)
    if math.isfinite(b) and not b <= limit:
        raise ValueError(f"bound: a finite box of {b:.3g} is beyond a quarter of the {dtype} range (use inf for "
                         "no wall)")


def overlaps(a, b) -> bool:
    """Whether two arrays (numpy or torch, one kind) share memory."""
    if is_tensor(a) and is_tensor(b):
        if a.device != b.device or a.numel() == 0 or b.numel() == 0:
            return False
        a0, b0 = a.data_ptr(), b.data_ptr()
        return a0 < b0 + b.numel() * b.element_size() and b0 < a0 + a.numel() * a.element_size()
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.may_share_memory(a, b))
    return False


def available_memory() -> int:
    """Bytes of memory available to this process (Linux: MemAvailable; elsewhere the physical total),
    or 0 where it cannot be told."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def fits_in_memory(nbytes: int, what: str) -> None:
    """Refuse, before any allocation, what would need more memory than the machine has available,
    with the estimate (a ValueError naming ``what``)."""
    have = available_memory()
    if have and nbytes > have:
        raise ValueError(f"{what}: needs about {nbytes / 2**30:.3g} GiB, and this machine has {have / 2**30:.3g} GiB "
                         "available; use a coarser grid or a smaller window")


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the caller point at the first frame outside
    the package: the user's line, however deep in the package the warning arises."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level
