"""The run layer, below the commands, the sweep, the harvest, the trainer and the benchmark: a
run's configuration, its directory, the sampler it builds and the loop that advances it.

- :mod:`~entropyeng.runs.config`: a task's defaults, a TOML file and ``--set`` overrides, checked
  key by key (:class:`ConfigError`); ``dump_toml``.
- :mod:`~entropyeng.runs.rundir`: a run directory's files, its lock (:class:`RunLock`) and the
  digest that ties a checkpoint to its run.
- :mod:`~entropyeng.runs.build`: the task's problem, the budget and threads, a fresh sampler or
  one continued from a checkpoint.
- :mod:`~entropyeng.runs.loop`: any sampler advanced in chunks, with progress, a metrics log,
  periodic atomic checkpoints and Ctrl-C taken at a chunk boundary (:mod:`~entropyeng.runs.sigint`).
- :mod:`~entropyeng.runs.task`: a task's whole run (sampler, SGD baseline, summary, figure):
  :func:`configure`, :func:`start`, :func:`resume`, :func:`run_landscape`.

    from entropyeng import runs
    config, notes = runs.configure("house", steps=2e5, threads=1)
    summary = runs.start(config, "runs/house")        # or runs.resume("runs/house")

The names load on first use: importing the package costs neither torch nor numpy (the command
imports it before torch, to answer Ctrl-C at once).
"""

from .._lazy import lazy_names

#: public name -> the submodule that defines it
_NAMES = {"ConfigError": "config", "load_config": "config", "config_of": "config", "dump_toml": "config",
          "RunLock": "rundir", "RunLocked": "rundir", "run_paths": "rundir", "run_digest": "rundir",
          "check_out_dir": "rundir", "build_problem": "build", "apply_steps": "build", "apply_threads": "build",
          "new_sampler": "build", "load_sampler": "build", "total_steps": "build", "Progress": "loop",
          "Interrupted": "loop", "run_sampler": "loop", "loop_plan": "build", "set_threads": "build", "configure": "task", "start": "task", "resume": "task",
          "run_landscape": "task", "RunFailed": "task"}

__all__ = sorted(_NAMES)


__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
