"""WLMD benchmark cases: spiral regression (width 30, 1051 parameters, 250 + 250 points) and the
paper's MNIST-size CNN (362 parameters) on 250 synthetic 28 x 28 images."""

from __future__ import annotations

import time
import warnings

import torch

from entropyeng import WLMD, Grid
from entropyeng.tasks import mnist_cnn, regression_mlp, spiral_regression

#: a run of the paper's length: the samplers here time the step that such a run takes
PAPER_RUN = 2 * 10**7


def spiral_sampler(backend="cpp", compile=False, dtype=torch.float64, model_kernel="auto"):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    X, y = spiral_regression(250, seed=0)
    Xt, yt = spiral_regression(250, seed=1)
    if dtype is torch.float32:  # inputs of the model's dtype (the batched MLP takes them as they are)
        X, y, Xt, yt = (torch.as_tensor(a, dtype=dtype) for a in (X, y, Xt, yt))
    w = WLMD(regression_mlp(30).to(dtype), (X, y), (Xt, yt), loss="mse", grid=Grid(-20, 20, 2000, -20, 20, 2000),
                sigma=0.2, cutoff=0.8, walls=dict(x_max=-0.5), schedule=dict(f_max=5.0, t1=2e5, t2=1e7, t3=8e6),
                dt=5e-5, gamma=3e-5, backend=backend, compile=compile, threads=1)
    w.model_kernel = model_kernel
    w.planned_steps = PAPER_RUN  # the step as a long run takes it (blocks of 4 on the CPU)
    return w


def cnn_sampler(backend="cpp", compile=False, dtype=torch.float64, model_kernel="auto"):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(250, 1, 28, 28, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (250,), generator=g)
    Xt = torch.rand(250, 1, 28, 28, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 10, (250,), generator=g)
    w = WLMD(mnist_cnn(28).to(dtype), (X.to(dtype), y), (Xt.to(dtype), yt), loss="ce", cv_y="smoothed_accuracy",
             grid=Grid(-20, 20, 2000, -20, 20, 2000), sigma=0.2, cutoff=0.8, walls=dict(x_max=2.0),
             schedule=dict(f_max=3.0, t1=2e5, t2=1e7, t3=8e6), dt=3e-6, gamma=1e-5, backend=backend,
             compile=compile, threads=1)
    w.model_kernel = model_kernel
    w.planned_steps = PAPER_RUN  # the step as a long run takes it (blocks of 4 on the CPU)
    return w


def compiled_forward_backward_us(w, n, rounds=3):
    """The model's share of a step on the step function's path (``w.model_path``: the batched MLP
    operators or functional_call): the forward on train and test, the collective variables and the
    vector-Jacobian product, compiled as the step compiles them (without the landscape, the
    Langevin update and the checks)."""
    from torch.func import vjp

    from entropyeng.wlmd_step import make_batched_forward_vjp, make_cvs, mlp_layout, net_layout

    args = (w._loss, w.X_tr, w.y_tr, w.X_te, w.y_te, w.cv_y, w.alpha, w.logit_y)
    if w.model_path in ("mlp_batch", "net_batch"):
        kind, find = ("mlp", mlp_layout) if w.model_path == "mlp_batch" else ("net", net_layout)
        forward_vjp = make_batched_forward_vjp(kind, find(w.model, w.X_tr, w.X_te), *args, 1)

        def fb(theta, seed):
            out, pull = forward_vjp(theta.reshape(1, -1))
            return out, pull(seed.reshape(1, 2))[0]
    else:
        cvs = make_cvs(w.model, *args)

        def fb(theta, seed):
            out, pull = vjp(lambda th: torch.stack(cvs(th)), theta)
            return out, pull(seed)[0]

    f = torch.compile(fb, fullgraph=True, options={"cpp_wrapper": True})
    theta, seed = w.theta.detach().clone(), torch.tensor([0.1, 0.2], dtype=w.dtype)
    f(theta, seed)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            f(theta, seed)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def step_us(w, n, rounds=5):
    """Best of `rounds` rounds of n steps, in us per step."""
    w.run(max(5, n // 10))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        w.run(n)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def forward_backward_us(w, n, rounds=5):
    """The model's share of a step, best of `rounds`: forwards on train and test and one backward
    seeded as the sampler seeds it (what any sampler over this model must pay)."""
    sx = torch.tensor(0.1, dtype=w.dtype)
    sy = torch.tensor(0.2, dtype=w.dtype)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            with torch.enable_grad():
                x, y, _ = w._cvs()
            w.grad.zero_()
            torch.autograd.backward((x, y), (sx, sy))
            x.item(), y.item()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def split_us(w, n):
    """(us per step, us of it in the model's forward and backward) measured inside the same steps:
    the sampler's forward (w._cvs) and backward calls are timed as they happen."""
    w.run(max(5, n // 10))
    spent = [0.0]
    cvs, backward = w._cvs, torch.autograd.backward

    def timed_cvs():
        t = time.perf_counter()
        out = cvs()
        spent[0] += time.perf_counter() - t
        return out

    def timed_backward(*a, **k):
        t = time.perf_counter()
        out = backward(*a, **k)
        spent[0] += time.perf_counter() - t
        return out

    w._cvs, torch.autograd.backward = timed_cvs, timed_backward
    try:
        t0 = time.perf_counter()
        w.run(n)
        total = time.perf_counter() - t0
    finally:
        del w._cvs
        torch.autograd.backward = backward
    return total / n * 1e6, spent[0] / n * 1e6


def python_operator_rows(n=500, rounds=3):
    """The compiled spiral step (float32 and float64) with the Python kernels of the step's operators
    (``ENTROPYENG_PYTHON_OPS=1``: the operators as without the C++ library), measured in a fresh
    interpreter (the operators' kernels are registered once per process). {label: us per step}."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, torch; torch.set_num_threads(1); from bench import wlmd_cases as D; out = {}\n"
            "for dt in (torch.float64, torch.float32):\n"
            "    w = D.spiral_sampler('cpp', True, dt); w.run(2)\n"
            f"    out[str(dt).replace('torch.', '')] = D.step_us(w, {n}, rounds={rounds})\n"
            "print(json.dumps(out))")
    env = dict(os.environ, ENTROPYENG_PYTHON_OPS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {root!r}); " + code], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
