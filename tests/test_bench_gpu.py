"""The GPU benchmark's code runs (on the CPU at small sizes), so that a session with a GPU gets its
table from one command."""

import pathlib
import sys

import pytest

from entropyeng.kernels import backends

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


@pytest.mark.skipif("cpp" not in backends.available(), reason="the compiled extension is not built")
def test_the_gpu_section_runs_its_cases_on_the_cpu():
    from entropyeng.benchmarks.gpu_cases import gpu_section

    rows = gpu_section("cpu", quick=True)
    assert rows["spiral regression W = 30, 1 walker(s), no graph captured"]["us_per_step"] > 0  # no graphs on a CPU
    assert rows["spiral regression W = 30, 8 walker(s), no graph captured"]["walker_steps_per_s"] > 0
    assert set(rows["operators"]) == {"landscape_step", "langevin"}
