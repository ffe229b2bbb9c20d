"""The kernels as torch operators, so that a whole WLMD step can be traced, compiled and captured.

``torch.ops.entropyeng.{gradient, deposit, histogram, langevin}`` are operators of the torch
library ``entropyeng`` with fake (meta) implementations: ``torch.compile(fullgraph=True)`` sees each
as one opaque node with known output shapes (mutations declared in the schema, ``Tensor(a!)``), and
the compiled backends (cpp on CPU tensors, cuda on CUDA tensors, the torch reference where the
extension is missing) run underneath. The step counter of the Langevin noise is a 0-d int64 tensor,
so no host read is needed to advance it (on the CPU the operator reads it inside its own body, which
is not a graph break; on CUDA the kernel reads it from device memory).

They are defined with ``torch.library.define`` / ``impl`` / ``register_fake`` rather than the
``torch.library.custom_op`` decorator: measured here (torch 2.13, one CPU thread) a call through
``custom_op`` costs 22 µs before the body runs, a plain library operator 3 µs, and a WLMD step makes
two to three such calls. The CPU kernels of the two a step calls, ``landscape_step`` and
``langevin``, are C++ (``bindings/torch_ops.cpp``, loaded at import when the package was built with
torch importable: :data:`COMPILED_OPERATORS`), so a compiled step calls them with no Python in
between; without that library they are the Python functions below, which cost 15-20 µs a call in
conversions to numpy and the pybind11 call (measured, one thread). Those Python kernels, on every
device, hand the work to the backend of the tensors (:func:`entropyeng.kernels.backends.for_operator`:
cpp, cuda, or the reference): the same backend modules the checked API calls, so the choice among
implementations is made in one place.

``mlp_batch`` / ``mlp_batch_backward`` and ``net_batch`` / ``net_batch_backward`` run the model of a
WLMD step for K walkers at once: an MLP, or a small CNN, on one set of rows, and the vector-Jacobian
product of its output (docs/design.md contracts 7 and 8; ``mlp_batch`` also returns the activations
its backward reads instead of recomputing them). Their CPU kernels are C++ in the same
library (``bindings/torch_ops_mlp.cpp``, ``torch_ops_net.cpp``); without it, and on CUDA, the torch
reference (:mod:`entropyeng.reference`) runs, and the sampler keeps ``functional_call`` instead.

``landscape_step(S, H, grid, x, y, height, weight, sigma, cutoff)`` is the three landscape operators of
one WLMD step in one call: dS at (x, y) before this step's hills, then the hills, then the counts.
One operator that reads and writes S lets the compiler update S in place (with ``gradient`` and
``deposit`` as two nodes, inductor copied the 2000 x 2000 landscape twice per step to keep the read
before the write: 6 ms of a 0.5 ms step).

Contracts are the kernels' (docs/design.md; :mod:`entropyeng.kernels`), with two conventions that a
traced step needs: the grid is a list ``[x_min, x_max, nx, y_min, y_max, ny]`` of floats, and a
point that is not finite contributes nothing (``deposit`` and ``histogram`` skip it, ``gradient``
gives 0 there), so that a step can carry a failed walker to the next host check without branching
on a tensor value. The samplers validate their buffers once, at construction (these operators are
the inside of a step, not a user-facing API); the C++ kernels still check every argument
(``bindings/arg_rules.h``, the rules the pybind11 module applies too) and raise a ValueError naming it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import warnings

import torch

from .. import _floors
from ..grid import Grid
from . import backends

_floors.check_torch(torch.__version__)

__all__ = ["gradient", "deposit", "histogram", "landscape_step", "langevin", "mlp_batch", "mlp_batch_backward",
           "net_batch", "net_batch_backward", "grid_list", "seed_arg"]

_LIB = "entropyeng"
torch.library.define(f"{_LIB}::gradient", "(Tensor S, float[] grid, Tensor x, Tensor y) -> Tensor")
torch.library.define(f"{_LIB}::deposit", "(Tensor(a!) S, float[] grid, Tensor x, Tensor y, Tensor height, "
                                         "float sigma, float cutoff) -> ()")
torch.library.define(f"{_LIB}::histogram", "(Tensor(a!) H, float[] grid, Tensor x, Tensor y, Tensor weight) -> ()")
torch.library.define(f"{_LIB}::landscape_step", "(Tensor(a!) S, Tensor(b!) H, float[] grid, Tensor x, Tensor y, "
                                                "Tensor height, Tensor weight, float sigma, float cutoff) -> Tensor")
torch.library.define(f"{_LIB}::langevin", "(Tensor(a!) theta, Tensor(b!) v, Tensor grad, Tensor bound, float dt, "
                                          "float gamma, float kT, int seed, Tensor step, int step_offset) -> ()")
torch.library.define(f"{_LIB}::mlp_batch", "(Tensor theta, Tensor X, int[] sizes, int[] acts, int[] bias) "
                                           "-> (Tensor, Tensor)")
torch.library.define(f"{_LIB}::net_batch", "(Tensor theta, Tensor X, int[] spec) -> Tensor")
torch.library.define(f"{_LIB}::net_batch_backward", "(Tensor theta, Tensor X, Tensor grad_out, int[] spec) -> Tensor")
torch.library.define(f"{_LIB}::mlp_batch_backward", "(Tensor theta, Tensor X, Tensor cache, Tensor grad_out, "
                                                    "int[] sizes, int[] acts, int[] bias) -> Tensor")
# the native WLMD step (bindings/torch_ops_wlmd.cpp): n steps of K walkers on the sampler's state, in
# place; C++ only (no Python kernel: without the operator library the step runs in torch)
torch.library.define(f"{_LIB}::wlmd_native", "(Tensor(a!) theta, Tensor(b!) v, Tensor(c!) good_theta, "
                     "Tensor(d!) good_v, Tensor(e!) S, Tensor(f!) H, Tensor(g!) t, Tensor(h!) bad, Tensor(i!) bad_xy, "
                     "Tensor(j!) active, Tensor(k!) trips, Tensor(l!) last_end, Tensor X, Tensor targets, "
                     "Tensor labels, Tensor bound, int[] model, int[] ints, float[] reals, int n_steps) -> ()")
# the CVs of K walkers' outputs and their pullback, the same C++ functions as the native step's
# (csrc/wlmd_physics.h), for the torch step on the batched kernels with a built-in loss
torch.library.define(f"{_LIB}::wlmd_cvs", "(Tensor out, Tensor targets, Tensor labels, int[] ints, float alpha) "
                                          "-> Tensor")
torch.library.define(f"{_LIB}::wlmd_cv_pullback", "(Tensor out, Tensor targets, Tensor labels, Tensor values, "
                                                  "Tensor seeds, int[] ints, float alpha) -> Tensor")


gradient = torch.ops.entropyeng.gradient.default
deposit = torch.ops.entropyeng.deposit.default
histogram = torch.ops.entropyeng.histogram.default
langevin = torch.ops.entropyeng.langevin.default
landscape_step = torch.ops.entropyeng.landscape_step.default
mlp_batch = torch.ops.entropyeng.mlp_batch.default
mlp_batch_backward = torch.ops.entropyeng.mlp_batch_backward.default
net_batch = torch.ops.entropyeng.net_batch.default
net_batch_backward = torch.ops.entropyeng.net_batch_backward.default


def grid_list(grid: Grid) -> list:
    """The grid as the operators take it."""
    return [float(grid.x_min), float(grid.x_max), float(grid.nx), float(grid.y_min), float(grid.y_max),
            float(grid.ny)]


def seed_arg(seed: int) -> int:
    """A 64-bit unsigned seed as the operators' signed int64 argument (the operator undoes it)."""
    return seed - 2**64 if seed >= 2**63 else seed


@functools.lru_cache(maxsize=64)
def _grid_of(g: tuple) -> Grid:
    """The Grid of an operator's list, by Grid's rules (the C++ operators apply the same ones), the
    counts given as floats taken only when whole."""
    if len(g) != 6:
        raise ValueError(f"grid: expected [x_min, x_max, nx, y_min, y_max, ny], got {len(g)} numbers")
    n = [int(c) if float(c).is_integer() else c for c in (g[2], g[5])]
    try:
        return Grid(g[0], g[1], n[0], g[3], g[4], n[1])
    except (TypeError, ValueError) as e:
        raise ValueError(f"grid: {e}") from None


def _grid(g) -> Grid:
    return _grid_of(tuple(g))


def _impl(t):
    """The backend module of an operator's tensors (:func:`entropyeng.kernels.backends.for_operator`)."""
    return backends.get(backends.for_operator(t))


def _finite_points(x, y, g: Grid):
    """(ok, x, y): float64 points, the non-finite ones moved to the grid's corner (their contribution
    is then masked: a traced step carries a failed walker to the next host check without branching)."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    ok = torch.isfinite(x) & torch.isfinite(y)
    return ok, torch.where(ok, x, g.x_min), torch.where(ok, y, g.y_min)


def _pair(gx, gy, like):
    """(2, n) float64 tensor on like's device of a backend's two gradient components."""
    return torch.stack([torch.as_tensor(gx, device=like.device).reshape(-1),
                        torch.as_tensor(gy, device=like.device).reshape(-1)]).to(torch.float64)


# -- the Python kernels of the operators, on every device: the backend of the tensors does the work --
def _gradient(S, grid, x, y):
    g = _grid(grid)
    ok, xs, ys = _finite_points(x, y, g)
    with torch.no_grad():
        out = _pair(*_impl(S).gradient(S, g, xs, ys), S)
    return torch.where(ok, out, 0.0)


def _deposit(S, grid, x, y, height, sigma, cutoff):
    g = _grid(grid)
    ok, xs, ys = _finite_points(x, y, g)
    with torch.no_grad():
        _impl(S).deposit(S, g, xs, ys, torch.where(ok, height.to(torch.float64), 0.0), sigma, cutoff)


def _histogram(H, grid, x, y, weight):
    g = _grid(grid)
    ok, xs, ys = _finite_points(x, y, g)
    with torch.no_grad():
        _impl(H).histogram(H, g, xs, ys, torch.where(ok, weight.to(torch.float64), 0.0))


def _landscape_step(S, H, grid, x, y, height, weight, sigma, cutoff):
    g = _grid(grid)
    ok, xs, ys = _finite_points(x, y, g)
    with torch.no_grad():
        out = _impl(S).landscape_step(S, H, g, xs, ys, torch.where(ok, height.to(torch.float64), 0.0),
                                      torch.where(ok, weight.to(torch.float64), 0.0), sigma, cutoff)
    return torch.where(ok, torch.as_tensor(out, device=S.device), 0.0)


def _langevin(theta, v, grad, bound, dt, gamma, kT, seed, step, step_offset):
    # the counter stays a tensor: the CUDA kernel reads it on the device (no host synchronisation)
    with torch.no_grad():
        _impl(theta).langevin_at(theta, v, grad, bound, dt, gamma, kT, seed % 2**64, step, step_offset)


# -- the batched MLP: the torch reference on any device (the C++ library has the CPU kernels) --------
def _mlp_batch_torch(theta, X, sizes, acts, bias):
    from .. import reference

    return reference.mlp_batch(theta, X, sizes, acts, bias)


def _mlp_batch_backward_torch(theta, X, cache, grad_out, sizes, acts, bias):
    from .. import reference

    return reference.mlp_batch_backward(theta, X, cache, grad_out, sizes, acts, bias)


def _net_batch_torch(theta, X, spec):
    from .. import reference

    return reference.net_batch(theta, X, spec)


def _net_batch_backward_torch(theta, X, grad_out, spec):
    from .. import reference

    return reference.net_batch_backward(theta, X, grad_out, spec)


def operator_library() -> str:
    """The module name of the C++ operator library built for this torch (CMakeLists.txt makes the
    same tag: the version with every character other than a letter or digit as "_")."""
    return f"entropyeng._torch_ops_{re.sub(r'[^0-9A-Za-z]', '_', torch.__version__)}"


def _say_the_operators_are_missing():
    """One warning when the compiled engine is installed but its C++ torch operators are not, for this
    torch (a build in an isolated environment has no torch to build them against; another torch's
    are not loaded): every WLMD step then calls the Python kernels."""
    from . import backends

    if backends.core() is None:  # no compiled engine at all: the package says so on import
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    others = sorted(n for n in os.listdir(here) if n.startswith("_torch_ops_"))
    why = (f"built for another torch ({', '.join(others)}), this is torch {torch.__version__}" if others
           else "not built (the package was built without torch importable, e.g. in an isolated build)")
    warnings.warn(f"entropyeng: the C++ torch operators are {why}; WLMD steps run the slower Python kernels. "
                  "Rebuild with: pip install --no-build-isolation --force-reinstall --no-deps entropyeng "
                  "(from a checkout: pip install --no-build-isolation .)", RuntimeWarning, stacklevel=2)


def _load_compiled_operators() -> bool:
    """Load the C++ CPU kernels of ``landscape_step`` and ``langevin`` (``entropyeng/_torch_ops_<torch
    version>*.so``, built when torch was importable at build time), unless the environment says
    ``ENTROPYENG_PYTHON_OPS=1``. The file name carries the torch version it was built against, and
    only that version loads it (a library of another torch's C++ ABI could crash the process)."""
    if os.environ.get("ENTROPYENG_PYTHON_OPS", "") not in ("", "0"):
        return False
    try:
        spec = importlib.util.find_spec(operator_library())
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        _say_the_operators_are_missing()
        return False
    try:
        torch.ops.load_library(spec.origin)
    except OSError as err:  # pragma: no cover - a broken install
        warnings.warn(f"entropyeng: the C++ torch operators in {spec.origin} did not load ({err}); "
                      "the Python kernels run instead", RuntimeWarning, stacklevel=2)
        return False
    return True


#: Whether the CPU kernels of ``landscape_step`` and ``langevin`` are the C++ ones (no Python in a
#: compiled step's call) or the Python ones below (the same kernels through pybind11, ~15 us more a call).
COMPILED_OPERATORS = _load_compiled_operators()

#: The Python kernels of every operator, by name: (CPU, CUDA). The CPU one is registered unless the C++
#: library registered its own.
PYTHON_KERNELS = {"gradient": (_gradient, _gradient), "deposit": (_deposit, _deposit),
                  "histogram": (_histogram, _histogram), "landscape_step": (_landscape_step, _landscape_step),
                  "langevin": (_langevin, _langevin),
                  "mlp_batch": (_mlp_batch_torch, _mlp_batch_torch),
                  "mlp_batch_backward": (_mlp_batch_backward_torch, _mlp_batch_backward_torch),
                  "net_batch": (_net_batch_torch, _net_batch_torch),
                  "net_batch_backward": (_net_batch_backward_torch, _net_batch_backward_torch)}

for _name, (_cpu, _cuda) in PYTHON_KERNELS.items():
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"{_LIB}::{_name}", "CPU"):
        torch.library.impl(f"{_LIB}::{_name}", "CPU")(_cpu)
    torch.library.impl(f"{_LIB}::{_name}", "CUDA")(_cuda)


@torch.library.register_fake(f"{_LIB}::gradient")
def _(S, grid, x, y):
    return x.new_empty((2, x.shape[0]), dtype=torch.float64)


@torch.library.register_fake(f"{_LIB}::landscape_step")
def _(S, H, grid, x, y, height, weight, sigma, cutoff):
    return x.new_empty((2, x.shape[0]), dtype=torch.float64)


@torch.library.register_fake(f"{_LIB}::mlp_batch")
def _(theta, X, sizes, acts, bias):
    from ..reference.mlp_batch import cache_shape

    return (theta.new_empty((theta.shape[0], X.shape[0], sizes[-1])),
            theta.new_empty(cache_shape(theta.shape[0], X.shape[0], sizes, acts)))


@torch.library.register_fake(f"{_LIB}::mlp_batch_backward")
def _(theta, X, cache, grad_out, sizes, acts, bias):
    return torch.empty_like(theta)


@torch.library.register_fake(f"{_LIB}::net_batch")
def _(theta, X, spec):
    from ..reference.net_batch import out_features

    return theta.new_empty((theta.shape[0], X.shape[0], out_features(spec, tuple(X.shape[1:]))))


@torch.library.register_fake(f"{_LIB}::wlmd_cvs")
def _(out, targets, labels, ints, alpha):
    return out.new_empty((out.shape[0], 5), dtype=torch.float64)


@torch.library.register_fake(f"{_LIB}::wlmd_cv_pullback")
def _(out, targets, labels, values, seeds, ints, alpha):
    return torch.empty_like(out)


@torch.library.register_fake(f"{_LIB}::net_batch_backward")
def _(theta, X, grad_out, spec):
    return torch.empty_like(theta)


for _name in ("deposit", "histogram", "langevin"):
    torch.library.register_fake(f"{_LIB}::{_name}")(lambda *args: None)
