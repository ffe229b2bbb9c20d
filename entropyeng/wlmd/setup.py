"""The checks of :class:`entropyeng.WLMD`'s arguments and the set-up of its buffers: the model, the
schedule, the walls, the collective variables, the data, and the walkers' parameters and velocities
in the paper's box. Every check raises a ValueError or TypeError naming the argument."""

from __future__ import annotations

import math
import warnings

import torch

from .. import _checks as C
from .. import kernels
from ..grid import PAPER_GRID, Grid
from ..kernels.mlp_spec import outside_box
from . import physics

__all__ = ["defaults", "check_model", "check_schedule", "check_walls", "check_cvs", "check_data", "flatten"]

#: The paper's hills (10 bins of its grid, entropyeng.grid.PAPER_GRID, wide; cut at 4 sigma)
PAPER_SIGMA = 0.2
#: The shape of the paper's spiral-regression schedule (Table 6: f_max 5, t1 2e5, t2 1e7, t3 8e6 of a
#: 2e7-step run), as fractions of the budget
DEFAULT_SCHEDULE = dict(f_max=5.0, t1=0.01, t2=0.5, t3=0.4)


def defaults(grid, sigma, cutoff, schedule, steps):
    """(grid, sigma, cutoff, schedule) with the defaults filled in: the paper's grid and hills, and a
    schedule of the paper's shape scaled to ``steps`` (walker-steps)."""
    if grid is None:
        grid = Grid(**PAPER_GRID)
    if sigma is None:
        sigma = PAPER_SIGMA
    if cutoff is None:
        cutoff = 4 * float(sigma)
    if schedule is None:
        if steps is None:
            raise ValueError("schedule: give schedule=dict(f_max=..., t1=..., t2=..., t3=...) (Eq. 4) or steps=N, "
                             "the run's budget in walker-steps, to take the paper's schedule scaled to it")
        if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not 1 <= steps <= 1e15:
            raise ValueError(f"steps: expected a number of walker-steps in [1, 1e15], got {steps!r}")
        s = DEFAULT_SCHEDULE
        schedule = dict(f_max=s["f_max"], t1=s["t1"] * steps, t2=s["t2"] * steps, t3=s["t3"] * steps)
    elif steps is not None:
        raise ValueError("steps: give either schedule or steps (the default schedule is made from steps)")
    return grid, sigma, cutoff, schedule


def check_model(model):
    """(trainable parameters, dtype, device) of a model WLMD can sample."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: it has no trainable parameters")
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        raise ValueError(f"model: expected floating-point parameters of one dtype, got {sorted(map(str, dtypes))}")
    dtype = params[0].dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"model: expected float32 or float64 parameters, got {dtype}")
    devices = {p.device for p in params}
    if len(devices) != 1:
        raise ValueError(f"model: expected parameters on one device, got {devices}")
    if next(iter(devices)).type not in ("cpu", "cuda"):
        raise ValueError(f"model: expected parameters on the CPU or a CUDA device, got {next(iter(devices))} "
                         "(a meta tensor holds no values to sample)")
    random = [type(m).__name__ for m in model.modules()
              if isinstance(m, (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm))]
    if random and model.training:
        # in train mode dropout and batch statistics make the loss a random variable of the batch, not a
        # function of the weights: the energy WLMD samples must be one
        model.eval()
        warnings.warn(f"model: it has {', '.join(sorted(set(random)))} layers; WLMD evaluates it in eval mode "
                      "(dropout off, batch normalisation with its running statistics), so that the loss is a "
                      "function of the weights (model.eval() was called)", stacklevel=C.user_stacklevel())
    return params, dtype, params[0].device


def check_schedule(schedule):
    """Eq. 4's f_max, t1, t2, t3 as floats (f_max >= 0, 0 for a frozen landscape; t1 > 0, t2 >= t1,
    t3 < t2)."""
    if not isinstance(schedule, dict) or set(schedule) != {"f_max", "t1", "t2", "t3"}:
        raise ValueError("schedule: expected dict(f_max=..., t1=..., t2=..., t3=...) (Eq. 4)")
    s = {k: C.finite(v, f"schedule['{k}']") for k, v in schedule.items()}
    if not s["f_max"] >= 0 or not s["t1"] > 0 or not s["t2"] >= s["t1"] or not s["t3"] < s["t2"]:
        raise ValueError(f"schedule: expected f_max >= 0, t1 > 0, t2 >= t1, t3 < t2, got {s}")
    return s


def check_walls(walls):
    walls = dict(walls or {})
    bad = set(walls) - {"x_min", "x_max", "y_min", "y_max"}
    if bad:
        raise ValueError(f"walls: unknown keys {sorted(bad)}; expected x_min, x_max, y_min, y_max")
    return {k: C.finite(v, f"walls['{k}']") for k, v in walls.items()}


#: WLMD's y axis by the name WLMC gives it (``metric``) -> its collective variable (``cv_y``)
CV_Y_OF_METRIC = {"loss": "test_loss", "accuracy": "smoothed_accuracy"}


def cv_y_of(metric, cv_y):
    """The y collective variable of ``metric`` ("loss", "accuracy"; default "loss"), or of the older
    ``cv_y`` (accepted with a FutureWarning)."""
    if cv_y is not None:
        if metric is not None:
            raise TypeError("metric, cv_y: give metric alone (cv_y is its older name)")
        metric_name = {v: k for k, v in CV_Y_OF_METRIC.items()}.get(cv_y)
        warnings.warn(f"cv_y is now metric (the name WLMC gives it): write metric={metric_name!r}" if metric_name
                      else "cv_y is now metric (the name WLMC gives it)", FutureWarning, stacklevel=C.user_stacklevel())
        return cv_y
    if metric is None:
        return "test_loss"
    if metric not in CV_Y_OF_METRIC:
        raise ValueError(f"metric: expected 'loss' or 'accuracy', got {metric!r}")
    return CV_Y_OF_METRIC[metric]


def check_cvs(loss, cv_y, logit_y):
    """(cv_y, logit_y) checked against the loss."""
    if cv_y not in ("test_loss", "smoothed_accuracy"):
        raise ValueError(f"cv_y: expected 'test_loss' or 'smoothed_accuracy', got {cv_y!r}")
    if cv_y == "smoothed_accuracy" and loss == "mse":
        raise ValueError("cv_y: 'smoothed_accuracy' needs a classification loss, got loss 'mse' (a regression)")
    if cv_y == "test_loss" and logit_y:
        raise ValueError("logit_y: only applies to cv_y='smoothed_accuracy'")
    return cv_y, (cv_y == "smoothed_accuracy") if logit_y is None else bool(logit_y)


def bound_vector(w) -> torch.Tensor:
    """(P,) the box of each parameter of sampler ``w`` (its ``bound``: a tensor, or one number)."""
    return w.bound if isinstance(w.bound, torch.Tensor) else torch.full_like(w.state.theta[0], float(w.bound))


def round_trip_ends(walls, grid):
    """(lo, hi) of x between which round trips are counted: the walled range, else the grid's."""
    return walls.get("x_min", grid.x_min), walls.get("x_max", grid.x_max)


def check_running(compile, threads, sync_every, device):
    """``(compile, sync_every)`` checked (sync_every's default: 1000 on CUDA, 100 on the CPU), and
    ``threads`` None or an integer in [1, 4096]."""
    if not (isinstance(compile, bool) or (isinstance(compile, str) and compile in ("auto", "eager", "native"))):
        # (1 == True: an int would pass an `in` test and then fail `compile is True` later)
        raise ValueError(f"compile: expected 'auto', 'native', True, 'eager' or False, got {compile!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4096):
        raise ValueError(f"threads: expected an integer in [1, 4096], got {threads!r}")
    if sync_every is None:
        sync_every = 1000 if device.type == "cuda" else 100
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise ValueError(f"sync_every: expected an integer >= 1, got {sync_every!r}")
    return compile, sync_every


def check_data(data, name, dtype, device, loss_name):
    """(X, y) as tensors on the model's device: X in the model's dtype (finite), y as the loss takes it."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name}: expected a pair (X, y)")
    X, y = (torch.as_tensor(a) for a in data)
    for what, a in (("X", X), ("y", y)):
        if a.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name}: {what} is on the {a.device.type} device, which holds no values")
        if a.dim() == 0:
            raise ValueError(f"{name}: {what} must have one row per sample, got a scalar")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: the data set is empty")
    if X.dtype.is_complex:
        raise ValueError(f"{name}: X must be real, got {X.dtype}")
    X = X.to(dtype)  # integer or boolean inputs as numbers of the model's dtype, as WLMC takes them
    if not torch.isfinite(X).all():
        raise ValueError(f"{name}: X contains NaN or infinite values")
    if loss_name == "ce":
        y = y.long()
    elif loss_name == "bce":
        y = y.to(dtype)
    elif y.is_floating_point():
        y = y.to(dtype)
    return X.to(device), y.to(device)


def flatten(model, params, bound, K, kT, noise_seed):
    """(theta, v, bound): the (K, P) buffers of the walkers' parameters and velocities, and the box
    (a float, or a (P,) tensor for ``bound="paper"``). Walker 0's row holds the model's parameters
    (each a view into it); every walker starts there (clamped into the box, with a warning saying how
    many were outside); velocities are drawn from N(0, kT) on the counter-based stream."""
    dtype, device = params[0].dtype, params[0].device
    n = sum(p.numel() for p in params)
    theta = torch.empty(K, n, dtype=dtype, device=device)
    row = theta[0]
    b = torch.empty(n, dtype=dtype, device=device) if isinstance(bound, str) else \
        C.positive(bound, "bound", allow_inf=True)
    off = 0
    with torch.no_grad():
        for p, box in zip(params, physics.paper_bounds(model, params)):
            k = p.numel()
            row[off:off + k] = p.reshape(-1)
            if isinstance(b, torch.Tensor):
                b[off:off + k] = box
            p.data = row[off:off + k].view_as(p)
            p.grad = None
            off += k
    limit = b if isinstance(b, torch.Tensor) else torch.full_like(row, b)
    outside = (row.abs() > limit)
    if bool(outside.any()):
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        warnings.warn(outside_box(names, [p.numel() for p in params], outside.cpu().numpy(), limit.cpu().numpy(),
                                  bound), stacklevel=C.user_stacklevel())
        with torch.no_grad():
            torch.clamp_(row, -limit, limit)
    with torch.no_grad():
        theta[1:] = row
    xi = kernels.normal(noise_seed, physics.INIT_STEP, K * n, backend="torch", dtype=str(dtype).replace("torch.", ""))
    return theta, (math.sqrt(kT) * xi).to(device).reshape(K, n), b
