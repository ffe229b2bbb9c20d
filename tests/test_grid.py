import numpy as np
import pytest

from entropyeng import Grid


def test_attributes():
    g = Grid(-20.0, 20.0, 2000, -10.0, 30.0, 400)
    assert g.dx == pytest.approx(0.02) and g.dy == pytest.approx(0.1)
    assert g.shape == (2000, 400)
    cx, cy = g.centers
    assert cx.shape == (2000,) and cy.shape == (400,)
    assert cx[0] == pytest.approx(-19.99) and cy[-1] == pytest.approx(29.95)
    ex, ey = g.edges
    assert ex.shape == (2001,) and ex[0] == -20.0 and ex[-1] == pytest.approx(20.0)
    np.testing.assert_allclose(0.5 * (ex[1:] + ex[:-1]), cx)


def test_index_scalars_arrays_and_edges():
    g = Grid(0.0, 1.0, 10, -1.0, 1.0, 4)
    assert g.index(0.05, -0.9) == (0, 0)
    assert g.index(1.0, 1.0) == (9, 3)  # upper edges belong to the last cell
    i, j = g.index(np.array([0.0, 0.55]), np.array([0.0, 0.99]))
    assert i.tolist() == [0, 5] and j.tolist() == [2, 3]
    cx, cy = g.centers
    ii, jj = g.index(cx, np.full(10, cy[1]))
    assert ii.tolist() == list(range(10)) and set(jj.tolist()) == {1}


@pytest.mark.parametrize("x, y, name", [(1.5, 0.0, "x"), (0.5, -2.0, "y"), (np.nan, 0.0, "x")])
def test_index_off_grid(x, y, name):
    with pytest.raises(ValueError, match=name):
        Grid(0.0, 1.0, 10, -1.0, 1.0, 4).index(x, y)


@pytest.mark.parametrize("args, name, exc", [
    ((0, 1, 2, 0, 1, 3), "nx", ValueError),
    ((0, 1, 3, 0, 1, 1), "ny", ValueError),
    ((1, 0, 3, 0, 1, 3), "x_max", ValueError),
    ((0, 1, 3, 1, 1, 3), "y_max", ValueError),
    ((0, np.inf, 3, 0, 1, 3), "x_max", ValueError),
    ((0, 1, 3.5, 0, 1, 3), "nx", TypeError),
    (("0", 1, 3, 0, 1, 3), "x_min", TypeError),
])
def test_bad_grid(args, name, exc):
    with pytest.raises(exc, match=name):
        Grid(*args)


def test_roundtrip_and_equality():
    g = Grid(-1, 2, 5, 0, 1, 7)
    assert Grid.from_dict(g.to_dict()) == g
    assert g != Grid(-1, 2, 5, 0, 1, 8)
    assert "nx=5" in repr(g)
