"""entropyeng: entropy landscapes of neural networks by Wang-Landau sampling.

Compiled kernels (C++ and CUDA behind pybind11) with a pure-torch reference of each; see
DESIGN.md for the contracts. Public API: :class:`Grid`, :mod:`entropyeng.kernels`,
:mod:`entropyeng.backends`, :mod:`entropyeng.reference`.
"""

from . import backends, kernels, reference
from .grid import Grid
from .landscape import Landscape
from .rewl import REWL
from .wlmc import WLMC
from .wlmd import WLMD, WLMDError
from .wlmd_walkers import WalkerDropped, WalkersWLMD

__version__ = "0.1.0"

__all__ = ["Grid", "Landscape", "WLMC", "REWL", "WLMD", "WLMDError", "WalkersWLMD", "WalkerDropped", "kernels",
           "backends", "reference", "__version__"]
