"""The sweep's overhead: a 12-run spec on a LocalCluster of 2 workers against the same 12 runs one
after another (each an ``entropyeng run`` process, wall time from start to exit).

Target (issue #26): the sweep takes <= 1.15 x (the runs' serial sum / 2) on a 2-core machine: what is
lost to Dask, the run processes' start and two runs sharing a machine's memory bandwidth."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

SPEC = """
task = "spiral"
steps = {steps}
[sgd]
runs = 4
epochs = 20
[axes]
model.width = [4, 5, 6, 7, 8, 9]
data_set = [0, 1]
"""


def sweep_section(quick=False):
    from entropyeng.sweep import load_spec, run_sweep

    steps = 2e6 if quick else 8e6
    workers = 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.toml")
        with open(path, "w") as fh:
            fh.write(SPEC.format(steps=steps))
        spec = load_spec(path)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        serial = 0.0
        for r in spec.runs:
            cfg = os.path.join(tmp, f"{r.name}.toml")
            with open(cfg, "w") as fh:
                fh.write(r.config_text)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "entropyeng", "run", cfg, "--out", os.path.join(tmp, "serial", r.name),
                            "--threads", "1", "--quiet"], check=True, env=env, capture_output=True, cwd=tmp)
            serial += time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = run_sweep(spec, os.path.join(tmp, "sweep"), workers=workers, threads=1, progress=False)
        wall = time.perf_counter() - t0
    assert all(r.state == "done" for r in runs), [(r.name, r.state, r.error) for r in runs]
    ideal = serial / workers
    print(f"sweep of {len(spec.runs)} spiral runs ({steps:.0e} WLMC steps + 4 SGD runs each), {workers} workers on "
          f"{os.cpu_count()} cores: {wall:.1f} s; the runs one after another {serial:.1f} s, / {workers} = {ideal:.1f} s; "
          f"ratio {wall / ideal:.3f} (target <= 1.15)")
    return dict(runs=len(spec.runs), steps=steps, workers=workers, sweep_seconds=wall, serial_seconds=serial,
                ratio=wall / ideal)
