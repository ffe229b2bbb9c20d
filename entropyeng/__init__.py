"""entropyeng: entropy landscapes of neural networks by Wang-Landau sampling.

Compiled kernels (C++ and CUDA behind pybind11) with a pure-torch reference of each; see
DESIGN.md for the contracts. Public API: :class:`Grid`, :mod:`entropyeng.kernels`,
:mod:`entropyeng.backends`, :mod:`entropyeng.reference`.
"""

from . import backends, kernels, reference
from .grid import Grid
from .landscape import Landscape
from .wlmc import WLMC
from .wlmd import WLMD, WLMDError

__version__ = "0.1.0"

__all__ = ["Grid", "Landscape", "WLMC", "WLMD", "WLMDError", "kernels", "backends", "reference", "__version__"]
