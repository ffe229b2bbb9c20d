"""Shared fixtures: every kernel test runs once per backend (cuda skips cleanly without a GPU)."""

import numpy as np
import pytest

from entropyeng import backends

ALL = ("cpp", "cuda", "torch")


@pytest.fixture(params=ALL, ids=lambda name: f"backend={name}")
def backend(request):
    name = request.param
    if name not in backends.available():
        pytest.skip(f"backend {name!r} not available here (available: {backends.available()})")
    return name


# Tolerances per dtype when a backend is compared with the torch reference. The landscape
# kernels differ from the reference only in summation order and exp rounding.
RTOL = {np.float64: 1e-12, np.float32: 2e-6}
ATOL = {np.float64: 1e-14, np.float32: 1e-6}


def to_backend(a, backend):
    """The array as the backend takes it: numpy for cpp and torch, a CUDA tensor for cuda."""
    if backend == "cuda":
        import torch

        return torch.as_tensor(np.ascontiguousarray(a)).cuda()
    return np.array(a, copy=True, order="C")


def to_numpy(a):
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, float):
        return np.asarray(a)
    return a.detach().cpu().numpy()


# -- shared markers (registered in pyproject.toml): tests declare what they need, this skips them
# cleanly where it is missing ----------------------------------------------------------------------
def pytest_runtest_setup(item):
    from entropyeng import ops

    if item.get_closest_marker("cpp") and "cpp" not in backends.available():
        pytest.skip("the compiled extension is not built")
    if item.get_closest_marker("operators") and not ops.COMPILED_OPERATORS:
        pytest.skip("the C++ operator library is not built for this torch")
    if item.get_closest_marker("cuda"):
        import torch

        if not torch.cuda.is_available() or "cuda" not in backends.available():
            pytest.skip("needs a CUDA device and the CUDA build")
