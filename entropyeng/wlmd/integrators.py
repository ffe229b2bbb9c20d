"""Langevin integrators over one flat parameter buffer, on a kernel backend
(``entropyeng.kernels.backends.get(name)``): the integrators of :func:`entropyeng.wlmd.physics.integrate`
(the one place they are written) for callers that hold numpy arrays or tensors and a backend rather
than torch operators.

``paper``: the scheme of the paper's WLMD scripts (docs/design.md contract 4): kick, friction and
noise, drift, reflect, in one kernel call. ``baoab``: Leimkuhler & Matthews' BAOAB splitting with
the same friction and noise; the closing half kick of step t and the opening one of step t + 1 use
the same force and are applied together at the start of step t + 1 (one force evaluation per step),
so ``grad`` must be dV/dtheta times :func:`grad_scale`.
"""

from __future__ import annotations

from .physics import integrate, kick_scale

__all__ = ["step_paper", "step_baoab", "INTEGRATORS", "grad_scale"]


def _on(be, bound, kT, seed, step):
    def langevin(theta, v, grad, dt, gamma):
        be.langevin(theta, v, grad, bound, dt, gamma, kT, seed, step)

    return langevin


def step_paper(theta, v, grad, zeros, bound, dt, gamma, kT, seed, step, first, be):
    """One step of the paper's scheme; ``grad`` is dV/dtheta at theta."""
    integrate(_on(be, bound, kT, seed, step), theta, v, grad, "paper", dt, gamma, zeros)


def step_baoab(theta, v, grad, zeros, bound, dt, gamma, kT, seed, step, first, be):
    """One BAOAB step; ``grad`` must be dV/dtheta at theta scaled by 2, except on the first step of a
    trajectory (first=True) where it is dV/dtheta itself (see grad_scale)."""
    integrate(_on(be, bound, kT, seed, step), theta, v, grad, "baoab", dt, gamma, zeros)


def grad_scale(integrator: str, first: bool) -> float:
    """Factor on dV/dtheta that the integrator's kernel call expects."""
    return kick_scale(integrator, 0 if first else 1)


INTEGRATORS = {"paper": step_paper, "baoab": step_baoab}
