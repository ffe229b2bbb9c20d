"""Sweeps: many runs of one task, the product of a spec's axes, on Dask.distributed (a local cluster
by default, or a running one), each run an ``entropyeng run`` directory that resumes after any
failure. ``entropyeng sweep SPEC --out DIR`` is the command; :func:`run_sweep` the library call."""

from .driver import run_sweep
from .spec import Spec, load_spec, shipped_specs

__all__ = ["run_sweep", "load_spec", "Spec", "shipped_specs"]
