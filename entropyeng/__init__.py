"""entropyeng: entropy landscapes of neural networks by Wang-Landau sampling.

Compiled kernels (C++ and CUDA behind pybind11) with a pure-torch reference of each; see
docs/design.md for the contracts. Public API: :class:`Grid`, :mod:`entropyeng.kernels`,
:mod:`entropyeng.backends`, :mod:`entropyeng.reference`.
"""

import logging as _logging

from . import backends, kernels, reference
from .grid import Grid
from .landscape import Landscape
from .rewl import REWL
from .wlmc import WLMC
from .wlmd import WLMD, WalkerDropped, WLMDError

_logging.getLogger(__name__).addHandler(_logging.NullHandler())  # quiet unless the application configures logging

WalkersWLMD = WLMD  # the many-walker sampler of versions <= 0.1 is WLMD(..., walkers=K)

__version__ = "0.1.0"


def _say_if_the_engine_is_missing():
    """One line on stderr when the package is imported from a source tree that has no compiled
    module (``python -m`` or a script in the repository root puts the tree before the installed
    package): everything would run on the torch reference, hundreds of times slower, silently."""
    import os
    import sys

    if backends.core() is not None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.exists(os.path.join(here, os.pardir, "pyproject.toml")):
        sys.stderr.write(f"entropyeng: the compiled engine (entropyeng._core) is missing: imported from the source "
                         f"tree {here}; every kernel runs on the slow torch reference. Install with "
                         f"'pip install -e .' or run Python with -P outside the tree.\n")


_say_if_the_engine_is_missing()

__all__ = ["Grid", "Landscape", "WLMC", "REWL", "WLMD", "WLMDError", "WalkersWLMD", "WalkerDropped", "kernels",
           "backends", "reference", "__version__"]
