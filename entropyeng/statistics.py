"""The statistics of a sampler, each written once and used everywhere: a histogram's flatness, round
trips between two ends, the Wang-Landau stage schedules (the paper's 5 / (n + 10) and the 1/t
tail), and for a harvest's series the integrated autocorrelation time (Sokal's automatic window)
and thinning by it. (Eq. 4's WLMD schedule is traced into the step: :mod:`entropyeng.wlmd.physics`.)

Round trips: a trip is two passages between the ends (low to high and back, or high to low and
back), the count of Trebst, Huse and Troyer (Phys. Rev. E 70, 046701, 2004). Before 2026-12-06 the
WLMD step counted every return from the high end to the low one, which also counted a walker's first
descent from where it started (the high end, for a network drawn at random): one more than the
trips it made. The step now counts by this rule (:func:`entropyeng.wlmd.physics.count_round_trips`)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["autocorrelation_time", "thin", "round_trips", "flatness", "paper_ln_f", "one_over_t", "one_over_t_ln_f"]


def autocorrelation_time(series, c=5.0) -> float:
    """tau = 1 + 2 sum_{t=1..M} rho(t), with M the first window at least ``c`` tau (A. Sokal,
    "Monte Carlo methods in statistical mechanics", 1997): in samples of ``series``; 1 for a
    series of fewer than 4 samples or no variance."""
    y = np.asarray(series, dtype=np.float64)
    n = y.size
    if n < 4 or not np.ptp(y) > 0:
        return 1.0
    y = y - y.mean()
    f = np.fft.rfft(y, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    rho = acf / acf[0]
    tau = 1.0
    for m in range(1, n):
        tau = 1.0 + 2.0 * rho[1:m + 1].sum()
        if m >= c * tau:
            break
    return float(max(tau, 1.0))


def thin(n, tau, count=None):
    """Indices of ``n`` samples thinned by ceil(tau) (decorrelated), then at most ``count`` of
    those, spread evenly."""
    idx = np.arange(0, n, max(1, int(math.ceil(tau))))
    if count is not None and idx.size > count:
        idx = idx[np.linspace(0, idx.size - 1, count).round().astype(int)]
    return idx


def round_trips(x, lo, hi) -> int:
    """Round trips between the ends: passages from x <= lo to x >= hi or back, two to a trip."""
    passages, last = 0, 0
    for v in np.asarray(x, dtype=np.float64):
        end = -1 if v <= lo else 1 if v >= hi else 0
        if end and end != last:
            passages += last != 0
            last = end
    return passages // 2


def flatness(counts) -> float:
    """min / mean of the visits over the visited entries (1 is perfectly flat; 0 when none is
    visited): the flatness of a histogram (any shape) or of a column's visits."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    return float(c.min() / c.mean()) if c.size else 0.0


def paper_ln_f(stage: int) -> float:
    """ln f = 5 / (n + 10) at WLMC stage n (the paper's Methods)."""
    return 5.0 / (stage + 10)


def one_over_t(t: int, cells: int) -> float:
    """ln f = N / t, the 1/t schedule of Belardinelli and Pereyra (Phys. Rev. E 75, 046701, 2007): N
    cells, t samples so far (time in sweeps over the cells). WLMC's tail (:func:`one_over_t_ln_f`)
    and the harvest's tuning (:class:`entropyeng.harvest.tune.XSchedule`) end on it."""
    return cells / t


def one_over_t_ln_f(stage: int, t: int, visited: int) -> float:
    """min(5 / (n + 10), N / t): the paper's stages until the 1/t tail of Belardinelli and Pereyra
    (Phys. Rev. E 75, 046701, 2007) falls below them, t the walker-steps done and N the cells
    visited (time in sweeps over the visited cells); the paper's value while nothing is counted."""
    return paper_ln_f(stage) if t == 0 or visited == 0 else min(paper_ln_f(stage), one_over_t(t, visited))
