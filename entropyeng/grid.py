"""The regular 2-D grid on which landscapes live."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Grid", "PAPER_GRID"]


#: the largest grid (cells): 2^34 cells of float64 are 128 GiB per array; beyond it nx * ny and the
#: kernels' cell offsets would near the int64 range
MAX_CELLS = 2**34


#: the authors' WLMD grid: -20 to 20 on both axes, bins of 0.02 (the paper's Methods)
PAPER_GRID = dict(x_min=-20.0, x_max=20.0, nx=2000, y_min=-20.0, y_max=20.0, ny=2000)


class Grid:
    """A regular grid over the collective variables (x, y).

    Cell ``(i, j)`` has centre ``(x_min + (i + 1/2) dx, y_min + (j + 1/2) dy)``; arrays over the
    grid have shape ``(nx, ny)``, C order, ``i`` along x (docs/design.md).

    Parameters
    ----------
    x_min, x_max : float
        Limits of the x axis (x_min < x_max).
    nx : int
        Number of cells along x (at least 3: central differences need them).
    y_min, y_max : float
        Limits of the y axis.
    ny : int
        Number of cells along y (at least 3).

    Examples
    --------
    >>> g = Grid(-20.0, 20.0, 2000, -20.0, 20.0, 2000)
    >>> g.dx, g.shape
    (0.02, (2000, 2000))
    """

    __slots__ = ("x_min", "x_max", "nx", "y_min", "y_max", "ny")

    def __init__(self, x_min, x_max, nx, y_min, y_max, ny):
        for name, value in (("x_min", x_min), ("x_max", x_max), ("y_min", y_min), ("y_max", y_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
            if not math.isfinite(float(value)):
                raise ValueError(f"{name}: expected a finite number, got {value}")
        for name, value in (("nx", nx), ("ny", ny)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
            if value < 3:
                raise ValueError(f"{name}: expected at least 3 cells, got {value}")
        if not float(x_max) > float(x_min):
            raise ValueError(f"x_max: expected x_max > x_min, got x_min={x_min}, x_max={x_max}")
        if not float(y_max) > float(y_min):
            raise ValueError(f"y_max: expected y_max > y_min, got y_min={y_min}, y_max={y_max}")
        for name, lo, hi in (("x", x_min, x_max), ("y", y_min, y_max)):
            if not math.isfinite(float(hi) - float(lo)):
                raise ValueError(f"{name}_max: the range {name}_max - {name}_min overflows ({lo} .. {hi}); "
                                 "expected a range below 1.8e308")
        if int(nx) * int(ny) > MAX_CELLS:
            raise ValueError(f"nx, ny: a grid of {int(nx)} x {int(ny)} cells (float64: {int(nx) * int(ny) * 8 / 2**30:.3g} GiB "
                             f"per array) is beyond the {MAX_CELLS:.3g} cells this library allows")
        self.x_min, self.x_max, self.nx = float(x_min), float(x_max), int(nx)
        self.y_min, self.y_max, self.ny = float(y_min), float(y_max), int(ny)

    @property
    def dx(self) -> float:
        """Cell width along x."""
        return (self.x_max - self.x_min) / self.nx

    @property
    def dy(self) -> float:
        """Cell width along y."""
        return (self.y_max - self.y_min) / self.ny

    @property
    def shape(self) -> tuple[int, int]:
        """``(nx, ny)``."""
        return (self.nx, self.ny)

    @property
    def centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres along x and along y (1-D float64 arrays of nx and ny values)."""
        return (self.x_min + (np.arange(self.nx) + 0.5) * self.dx,
                self.y_min + (np.arange(self.ny) + 0.5) * self.dy)

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell edges along x and along y (nx + 1 and ny + 1 values)."""
        return (self.x_min + np.arange(self.nx + 1) * self.dx,
                self.y_min + np.arange(self.ny + 1) * self.dy)

    def contains(self, x, y):
        """Whether (x, y) lies on the grid (edges included); scalars or arrays."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        inside = (x >= self.x_min) & (x <= self.x_max) & (y >= self.y_min) & (y <= self.y_max)
        return bool(inside) if inside.ndim == 0 else inside

    def index(self, x, y):
        """Cell ``(i, j)`` that holds the point (x, y); scalars give ints, arrays give int arrays.

        The upper edges belong to the last cell. A point off the grid (or not finite) raises
        ``ValueError``.
        """
        xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(xa)):
            raise ValueError("x: expected finite values")
        if not np.all(np.isfinite(ya)):
            raise ValueError("y: expected finite values")
        if np.any((xa < self.x_min) | (xa > self.x_max)):
            raise ValueError(f"x: a point lies off the grid's x range [{self.x_min}, {self.x_max}]")
        if np.any((ya < self.y_min) | (ya > self.y_max)):
            raise ValueError(f"y: a point lies off the grid's y range [{self.y_min}, {self.y_max}]")
        i = np.minimum(np.floor((xa - self.x_min) / self.dx).astype(np.int64), self.nx - 1)
        j = np.minimum(np.floor((ya - self.y_min) / self.dy).astype(np.int64), self.ny - 1)
        if i.ndim == 0:
            return int(i), int(j)
        return i, j

    def column(self, x) -> int:
        """The x cell of ``x``, clamped onto the grid (a walker just beyond an edge is in the edge's
        column): the cell rule of :meth:`index` for x alone."""
        x = float(x)
        if not math.isfinite(x):
            raise ValueError("x: expected a finite value")
        return min(max(math.floor((x - self.x_min) / self.dx), 0), self.nx - 1)

    def zeros(self, dtype=np.float64) -> np.ndarray:
        """A zero array of the grid's shape."""
        return np.zeros(self.shape, dtype=dtype)

    def to_dict(self) -> dict:
        """The six numbers that define the grid (for checkpoints)."""
        return {"x_min": self.x_min, "x_max": self.x_max, "nx": self.nx,
                "y_min": self.y_min, "y_max": self.y_max, "ny": self.ny}

    @classmethod
    def from_dict(cls, d) -> "Grid":
        return cls(float(d["x_min"]), float(d["x_max"]), int(d["nx"]),
                   float(d["y_min"]), float(d["y_max"]), int(d["ny"]))

    def __eq__(self, other):
        return isinstance(other, Grid) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(tuple(self.to_dict().values()))

    def __repr__(self):
        return (f"Grid(x_min={self.x_min!r}, x_max={self.x_max!r}, nx={self.nx}, "
                f"y_min={self.y_min!r}, y_max={self.y_max!r}, ny={self.ny})")
