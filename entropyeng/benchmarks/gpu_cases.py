"""`python -m bench --section gpu`: the WLMD step on a CUDA device in one table (issue targets:
W = 30 one walker <= 150 us per step, K = 1,024 walkers >= 10^6 walker-steps/s, the CIFAR ResNet
in float32 <= 25 ms per step), each walker count with the step's CUDA graphs and without, plus the
device time of the step's two operators (CUDA events).

Without a CUDA device it says so and returns nothing; ``device="cpu"`` runs the same code on the
CPU at small sizes (how the tests keep it working where no GPU is)."""

from __future__ import annotations

import time
import warnings

import torch

from entropyeng import WLMD, Grid

from entropyeng.kernels import ops
from entropyeng.tasks import regression_mlp, spiral_regression
from entropyeng.wlmd.presets import preset


def _timer(device):
    """seconds(fn, n): wall time per call of n calls, synchronised on CUDA."""
    def seconds(fn, n):
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / n
    return seconds


def spiral_walkers(K, device, dtype=torch.float32, width=30, graph_steps=None):
    kw = preset("spiral_regression")
    kw.pop("metric")
    kw["schedule"] = dict(f_max=5.0, t1=100.0, t2=1e6, t3=0.0)
    train = tuple(torch.as_tensor(a).to(device, dtype) for a in spiral_regression(250, 0))
    test = tuple(torch.as_tensor(a).to(device, dtype) for a in spiral_regression(250, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # compiled on a GPU; on the CPU (the tests' check of this code) the uncompiled step function,
        # which spares them two compilations (a minute with an empty compile cache)
        w = WLMD(regression_mlp(width).to(device, dtype), train, test, loss="mse", seed=0, walkers=K,
                 compile=True if device.type == "cuda" else "eager", **kw)
    if graph_steps is not None:
        w.graph_steps = graph_steps
    return w


def walker_rate(K, device, steps, graph_steps=None):
    """(us per step, walker-steps per second, compile and capture seconds, graph_info) of K walkers,
    compiled; ``graph_steps`` 0: no CUDA graphs."""
    w = spiral_walkers(K, device, graph_steps=graph_steps)
    t0 = time.perf_counter()
    w.run(steps)  # compiles, captures the graph, and the first sync
    compile_s = time.perf_counter() - t0
    per = _timer(device)(lambda: w.run(steps), 3) / steps
    return per * 1e6, K / per, compile_s, w.graph_info


def operator_device_us(device, K, P, n=50):
    """Device time per call (CUDA events; wall time on the CPU) of ``landscape_step`` on the
    paper's 2000 x 2000 grid with K points and of ``langevin`` over K x P float32 parameters."""
    grid = Grid(-20, 20, 2000, -20, 20, 2000)
    g = ops.grid_list(grid)
    S = torch.zeros(grid.shape, dtype=torch.float64, device=device)
    H = torch.zeros_like(S)
    x = torch.linspace(-5, 5, K, dtype=torch.float64, device=device)
    h, wt = torch.full_like(x, 1e-3), torch.ones_like(x)
    theta = torch.zeros(K * P, dtype=torch.float32, device=device)
    v, grad, bound = torch.zeros_like(theta), torch.zeros_like(theta), torch.ones_like(theta)
    t = torch.zeros((), dtype=torch.int64, device=device)
    calls = {"landscape_step": lambda: ops.landscape_step(S, H, g, x, x, h, wt, 0.2, 0.8),
             "langevin": lambda: ops.langevin(theta, v, grad, bound, 1e-3, 1e-3, 1.0, 1, t, 0)}
    out = {}
    for name, fn in calls.items():
        if device.type == "cuda":
            fn()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            out[name] = start.elapsed_time(end) / n * 1e3
        else:
            out[name] = _timer(device)(fn, n) * 1e6
    return out


def cifar_step_ms(device, steps=20, graph_steps=10):
    """The CIFAR ResNet task (random stand-in images of the paper's shape) in float32: (ms per step,
    the sampler's step form, its graph_info); ``graph_steps`` 0: no CUDA graphs (10: the calls of 20
    steps replay two graphs)."""
    import tempfile

    from entropyeng.runs.build import new_sampler
    from entropyeng.runs.config import load_config
    from entropyeng.tasks.catalog import build

    from .task_cases import _stand_in

    with tempfile.TemporaryDirectory() as tmp:
        data = _stand_in("cifar", tmp, {})
        config = load_config("cifar", [f"model.device={device.type}", "model.dtype=float32"], data=data)
        problem = build(config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = new_sampler(config, problem)
        sampler.graph_steps = graph_steps
        sampler.run(steps)  # compiles (if the run is long enough for "auto") and captures
        ms = _timer(device)(lambda: sampler.run(steps), 2) / steps * 1e3
        return ms, sampler.step_form, sampler.graph_info


def _graph_label(graph_steps, graph_info):
    """How a row's steps ran: graphs turned off, replayed from graphs, or none captured."""
    if graph_steps == 0:
        return "no CUDA graphs"
    return f"CUDA graphs of {graph_info['steps']} steps" if graph_info and graph_info["captured"] else "no graph captured"


def gpu_section(device=None, quick=False):
    if device is None and not torch.cuda.is_available():
        print("\nWLMD on a GPU: no CUDA device here (run `python -m bench --section gpu` where one is)")
        return {}
    device = torch.device(device or "cuda")
    big = device.type == "cuda" and not quick
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (a check of the code, not a GPU figure)"
    print(f"\nWLMD on {name}, float32, " + ("compiled" if device.type == "cuda" else "the step function uncompiled"))
    rows = {}
    cases = [(1, 200 if big else 10, None), (1024 if big else 8, 200 if big else 5, None)]
    if device.type == "cuda":  # the same walkers without graphs (a CPU has none)
        cases = [c for case in cases for c in (case, case[:2] + (0,))]
    for K, steps, graph_steps in cases:
        us, rate, compile_s, graph = walker_rate(K, device, steps, graph_steps)
        how = _graph_label(graph_steps, graph)
        rows[f"spiral regression W = 30, {K} walker(s), {how}"] = dict(
            us_per_step=us, walker_steps_per_s=rate, compile_seconds=compile_s, graph=graph)
        print(f"  spiral regression W = 30, {K:5d} walker(s), {how}: {us:10.1f} us per step, {rate:12,.0f} "
              f"walker-steps/s (compiled and captured in {compile_s:.1f} s)", flush=True)
    K = 1024 if big else 8
    dev_us = operator_device_us(device, K, 1051)
    rows["operators"] = dev_us
    print(f"  operators, {K} walkers: " + ", ".join(f"{k} {v:.1f} us" for k, v in dev_us.items()), flush=True)
    if big:
        for graph_steps in (10, 0):
            ms, form, graph = cifar_step_ms(device, graph_steps=graph_steps)
            how = _graph_label(graph_steps, graph)
            rows[f"cifar ResNet float32, {how}"] = dict(ms_per_step=ms, form=form, graph=graph)
            print(f"  CIFAR ResNet (paper's size, float32, step {form}), {how}: {ms:.2f} ms per step", flush=True)
    return rows
