"""Walker throughput: K WLMD walkers in one process (K = 1, 4, 16, 64) and 1 vs 2 processes over
gloo, on the spiral-regression width-30 model (N = 250), in walker-steps per second."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings

import torch

from entropyeng import WLMD
from entropyeng.tasks import regression_mlp, spiral_regression
from entropyeng.wlmd.presets import preset

from .wlmd_cases import PAPER_RUN


def sampler(walkers, distributed=False, seed=0, compile="auto", dtype=torch.float32, model_kernel="auto"):
    """The spiral-regression task's WLMD sampler (float32 by default, as the task runs it)."""
    kw = preset("spiral_regression")
    kw.pop("metric")
    kw["schedule"] = dict(f_max=5.0, t1=100.0, t2=1e6, t3=0.0)
    data = [tuple(torch.as_tensor(a, dtype=dtype) for a in spiral_regression(250, s)) for s in (0, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WLMD(regression_mlp(30).to(dtype), data[0], data[1], loss="mse", seed=seed, walkers=walkers,
                 distributed=distributed, sync_every=100, compile=compile, **kw)
    w.model_kernel = model_kernel
    w.planned_steps = PAPER_RUN  # the step as a long run takes it (blocks of 4 on the CPU)
    return w


def walker_steps_per_second(walkers, min_time=2.0, distributed=False, compile="auto", dtype=torch.float32,
                            model_kernel="auto", threads=None):
    """Walker-steps per second in ``run`` calls of 100 steps (the sampler's sync_every: one host read
    per call, as in a long run); ``compile``: the sampler's (False: the per-step path for one walker,
    the uncompiled step function for many; True: compiled, the compilation not timed);
    ``model_kernel``: the sampler's ("torch": the model through functional_call); ``threads``: the
    sampler's (None: its default, one thread up to 2e7 parameters x rows x walkers)."""
    w = sampler(walkers, distributed, compile=compile, dtype=dtype, model_kernel=model_kernel)
    if threads is not None:
        w.threads = threads
    w.run(5)
    steps, t0 = 0, time.perf_counter()
    while True:
        w.run(100)
        steps += 100
        elapsed = time.perf_counter() - t0
        if distributed:  # every rank must run the same number of steps
            t = torch.tensor([1.0 if elapsed >= min_time else 0.0])
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
            if t.item() > 0:
                break
        elif elapsed >= min_time:
            break
    return walkers * steps / elapsed


def rewl_rate(threads, walkers=4, steps=500_000):
    """REWL on the spiral 4x8 network: walker-steps per second with the walkers on 1 or 2 threads."""
    from entropyeng import REWL, WLMC
    from entropyeng.tasks import spiral_classification, spiral_mlp

    train, test = spiral_classification(20, seed=0), spiral_classification(20, seed=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = WLMC(spiral_mlp(), train, test, loss="bce", metric="accuracy").grid
    r = REWL(spiral_mlp(), train, test, loss="bce", metric="accuracy", grid=grid, windows=walkers,
             exchange_every=50_000, threads=threads)
    r.run_stages(1, 50_000)
    t0 = time.perf_counter()
    r.run_stages(1, steps)
    return walkers * steps / (time.perf_counter() - t0)


def wlmc_walkers_rate(threads, walkers=16, steps=4_000_000):
    """WLMC walkers sharing one ln g on CPU threads (the CUDA blocks' code), spiral 4x8 network:
    walker-steps per second; and the single chain (its fast row kernels) for reference."""
    from entropyeng import WLMC
    from entropyeng.tasks import spiral_classification, spiral_mlp

    train, test = spiral_classification(20, seed=0), spiral_classification(20, seed=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WLMC(spiral_mlp(), train, test, loss="bce", metric="accuracy", walkers=walkers, threads=threads)
    w.run(steps // 10, 0.01)
    t0 = time.perf_counter()
    w.run(steps, 0.01)
    return steps / (time.perf_counter() - t0)


def _worker():
    torch.set_num_threads(1)
    walkers, min_time, out = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    rate = walker_steps_per_second(walkers, min_time, distributed=True)
    with open(f"{out}.{os.environ['RANK']}", "w") as fh:
        json.dump(dict(rate=rate), fh)


def processes_rate(world, walkers, min_time, tmp):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = os.path.join(tmp, f"rate{world}")
    # (cwd outside any source tree: the installed package, with its compiled engine, is the one imported)
    procs = [subprocess.Popen([sys.executable, "-m", "entropyeng.benchmarks.walker_cases", "worker", str(walkers),
                               str(min_time), out], cwd=tmp,
                              env=dict(os.environ, RANK=str(r), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port), OMP_NUM_THREADS="1"))
             for r in range(world)]
    for p in procs:
        if p.wait(timeout=600) != 0:
            raise RuntimeError("a benchmark rank failed")
    return sum(json.load(open(f"{out}.{r}"))["rate"] for r in range(world))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    _worker()
