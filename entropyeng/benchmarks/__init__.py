"""The benchmark table (``entropyeng bench``, ``python -m entropyeng.benchmarks``; from a source tree also
``python -m bench``): the engine against its torch reference and its peers, ratios measured in one
run, each section a module of cases (kernels, WLMC, WLMD, walkers, tasks, GPU, sweeps)."""
