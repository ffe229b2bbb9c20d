"""deposit: docs/design.md contract 1, on every backend, against the torch reference."""

import numpy as np
import pytest
from conftest import ATOL, LOWER_ISA_LEVELS, RTOL, run_at_isa_level, to_backend, to_numpy

from entropyeng import Grid, kernels

PAPER = dict(sigma=0.2, cutoff=0.8)


def numpy_hill(grid, x, y, h, sigma, cutoff):
    """Independent oracle: the hill on an extended lattice, cut to the grid."""
    beyond = max(grid.x_min - x, x - grid.x_max, grid.y_min - y, y - grid.y_max, 0.0)
    pad = int(np.ceil((cutoff + beyond) / min(grid.dx, grid.dy))) + 2
    i = np.arange(-pad, grid.nx + pad)
    j = np.arange(-pad, grid.ny + pad)
    cx = grid.x_min + (i + 0.5) * grid.dx
    cy = grid.y_min + (j + 0.5) * grid.dy
    r2 = (cx[:, None] - x) ** 2 + (cy[None, :] - y) ** 2
    w = np.exp(-r2 / (2 * sigma**2)) * (r2 <= cutoff**2)
    full = h * w / w.sum()
    return full[pad:pad + grid.nx, pad:pad + grid.ny]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mass_inside_equals_height(backend, dtype):
    g = Grid(-2.0, 2.0, 200, -2.0, 2.0, 200)
    S = to_backend(np.zeros(g.shape, dtype), backend)
    kernels.deposit(S, g, 0.123, -0.456, 0.75, backend=backend, **PAPER)
    S = to_numpy(S)
    assert S.sum(dtype=np.float64) == pytest.approx(0.75, rel=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_allclose(S, numpy_hill(g, 0.123, -0.456, 0.75, **PAPER), rtol=RTOL[dtype],
                               atol=ATOL[dtype])


@pytest.mark.parametrize("x, y", [(-1.95, 0.0), (1.99, 1.99), (2.3, -2.1), (0.0, 2.75)])
def test_mass_is_cut_not_renormalised_at_edges(backend, x, y):
    g = Grid(-2.0, 2.0, 200, -2.0, 2.0, 200)
    S = to_backend(g.zeros(), backend)
    kernels.deposit(S, g, x, y, 1.0, backend=backend, **PAPER)
    S = to_numpy(S)
    expect = numpy_hill(g, x, y, 1.0, **PAPER)
    assert 0.0 < S.sum() < 0.9
    assert S.sum() == pytest.approx(expect.sum(), rel=1e-12)
    np.testing.assert_allclose(S, expect, rtol=1e-12, atol=1e-15)


def test_hill_off_the_grid_writes_nothing(backend):
    g = Grid(-2.0, 2.0, 50, -2.0, 2.0, 50)
    S = to_backend(g.zeros(), backend)
    kernels.deposit(S, g, 5.0, 0.0, 1.0, backend=backend, **PAPER)
    kernels.deposit(S, g, 1e12, -1e12, 1.0, backend=backend, **PAPER)
    # a centre so far out that its cell index overflows the float range (the torch reference raised
    # OverflowError where cpp ignored the hill: every backend ignores it)
    kernels.deposit(S, g, 1e308, 0.0, 1.0, backend=backend, **PAPER)
    kernels.deposit(S, g, -1e308, -1e308, 1.0, backend=backend, **PAPER)
    assert not to_numpy(S).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_equals_loop_and_reference(backend, dtype):
    rng = np.random.default_rng(1)
    g = Grid(-1.0, 3.0, 120, -2.0, 2.0, 90)
    x = rng.uniform(-1.5, 3.5, 40)
    y = rng.uniform(-2.5, 2.5, 40)
    h = rng.uniform(0.1, 2.0, 40)
    base = rng.normal(size=g.shape).astype(dtype)
    batched = to_backend(base.copy(), backend)
    kernels.deposit(batched, g, x, y, h, 0.1, 0.35, backend=backend)
    loop = to_backend(base.copy(), backend)
    for k in range(40):
        kernels.deposit(loop, g, x[k], y[k], h[k], 0.1, 0.35, backend=backend)
    ref = base.copy()
    kernels.deposit(ref, g, x, y, h, 0.1, 0.35, backend="torch")
    rtol = 0 if backend != "cuda" else RTOL[dtype]  # atomics on the GPU add in any order
    np.testing.assert_allclose(to_numpy(batched), to_numpy(loop), rtol=rtol, atol=ATOL[dtype] if rtol else 0)
    np.testing.assert_allclose(to_numpy(batched), ref, rtol=RTOL[dtype], atol=ATOL[dtype])


def test_scalar_height_broadcasts(backend):
    g = Grid(0.0, 1.0, 30, 0.0, 1.0, 30)
    a, b = to_backend(g.zeros(), backend), to_backend(g.zeros(), backend)
    kernels.deposit(a, g, [0.2, 0.7], [0.3, 0.6], 0.5, 0.05, 0.2, backend=backend)
    kernels.deposit(b, g, [0.2, 0.7], [0.3, 0.6], [0.5, 0.5], 0.05, 0.2, backend=backend)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_anisotropic_cells_and_cutoff_boundary(backend):
    # cells of 0.1 x 0.025: the cutoff is a circle in axis units, not in cells
    g = Grid(0.0, 2.0, 20, 0.0, 0.5, 20)
    S = to_backend(g.zeros(), backend)
    kernels.deposit(S, g, 1.0, 0.25, 1.0, 0.1, 0.2, backend=backend)
    np.testing.assert_allclose(to_numpy(S), numpy_hill(g, 1.0, 0.25, 1.0, 0.1, 0.2), rtol=1e-12, atol=1e-15)


def test_torch_tensor_input_on_cpp_is_zero_copy():
    torch = pytest.importorskip("torch")
    g = Grid(0.0, 1.0, 30, 0.0, 1.0, 30)
    S = torch.zeros(g.shape, dtype=torch.float64)
    kernels.deposit(S, g, 0.5, 0.5, 1.0, 0.05, 0.2, backend="cpp")
    assert float(S.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("sigma, cutoff", [(1e-3, 4e-3), (1e-3, 0.2), (1e-300, 0.2), (1e-300, 1e-300)])
def test_a_hill_narrower_than_a_cell_puts_its_height_on_the_nearest_centre(backend, sigma, cutoff):
    """The sigma -> 0 limit: weights relative to the nearest centre do not underflow, and with no
    centre within the cutoff the height goes to the nearest one; every backend agrees."""
    g = Grid(0.0, 1.0, 10, 0.0, 1.0, 10)  # cells of 0.1
    S = to_backend(np.zeros(g.shape), backend)
    kernels.deposit(S, g, 0.437, 0.712, 0.5, sigma, cutoff, backend=backend)
    S = to_numpy(S)
    expect = np.zeros(g.shape)
    expect[4, 7] = 0.5  # centres 0.45 and 0.75: the nearest to (0.437, 0.712)
    np.testing.assert_allclose(S, expect, rtol=1e-12, atol=1e-300)


def test_relative_weights_keep_ordinary_hills_unchanged(backend):
    g = Grid(-2.0, 2.0, 200, -2.0, 2.0, 200)
    S = to_backend(np.zeros(g.shape), backend)
    kernels.deposit(S, g, 0.0137, -0.9, 1.3, 0.05, 0.3, backend=backend)
    np.testing.assert_allclose(to_numpy(S), numpy_hill(g, 0.0137, -0.9, 1.3, 0.05, 0.3), rtol=1e-12, atol=1e-14)


HILLS_AT_A_LEVEL = """
import hashlib, json, numpy as np
from entropyeng import Grid, _core, kernels
out = {"isa": _core.cpu_isa}
rng = np.random.default_rng(5)
g = Grid(-20.0, 20.0, 2000, -20.0, 20.0, 2000)  # the paper's grid and hills (81 x 81 windows)
x, y, h = rng.uniform(-21.0, 21.0, 60), rng.uniform(-21.0, 21.0, 60), rng.uniform(0.1, 2.0, 60)
for dtype in ("float32", "float64"):
    S = np.zeros(g.shape, dtype=dtype)
    kernels.deposit(S, g, x, y, h, 0.2, 0.8, backend="cpp")
    out[dtype] = hashlib.sha256(S.tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.parametrize("level, name", LOWER_ISA_LEVELS)
def test_every_instruction_set_level_adds_the_same_bits(level, name):
    """The hills' loops (their factors' exponentials, the adding of their rows) at the lower
    instruction-set levels, which a CPU without AVX-512 runs, give this CPU's level's bits:
    ENTROPYENG_MAX_ISA caps the level of a fresh interpreter (contraction is off at every level)."""
    import contextlib
    import io
    import json

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the same script in this interpreter, at its level
        exec(HILLS_AT_A_LEVEL, {})
    here = json.loads(printed.getvalue().strip().splitlines()[-1])
    here.pop("isa")
    assert run_at_isa_level(HILLS_AT_A_LEVEL, level, name) == here
