"""smooth: docs/design.md contract 3, against scipy.ndimage.gaussian_filter (test-only oracle)."""

import numpy as np
import pytest
from conftest import to_backend, to_numpy
from scipy import ndimage

from entropyeng import kernels


@pytest.mark.parametrize("shape, sigma", [((50, 40), 2.0), ((7, 90), 3.3), ((64, 64), 10.0),
                                          ((30, 30), 0.4), ((5, 5), 6.0)])
def test_equals_scipy_float64(backend, shape, sigma):
    S = np.random.default_rng(0).normal(size=shape)
    out = kernels.smooth(to_backend(S, backend), sigma, backend=backend)
    expect = ndimage.gaussian_filter(S, sigma, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(to_numpy(out), expect, rtol=1e-12, atol=1e-13)


def test_per_axis_sigma_and_zero(backend):
    S = np.random.default_rng(1).normal(size=(40, 30))
    for pair in [(2.0, 0.0), (0.0, 1.5), (1.0, 4.0)]:
        out = kernels.smooth(to_backend(S, backend), pair, backend=backend)
        expect = ndimage.gaussian_filter(S, pair, mode="nearest", truncate=4.0)
        np.testing.assert_allclose(to_numpy(out), expect, rtol=1e-12, atol=1e-13)


def test_float32_keeps_dtype(backend):
    S = np.random.default_rng(2).normal(size=(33, 21)).astype(np.float32)
    out = to_numpy(kernels.smooth(to_backend(S, backend), 2.5, backend=backend))
    assert out.dtype == np.float32 and out.shape == S.shape
    expect = ndimage.gaussian_filter(S.astype(np.float64), 2.5, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)


def test_returns_a_new_array_and_leaves_input(backend):
    S = np.random.default_rng(3).normal(size=(12, 12))
    Sb = to_backend(S, backend)
    out = kernels.smooth(Sb, 1.0, backend=backend)
    assert out is not Sb
    np.testing.assert_array_equal(to_numpy(Sb), S)


@pytest.mark.parametrize("shape", [(5, 0), (0, 5), (0, 0)])
def test_empty_axis(backend, shape):
    # regression: an empty axis once read out of bounds (found by tests/test_fuzz.py)
    S = np.zeros(shape)
    for _ in range(50):
        out = to_numpy(kernels.smooth(to_backend(S, backend), (1.0, 3.0), backend=backend))
        assert out.shape == shape


@pytest.mark.parametrize("sigma", [1e-200, 1e-160, 0.01])
def test_a_filter_narrower_than_a_bin_is_the_identity(backend, sigma):
    """sigma << 1 bin: radius 0, weight 1 (it was 0 / 0 = NaN on cpp, ZeroDivisionError on torch)."""
    S = np.arange(30.0).reshape(5, 6)
    out = to_numpy(kernels.smooth(to_backend(S, backend), (sigma, sigma), backend=backend))
    np.testing.assert_array_equal(out, S)
