"""entropyeng benchmarks: engine vs the torch reference, single thread, ratios measured in one run.

``python -m bench`` prints the table; ``pytest bench/`` runs the pytest-benchmark suites. Both
measure the installed package (``pip install .``): run from the repository root, the source folder
``entropyeng/`` (which has no compiled ``_core``) would otherwise shadow it.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if "entropyeng" not in sys.modules:
    _saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]
    try:
        import entropyeng  # noqa: F401  (the installed package, with its compiled _core)
    except ImportError:
        pass
    finally:
        sys.path[:] = _saved
