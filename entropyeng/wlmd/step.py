"""The WLMD step: one function of tensors for K >= 1 walkers sharing one landscape, the only place a
step is computed. Eager, compiled, in blocks and replayed from CUDA graphs, it is this body
(:mod:`entropyeng.wlmd.runners` decides only how it is called).

``make_step(...)`` returns ``step(*state)`` (:class:`entropyeng.wlmd.state.State`), which does in
place, with no host synchronisation (no ``.item()``, no Python branch on a tensor value):

1. the forward pass on the train and test sets and the collective variables x, y of every walker
   (:mod:`entropyeng.wlmd.models`: the batched C++ operators or ``functional_call``);
2. the check of the state it starts from: a walker whose (x, y) is not finite or off the grid is
   dropped (``active`` false, ``bad`` = this step, ``bad_xy`` = that (x, y)), goes back to its last
   good parameters and deposits nothing from then on;
3. dS/dx, dS/dy at (x, y), then the hills of height f(t) of Eq. 4 (the clock in walker-steps:
   deposit t K R + 1) and the histogram counts there, in float64 (one operator,
   ``torch.ops.entropyeng.landscape_step``);
4. dS plus the fixed walls' force as the seeds of one vector-Jacobian product: dV/dtheta for all
   walkers;
5. the integrator's Langevin update (the noise counter read from the step tensor ``t``), dropped
   walkers frozen; ``t += 1``.

So ``torch.compile(step, fullgraph=True)`` traces it whole (the custom operators are opaque nodes),
and on a GPU the same function can be captured in a CUDA graph. The host reads ``t``, ``bad`` and
``active`` every ``sync_every`` steps (the sampler around it: :class:`entropyeng.WLMD`).
"""

from __future__ import annotations

import itertools
import sys
import types

import torch

from ..kernels import ops
from . import physics

__all__ = ["make_step", "repeat_step"]


def make_step(forward_vjp, *, deposits_per_step, grid, sigma, cutoff, walls, wall_c, schedule, dt, gamma, kT, seed,
              integrator, bound, ends):
    """The step function (see the module docstring). ``forward_vjp``: ``theta (K, P) -> (xy (K, 2),
    pullback)`` (:class:`entropyeng.wlmd.models.ModelFns`); ``bound``: (K, P) tensor of the
    parameters' dtype and device; ``seed``: the Philox key of the noise; ``ends``: (lo, hi) of x
    between which round trips are counted."""
    g = ops.grid_list(grid)
    seed_i = ops.seed_arg(int(seed))
    sched = dict(schedule)
    flat_bound = bound.reshape(-1)
    lo, hi = ends
    on_box, wall = physics.grid_box(grid, bound.device), physics.wall_box(walls, bound.device)

    def step(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end):
        xy, pullback = forward_vjp(theta)
        xy64 = xy.to(torch.float64)
        x64, y64 = xy64[:, 0], xy64[:, 1]
        live = active & physics.on_grid(xy64, on_box)
        first = active ^ live  # dropped by this step (live implies active)
        bad.masked_fill_(first, t)
        bad_xy.copy_(torch.where(first.unsqueeze(1), xy64, bad_xy))
        active.copy_(live)
        keep = live.unsqueeze(1)
        physics.count_round_trips(x64, live, trips, last_end, lo, hi)

        weight = live.to(torch.float64)
        f = physics.schedule_f(t.to(torch.float64) * deposits_per_step + 1, **sched)
        # dS at (x, y) before this step's hills, the hills of height f(t), the histogram counts
        dS = ops.landscape_step(S, H, g, x64, y64, f * weight, weight, sigma, cutoff)
        seeds = dS.t() + physics.wall_force(xy64, wall, wall_c)
        if integrator == "baoab":
            seeds = seeds * physics.kick_scale(integrator, t)
        seeds = torch.where(keep, seeds, 0.0).to(theta.dtype)
        (grad,) = pullback(seeds)
        # the active walkers' state is the new last good one (after the pullback, which may read
        # theta's autograd version); the dropped ones keep theirs and go back to it below
        good_theta.copy_(torch.where(keep, theta, good_theta))
        good_v.copy_(torch.where(keep, v, good_v))

        def langevin(th, vel, gr, step_dt, step_gamma):  # the module's operator, looked up at each call
            ops.langevin(th, vel, gr, flat_bound, step_dt, step_gamma, kT, seed_i, t, 0)

        physics.integrate(langevin, theta.view(-1), v.view(-1), grad.reshape(-1), integrator, dt, gamma)
        theta.copy_(torch.where(keep, theta, good_theta))
        v.copy_(torch.where(keep, v, 0.0))
        t.add_(1)

    return _own_code(step)


def repeat_step(step, n):
    """``n`` calls of ``step`` as one function (with a code object of its own, see ``_own_code``):
    compiled, the n steps are one graph and share one call's overhead."""
    def block(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end):
        for _ in range(n):
            step(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end)

    return _own_code(block)


_steps_made = itertools.count()


def _own_code(fn):
    """``fn`` with a code object of its own. torch.compile caches compiled graphs on the code object
    and tells them apart by guards; the sampler compiles with tensor guards only (the others cost
    ~50 us a call), so two samplers' steps, which share this function's code but not its constants
    (schedule, grid, walls, model), must not share a code object."""
    n = next(_steps_made)
    names = {"co_name": f"wlmd_step_{n}"}
    if sys.version_info >= (3, 11):  # co_qualname exists from Python 3.11
        names["co_qualname"] = names["co_name"]
    code = fn.__code__.replace(**names)
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
