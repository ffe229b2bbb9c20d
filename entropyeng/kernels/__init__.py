"""The landscape and Langevin kernels (docs/design.md contracts 1-4) behind one API, on every backend.

Each function validates its arguments (a ``TypeError`` or ``ValueError`` naming the argument,
raised before anything is written) and runs on the backend chosen by ``backend`` (``"cpp"``,
``"cuda"`` or ``"torch"``; None picks the fastest available for the arrays, see
:mod:`entropyeng.kernels.backends`).
"""

from __future__ import annotations


import numpy as np

from .. import _checks as C
from ..grid import Grid
from . import backends

__all__ = ["deposit", "gradient", "smooth", "langevin", "normal"]


def _grid(grid) -> Grid:
    if not isinstance(grid, Grid):
        raise TypeError(f"grid: expected an entropyeng.Grid, got {type(grid).__name__}")
    return grid


def _fast_cpp(backend, S):
    """The cpp backend when this call can go straight to it (a numpy S, one float hill or point, the
    extension built): its binding checks every argument itself, with the same messages."""
    if type(S) is not np.ndarray or backends.core() is None:
        return None
    return backends.get("cpp") if (backends.requested(backend) or "cpp") == "cpp" else None


def _walker_values(S, name, value, device_type):
    """Host float64 vector of a walker value, or a device tensor passed through on CUDA."""
    if device_type == "cuda" and C.is_tensor(value) and value.device.type == "cuda":
        if value.dim() > 1:
            raise ValueError(f"{name}: expected a number or a 1-D array, got shape {tuple(value.shape)}")
        return value, value.dim() == 0
    return C.host_vector(value, name)


def deposit(S, grid, x, y, height, sigma, cutoff, *, backend=None) -> None:
    """Deposit Gaussian hills into the landscape ``S`` in place (docs/design.md contract 1).

    Every cell whose centre lies within ``cutoff`` of (x, y) gets ``height * w / W`` with
    ``w = exp(-r^2 / 2 sigma^2)`` and ``W`` the sum of ``w`` over all lattice centres within the
    cutoff, also those beyond the grid's edge: each hill carries the same mass, and only the part
    inside the grid is written (cut, not renormalised).

    Parameters
    ----------
    S : ndarray or Tensor, shape ``grid.shape``, float32 or float64, C-contiguous
        The landscape, modified in place.
    grid : Grid
    x, y : float or 1-D array
        Hill centres, in the units of the grid's axes; finite. Arrays deposit one hill per walker.
    height : float or 1-D array
        Mass of each hill (a scalar is used for every hill).
    sigma : float
        Gaussian width (> 0), in axis units (both axes).
    cutoff : float
        Radius (>= sigma) beyond which a hill is zero.
    backend : {"cpp", "cuda", "torch"}, optional

    Notes
    -----
    On the cuda backend, x, y and height may be device tensors; their finiteness is then not
    checked on the host (that would synchronise): a non-finite centre deposits nothing.
    """
    grid = _grid(grid)
    if isinstance(x, float) and isinstance(y, float) and isinstance(height, float) \
            and isinstance(sigma, float) and isinstance(cutoff, float):
        cpp = _fast_cpp(backend, S)
        if cpp is not None:
            cpp.deposit(S, grid, np.array((x,)), np.array((y,)), np.array((height,)), sigma, cutoff)
            return
    _, _, dev = C.float_array(S, "S", shape=grid.shape, writeable=True)
    sigma, cutoff = C.hill(grid, sigma, cutoff)
    xs, _ = _walker_values(S, "x", x, dev)
    ys, _ = _walker_values(S, "y", y, dev)
    hs, h_scalar = _walker_values(S, "height", height, dev)
    n = xs.shape[0] if xs.ndim else 1
    if (ys.shape[0] if ys.ndim else 1) != n:
        raise ValueError(f"y: expected the length of x ({n}), got {ys.shape[0] if ys.ndim else 1}")
    hn = hs.shape[0] if hs.ndim else 1
    if hn != n:
        if not h_scalar:
            raise ValueError(f"height: expected the length of x ({n}) or a number, got {hn} values")
        hs = np.full(n, float(hs[0])) if isinstance(hs, np.ndarray) else hs.reshape(1).expand(n)
    for name, arr in (("x", xs), ("y", ys), ("height", hs)):
        if isinstance(arr, np.ndarray):
            C.all_finite(arr, name)
    name = backends.select(backend, S)
    backends.get(name).deposit(S, grid, xs, ys, hs, sigma, cutoff)


def gradient(S, grid, x, y, *, backend=None):
    """Gradient of the landscape at (x, y) (docs/design.md contract 2).

    Central differences at cell centres (one-sided at the edges), bilinearly interpolated from the
    four nearest centres; a point beyond the outermost centres takes the value at the edge.

    Parameters
    ----------
    S : ndarray or Tensor, shape ``grid.shape``, float32 or float64
    grid : Grid
    x, y : float or 1-D array (or, on cuda, 0-d / 1-d device tensors)

    Returns
    -------
    (dS_dx, dS_dy)
        Floats for scalar x, y; float64 arrays for arrays. On the cuda backend, float64 device
        tensors (0-d for 0-d input), computed without synchronising the host.
    """
    grid = _grid(grid)
    if isinstance(x, float) and isinstance(y, float):
        cpp = _fast_cpp(backend, S)
        if cpp is not None:
            gx, gy = cpp.gradient(S, grid, np.array((x,)), np.array((y,)))
            return float(gx[0]), float(gy[0])
    _, _, dev = C.float_array(S, "S", shape=grid.shape)
    xs, x_scalar = _walker_values(S, "x", x, dev)
    ys, y_scalar = _walker_values(S, "y", y, dev)
    nx_, ny_ = (xs.shape[0] if xs.ndim else 1), (ys.shape[0] if ys.ndim else 1)
    if nx_ != ny_:
        raise ValueError(f"y: expected the length of x ({nx_}), got {ny_}")
    for name, arr in (("x", xs), ("y", ys)):
        if isinstance(arr, np.ndarray):
            C.all_finite(arr, name)
    name = backends.select(backend, S)
    gx, gy = backends.get(name).gradient(S, grid, xs, ys)
    if name == "cuda":
        if x_scalar and y_scalar:
            return gx.reshape(()), gy.reshape(())
        return gx, gy
    if x_scalar and y_scalar:
        return float(gx[0]), float(gy[0])
    return gx, gy


#: the widest filter smooth accepts beyond its axis's length, in bins
WIDEST_FILTER = 100


def smooth(S, sigma_bins, *, backend=None):
    """Gaussian-smoothed copy of ``S`` (docs/design.md contract 3).

    Separable filter (axis 0, then axis 1) with weights ``exp(-k^2 / 2 sigma^2)`` normalised over
    ``|k| <= int(4 sigma + 1/2)``, edge mode "nearest": ``scipy.ndimage.gaussian_filter(S, sigma,
    mode="nearest", truncate=4)``. Intermediate values are float64.

    Parameters
    ----------
    S : ndarray or Tensor, 2-D, float32 or float64, C-contiguous
    sigma_bins : float or (float, float)
        Width in cells, per axis or for both; 0 leaves that axis alone.

    Returns
    -------
    A new array of S's type, dtype and shape.
    """
    shp, _, _ = C.float_array(S, "S")
    if len(shp) != 2:
        raise ValueError(f"S: expected a 2-D array, got shape {shp}")
    pair = C.sigma_pair(sigma_bins)
    for axis, (s, n) in enumerate(zip(pair, shp)):
        if s > max(n, WIDEST_FILTER):  # (the cost grows with the radius, 4 sigma, per cell)
            raise ValueError(f"sigma_bins: {s:g} bins on axis {axis} of {n} cells; a filter wider than its axis "
                             f"averages the whole axis (expected at most max({n}, {WIDEST_FILTER}))")
    name = backends.select(backend, S)
    return backends.get(name).smooth(S, pair)


def langevin(theta, v, grad, bound, dt, gamma, kT, seed, step, *, backend=None) -> None:
    """One reflecting-boundary Langevin step over all elements, in place (docs/design.md contract 4).

    ``v <- v - dt grad;  v <- (1 - gamma) v + sqrt(gamma (2 - gamma) kT) xi;  theta <- theta + dt v``,
    then reflection at ``+-bound`` (``theta <- 2b - theta`` or ``-2b - theta`` and ``v <- -v``, folded
    again while outside). ``xi`` is :func:`normal` at ``(seed, step)``: the same on every backend, so
    a run resumed at ``step`` continues exactly.

    Parameters
    ----------
    theta, v : ndarray or Tensor, float32 or float64, C-contiguous, same shape; modified in place
    grad : same dtype and shape
        The force is ``-grad``.
    bound : float or array like theta
        Half-width of the box of each element (> 0; ``inf`` for no wall).
    dt : float
        Time step (> 0).
    gamma : float
        Friction per step in [0, 1] (1: velocities fully resampled each step).
    kT : float
        Temperature (>= 0).
    seed, step : int
        Key and counter of the random stream, in [0, 2^64).

    Notes
    -----
    On the CPU a step that could overflow the float range (``|theta| + dt |v'|`` or the box beyond a
    quarter of the dtype's largest number, ``v'`` bounded by ``|v| + dt |grad| + 7 sqrt(kT)``) is
    refused (``dt``), so that finite input never leaves NaN. On the cuda backend an array ``bound``
    is not checked for positivity, nor these (that would synchronise).
    """
    shp, dt_name, dev = C.float_array(theta, "theta", writeable=True)
    C.float_array(v, "v", shape=shp, dtype=dt_name, writeable=True, like="theta")
    C.float_array(grad, "grad", shape=shp, dtype=dt_name, like="theta")
    if isinstance(bound, (np.ndarray,)) or C.is_tensor(bound):
        if tuple(bound.shape) == () and not (C.is_tensor(bound) and bound.device.type == "cuda"):
            bound = C.positive(bound, "bound", allow_inf=True)
        else:
            C.float_array(bound, "bound", shape=shp, dtype=dt_name, like="theta")
            if not (C.is_tensor(bound) and bound.device.type == "cuda"):
                b = bound if isinstance(bound, np.ndarray) else bound.detach().numpy()
                if not np.all(b > 0):
                    raise ValueError("bound: expected values > 0 (inf for no wall)")
    else:
        bound = C.positive(bound, "bound", allow_inf=True)
    dt = C.positive(dt, "dt")
    gamma = C.finite(gamma, "gamma")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma: expected a number in [0, 1], got {gamma}")
    kT = C.finite(kT, "kT")
    if kT < 0:
        raise ValueError(f"kT: expected a number >= 0, got {kT}")
    seed, step = C.counter(seed, "seed"), C.counter(step, "step")
    devices = {dev} | {C.array_info(a, n)[3] for a, n in ((v, "v"), (grad, "grad"))}
    if not isinstance(bound, float):
        devices.add(C.array_info(bound, "bound")[3])
    if len(devices) > 1:
        raise ValueError(f"theta, v, grad, bound: expected arrays on one device, got {sorted(devices)}")
    if C.overlaps(theta, v) or C.overlaps(theta, grad) or C.overlaps(v, grad):
        raise ValueError("theta, v, grad: expected separate arrays (they share memory; the update would read "
                         "what it has written)")
    if dev != "cuda":  # on the GPU a check would synchronise; the kernel keeps the box for finite input
        for a, n in ((theta, "theta"), (v, "v"), (grad, "grad")):
            if not C.finite_elements(a):
                raise ValueError(f"{n}: expected finite values (NaN or inf would leave the box)")
        C.step_in_range(theta, v, grad, bound, dt, kT, dt_name)
    name = backends.select(backend, theta)
    backends.get(name).langevin(theta, v, grad, bound, dt, gamma, kT, seed, step)


def normal(seed, step, n, *, backend=None, dtype="float64", device=None):
    """The standard normals ``xi_0 .. xi_{n-1}`` that :func:`langevin` draws at ``(seed, step)``.

    One Philox-4x32-10 call (Salmon et al. 2011) serves four consecutive elements: key = seed,
    counter = (element index // 4, step); Box-Muller on its four 32-bit words. Computed with
    fixed polynomials (no libm), the values are bitwise identical on every backend for a given
    dtype. The float32 and float64 streams use the same Philox words; their values differ by ~1e-7
    typically (u1 keeps 23 bits in float32, 32 in float64) and by up to ~1e-3 in the far tail.

    Returns a numpy array (cpp), a torch tensor (torch) or a CUDA tensor (cuda, on ``device``).
    """
    seed, step = C.counter(seed, "seed"), C.counter(step, "step")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected an integer >= 0, got {n!r}")
    dtype = str(dtype).replace("torch.", "")
    if dtype not in C.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    if backend is None and device is not None and "cuda" in str(device):
        backend = "cuda"
    name = backends.select(backend)
    if name == "cuda":
        return backends.get(name).normal(seed, step, int(n), dtype, device)
    return backends.get(name).normal(seed, step, int(n), dtype)
