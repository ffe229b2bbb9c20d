"""entropyeng: entropy landscapes of neural networks by Wang-Landau sampling.

Public API: the grid and the landscape (:class:`Grid`, :class:`Landscape`), the samplers
(:class:`WLMC`, :class:`REWL`, :class:`WLMD`), the kernels (:mod:`entropyeng.kernels`, with their
torch operators :mod:`entropyeng.kernels.ops` and backends), the paper's readouts
(:mod:`entropyeng.analysis`), tasks (:mod:`entropyeng.tasks`) and trainer (:mod:`entropyeng.train`),
and the pure-torch reference of every kernel (:mod:`entropyeng.reference`).

The folders: ``kernels/`` (the checked kernel API, the torch operators, the backends), ``wlmc/``
(the Monte Carlo chain, its walkers, replica exchange), ``wlmd/`` (molecular dynamics), ``analysis/``
(readouts, SGD baselines, figures), ``tasks/``, ``train/``, ``cli/`` (the ``entropyeng`` command, a
module per command), ``reference/``.
"""

import logging as _logging
import sys as _sys

from . import analysis, kernels, reference
from .analysis import baselines, plot
from .grid import Grid
from .kernels import backends, ops
from .landscape import Landscape
from .wlmc import REWL, WLMC, rewl
from .wlmd import WLMD, WalkerDropped, WLMDError, integrators, presets

# the module paths of versions <= 0.1 (before the folders) stay importable
for _name, _module in dict(ops=ops, backends=backends, plot=plot, baselines=baselines, rewl=rewl,
                           integrators=integrators, presets=presets).items():
    _sys.modules.setdefault(f"{__name__}.{_name}", _module)
del _name, _module

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
           "analysis", "reference", "__version__"]
