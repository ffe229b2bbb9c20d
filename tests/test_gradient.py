"""gradient: docs/design.md contract 2."""

import numpy as np
import pytest
from conftest import to_backend, to_numpy

from entropyeng import Grid, kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_on_linear_landscape(backend, dtype):
    g = Grid(-3.0, 1.0, 40, 0.0, 5.0, 25)
    cx, cy = g.centers
    a, b = 2.5, -1.25
    S = to_backend((a * cx[:, None] + b * cy[None, :] + 7.0).astype(dtype), backend)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-4, 2, 200), rng.uniform(-1, 6, 200)  # inside, near and beyond the edges
    gx, gy = kernels.gradient(S, g, x, y, backend=backend)
    tol = 1e-10 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(to_numpy(gx), a, rtol=tol)
    np.testing.assert_allclose(to_numpy(gy), b, rtol=tol)


def test_matches_reference_and_hand_computation(backend):
    rng = np.random.default_rng(3)
    g = Grid(0.0, 1.0, 10, 0.0, 2.0, 8)
    S_np = rng.normal(size=g.shape)
    S = to_backend(S_np, backend)
    x, y = rng.uniform(-0.2, 1.2, 64), rng.uniform(-0.2, 2.2, 64)
    gx, gy = kernels.gradient(S, g, x, y, backend=backend)
    rx, ry = kernels.gradient(S_np, g, x, y, backend="torch")
    np.testing.assert_allclose(to_numpy(gx), rx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(gy), ry, rtol=1e-12, atol=1e-12)
    # hand computation with numpy.gradient (central inside, one-sided at the edges) + bilinear
    Dx = np.gradient(S_np, g.dx, axis=0, edge_order=1)
    Dy = np.gradient(S_np, g.dy, axis=1, edge_order=1)
    cx, cy = g.centers
    px, py = 0.37, 1.1
    i0 = int(np.floor((px - g.x_min) / g.dx - 0.5))
    j0 = int(np.floor((py - g.y_min) / g.dy - 0.5))
    tx = (px - cx[i0]) / g.dx
    ty = (py - cy[j0]) / g.dy

    def bil(D):
        return ((1 - tx) * (1 - ty) * D[i0, j0] + tx * (1 - ty) * D[i0 + 1, j0]
                + (1 - tx) * ty * D[i0, j0 + 1] + tx * ty * D[i0 + 1, j0 + 1])

    hx, hy = kernels.gradient(S, g, px, py, backend=backend)
    assert float(hx) == pytest.approx(bil(Dx), rel=1e-12)
    assert float(hy) == pytest.approx(bil(Dy), rel=1e-12)


def test_scalar_in_scalar_out(backend):
    g = Grid(0.0, 1.0, 5, 0.0, 1.0, 5)
    S = to_backend(np.arange(25, dtype=np.float64).reshape(5, 5), backend)
    gx, gy = kernels.gradient(S, g, 0.5, 0.5, backend=backend)
    if backend == "cuda":
        assert gx.shape == () and gx.device.type == "cuda"
    else:
        assert isinstance(gx, float) and isinstance(gy, float)
    assert float(gx) == pytest.approx(5 / 0.2) and float(gy) == pytest.approx(1 / 0.2)


def test_clamped_beyond_the_edge(backend):
    rng = np.random.default_rng(5)
    g = Grid(0.0, 1.0, 6, 0.0, 1.0, 7)
    S = to_backend(rng.normal(size=g.shape), backend)
    cx, cy = g.centers
    far = kernels.gradient(S, g, 50.0, -50.0, backend=backend)
    corner = kernels.gradient(S, g, cx[-1], cy[0], backend=backend)
    assert float(far[0]) == float(corner[0]) and float(far[1]) == float(corner[1])
