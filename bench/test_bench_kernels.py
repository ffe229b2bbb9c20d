"""pytest-benchmark suites (``pytest bench/``); not part of the test run."""

import pytest
import torch

from entropyeng.kernels import backends
from entropyeng.benchmarks import cases

torch.set_num_threads(1)
BACKENDS = [b for b in ("cpp", "torch") if b in backends.available()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_deposit_paper_hill(benchmark, backend):
    benchmark.group = "deposit"
    benchmark(cases.deposit_case(backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient(benchmark, backend):
    benchmark.group = "gradient"
    benchmark(cases.gradient_case(backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_smooth(benchmark, backend):
    benchmark.group = "smooth"
    benchmark(cases.smooth_case(backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_langevin_1e6_float32(benchmark, backend):
    benchmark.group = "langevin"
    benchmark(cases.langevin_case(backend))


def test_stream_floor(benchmark):
    benchmark.group = "langevin"
    benchmark(cases.stream_case())


@pytest.mark.parametrize("backend", BACKENDS)
def test_wlmc_spiral_step(benchmark, backend):
    from entropyeng.benchmarks import wlmc_cases

    benchmark.group = "wlmc spiral 4x8"
    sampler = wlmc_cases.spiral_sampler(backend=backend)
    n = 10_000 if backend == "cpp" else 100
    benchmark(sampler.run, n, 0.01)
