"""The entropy landscape: ln g on a grid, the visit histogram, and what produced them."""

from __future__ import annotations

import numpy as np

from ._io import load_npz, save_npz_atomic
from .grid import Grid

__all__ = ["Landscape"]


class Landscape:
    """An entropy landscape S(x, y) = ln g(x, y) (up to a constant) on a grid.

    Parameters
    ----------
    entropy : ndarray (nx, ny)
        ln g, in nats; only differences are meaningful (the zero is the sampler's).
    histogram : ndarray (nx, ny)
        Visits per cell (WLMC steps or WLMD hills).
    grid : Grid
    meta : dict, optional
        What produced it: sampler, schedule, steps, seeds, ... (JSON-serialisable).
    """

    def __init__(self, entropy, histogram, grid: Grid, meta=None):
        if not isinstance(grid, Grid):
            raise TypeError(f"grid: expected an entropyeng.Grid, got {type(grid).__name__}")
        entropy = np.array(entropy, dtype=np.float64)
        histogram = np.array(histogram, dtype=np.float64)
        for name, a in (("entropy", entropy), ("histogram", histogram)):
            if a.shape != grid.shape:
                raise ValueError(f"{name}: expected shape {grid.shape}, got {a.shape}")
        self.entropy, self.histogram, self.grid = entropy, histogram, grid
        self.meta = dict(meta or {})

    @property
    def visited(self) -> np.ndarray:
        """Boolean mask of the cells ever visited."""
        return self.histogram > 0

    def masked_entropy(self) -> np.ndarray:
        """The entropy with NaN in unvisited cells, shifted so that its maximum is 0."""
        S = np.where(self.visited, self.entropy, np.nan)
        if np.any(self.visited):
            S = S - np.nanmax(S)
        return S

    def flatness(self) -> float:
        """min / mean of the histogram over the visited cells (1 is perfectly flat)."""
        from .statistics import flatness

        return flatness(self.histogram)

    def save(self, path) -> None:
        """Write an .npz file (atomically: temp file, fsync, rename). Only the block of cells that
        holds non-zero entropy or counts is stored (the walkers' reach): a short run on the paper's
        2000 x 2000 grid takes kilobytes, not 64 MB; :meth:`load` restores the whole grid and reads
        files of earlier versions, stored whole."""
        save_npz_atomic(path, {"entropy": self.entropy, "histogram": self.histogram},
                        {"kind": "landscape", "grid": self.grid.to_dict(), "meta": self.meta},
                        cropped=("entropy", "histogram"))

    @classmethod
    def load(cls, path) -> "Landscape":
        """The landscape of a file written by :meth:`save`, checked before it is believed: finite
        float entropy and non-negative finite counts of the grid's shape (an edited or damaged file is
        a ValueError naming it, not a figure drawn from NaN)."""
        arrays, meta = load_npz(path, "landscape")
        try:
            grid = Grid.from_dict(meta["grid"])
            S, H = arrays["entropy"], arrays["histogram"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a landscape file ({type(e).__name__}: {str(e)[:80]})") from None
        for name, a in (("entropy", S), ("histogram", H)):
            if a.dtype.kind != "f" or a.shape != grid.shape:
                raise ValueError(f"{path}: field '{name}' must be floating point of shape {grid.shape}, got "
                                 f"{a.dtype} {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"{path}: field '{name}' holds NaN or infinite values")
        if (H < 0).any():
            raise ValueError(f"{path}: field 'histogram' holds negative counts")
        return cls(S, H, grid, meta.get("meta"))

    def __repr__(self):
        return (f"Landscape({self.grid!r}, visited={int(self.visited.sum())} cells, "
                f"sampler={self.meta.get('sampler')!r})")
