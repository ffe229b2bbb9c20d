"""The kernels as torch operators (entropyeng.kernels.ops) and the WLMD step as one traced function:
opcheck on every operator, the operators against the kernels, fullgraph tracing with no graph break,
compiled == eager over 2,000 float64 steps, bit-exact resume of a compiled run, float32 models."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from entropyeng import WLMD, Grid, kernels

from entropyeng.kernels import backends, ops
from entropyeng.wlmd import models
from entropyeng.wlmd.state import State
from entropyeng.wlmd.step import make_step
from conftest import EXACT_XA, EXACT_YB, exact_wlmd

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)

G = Grid(-4.0, 2.0, 60, -3.0, 3.0, 50)
GL = ops.grid_list(G)


def landscape(seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=G.shape).cumsum(0).cumsum(1) * 0.01)


def points():
    return torch.tensor([-1.0, 0.5, float("nan"), 1.99]), torch.tensor([0.3, -2.9, 0.0, 3.4])


def test_opcheck_every_operator():
    x, y = points()
    S, H = landscape(), torch.zeros(G.shape, dtype=torch.float64)
    h, w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    theta = torch.linspace(-0.5, 0.5, 11, dtype=torch.float64)
    cases = [
        (ops.gradient, (S, GL, x.double(), y.double())),
        (ops.deposit, (S.clone(), GL, x.double(), y.double(), h, 0.3, 0.9)),
        (ops.histogram, (H.clone(), GL, x.double(), y.double(), w)),
        (ops.landscape_step, (S.clone(), H.clone(), GL, x.double(), y.double(), h, w, 0.3, 0.9)),
        (ops.langevin, (theta.clone(), torch.zeros_like(theta), theta * 0.1, torch.full_like(theta, 0.6), 0.1, 0.2, 1.0,
                        ops.seed_arg(2**64 - 5), torch.tensor(7), 0)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def kernel_of(impl, name):
    """The CPU kernel ``name`` as ``impl`` runs it: "operator" calls the registered operator (the
    C++ kernel when :data:`ops.COMPILED_OPERATORS`), "python" the Python kernel over the extension,
    "python-torch" the Python kernel over the torch reference."""
    if impl == "operator":
        return getattr(ops, name)
    return ops.PYTHON_KERNELS[name][0]


@pytest.mark.parametrize("impl", ["operator", "python", "python-torch"])
def test_operators_follow_the_kernels(impl, monkeypatch):
    """The operators' results equal the kernels' (a non-finite point contributes nothing): through
    the dispatcher (C++ kernels where they are built) and through the Python kernels, over the
    extension and over the torch reference."""
    if impl == "python" and "cpp" not in backends.available():
        pytest.skip("not built")
    if impl == "python-torch":
        monkeypatch.setattr(backends, "core", lambda: None)
    x, y = points()
    x, y = x.double(), y.double()
    S = landscape()
    ok = torch.isfinite(x) & torch.isfinite(y)
    d = kernel_of(impl, "gradient")(S, GL, x, y)
    gx, gy = kernels.gradient(S.numpy(), G, x[ok].numpy(), y[ok].numpy(), backend="torch")
    np.testing.assert_allclose(d[0, ok].numpy(), gx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d[1, ok].numpy(), gy, rtol=1e-12, atol=1e-14)
    assert (d[:, ~ok] == 0).all()
    S1, S2 = S.clone(), S.clone().numpy()
    h = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    kernel_of(impl, "deposit")(S1, GL, x, y, h, 0.3, 0.9)
    kernels.deposit(S2, G, x[ok].numpy(), y[ok].numpy(), h[ok].numpy(), 0.3, 0.9, backend="torch")
    np.testing.assert_allclose(S1.numpy(), S2, rtol=1e-12, atol=1e-14)
    H = torch.zeros(G.shape, dtype=torch.float64)
    kernel_of(impl, "histogram")(H, GL, x, y, torch.ones(4, dtype=torch.float64))
    assert H.sum() == 3 and H[int((1.99 + 4) / 0.1), 49] == 1  # the point beyond y_max counts in the last cell
    for S_dtype in (torch.float64, torch.float32):
        S3, H3 = S.clone().to(S_dtype), torch.zeros(G.shape, dtype=torch.float64)
        S4 = S.clone().to(S_dtype)
        d3 = kernel_of(impl, "landscape_step")(S3, H3, GL, x, y, h, torch.ones(4, dtype=torch.float64), 0.3, 0.9)
        kernel_of(impl, "deposit")(S4, GL, x, y, h, 0.3, 0.9)
        tol = dict(rtol=1e-12, atol=1e-14) if S_dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d3.numpy(), d.numpy(), **tol)  # dS before the hills
        np.testing.assert_array_equal(S3.numpy(), S4.numpy())
        np.testing.assert_array_equal(H3.numpy(), H.numpy())
    for dtype in (torch.float64, torch.float32):
        theta = torch.linspace(-0.5, 0.5, 11, dtype=dtype)
        a, va = theta.clone(), torch.zeros_like(theta)
        b, vb = theta.clone(), torch.zeros_like(theta)
        bound = torch.full_like(theta, 0.6)
        kernel_of(impl, "langevin")(a, va, theta * 0.1, bound, 0.1, 0.2, 1.0, ops.seed_arg(2**64 - 5), torch.tensor(7),
                                    2)
        kernels.langevin(b, vb, theta * 0.1, bound, 0.1, 0.2, 1.0, 2**64 - 5, 9, backend="torch")
        tol = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a.numpy(), b.numpy(), **tol)
        np.testing.assert_allclose(va.numpy(), vb.numpy(), **tol)


def test_the_cpp_operators_load_where_they_are_built():
    """A library of C++ operator kernels built for this torch (``entropyeng/_torch_ops_<version>*``)
    is loaded, and ``ENTROPYENG_PYTHON_OPS=1`` keeps the Python kernels (checked in a fresh
    interpreter, where the operators still give the same numbers)."""
    import importlib.util
    import os
    import subprocess
    import sys

    built = importlib.util.find_spec(ops.operator_library()) is not None
    if os.environ.get("ENTROPYENG_PYTHON_OPS", "") in ("", "0"):
        assert ops.COMPILED_OPERATORS == built
    if not built:
        pytest.skip("the C++ operators are not built here (a build without torch importable)")
    probe = ("import torch; from entropyeng.kernels import ops; t = torch.linspace(-1, 1, 5, dtype=torch.float64); "
             "v = torch.zeros_like(t); ops.langevin(t, v, t, torch.ones_like(t), 0.1, 0.5, 1.0, 3, torch.tensor(4), 0); "
             "print(ops.COMPILED_OPERATORS, repr(t.tolist()))")
    runs = {}
    for flag in ("1", "0"):
        env = dict(os.environ, ENTROPYENG_PYTHON_OPS=flag)
        out = subprocess.run([sys.executable, "-P", "-c", probe], env=env, capture_output=True, text=True, check=True)
        runs[flag] = out.stdout.split(" ", 1)
    assert runs["1"][0] == "False" and runs["0"][0] == "True"
    assert runs["1"][1] == runs["0"][1]


@pytest.mark.skipif(not ops.COMPILED_OPERATORS, reason="the C++ operators are not built here")
@pytest.mark.parametrize("case", ["S dtype", "S shape", "H dtype", "H is S", "x 2-D", "y length", "height nan",
                                  "strided S", "grid short", "grid nx", "sigma", "cutoff",
                                  "theta int", "v dtype", "grad size", "bound strided", "theta is v", "dt", "gamma",
                                  "kT", "step float", "step negative"])
def test_the_cpp_operators_refuse_wrong_arguments_naming_them(case):
    """Every argument is checked at the C++ boundary: a ValueError that names it, never a crash."""
    x, y = torch.tensor([-1.0, 0.5]), torch.tensor([0.3, -2.9])
    S, H = landscape(), torch.zeros(G.shape, dtype=torch.float64)
    h, w = torch.tensor([0.1, 0.2], dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    ls = dict(S=S, H=H, grid=GL, x=x, y=y, height=h, weight=w, sigma=0.3, cutoff=0.9)
    theta = torch.linspace(-0.5, 0.5, 11, dtype=torch.float64)
    lv = dict(theta=theta, v=torch.zeros_like(theta), grad=theta * 0.1, bound=torch.full_like(theta, 0.6), dt=0.1,
              gamma=0.2, kT=1.0, seed=1, step=torch.tensor(3), step_offset=0)
    change = {"S dtype": ("ls", "S", S.to(torch.int64)), "S shape": ("ls", "S", S[:, :10].contiguous()),
              "H dtype": ("ls", "H", H.float()), "H is S": ("ls", "H", S), "x 2-D": ("ls", "x", x.reshape(1, 2)),
              "y length": ("ls", "y", y[:1]), "height nan": ("ls", "height", torch.tensor([0.1, float("nan")])),
              "strided S": ("ls", "S", torch.zeros(G.ny, G.nx, dtype=torch.float64).t()),
              "grid short": ("ls", "grid", GL[:5]), "grid nx": ("ls", "grid", [*GL[:2], 2.5, *GL[3:]]),
              "sigma": ("ls", "sigma", -1.0), "cutoff": ("ls", "cutoff", 0.1),
              "theta int": ("lv", "theta", theta.to(torch.int64)), "v dtype": ("lv", "v", torch.zeros(11)),
              "grad size": ("lv", "grad", theta[:5].clone()),
              "bound strided": ("lv", "bound", torch.ones(22, dtype=torch.float64)[::2]),
              "theta is v": ("lv", "v", theta), "dt": ("lv", "dt", float("inf")), "gamma": ("lv", "gamma", 1.5),
              "kT": ("lv", "kT", -1.0), "step float": ("lv", "step", torch.tensor(3.0)),
              "step negative": ("lv", "step_offset", -10)}
    which, arg, value = change[case]
    kw = ls if which == "ls" else lv
    kw[arg] = value
    op = ops.landscape_step if which == "ls" else ops.langevin
    name = {"H is S": "H", "height nan": "height", "theta is v": "v", "step negative": "step",
            "strided S": "S", "grid nx": "grid", "grid short": "grid"}.get(case, arg)
    with pytest.raises(ValueError, match=name):
        op(*kw.values())


def regression_case(dtype=torch.float64, n=40, width=8):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 2, generator=g, dtype=dtype)
    Xt = torch.randn(n, 2, generator=g, dtype=dtype)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1)).to(dtype)
    return model, (X, torch.sin(X[:, :1])), (Xt, torch.sin(Xt[:, :1]))


class Opaque(nn.Module):
    """A model the batched kernels (and so the native step) do not take: the torch step's forms."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def sampler(dtype=torch.float64, native=True, **over):
    """The regression MLP's sampler; ``native=False``: the same network wrapped so that the native form
    does not take it (``compile="auto"`` then follows the torch step's rule)."""
    model, train, test = regression_case(dtype)
    if not native:
        model = Opaque(model)
    kw = dict(loss="mse", grid=Grid(-8.0, 4.0, 240, -8.0, 4.0, 240), sigma=0.15, cutoff=0.6,
              schedule=dict(f_max=0.05, t1=100, t2=1e4, t3=0.0), dt=0.01, gamma=0.1, seed=3,
              walls=dict(x_max=-1.0, y_min=-6.0), wall_c=30.0)
    kw.update(over)
    return WLMD(model, train, test, **kw)


@CPP
@pytest.mark.parametrize("integrator", ["paper", "baoab"])
def test_the_step_traces_whole_with_no_graph_break(integrator):
    w = sampler(integrator=integrator, compile="eager")
    w.run(1)
    explained = torch._dynamo.explain(w._runner.step)(*w.state.scratch())
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    torch.compile(w._runner.step, fullgraph=True)(*w.state.scratch())  # raises on any break


@CPP
def test_compiled_and_eager_steps_agree_over_2000_steps():
    a, b = sampler(compile="eager"), sampler(compile=True)
    a.run(2000)
    b.run(2000)
    assert b.compile_info["form"] == "compiled" and a.compile_info is None
    np.testing.assert_allclose(b.theta.numpy(), a.theta.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.v.numpy(), a.v.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.landscape.entropy, a.landscape.entropy, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(b.landscape.histogram, a.landscape.histogram)
    assert a.round_trips == b.round_trips


@CPP
@pytest.mark.parametrize("form", ["compiled", "blocks"])
def test_every_form_follows_the_eager_step_on_the_exact_case(form, monkeypatch):
    """The design's exact case (Linear(5, 1) on identity rows) for 2,000 float64 steps in each form
    the CPU has, pinned by name: compiled and compiled in blocks of 4 follow the eager step to 1e-10
    (the CUDA graph form: test_wlmd_graph.py, on a stand-in capture and on a GPU)."""
    from test_wlmd import exact_wlmd_sampler

    if form == "blocks":
        monkeypatch.setattr(WLMD, "BLOCK_MIN_STEPS", 100)
    eager = exact_wlmd_sampler(compile="eager")
    other = exact_wlmd_sampler(compile=True)
    eager.run(2000)
    other.run(2000)
    assert eager.step_form == "eager" and other.step_form == "compiled"
    assert (other._runner.block is not None) == (form == "blocks")
    np.testing.assert_allclose(other.theta.numpy(), eager.theta.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(other.landscape.entropy, eager.landscape.entropy, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(other.landscape.histogram, eager.landscape.histogram)


def whole_and_resumed(tmp_path, split, total=600):
    """A compiled run of `total` steps, and one saved after `split` steps and resumed to `total`."""
    whole = sampler(compile=True)
    whole.run(total)
    half = sampler(compile=True)
    half.run(split)
    half.save(tmp_path / "c.npz")
    model, train, test = regression_case()
    resumed = WLMD.load(tmp_path / "c.npz", model, train, test, compile=True)
    resumed.run(total - split)
    return whole, resumed


@CPP
def test_a_resumed_compiled_run_continues_bit_for_bit(tmp_path):
    whole, resumed = whole_and_resumed(tmp_path, 300)
    assert resumed.compile_info["form"] == "compiled" and resumed.t == 600
    np.testing.assert_array_equal(resumed.theta.numpy(), whole.theta.numpy())
    np.testing.assert_array_equal(resumed.v.numpy(), whole.v.numpy())
    np.testing.assert_array_equal(resumed.landscape.entropy, whole.landscape.entropy)


@CPP
def test_auto_compiles_from_compile_min_steps_and_says_why():
    """compile="auto" by its rule: runs shorter than compile_min_steps are eager (undecided), the first
    run at least that long compiles, for good; the reason is recorded (a model without the native form)."""
    w = sampler(compile="auto", compile_min_steps=100, native=False)
    w.run(50)
    assert w.compile_info is None and w.step_form is None and "eager until a longer run" in w.form_reason
    w.run(100)
    assert w.step_form == "compiled" and w.compile_info["compile_seconds"] > 0
    assert "100 steps >= compile_min_steps" in w.form_reason and w.t == 150
    w.run(10)
    assert w.step_form == "compiled"
    planned = sampler(compile="auto", compile_min_steps=100, native=False)
    planned.planned_steps = 1000  # a long run driven in chunks decides on its whole length
    planned.run(10)
    assert planned.step_form == "compiled"
    for compile, form in ((False, "eager"), ("eager", "eager"), (True, "compiled")):
        short = sampler(compile=compile)
        short.run(3)
        assert short.step_form == form and f"compile={compile!r}" in short.form_reason
    native = sampler(compile="auto", compile_min_steps=100)  # a model the native form takes: native at once
    assert native.step_form == "native"
    native.run(3)
    assert native.step_form == "native" and "fits the native step" in native.form_reason and native.compile_info is None


@CPP
def test_float32_model_gives_the_exact_slopes():
    """The exact case of the design (Linear(5, 1) on identity rows, MSE): a float32 model (forward,
    backward and Langevin in float32; the CVs' logs, landscape and hills in float64) recovers the
    slopes 3/2 and 1 within the WLMD tolerance. Its float64 twin (these settings, seed 1) is one of
    the two runs of test_wlmd.py's exact check."""
    out = {}
    for dtype in (torch.float32,):
        xa, yb = EXACT_XA, EXACT_YB
        w = exact_wlmd(300_000, dtype=dtype)
        grid = w.grid
        w.run(300_000)
        assert w.theta.dtype == dtype and w.landscape.entropy.dtype == np.float64
        L = w.landscape
        X, Y = np.meshgrid(*grid.centers, indexing="ij")
        region = (X > -3.5) & (X < xa - 0.4) & (Y > -3.5) & (Y < yb - 0.4) & L.visited
        out[dtype] = np.linalg.lstsq(np.c_[X[region], Y[region], np.ones(region.sum())], L.entropy[region],
                                     rcond=None)[0][:2]
    for dtype, (sx, sy) in out.items():
        assert sx == pytest.approx(1.5, rel=0.12) and sy == pytest.approx(1.0, rel=0.12), (dtype, sx, sy)


def test_make_step_for_several_walkers_runs_them_as_a_batch():
    """K walkers through vmap: walker k of a K-batch moves exactly as the same walker alone would
    when both see the same landscape and noise stream offsets (here: a frozen landscape, f = 0)."""
    model, train, test = regression_case()
    P = sum(p.numel() for p in model.parameters())
    base = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def run(K, theta0):
        fns = models.build(model, lambda o, y: nn.functional.mse_loss(o, y), *train, *test, "test_loss", 5.0, False,
                           K, model_kernel="torch")
        step = make_step(fns.forward_vjp, deposits_per_step=K, grid=G, sigma=0.3, cutoff=0.9, walls={}, wall_c=0.0,
                         schedule=dict(f_max=1e-300, t1=1.0, t2=2.0, t3=0.0), dt=0.01, gamma=0.0, kT=0.0, seed=1,
                         integrator="paper", bound=torch.ones(K, P, dtype=torch.float64), ends=(G.x_min, G.x_max))
        theta = theta0.clone()
        v = torch.zeros_like(theta)
        bufs = State(theta, v, theta.clone(), v.clone(), landscape(), torch.zeros(G.shape, dtype=torch.float64),
                torch.zeros((), dtype=torch.int64), torch.full((K,), -1), torch.zeros(K, 2, dtype=torch.float64),
                torch.ones(K, dtype=torch.bool), torch.zeros(K, dtype=torch.int64), torch.full((K,), -1))
        for _ in range(20):
            step(*bufs)
        return theta, bufs[5]

    thetas = torch.stack([base, base * 0.5, base * 0.25])
    batch, H = run(3, thetas)
    assert H.sum() == 60
    for k in range(3):
        alone, _ = run(1, thetas[k:k + 1])
        np.testing.assert_allclose(batch[k].numpy(), alone[0].numpy(), rtol=1e-12, atol=1e-14)


@CPP
@pytest.mark.parametrize("form", ["native", "compiled"])
def test_a_resumed_auto_run_keeps_its_form_and_continues_bit_for_bit(tmp_path, form):
    native = form == "native"
    whole = sampler(compile="auto", compile_min_steps=10, native=native)
    whole.run(400)
    assert whole.step_form == form
    half = sampler(compile="auto", compile_min_steps=10, native=native)
    half.run(200)
    assert half.step_form == form
    half.save(tmp_path / "c.npz")
    model, train, test = regression_case()
    resumed = WLMD.load(tmp_path / "c.npz", model if native else Opaque(model), train, test)
    resumed.run(200)
    assert resumed.step_form == form
    np.testing.assert_array_equal(resumed.theta.numpy(), whole.theta.numpy())
    np.testing.assert_array_equal(resumed.landscape.entropy, whole.landscape.entropy)


@CPP
def test_two_samplers_of_one_shape_do_not_share_a_compiled_step():
    """The compiled step keeps only tensor guards; two samplers with the same shapes but other
    constants (here the schedule) must still run their own step."""
    a = sampler(compile=True, schedule=dict(f_max=0.05, t1=100, t2=1e4, t3=0.0))
    a.run(300)
    b = sampler(compile=True, schedule=dict(f_max=0.5, t1=10, t2=20, t3=0.0))
    b.run(300)
    c = sampler(compile="eager", schedule=dict(f_max=0.5, t1=10, t2=20, t3=0.0))
    c.run(300)
    np.testing.assert_allclose(b.landscape.entropy, c.landscape.entropy, rtol=0, atol=1e-10)
    assert abs(a.landscape.entropy.sum() - b.landscape.entropy.sum()) > 1.0


@CPP
def test_blocks_of_compiled_steps_resume_bit_for_bit_at_any_step(tmp_path, monkeypatch):
    """A cheap compiled step runs in blocks of WLMD.BLOCK steps per call (aligned to the step
    counter) in long runs; a run cut at a step that is not a multiple of the block (301 + 299), or
    driven in chunks that cut blocks (a callback every 7 steps), continues bit for bit."""
    short = sampler(compile=True)
    short.run(600)
    assert short._runner.block is None  # a run shorter than BLOCK_MIN_STEPS does not compile the block
    monkeypatch.setattr(WLMD, "BLOCK_MIN_STEPS", 100)
    whole, resumed = whole_and_resumed(tmp_path, 301)
    assert whole._runner.block is not None  # the test model's step is far below a millisecond
    assert resumed._runner.block is not None
    np.testing.assert_array_equal(short.theta.numpy(), whole.theta.numpy())
    np.testing.assert_array_equal(resumed.theta.numpy(), whole.theta.numpy())
    np.testing.assert_array_equal(resumed.landscape.entropy, whole.landscape.entropy)
    chunked = sampler(compile=True)
    chunked.run(600, callback=lambda info: None, every=7)
    np.testing.assert_array_equal(chunked.theta.numpy(), whole.theta.numpy())
    np.testing.assert_array_equal(chunked.landscape.histogram, whole.landscape.histogram)


def _landscape_case(dev):
    """Points inside, on the edges, off the grid, not finite and repeated, with the reference's
    histogram, landscape_step output, S and H: (inputs on dev, references)."""
    from entropyeng import reference

    x = torch.tensor([-1.0, 0.5, float("nan"), 1.99, -4.0, 2.0, 0.5, float("inf"), -7.0], dtype=torch.float64)
    y = torch.tensor([0.3, -2.9, 0.0, 3.4, -3.0, 3.0, -2.9, 0.0, 9.0], dtype=torch.float64)
    weight = torch.tensor([1.0, 2.0, 3.0, 0.5, 1.0, 1.0, 0.25, 1.0, 1.0], dtype=torch.float64)
    height = weight * 0.1
    H_counts = torch.zeros(G.shape, dtype=torch.float64)
    reference.histogram(H_counts, G, x.tolist(), y.tolist(), weight.tolist())
    S_ref, H_ref = landscape(), torch.zeros(G.shape, dtype=torch.float64)
    d_ref = reference.landscape_step(S_ref, H_ref, G, x, y, height, weight, 0.3, 0.9)
    inputs = tuple(t.to(dev) for t in (x, y, height, weight))
    return inputs, (H_counts, d_ref, S_ref, H_ref)


def _check_against_reference(histogram, landscape_step, dev, check_dS_off_grid=True):
    (x, y, height, weight), (H_counts, d_ref, S_ref, H_ref) = _landscape_case(dev)
    H = torch.zeros(G.shape, dtype=torch.float64, device=dev)
    histogram(H, x, y, weight)
    torch.testing.assert_close(H.cpu(), H_counts, rtol=0, atol=0)
    S, H = landscape().to(dev), torch.zeros(G.shape, dtype=torch.float64, device=dev)
    d = torch.as_tensor(landscape_step(S, H, x, y, height, weight)).cpu()
    if not check_dS_off_grid:  # (dS at a non-finite point: the reference's 0, whatever the backend gave)
        d = torch.where((torch.isfinite(x) & torch.isfinite(y)).cpu(), d, d_ref)
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(S.cpu(), S_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(H.cpu(), H_ref, rtol=0, atol=0)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_histogram_and_landscape_step_operators_follow_their_reference(device):
    """The two operators of a WLMD step's landscape work against the contracts' reference
    (docs/design.md, after contract 4), on the device's kernels."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    _check_against_reference(lambda H, x, y, w: ops.histogram(H, GL, x, y, w),
                             lambda S, H, x, y, h, w: ops.landscape_step(S, H, GL, x, y, h, w, 0.3, 0.9), device)


def test_every_backend_module_has_the_histogram_and_landscape_step_of_the_reference(backend):
    """The backend table (the one place the implementations are chosen) on every backend: its
    histogram and landscape_step against the reference (the operators' convention for points off
    the grid and not finite, which the backends share; a backend's dS at a non-finite point is
    masked by the operator, not checked here)."""
    from entropyeng.kernels import backends

    impl = backends.get(backend)
    _check_against_reference(lambda H, x, y, w: impl.histogram(H, G, x, y, w),
                             lambda S, H, x, y, h, w: impl.landscape_step(S, H, G, x, y, h, w, 0.3, 0.9),
                             "cuda" if backend == "cuda" else "cpu", check_dS_off_grid=False)


def test_an_operator_grid_follows_the_grids_rules_on_every_path():
    """A grid list with a fractional cell count (40.5) or the wrong length is one ValueError naming
    the grid, from the Python kernels and (where built) the C++ ones alike."""
    S, H = landscape(), torch.zeros(G.shape, dtype=torch.float64)
    x = torch.tensor([0.1], dtype=torch.float64)
    bad = [GL[0], GL[1], 40.5, *GL[3:]]
    for call in (lambda g: ops.gradient(S, g, x, x), lambda g: ops.deposit(S, g, x, x, x, 0.3, 0.9),
                 lambda g: ops.histogram(H, g, x, x, x),
                 lambda g: ops.landscape_step(S, H, g, x, x, x, x, 0.3, 0.9)):
        for g in (bad, GL[:5]):
            with pytest.raises(ValueError, match="grid"):
                call(g)


@pytest.mark.cpp
def test_an_install_without_the_operators_says_so_once_with_the_fix(tmp_path):
    """A compiled engine without its C++ torch operators (an isolated build) warns once, naming the
    command that rebuilds them; ENTROPYENG_PYTHON_OPS=1 (chosen) is silent."""
    import subprocess
    import sys

    code = ("import importlib.util, warnings\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n.startswith('entropyeng._torch_ops_') else real(n, *a)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import entropyeng.kernels.ops as o\n"
            "print(o.COMPILED_OPERATORS, sum('--no-build-isolation' in str(x.message) for x in w))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1"]
