"""The counter-based normals: Philox known answers, identical values on every backend, statistics."""

import numpy as np
import pytest
import torch
from conftest import to_numpy

from entropyeng import kernels
from entropyeng.reference import philox4x32_10


@pytest.mark.parametrize("ctr, key, expect", [
    # known-answer tests of Random123 (kat_vectors, philox4x32_10)
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(ctr, key, expect):
    words = philox4x32_10(*(torch.tensor([c]) for c in ctr), *key)
    assert tuple(int(w) for w in words) == expect


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed, step", [(0, 0), (12345, 7), (2**64 - 1, 2**40 + 3)])
def test_normals_bitwise_identical_to_reference(backend, dtype, seed, step):
    n = 4099  # not a multiple of 4
    got = to_numpy(kernels.normal(seed, step, n, backend=backend, dtype=dtype,
                                  **({"device": "cuda"} if backend == "cuda" else {})))
    ref = to_numpy(kernels.normal(seed, step, n, backend="torch", dtype=dtype))
    assert got.dtype == np.dtype(dtype) and got.shape == (n,)
    np.testing.assert_array_equal(got, ref)


def test_prefix_property_and_streams_differ():
    a = kernels.normal(3, 5, 1000)
    np.testing.assert_array_equal(kernels.normal(3, 5, 37), a[:37])
    assert not np.array_equal(kernels.normal(3, 6, 1000), a)
    assert not np.array_equal(kernels.normal(4, 5, 1000), a)


def test_float32_and_float64_streams_are_the_same_draws():
    a = kernels.normal(9, 1, 100000, dtype="float64")
    b = to_numpy(kernels.normal(9, 1, 100000, dtype="float32")).astype(np.float64)
    # the same Philox words; u1 keeps 23 bits in float32 and 32 in float64, so the values differ
    # by ~1e-7 typically and by up to ~1e-3 in the far tail, where u1 is small
    d = np.abs(a - b)
    assert np.median(d) < 1e-6 and d.max() < 1e-3


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_normal_statistics(dtype):
    from scipy import stats

    n = 400000
    z = kernels.normal(2024, 1, n, dtype=dtype).astype(np.float64)
    se = 1.0 / np.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0) * se
    assert abs(stats.skew(z)) < 5 * np.sqrt(6.0) * se
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24.0) * se
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # the four lanes of a Philox block and neighbouring elements are uncorrelated
    lanes = z[: n - n % 4].reshape(-1, 4)
    c = np.corrcoef(lanes.T)
    assert np.max(np.abs(c - np.eye(4))) < 5 * 2 * se
