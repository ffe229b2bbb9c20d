"""Shared fixtures: every kernel test runs once per backend (cuda skips cleanly without a GPU)."""

import numpy as np
import pytest

from entropyeng.kernels import backends

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
    from entropyeng.kernels import ops

    if item.get_closest_marker("cpp") and "cpp" not in backends.available():
        pytest.skip("the compiled extension is not built")
    if item.get_closest_marker("operators") and not ops.COMPILED_OPERATORS:
        pytest.skip("the C++ operator library is not built for this torch")
    if item.get_closest_marker("cuda"):
        import torch

        if not torch.cuda.is_available() or "cuda" not in backends.available():
            pytest.skip("needs a CUDA device and the CUDA build")


# -- the kernels' lower instruction-set levels ------------------------------------------------------
#: (ENTROPYENG_MAX_ISA, the level _core.cpu_isa then names) of the levels a CPU without AVX-512 runs
LOWER_ISA_LEVELS = [("base", "baseline"), ("v3", "x86-64-v3")]


def run_at_isa_level(script, level, name):
    """Run ``script`` (Python source printing one JSON object last) in a fresh interpreter whose
    kernels ENTROPYENG_MAX_ISA caps at ``level``; returns that object, after checking that the
    level it ran (its "isa" entry, removed) is ``name``. Skips where the CPU lacks AVX2."""
    import json
    import os
    import subprocess
    import sys

    _core = pytest.importorskip("entropyeng._core")
    if level == "v3" and _core.cpu_isa == "baseline":
        pytest.skip("this CPU has no AVX2")
    done = subprocess.run([sys.executable, "-P", "-c", script], env=dict(os.environ, ENTROPYENG_MAX_ISA=level),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("isa") == name
    return out


# -- docs/design.md's exact case, the one definition every sampler's test uses ------------------------
#: the exact case's WLMD grid, and the ends of its exact region (3 train and 2 test rows, box [-1, 1])
EXACT_WLMD_GRID_ARGS = (-5.0, 1.0, 120, -5.0, 1.5, 130)
EXACT_XA, EXACT_YB = float(np.log(1 / 3)), float(np.log(1 / 2))


def exact_case(n_train=3, n_test=2, w0=0.5, dtype=None):
    """docs/design.md's exact case: ``Linear(n, 1, bias=False)`` (weights ``w0``) on identity rows,
    the first ``n_train`` the train set and the rest the test set, zero targets, MSE: train loss
    |w_A|^2 / n_A, and for w uniform in the box S(ln L_train, ln L_test) = (n_A/2) x + (n_B/2) y + c
    where the sphere lies inside the box. ``(model, train, test)``: with ``dtype`` None the WLMC
    form (numpy float64 data, targets (n,), a float32 model); with a torch dtype the WLMD form
    (tensors of that dtype, targets (n, 1), the model in that dtype)."""
    import torch
    from torch import nn

    n = n_train + n_test
    model = nn.Sequential(nn.Linear(n, 1, bias=False))
    if dtype is not None:
        model = model.to(dtype)
    with torch.no_grad():
        model[0].weight.fill_(w0)
    if dtype is None:
        eye = np.eye(n)
        return model, (eye[:n_train], np.zeros(n_train)), (eye[n_train:], np.zeros(n_test))
    eye = torch.eye(n, dtype=dtype)
    zeros = torch.zeros(n, 1, dtype=dtype)
    return model, (eye[:n_train], zeros[:n_train]), (eye[n_train:], zeros[n_train:])


def exact_wlmd(walker_steps=300_000, f_max=0.08, seed=1, dtype=None, **over):
    """The exact case's WLMD sampler (3 + 2 rows, w0 0.3, box [-1, 1]) with the settings that recover
    its slopes (test_wlmd.py's exact check says why these): walls at the grid's low end and at the
    exact region's edge (wall constant 30), dt 0.01, friction 0.1, hills of sigma 0.15 on 0.05
    bins, f rising to ``f_max`` over min(1e4, half the budget), held to half of ``walker_steps``
    (the budget over all walkers and ranks), then decaying as 1/t. ``over``: any other argument
    of WLMD (walkers, compile, distributed, ...)."""
    import torch

    from entropyeng import WLMD, Grid

    model, train, test = exact_case(3, 2, w0=0.3, dtype=dtype or torch.float64)
    kw = dict(loss="mse", grid=Grid(*EXACT_WLMD_GRID_ARGS), sigma=0.15, cutoff=0.6,
              walls=dict(x_min=-4.0, y_min=-4.0, x_max=EXACT_XA, y_max=EXACT_YB), wall_c=30.0,
              schedule=dict(f_max=f_max, t1=min(1e4, walker_steps / 2), t2=walker_steps / 2, t3=0.0), dt=0.01,
              gamma=0.1, bound=1.0, seed=seed)
    kw.update(over)
    return WLMD(model, train, test, **kw)
