"""Philox-4x32-10 and the Langevin normals in torch integer and float operations.

The same arithmetic as ``csrc/philox.h``, operation for operation, so that the values are bitwise
identical to the compiled backends. 32-bit words live in int64 tensors; the 32 x 32 -> 64 bit
product is split into 16-bit halves so that no intermediate overflows int64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["philox4x32_10", "normal"]

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = 0xFFFFFFFF


def _mulhilo(a: int, b: torch.Tensor):
    """(hi, lo) 32-bit words of the product of the constant a and the words in b."""
    t1 = b * (a & 0xFFFF)  # < 2^48
    t2 = b * (a >> 16)  # < 2^48
    q = t2 + (t1 >> 16)  # < 2^49
    return q >> 16, ((q & 0xFFFF) << 16) | (t1 & 0xFFFF)


def philox4x32_10(c0, c1, c2, c3, k0: int, k1: int):
    """Philox-4x32-10 of counters (c0..c3, int64 tensors of 32-bit words) under key (k0, k1)."""
    for rnd in range(10):
        if rnd:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _f32(x: float) -> float:
    """The float32 rounding of a double, as csrc's EE_F."""
    return float(np.float32(x))


_LOG64 = [1.0 / k for k in (23.0, 21.0, 19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0)]
_LOG32 = [_f32(1.0 / k) for k in (11.0, 9.0, 7.0, 5.0, 3.0)]
_COS64 = [(-1.0) ** k / float(math.factorial(2 * k)) for k in range(11, 0, -1)]  # k = 11 .. 1
_SIN64 = [(-1.0) ** k / float(math.factorial(2 * k + 1)) for k in range(11, 0, -1)]
_COS32 = [_f32((-1.0) ** k / float(math.factorial(2 * k))) for k in range(6, 1, -1)]  # k = 6 .. 2
_SIN32 = [_f32((-1.0) ** k / float(math.factorial(2 * k + 3))) for k in range(5, -1, -1)]


def _unit_log(u: torch.Tensor) -> torch.Tensor:
    """ln u for u in (0, 1] (csrc unit_log), float64 or float32."""
    if u.dtype == torch.float64:
        bits = u.view(torch.int64)
        e = (((bits >> 52) & 0x7FF) - 1022).to(torch.float64)
        m = ((bits & 0x000FFFFFFFFFFFFF) | 0x3FE0000000000000).view(torch.float64)
        low = m < 0.70710678118654752440
        coeffs, last, ln2_hi, ln2_lo = _LOG64, 1.0, 6.93147180369123816490e-01, 1.90821492927058770002e-10
    else:
        bits = u.view(torch.int32)
        e = (((bits >> 23) & 0xFF) - 126).to(torch.float32)
        m = ((bits & 0x007FFFFF) | 0x3F000000).view(torch.float32)
        low = m < _f32(0.70710678118654752440)
        coeffs, last, ln2_hi, ln2_lo = _LOG32, 1.0, _f32(0.693145751953125), _f32(1.4286068202862268e-06)
    m = torch.where(low, m * 2.0, m)
    e = torch.where(low, e - 1.0, e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = s2 * coeffs[0]
    p = p + coeffs[1]
    for c in coeffs[2:]:
        p = p * s2 + c
    p = p * s2 + last
    return e * ln2_hi + (2.0 * s * p + e * ln2_lo)


def _quarter_sincos(a: torch.Tensor):
    """(cos x, sin x) for x = 2 pi a, a in [0, 1/4] (csrc quarter_sincos)."""
    if a.dtype == torch.float64:
        x = 6.28318530717958647692 * a
        x2 = x * x
        p = x2 * _COS64[0]
        for c in _COS64[1:]:
            p = c + p
            p = p * x2
        # _COS64 ends with k = 1 (-1/2); the loop leaves p = (... - 1/2) x2
        c = 1.0 + p
        q = x2 * _SIN64[0]
        for k in _SIN64[1:]:
            q = k + q
            q = q * x2
        s = x + x * q
        return c, s
    x = _f32(6.28318530717958647692) * a
    x2 = x * x
    p = x2 * _COS32[0]
    for c in _COS32[1:]:
        p = c + p
        p = p * x2
    p = -0.5 + p
    c = 1.0 + p * x2
    q = x2 * _SIN32[0]
    for k in _SIN32[1:-1]:
        q = k + q
        q = q * x2
    q = _SIN32[-1] + q
    s = x - x * (q * x2)
    return c, s


def _radius_sqrt(t: torch.Tensor) -> torch.Tensor:
    """sqrt(t) by a magic-constant guess of 1/sqrt(t) and Newton steps (csrc radius_sqrt); torch's own
    sqrt is not correctly rounded on every CPU build, this is the same bits everywhere."""
    if t.dtype == torch.float64:
        y = (0x5FE6EB50C7B537A9 - (t.view(torch.int64) >> 1)).view(torch.float64)
        steps = 4
    else:
        y = (0x5F375A86 - (t.view(torch.int32) >> 1)).view(torch.float32)
        steps = 3
    h = 0.5 * t
    for _ in range(steps):
        y = y * (1.5 - h * (y * y))
    return t * y


def _box_muller(ra: torch.Tensor, rb: torch.Tensor, dtype: torch.dtype):
    """Box-Muller pair from two words (csrc box_muller)."""
    if dtype == torch.float64:
        u1 = (ra.to(torch.float64) + 0.5) * (1.0 / 4294967296.0)
        a = (rb & 0x3FFFFFFF).to(torch.float64) * (1.0 / 4294967296.0)
    else:
        u1 = ((ra >> 9).to(torch.float32) + 0.5) * (1.0 / 8388608.0)
        a = (rb & 0x3FFFFFFF).to(torch.float32) * (1.0 / 4294967296.0)
    r = _radius_sqrt(-2.0 * _unit_log(u1))
    c, s = _quarter_sincos(a)
    q = rb >> 30
    swap = (q & 1) != 0
    sign_c = torch.where((((q + 1) >> 1) & 1) != 0, -1.0, 1.0).to(dtype)
    sign_s = torch.where((q >> 1) != 0, -1.0, 1.0).to(dtype)
    z0 = r * (torch.where(swap, s, c) * sign_c)
    z1 = r * (torch.where(swap, c, s) * sign_s)
    return z0, z1


def normal(seed: int, step: int, n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Standard normals of elements 0 .. n-1 at (seed, step), as the compiled backends draw them.

    One Philox-4x32-10 call per block of four elements: key = (seed low, seed high word), counter =
    (block low, block high, step low, step high); words (r0, r1) give elements 4b, 4b+1 and (r2, r3)
    elements 4b+2, 4b+3 by Box-Muller, in the precision of ``dtype``.
    """
    blocks = (n + 3) // 4
    b = torch.arange(blocks, dtype=torch.int64, device=device)
    zero = torch.zeros_like(b)
    r0, r1, r2, r3 = philox4x32_10(b & _MASK32, b >> 32, zero + (step & _MASK32), zero + (step >> 32),
                                   seed & _MASK32, seed >> 32)
    z0, z1 = _box_muller(r0, r1, dtype)
    z2, z3 = _box_muller(r2, r3, dtype)
    return torch.stack([z0, z1, z2, z3], dim=1).reshape(-1)[:n]
