"""The float32 tanh's rational approximation (csrc/simd.h, ``tanh_lanes``): how its coefficients were
found, and how good a rational of other degrees would be.

    python -m bench.tanh_fit                 # degrees 11/6 (the kernel's), and others for comparison

tanh z = z P(z^2) / Q(z^2) on 0 < z <= 7.9053111 (where float32's tanh reaches 1), P of degree p and
Q of degree q in s = z^2, Q(0) = 1. The fit minimises the largest relative error on a dense grid by
linear programming, each round weighting the constraints by the last round's Q (the differential
correction of Cheney and Loeb): |P(s) - f(s) Q(s)| <= t f(s) Q_prev(s), f(s) = tanh(sqrt s) / sqrt s.
The printed error is that of the exact rational in float64; the kernel evaluates it in float32 with
a reciprocal estimate and a Newton step (tests/test_mlp_batch.py holds it to 4 ulp; it measured 2.66).
"""

from __future__ import annotations

import numpy as np

HI = 7.90531110763549805
ULP = 2.0**-23  # torch.finfo(torch.float32).eps, the tests' ulp


def fit(p_degree: int, q_degree: int, rounds: int = 20, points: int = 8000):
    """(largest relative error, P's coefficients, Q's coefficients), lowest degree first."""
    from scipy.optimize import linprog

    z = np.unique(np.concatenate([np.linspace(1e-4, HI, points), HI * np.sin(np.linspace(0, np.pi / 2, points))[1:]]))
    s = z * z
    f = np.tanh(z) / z
    S = s / s.max()  # s scaled to [0, 1] for the conditioning of the powers
    Vp = np.vander(S, p_degree + 1, increasing=True)
    Vq = np.vander(S, q_degree + 1, increasing=True)
    q_prev = np.ones_like(S)
    best = None
    n = p_degree + 1 + q_degree + 1  # P's coefficients, Q's past the first (1), and t
    cost = np.zeros(n)
    cost[-1] = 1.0
    for _ in range(rounds):
        upper = np.hstack([Vp, -(f[:, None] * Vq[:, 1:]), -(f * q_prev)[:, None]])
        lower = np.hstack([-Vp, f[:, None] * Vq[:, 1:], -(f * q_prev)[:, None]])
        res = linprog(cost, A_ub=np.vstack([upper, lower]), b_ub=np.concatenate([f, -f]),
                      bounds=[(None, None)] * (n - 1) + [(0, None)], method="highs")
        P = res.x[:p_degree + 1]
        Q = np.concatenate([[1.0], res.x[p_degree + 1:n - 1]])
        q_prev = Vq @ Q
        err = float(np.max(np.abs((Vp @ P) / q_prev - f) / f))
        if best is None or err < best[0]:
            best = (err, P.copy(), Q.copy())
    err, P, Q = best
    smax = s.max()
    return err, P / smax ** np.arange(p_degree + 1), Q / smax ** np.arange(q_degree + 1)


def main():
    for p, q in [(5, 3), (6, 3), (4, 4), (4, 3)]:
        err, P, Q = fit(p, q)
        print(f"degree {2 * p + 1} over {2 * q}: largest relative error {err:.3e} = {err / ULP:.2f} ulp")
        print("  P:", ", ".join(repr(float(c)) for c in P))
        print("  Q:", ", ".join(repr(float(c)) for c in Q))


if __name__ == "__main__":
    main()
