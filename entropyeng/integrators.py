"""Langevin integrators over one flat parameter buffer, on the compiled kernels.

``paper``: the scheme of the paper's WLMD scripts (docs/design.md contract 4): kick, friction and noise,
drift, reflect, in one kernel call.

``baoab``: Leimkuhler & Matthews' BAOAB splitting (Appl. Math. Res. Express 2013; J. Chem. Phys.
138, 174102), with the same friction and noise: half kick (B), half drift (A), friction and noise
(O), half drift (A), half kick (B). The closing half kick of step t and the opening one of step t+1
use the same force, so they are applied together at the start of step t+1: one force evaluation
per step. The stored velocity is therefore the one before the closing half kick. For a harmonic
well BAOAB samples the configurational variance exactly at any time step.
The step functions take the backend module (``entropyeng.backends.get(name)``) and arrays that the
sampler validated once, so that no per-step argument checking is paid.
"""

from __future__ import annotations

__all__ = ["step_paper", "step_baoab", "INTEGRATORS"]


def step_paper(theta, v, grad, zeros, bound, dt, gamma, kT, seed, step, first, be):
    """One step of the paper's scheme; `grad` is dV/dtheta at theta."""
    be.langevin(theta, v, grad, bound, dt, gamma, kT, seed, step)


def step_baoab(theta, v, grad, zeros, bound, dt, gamma, kT, seed, step, first, be):
    """One BAOAB step; `grad` must be dV/dtheta at theta scaled by 2, except on the first step of a
    trajectory (first=True) where it is dV/dtheta itself (see grad_scale)."""
    # B (closing half kick of the previous step + opening half kick of this one) and A: the kernel
    # kicks with dt/2 * grad and drifts dt/2; noise off (gamma = 0)
    be.langevin(theta, v, grad, bound, 0.5 * dt, 0.0, kT, seed, step)
    # O and A: friction and noise, then the second half drift
    be.langevin(theta, v, zeros, bound, 0.5 * dt, gamma, kT, seed, step)


def grad_scale(integrator: str, first: bool) -> float:
    """Factor on dV/dtheta that the integrator's kernel call expects."""
    if integrator == "baoab":
        return 1.0 if first else 2.0
    return 1.0


INTEGRATORS = {"paper": step_paper, "baoab": step_baoab}
