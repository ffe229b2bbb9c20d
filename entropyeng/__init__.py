"""entropyeng: entropy landscapes of neural networks by Wang-Landau sampling.

Public API: the grid and the landscape (:class:`Grid`, :class:`Landscape`), the samplers
(:class:`WLMC`, :class:`REWL`, :class:`WLMD`), the kernels (:mod:`entropyeng.kernels`, with their
torch operators :mod:`entropyeng.kernels.ops` and backends), the paper's readouts
(:mod:`entropyeng.analysis`), tasks (:mod:`entropyeng.tasks`) and trainer (:mod:`entropyeng.train`),
and the pure-torch reference of every kernel (:mod:`entropyeng.reference`).

The folders: ``kernels/`` (the checked kernel API, the torch operators, the backends), ``wlmc/``
(the Monte Carlo chain, its walkers, replica exchange), ``wlmd/`` (molecular dynamics), ``analysis/``
(readouts, SGD baselines, figures), ``tasks/``, ``train/``, ``harvest/``, ``sweep/``, ``runs/`` (a
run's config, directory, sampler and loop), ``cli/`` (the ``entropyeng`` command, a module per
command), ``benchmarks/`` (the benchmark table), ``reference/``.

The names load on first use (PEP 562): ``import entropyeng`` itself imports neither torch nor
numpy (nor logging: the package's logger gets its ``NullHandler`` where it first logs, in
:mod:`entropyeng.wlmd.runners`), so the command can answer Ctrl-C in its first second with one line, and a script that needs
only :class:`Grid` does not pay for the samplers.
"""

import importlib.util as _util
import sys as _sys

from . import _floors, _lazy

_floors.check_python(_sys.version_info)

__version__ = "0.2.0"

TYPE_CHECKING = False  # (typing's own costs an import; type checkers and the API docs read the names below)
if TYPE_CHECKING:
    from . import analysis, kernels, reference
    from .grid import Grid
    from .landscape import Landscape
    from .sampler import Sampler
    from .wlmc import REWL, WLMC
    from .wlmd import WLMD, WalkerDropped, WLMDError
del TYPE_CHECKING

#: public name -> the module that defines it
_NAMES = {"Grid": "grid", "Landscape": "landscape", "WLMC": "wlmc", "REWL": "wlmc", "WLMD": "wlmd",
          "WLMDError": "wlmd", "WalkerDropped": "wlmd", "Sampler": "sampler"}

_SUBPACKAGES = ("analysis", "benchmarks", "cli", "grid", "harvest", "kernels", "landscape", "reference", "runs", "sweep",
                "tasks", "train", "wlmc", "wlmd")

__getattr__, __dir__ = _lazy.lazy_names(__name__, _NAMES, globals(), _SUBPACKAGES)


def _say_if_the_engine_is_missing():
    """One line on stderr when the package is imported from a source tree that has no compiled
    module (``python -m`` or a script in the repository root puts the tree before the installed
    package): everything would run on the torch reference, hundreds of times slower, silently."""
    import os

    if _util.find_spec(f"{__name__}._core") is not None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.exists(os.path.join(here, os.pardir, "pyproject.toml")):
        _sys.stderr.write(f"entropyeng: the compiled engine (entropyeng._core) is missing: imported from the source "
                          f"tree {here}; every kernel runs on the slow torch reference. Install with "
                          f"'pip install --no-build-isolation -e .' or run Python with -P outside the tree.\n")


_say_if_the_engine_is_missing()

__all__ = ["Grid", "Landscape", "Sampler", "WLMC", "REWL", "WLMD", "WLMDError", "WalkerDropped", "kernels",
           "analysis", "reference", "__version__"]
