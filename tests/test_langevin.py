"""langevin: docs/design.md contract 4 — reference agreement, physics, box, restarts."""

import numpy as np
import pytest
from conftest import LOWER_ISA_LEVELS, run_at_isa_level, to_backend, to_numpy

from entropyeng import kernels

DTYPES = [np.float64, np.float32]


def state(n, dtype, seed=0, b=1.0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-b, b, n).astype(dtype), rng.normal(size=n).astype(dtype),
            rng.normal(scale=3.0, size=n).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bound_kind", ["scalar", "array"])
def test_matches_reference(backend, dtype, bound_kind):
    n = 10007
    th, v, g = state(n, dtype)
    bound = 0.9 if bound_kind == "scalar" else np.random.default_rng(1).uniform(0.2, 2.0, n).astype(dtype)
    ref_th, ref_v = th.copy(), v.copy()
    kernels.langevin(ref_th, ref_v, g, bound, 0.05, 0.2, 1.5, 77, 3, backend="torch")
    bth, bv = to_backend(th, backend), to_backend(v, backend)
    bb = bound if bound_kind == "scalar" else to_backend(bound, backend)
    kernels.langevin(bth, bv, to_backend(g, backend), bb, 0.05, 0.2, 1.5, 77, 3, backend=backend)
    # cpp and torch share the arithmetic operation for operation: the same bits
    np.testing.assert_array_equal(to_numpy(bth), ref_th)
    np.testing.assert_array_equal(to_numpy(bv), ref_v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_is_the_exposed_normal_stream(backend, dtype):
    # gamma = 1, kT = 1, no force: v becomes exactly xi
    n = 1003
    th, v = to_backend(np.zeros(n, dtype), backend), to_backend(np.ones(n, dtype), backend)
    g = to_backend(np.zeros(n, dtype), backend)
    kernels.langevin(th, v, g, float("inf"), 0.1, 1.0, 1.0, 5, 9, backend=backend)
    xi = to_numpy(kernels.normal(5, 9, n, backend="torch", dtype=np.dtype(dtype).name))
    np.testing.assert_array_equal(to_numpy(v), xi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_velocity_variance_converges_to_kT(backend, dtype):
    n, kT = 200_000, 2.0
    th, v = to_backend(np.zeros(n, dtype), backend), to_backend(np.zeros(n, dtype), backend)
    g = to_backend(np.zeros(n, dtype), backend)
    for step in range(150):  # (1 - gamma)^300 ~ 1e-14: fully relaxed
        kernels.langevin(th, v, g, 1e6, 0.01, 0.2, kT, 11, step, backend=backend)
    var = float(np.var(to_numpy(v).astype(np.float64)))
    assert abs(var - kT) < 5 * np.sqrt(2.0 / n) * kT


def test_uniform_in_the_box_without_force(backend):
    # zero force and reflecting walls: the stationary distribution of theta is uniform on [-b, b]
    from scipy import stats

    n, b = 20_000, 0.5
    th, v = to_backend(np.zeros(n), backend), to_backend(np.zeros(n), backend)
    g = to_backend(np.zeros(n), backend)
    for step in range(400):
        kernels.langevin(th, v, g, b, 0.05, 0.3, 1.0, 4, step, backend=backend)
    t = to_numpy(th)
    assert np.all(np.abs(t) <= b)
    assert stats.kstest(t, stats.uniform(loc=-b, scale=2 * b).cdf).pvalue > 1e-4


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_steps_stay_inside(backend, dtype):
    n = 50_000
    rng = np.random.default_rng(2)
    bound = rng.uniform(1e-3, 2.0, n).astype(dtype)
    th = to_backend((rng.uniform(-1, 1, n) * bound).astype(dtype), backend)
    v = to_backend(rng.normal(scale=1e4, size=n).astype(dtype), backend)
    g = to_backend(rng.normal(scale=1e6, size=n).astype(dtype), backend)
    for step in range(5):
        kernels.langevin(th, v, g, to_backend(bound, backend), 10.0, 0.1, 1.0, 1, step, backend=backend)
        assert np.all(np.abs(to_numpy(th)) <= bound)
        assert np.all(np.isfinite(to_numpy(v)))
    for step in range(5):
        kernels.langevin(th, v, g, 1e-3, 10.0, 0.1, 1.0, 1, step, backend=backend)
        assert np.all(np.abs(to_numpy(th)) <= np.asarray(1e-3, dtype))


def test_reflection_semantics_single_element(backend):
    # theta = 0.9, v = 1, dt = 0.2, no force, no noise (gamma = 0): theta -> 1.1 -> 2b - 1.1 = 0.9
    th, v = to_backend(np.array([0.9]), backend), to_backend(np.array([1.0]), backend)
    g = to_backend(np.array([0.0]), backend)
    kernels.langevin(th, v, g, 1.0, 0.2, 0.0, 1.0, 0, 0, backend=backend)
    assert to_numpy(th)[0] == pytest.approx(0.9) and to_numpy(v)[0] == -1.0
    # a fold through two walls: theta = 0 + 5 * 0.9 = 4.5 in [-1, 1] -> 4.5 - 4 = 0.5, two flips
    th, v = to_backend(np.array([0.0]), backend), to_backend(np.array([0.9]), backend)
    kernels.langevin(th, v, g, 1.0, 5.0, 0.0, 1.0, 0, 0, backend=backend)
    assert to_numpy(th)[0] == pytest.approx(0.5) and to_numpy(v)[0] == pytest.approx(0.9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_run_equals_unsplit(backend, dtype):
    n, k = 4001, 25
    th, v, g = state(n, dtype, seed=8)
    a_th, a_v = to_backend(th, backend), to_backend(v, backend)
    for step in range(2 * k):
        kernels.langevin(a_th, a_v, to_backend(g, backend), 0.7, 0.02, 0.1, 1.0, 99, step, backend=backend)
    b_th, b_v = to_backend(th, backend), to_backend(v, backend)
    for step in range(k):
        kernels.langevin(b_th, b_v, to_backend(g, backend), 0.7, 0.02, 0.1, 1.0, 99, step, backend=backend)
    saved = (to_numpy(b_th).copy(), to_numpy(b_v).copy())  # "checkpoint", then a fresh process
    c_th, c_v = to_backend(saved[0], backend), to_backend(saved[1], backend)
    for step in range(k, 2 * k):
        kernels.langevin(c_th, c_v, to_backend(g, backend), 0.7, 0.02, 0.1, 1.0, 99, step, backend=backend)
    np.testing.assert_array_equal(to_numpy(c_th), to_numpy(a_th))
    np.testing.assert_array_equal(to_numpy(c_v), to_numpy(a_v))


def test_multidimensional_and_torch_parameters():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(5, 3)
    flat = torch.zeros(18, dtype=torch.float32)
    flat[:] = torch.cat([p.detach().reshape(-1) for p in lin.parameters()])
    lin.weight.data = flat[:15].view(3, 5)
    lin.bias.data = flat[15:]
    v, g = torch.zeros_like(flat), torch.ones_like(flat)
    before = flat.clone()
    kernels.langevin(flat, v, g, 10.0, 0.1, 0.0, 1.0, 0, 0, backend="cpp")
    # no noise: theta moves by -dt^2 grad, visible through the parameter views (zero copy)
    torch.testing.assert_close(lin.weight.detach().reshape(-1), before[:15] - 0.01)
    th2 = np.zeros((4, 6)), np.zeros((4, 6)), np.ones((4, 6))
    kernels.langevin(*th2, 10.0, 0.1, 0.0, 1.0, 0, 0, backend="cpp")
    assert np.allclose(th2[0], -0.01)


CHECK_LEVEL = """
import json, numpy as np
from entropyeng import _core, kernels
out = {"isa": _core.cpu_isa}
seed, step = 2**63 + 12345, 2**40 + 7  # (the counter's and the key's high words)
for dtype in (np.float32, np.float64):
    name = np.dtype(dtype).name
    z = kernels.normal(seed, step, 4099, backend="cpp", dtype=name)
    ref = kernels.normal(seed, step, 4099, backend="torch", dtype=name)
    out[f"normal {name}"] = bool(np.array_equal(np.asarray(z), np.asarray(ref)))
    rng = np.random.default_rng(3)
    th, v, g = (rng.normal(size=10007).astype(dtype) for _ in range(3))
    bound = rng.uniform(0.2, 2.0, 10007).astype(dtype)
    rth, rv = th.copy(), v.copy()
    kernels.langevin(rth, rv, g, bound, 0.05, 0.2, 1.5, seed, step, backend="torch")
    kernels.langevin(th, v, g, bound, 0.05, 0.2, 1.5, seed, step, backend="cpp")
    out[f"langevin {name}"] = bool(np.array_equal(th, rth) and np.array_equal(v, rv))
print(json.dumps(out))
"""


@pytest.mark.parametrize("level, name", LOWER_ISA_LEVELS)
def test_every_instruction_set_level(level, name):
    """The C++ noise and Langevin loops at the lower instruction-set levels (AVX2, the generic x86-64),
    which a CPU without AVX-512 runs, give the reference's bits: ENTROPYENG_MAX_ISA caps the level of
    a fresh interpreter (the AVX2 and AVX-512 levels draw Philox's words in vector lanes, the
    baseline by GCC's own loop)."""
    out = run_at_isa_level(CHECK_LEVEL, level, name)
    assert all(out.values()), out
