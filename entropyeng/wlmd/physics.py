"""The physics of WLMD, each piece written once, as functions of tensors: the losses and collective
variables (x = ln train loss; y = ln test loss or the smoothed test accuracy of Eq. 2), the fixed
walls (Eq. 3), Eq. 4's schedule, the grid check, the round trips, the integrators, the paper's boxes.

The step (:mod:`entropyeng.wlmd.step`) and every host-side evaluation call these; none of them
synchronises with the host, so the step that uses them can be compiled whole and captured in a CUDA
graph."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["loss_value", "EPS", "INIT_STEP", "NORM_BOUND", "make_loss", "make_heads", "f_schedule", "schedule_f", "wall_force",
           "wall_energy", "wall_box", "grid_box", "on_grid", "count_round_trips", "kick_scale", "integrate", "config_temperature",
           "paper_bounds"]

EPS = 1e-4  # the logit transform of the smoothed accuracy: y = logit(eps + (1 - 2 eps) A_s)
INIT_STEP = 2**64 - 1  # counter step of the Philox stream reserved for the initial velocities


# -- losses and collective variables ---------------------------------------------------------------
def make_loss(loss):
    """``(name, fn)`` for ``loss`` in {"mse", "ce", "bce"} or a callable ``fn(output, target) -> scalar``."""
    if callable(loss):
        return "callable", loss
    if loss == "mse":
        return loss, lambda out, y: F.mse_loss(out.reshape(y.shape), y)
    if loss == "ce":
        return loss, F.cross_entropy
    if loss == "bce":
        return loss, lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape), y.to(out.dtype))
    raise ValueError(f"loss: expected 'mse', 'ce', 'bce' or a callable, got {loss!r}")


def loss_value(out, y, loss):
    """The built-in ``loss`` of :func:`make_loss` on any targets: class indices made integers for
    "ce", values made the output's dtype for "mse" and "bce" (the SGD baselines, the trainer and the
    harvest's descent call it; the WLMD step checks its targets once instead)."""
    name, fn = make_loss(loss)
    if name == "ce":
        return fn(out, y.long())
    return fn(out, y.to(out.dtype) if name in ("mse", "bce") else y)


def _rows(out, y):
    """(K, N, d) outputs and (N, d) targets of a row-wise loss, d = the elements per row."""
    K, N = out.shape[0], y.shape[0]
    return out.reshape(K, N, -1), y.reshape(N, -1)


def _mse_rows(out, y):
    o, t = _rows(out, y)
    r = o - t
    return (r * r).sum(-1)


def _mse_grad(out, y, g):
    o, t = _rows(out, y)
    return ((o - t) * (2.0 * g).unsqueeze(-1)).reshape(out.shape)


def _ce_rows(out, y):
    return torch.logsumexp(out, -1) - out.gather(-1, y.expand(out.shape[0], -1).unsqueeze(-1)).squeeze(-1)


def _ce_grad(out, y, g):
    onehot = torch.zeros_like(out).scatter_(-1, y.expand(out.shape[0], -1).unsqueeze(-1), 1.0)
    return (torch.softmax(out, -1) - onehot) * g.unsqueeze(-1)


def _bce_rows(out, y):
    o, t = _rows(out, y)
    return (F.softplus(o) - t.to(o.dtype) * o).sum(-1)


def _bce_grad(out, y, g):
    o, t = _rows(out, y)
    return ((torch.sigmoid(o) - t.to(o.dtype)) * g.unsqueeze(-1)).reshape(out.shape)


#: The built-in losses summed over each row's elements, with their gradients: ``rows(out (K, N, ...),
#: y (N, ...)) -> (K, N)`` and ``grad(out, y, g (K, N)) -> sum_i g_i d rows_i / d out``. The mean of
#: the elements over a set's rows is the loss of :func:`make_loss` (F.mse_loss, F.cross_entropy,
#: F.binary_cross_entropy_with_logits, to rounding); the gradients are checked against autograd.
ROW_LOSSES = {"mse": (_mse_rows, _mse_grad), "ce": (_ce_rows, _ce_grad), "bce": (_bce_rows, _bce_grad)}


def make_joint_test_loss_cvs(loss_name, y_tr, y_te, dtype):
    """For a built-in loss and ``cv_y="test_loss"``: ``cvs(out_all) -> (xy (K, 2), pullback)`` from
    the K models' outputs (``dtype``) on the train rows followed by the test rows, with the
    vector-Jacobian product in closed form (x, y = ln of the loss's mean over each set's elements;
    a mean is a product with a (2, N) matrix of 1 / elements). Without autograd it costs a tenth of
    differentiating :func:`make_heads` (the spiral's 500 rows, eagerly: ~15 against ~155 us)."""
    rows, grad = ROW_LOSSES[loss_name]
    y_all = torch.cat([y_tr, y_te])
    n_tr, n_te = y_tr.shape[0], y_te.shape[0]
    d = 1 if loss_name == "ce" else max(1, y_tr[:1].numel())
    A = torch.zeros(2, n_tr + n_te, dtype=dtype, device=y_all.device)
    A[0, :n_tr] = 1.0 / (n_tr * d)
    A[1, n_tr:] = 1.0 / (n_te * d)
    At = A.t().contiguous()

    def cvs(out):
        L = rows(out, y_all) @ At

        def pullback(seeds):
            return grad(out, y_all, (seeds / L) @ A)

        return torch.log(L), pullback

    return cvs


def make_heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y):
    """``heads(out_tr, out_te, error=False) -> (x, y)`` (and, with ``error``, hard minus smoothed
    test accuracy, 0 for ``cv_y="test_loss"``): one walker's collective variables from its model's
    outputs on the train and test rows, in the outputs' dtype."""

    def heads(out_tr, out_te, error=False):
        x = torch.log(loss_fn(out_tr, y_tr))
        if cv_y == "test_loss":
            y = torch.log(loss_fn(out_te, y_te))
            return (x, y, torch.zeros_like(x)) if error else (x, y)
        if out_te.dim() == 1 or out_te.shape[-1] == 1:  # one logit: binary
            z = out_te.reshape(-1)
            delta = torch.where(y_te.reshape(-1) > 0, z, -z)
        else:
            correct = out_te.gather(1, y_te.reshape(-1, 1)).squeeze(1)
            wrong = out_te.scatter(1, y_te.reshape(-1, 1), float("-inf")).amax(dim=1)
            delta = correct - wrong
        A_s = torch.sigmoid(alpha * delta).mean()
        if logit_y:
            p = EPS + (1 - 2 * EPS) * A_s
            y = torch.log(p) - torch.log1p(-p)
        else:
            y = A_s
        if not error:
            return x, y
        return x, y, (delta > 0).to(A_s.dtype).mean() - A_s

    return heads


# -- the bias: schedule and walls -------------------------------------------------------------------
def schedule_f(t, f_max, t1, t2, t3):
    """Eq. 4 at deposit ``t`` (a float64 tensor): f rises linearly to f_max until t1, holds until t2,
    then decays as f_max (t2 - t3) / (t - t3)."""
    # (the decay as 1 / (t - t3) times (t2 - t3) f_max: what torch computes for a number over a tensor,
    # written out so that the native step's C++ (csrc/wlmd_physics.h) rounds the same way)
    return torch.where(t <= t2, torch.clamp(t * (f_max / t1), max=f_max), (t - t3).reciprocal() * ((t2 - t3) * f_max))


def f_schedule(t: float, f_max: float, t1: float, t2: float, t3: float) -> float:
    """Eq. 4 at deposit ``t`` as a Python float (:func:`schedule_f`)."""
    return float(schedule_f(torch.tensor(float(t), dtype=torch.float64), f_max, t1, t2, t3))


def wall_box(walls, device=None):
    """(low, high): float64 tensors (x_min, y_min) and (x_max, y_max) of the walls (-inf / +inf where
    unset), for :func:`wall_force` and :func:`wall_energy`."""
    inf = float("inf")
    return (torch.tensor([walls.get("x_min", -inf), walls.get("y_min", -inf)], dtype=torch.float64, device=device),
            torch.tensor([walls.get("x_max", inf), walls.get("y_max", inf)], dtype=torch.float64, device=device))


def _beyond(xy, box):
    """How far each (x, y) lies beyond the walls: negative below the low ones, positive above the high."""
    return torch.clamp(xy - box[1], min=0) + torch.clamp(xy - box[0], max=0)


def wall_force(xy, box, c):
    """(K, 2): (dV_wall/dx, dV_wall/dy) of the fixed walls ``c d^2`` (Eq. 3), d the distance of each
    row (x, y) of ``xy`` beyond the walls of :func:`wall_box`."""
    return (2 * c) * _beyond(xy, box)


def wall_energy(xy, box, c):
    """(K,): the fixed wall bias ``c d^2`` at each row (x, y) of ``xy``."""
    return c * (_beyond(xy, box) ** 2).sum(-1)


# -- the grid and the round trips ------------------------------------------------------------------
def grid_box(grid, device=None):
    """(low, high): float64 tensors (x_min, y_min) and (x_max, y_max) of the grid, for :func:`on_grid`."""
    return (torch.tensor([grid.x_min, grid.y_min], dtype=torch.float64, device=device),
            torch.tensor([grid.x_max, grid.y_max], dtype=torch.float64, device=device))


def on_grid(xy, box):
    """(K,) bool: whether each row (x, y) of ``xy`` (K, 2) lies on the grid of :func:`grid_box`, edges
    included. A non-finite coordinate is off the grid (NaN fails every comparison)."""
    return ((xy >= box[0]) & (xy <= box[1])).all(dim=1)


def count_round_trips(x, live, trips, last_end, lo, hi):
    """Round trips in x between the lowest and the highest tenth of [lo, hi] (a diagnostic), in
    place, by :func:`entropyeng.statistics.round_trips`' rule (a trip is two passages between the
    ends): ``last_end`` (K,) is -1 before a walker touched an end, else the end it touched last (0
    low, 1 high) + 2 x (its passages so far, mod 2); ``trips`` (K,) counts every second passage;
    walkers not ``live`` touch nothing."""
    span = hi - lo
    end = torch.where(live & (x < lo + 0.1 * span), 0, torch.where(live & (x > hi - 0.1 * span), 1, -1))
    touched = end >= 0
    fresh = touched & (last_end < 0)
    passage = touched & (last_end >= 0) & (end != torch.remainder(last_end, 2))
    odd = 1 - torch.div(last_end, 2, rounding_mode="floor")
    trips.add_(passage & (odd == 0))
    last_end.copy_(torch.where(fresh, end, torch.where(passage, end + 2 * odd, last_end)))


# -- the integrators ------------------------------------------------------------------------------
def kick_scale(integrator: str, t):
    """Factor on dV/dtheta that :func:`integrate` expects at step ``t`` (a tensor or an int): BAOAB
    applies the closing half kick of step t - 1 and the opening one of step t together, so it takes
    2 dV/dtheta except on the first step of a trajectory; the paper's scheme takes dV/dtheta."""
    if integrator != "baoab":
        return 1.0
    if isinstance(t, torch.Tensor):
        return torch.where(t == 0, 1.0, 2.0).to(torch.float64)
    return 1.0 if t == 0 else 2.0


def integrate(langevin, theta, v, grad, integrator: str, dt: float, gamma: float, zeros=None):
    """One step of the integrator through the Langevin kernel ``langevin(theta, v, grad, dt, gamma)``
    (docs/design.md contract 4: kick, friction and noise, drift, reflect at the box; the caller binds
    bound, kT, seed and step). ``grad`` is dV/dtheta times :func:`kick_scale`.

    "paper": the scheme of the paper's WLMD scripts, one kernel call. "baoab": Leimkuhler and
    Matthews' splitting (Appl. Math. Res. Express 2013; J. Chem. Phys. 138, 174102): half kick
    (the previous step's closing one with this step's opening one) and half drift, then friction,
    noise and the second half drift; it samples a harmonic well's variance exactly at any dt.
    ``zeros``: a zero force like ``grad`` for BAOAB's second call (made here when None)."""
    if integrator == "baoab":
        langevin(theta, v, grad, 0.5 * dt, 0.0)
        langevin(theta, v, torch.zeros_like(grad) if zeros is None else zeros, 0.5 * dt, gamma)
    else:
        langevin(theta, v, grad, dt, gamma)


def config_temperature(integrator: str, kT: float, gamma: float) -> float:
    """The temperature at which the integrator samples configurations (small dt, friction ``gamma``
    per step): kT (2 - gamma) / (2 (1 - gamma)) for the paper's scheme (it damps the kick in its
    own step), kT for BAOAB."""
    if integrator == "paper":
        return kT * (2.0 - gamma) / (2.0 * (1.0 - gamma))
    return kT


# -- the box -------------------------------------------------------------------------------------
def _paper_bound(p: torch.Tensor) -> float:
    """2 / sqrt(width): width = numel / in for a tensor of shape (out, in, ...), out for a bias."""
    width = p.numel() / p.shape[1] if p.dim() >= 2 else p.shape[0]
    return 2.0 / math.sqrt(width)


NORM_BOUND = 2.0
_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm,
          torch.nn.modules.instancenorm._InstanceNorm) + ((torch.nn.RMSNorm,) if hasattr(torch.nn, "RMSNorm") else ())


def paper_bounds(model, params) -> list:
    """The box of each parameter tensor under ``bound="paper"``. Weights and biases of the layers
    that mix inputs: 2 / sqrt(width) (the paper's Methods: parameters on the order of 1/sqrt(W), the
    box twice that). Gains and biases of normalisation layers (LayerNorm, GroupNorm, BatchNorm,
    InstanceNorm, RMSNorm): their natural scale is 1 (a gain starts at 1, a bias at 0) whatever the
    width, so their box is twice that, +-2 (NORM_BOUND). The 2/sqrt(width) rule would clamp the
    ResNet's 30,528 LayerNorm gains from 1 to as little as 0.02 and change the network."""
    norm = {id(q) for m in model.modules() if isinstance(m, _NORMS) for q in m.parameters(recurse=False)}
    return [NORM_BOUND if id(p) in norm else _paper_bound(p) for p in params]
