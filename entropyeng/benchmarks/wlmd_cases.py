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


def spiral_sampler(compile=False, dtype=torch.float64, model_kernel="auto", planned=PAPER_RUN, walkers=1,
                   threads=1):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    X, y = spiral_regression(250, seed=0)
    Xt, yt = spiral_regression(250, seed=1)
    if dtype is torch.float32:  # inputs of the model's dtype (the batched MLP takes them as they are)
        X, y, Xt, yt = (torch.as_tensor(a, dtype=dtype) for a in (X, y, Xt, yt))
    w = WLMD(regression_mlp(30).to(dtype), (X, y), (Xt, yt), loss="mse", grid=Grid(-20, 20, 2000, -20, 20, 2000),
                sigma=0.2, cutoff=0.8, walls=dict(x_max=-0.5), schedule=dict(f_max=5.0, t1=2e5, t2=1e7, t3=8e6),
                dt=5e-5, gamma=3e-5, compile=compile, threads=threads, walkers=walkers)
    w.model_kernel = model_kernel
    w.planned_steps = planned  # the step as a run of this length takes it (blocks of 4 on the CPU from 1e6)
    return w


def cnn_sampler(compile=False, dtype=torch.float64, model_kernel="auto", planned=PAPER_RUN):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(250, 1, 28, 28, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (250,), generator=g)
    Xt = torch.rand(250, 1, 28, 28, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 10, (250,), generator=g)
    w = WLMD(mnist_cnn(28).to(dtype), (X.to(dtype), y), (Xt.to(dtype), yt), loss="ce", metric="accuracy",
             grid=Grid(-20, 20, 2000, -20, 20, 2000), sigma=0.2, cutoff=0.8, walls=dict(x_max=2.0),
             schedule=dict(f_max=3.0, t1=2e5, t2=1e7, t3=8e6), dt=3e-6, gamma=1e-5,
             compile=compile, threads=1)
    w.model_kernel = model_kernel
    w.planned_steps = planned  # the step as a run of this length takes it (blocks of 4 on the CPU from 1e6)
    return w


class PaperStyleStep:
    """One WLMD step as a paper-style pure-torch script writes it (the baseline the engine is
    measured against): the model as an ``nn.Module`` with autograd, forwards on the train and test
    sets, x and y read on the host, dS/dx and dS/dy by central differences bilinearly interpolated
    on a numpy grid, one backward seeded with them (plus the wall), the paper's Langevin update and
    reflection per parameter tensor with ``torch.randn`` noise, and the Gaussian hill added to the
    grid's cells within the cutoff. The same task, grid and settings as :func:`spiral_sampler`."""

    def __init__(self, dtype=torch.float64, seed=0):
        import numpy as np

        warnings.filterwarnings("ignore", message=".*clamped into it")
        X, y = spiral_regression(250, seed=0)
        Xt, yt = spiral_regression(250, seed=1)
        self.X, self.y, self.Xt, self.yt = (torch.as_tensor(a, dtype=dtype) for a in (X, y, Xt, yt))
        torch.manual_seed(seed)
        self.model = regression_mlp(30).to(dtype)
        self.params = list(self.model.parameters())
        self.bounds = [2 / (p.numel() / p.shape[1]) ** 0.5 if p.dim() > 1 else 2 / p.shape[0] ** 0.5
                       for p in self.params]
        with torch.no_grad():
            for p, b in zip(self.params, self.bounds):
                p.clamp_(-b, b)
        self.v = [torch.randn_like(p) for p in self.params]
        self.S = np.zeros((2000, 2000))
        self.lo, self.d, self.n = -20.0, 0.02, 2000
        self.sigma, self.cutoff, self.f = 0.2, 0.8, 5.0 * 1e-3
        self.dt, self.gamma, self.wall = 5e-5, 3e-5, -0.5
        self.np = np

    def _grad(self, x, y):
        np, S, lo, d, n = self.np, self.S, self.lo, self.d, self.n
        gi, gj = (x - lo) / d - 0.5, (y - lo) / d - 0.5
        i0, j0 = int(np.clip(np.floor(gi), 0, n - 2)), int(np.clip(np.floor(gj), 0, n - 2))
        fx, fy = gi - i0, gj - j0
        out = []
        for axis in (0, 1):
            g = np.empty((2, 2))
            for a in (0, 1):
                for b in (0, 1):
                    i, j = i0 + a, j0 + b
                    if axis == 0:
                        g[a, b] = (S[min(i + 1, n - 1), j] - S[max(i - 1, 0), j]) / (2 * d)
                    else:
                        g[a, b] = (S[i, min(j + 1, n - 1)] - S[i, max(j - 1, 0)]) / (2 * d)
            out.append((1 - fx) * (1 - fy) * g[0, 0] + fx * (1 - fy) * g[1, 0] + (1 - fx) * fy * g[0, 1]
                       + fx * fy * g[1, 1])
        return out

    def _deposit(self, x, y):
        np, lo, d, n = self.np, self.lo, self.d, self.n
        r = int(self.cutoff / d) + 1
        ci, cj = int((x - lo) / d), int((y - lo) / d)
        i = np.arange(max(ci - r, 0), min(ci + r + 1, n))
        j = np.arange(max(cj - r, 0), min(cj + r + 1, n))
        dx = (lo + (i + 0.5) * d - x)[:, None]
        dy = (lo + (j + 0.5) * d - y)[None, :]
        r2 = dx * dx + dy * dy
        w = np.exp(-r2 / (2 * self.sigma ** 2)) * (r2 <= self.cutoff ** 2)
        self.S[i[0]:i[-1] + 1, j[0]:j[-1] + 1] += self.f * w / w.sum()

    def step(self):
        loss_tr = torch.nn.functional.mse_loss(self.model(self.X), self.y)
        loss_te = torch.nn.functional.mse_loss(self.model(self.Xt), self.yt)
        x, y = torch.log(loss_tr), torch.log(loss_te)
        xv, yv = x.item(), y.item()
        gx, gy = self._grad(xv, yv)
        if xv > self.wall:
            gx += 2 * 3000.0 * (xv - self.wall)
        for p in self.params:
            p.grad = None
        (gx * x + gy * y).backward()
        c = (self.gamma * (2 - self.gamma)) ** 0.5
        with torch.no_grad():
            for p, v, b in zip(self.params, self.v, self.bounds):
                v.sub_(self.dt * p.grad).mul_(1 - self.gamma).add_(c * torch.randn_like(v))
                p.add_(self.dt * v)
                over, under = p > b, p < -b
                p.copy_(torch.where(over, 2 * b - p, torch.where(under, -2 * b - p, p)))
                v.copy_(torch.where(over | under, -v, v))
        self._deposit(xv, yv)


def paper_style_us(n, rounds=5, dtype=torch.float64):
    """Best of ``rounds`` rounds of n steps of :class:`PaperStyleStep`, in us per step."""
    s = PaperStyleStep(dtype)
    for _ in range(max(5, n // 10)):
        s.step()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            s.step()
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


def reference_eager_us(n, rounds=3):
    """The eager float64 spiral step with every operator on the project's torch reference kernels
    (a fresh interpreter: ``ENTROPYENG_PYTHON_OPS=1`` and no compiled extension behind the Python
    kernels; the model through ``functional_call``), in us per step."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, torch; torch.set_num_threads(1); import entropyeng.kernels.backends as B; B.core = lambda: None\n"
            "from entropyeng.benchmarks import wlmd_cases as D\n"
            "w = D.spiral_sampler('eager', torch.float64, planned=0)\n"
            f"print(json.dumps(D.step_us(w, {n}, rounds={rounds})))")
    env = dict(os.environ, ENTROPYENG_PYTHON_OPS="1")
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def task_step_us(task, sets, compile, n=64, rounds=5):
    """The WLMD step of a paper task's default network and data (``entropyeng run TASK --set ...``)
    in the given form, as a run of the task's default length takes it (a compiled step: blocks of
    4), best of ``rounds`` rounds of n steps, in us per step; None where the task's data needs the
    ``paper`` extra that is not installed."""
    from entropyeng.runs.build import new_sampler, total_steps
    from entropyeng.runs.config import load_config
    from entropyeng.tasks.catalog import build

    config = load_config(task, list(sets), data=None)
    try:
        problem = build(config)
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = new_sampler(config, problem)
    w.compile = compile
    w.planned_steps = total_steps(config)
    w.run(3)  # (compiles)
    return step_us(w, n, rounds)


# -- the native form ---------------------------------------------------------------------------------

def walker_steps_us(cases, n, dtype=torch.float32, rounds=11):
    """Native steps of K spiral walkers on ``threads`` intra-op threads for each (K, threads) of
    ``cases``, in us per walker-step: the best of ``rounds`` rounds of about n / K steps, at least
    100 (a run's fixed cost, its last read's forward pass of every walker, is then at most 1 % of a
    step, as in a long run: 25-step rounds of 64 walkers read 5 % above the steps), the cases' rounds
    interleaved (a burst of load on the machine then falls on every case alike, not on the one
    measured at that moment). Returns {(K, threads): us}."""
    samplers = {}
    for K, threads in cases:
        w = spiral_sampler("native", dtype, planned=0, walkers=K, threads=threads)
        w.run(max(5, n // K // 10))
        samplers[K, threads] = w
    best = dict.fromkeys(samplers, float("inf"))
    for _ in range(rounds):
        for (K, threads), w in samplers.items():
            steps = max(100, n // K)
            t0 = time.perf_counter()
            w.run(steps)
            best[K, threads] = min(best[K, threads], (time.perf_counter() - t0) / steps / K * 1e6)
    return best


def short_run_us(n=1000, dtype=torch.float32, rounds=3):
    """A new sampler's whole run of n steps (nothing warmed up: what a short run costs), in us per
    step: the best of ``rounds`` new samplers (as the other rows, the best of a few)."""
    best = float("inf")
    for _ in range(rounds):
        w = spiral_sampler("auto", dtype, planned=0)
        t0 = time.perf_counter()
        w.run(n)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best, w.step_form


def fresh_process_seconds(steps=300):
    """Seconds from a new interpreter's first line to the end of a new spiral sampler's first
    ``steps`` steps (imports, the sampler's set-up and the steps: what a user waits for)."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import time; t0 = time.perf_counter(); import sys; sys.path.insert(0, %r)\n"
            "import torch; torch.set_num_threads(1)\n"
            "from entropyeng.benchmarks import wlmd_cases as D\n"
            "w = D.spiral_sampler('auto', torch.float32, planned=0); w.run(%d)\n"
            "print(time.perf_counter() - t0, w.step_form)" % (root, steps))
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    seconds, form = out.stdout.split()[-2:]
    return float(seconds), form


def mlp_kernel_gflops(dtype=torch.float32, rounds=5, n=2000):
    """GFLOP/s of the batched MLP kernel's forward + backward on the spiral network (W = 30, 500
    rows, one walker): 2 flops per multiply-add, the backward's two products (inputs' and weights'
    gradients) counted as twice the forward's; activations not counted."""
    from entropyeng.kernels import ops

    sizes, acts, bias = [2, 30, 30, 1], [2, 2, 0], [1, 1, 1]
    P = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    theta = torch.randn(1, P, dtype=dtype) * 0.2
    X = torch.randn(500, 2, dtype=dtype)
    out, cache = ops.mlp_batch(theta, X, sizes, acts, bias)
    g = torch.randn_like(out)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            out, cache = ops.mlp_batch(theta, X, sizes, acts, bias)
            ops.mlp_batch_backward(theta, X, cache, g, sizes, acts, bias)
        best = min(best, (time.perf_counter() - t0) / n)
    macs = 500 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * 2 * macs / best / 1e9, best * 1e6


def core_clock_ghz():
    """This core's clock in GHz: timed by the compiled module (a chain of dependent additions, the
    best of 5), else the nominal clock /proc/cpuinfo reports (which leaves out the boost); None where
    neither is known."""
    try:
        from entropyeng import _core

        ghz = max(_core.core_clock_ghz() for _ in range(5))
        if ghz > 0:
            return ghz
    except (ImportError, AttributeError):
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            return max(float(line.split(":")[1]) for line in fh if line.startswith("cpu MHz")) / 1e3
    except (OSError, ValueError):
        return None


def _amd_zen4():
    """Whether this CPU is an AMD Zen 4 (family 25 with AVX-512), whose 512-bit operations run on
    256-bit datapaths."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read(8192)
    except OSError:
        return False
    return "AuthenticAMD" in text and "\ncpu family\t: 25\n" in text and "avx512f" in text


def fma_peak_gflops(isa: str, dtype=torch.float32, ghz=None):
    """One core's fused multiply-add peak, GFLOP/s: 2 FMA pipes x SIMD lanes x 2 flops x the clock
    (:func:`core_clock_ghz` unless given); at the v4 level of an AMD Zen 4, whose AVX-512 runs on
    256-bit datapaths, 256-bit lanes. An estimate: the clock is the one timed, under whatever else
    the machine does; None where the clock is not known."""
    ghz = core_clock_ghz() if ghz is None else ghz
    if not ghz:
        return None
    bits = (256 if _amd_zen4() else 512) if "v4" in isa else 256 if "v3" in isa else 128
    lanes = bits // (32 if dtype == torch.float32 else 64)
    return 2 * lanes * 2 * ghz


def jax_loop_us(dtype="float32"):
    """JAX's jitted gradient step of the same model inside one ``lax.fori_loop`` (BlackJAX's contour
    SGLD over the 500 train + test rows, :mod:`entropyeng.benchmarks.peers.blackjax_csgld`), us per step;
    None when JAX or BlackJAX is not installed (the ``bench`` extra installs them)."""
    import importlib.util

    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("blackjax") is None:
        return None
    from .peers import blackjax_csgld as peer

    return peer.measure(peer.JAX, dtype, 500)["us_per_step_in_loop"]
