"""The batched MLP operators (``entropyeng::mlp_batch`` and ``mlp_batch_backward``): K walkers'
copies of one MLP on one set of rows with their activation cache, and their vector-Jacobian product
from that cache, the C++ kernels against the torch reference (itself checked against autograd), across dtypes, layouts, activations and row
counts that cross the kernel's row blocks; refusals at the C++ boundary; and the WLMD step over them
against the step over ``functional_call``."""

import warnings

import pytest
import torch
from conftest import LOWER_ISA_LEVELS, run_at_isa_level
from torch import nn

from entropyeng import WLMD, Grid, reference

from entropyeng.kernels import ops
from entropyeng.reference.mlp_batch import cache_shape
from entropyeng.tasks import regression_mlp, spiral_regression
from entropyeng.wlmd.models import mlp_layout

CPP = pytest.mark.operators  # skipped without the C++ operator library (conftest.py)

# (sizes, acts, bias): the spiral regression MLP, every activation, layers without bias, one layer,
# widths that are not multiples of the kernel's tiles
LAYOUTS = [([2, 30, 30, 1], [2, 2, 0], [1, 1, 1]), ([3, 5, 7, 2], [1, 3, 0], [1, 0, 1]),
           ([4, 17, 3], [2, 0], [0, 1]), ([6, 9], [3], [1]), ([1, 33, 10], [1, 2], [1, 0])]
TOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def n_params(sizes, bias):
    return sum(sizes[k] * sizes[k + 1] + (sizes[k + 1] if bias[k] else 0) for k in range(len(sizes) - 1))


def case(layout, dtype, K, N, seed=0):
    sizes, _, bias = layout
    g = torch.Generator().manual_seed(seed)
    theta = (torch.randn(K, n_params(sizes, bias), generator=g, dtype=torch.float64) * 0.6).to(dtype)
    X = torch.randn(N, sizes[0], generator=g, dtype=torch.float64).to(dtype)
    grad_out = torch.randn(K, N, sizes[-1], generator=g, dtype=torch.float64).to(dtype)
    return theta, X, grad_out


def close(a, b, dtype):
    scale = max(float(b.abs().max()), 1.0)
    return float((a - b).abs().max()) <= TOL[dtype] * scale


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reference_backward_is_autograd(layout):
    """The reference's hand-written chain rule equals autograd through its forward."""
    theta, X, grad_out = case(layout, torch.float64, 3, 41)
    t = theta.clone().requires_grad_()
    (reference.mlp_batch(t, X, *layout)[0] * grad_out).sum().backward()
    _, cache = reference.mlp_batch(theta, X, *layout)
    assert torch.allclose(reference.mlp_batch_backward(theta, X, cache, grad_out, *layout), t.grad, rtol=1e-12,
                          atol=1e-12)


@CPP
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("N", [1, 37, 64, 129, 500])
def test_kernels_match_the_reference(layout, dtype, N):
    theta, X, grad_out = case(layout, dtype, 3, N)
    out, cache = ops.mlp_batch(theta, X, *layout)
    ref_out, ref_cache = reference.mlp_batch(theta, X, *layout)
    assert out.shape == (3, N, layout[0][-1]) and out.dtype == dtype
    assert close(out, ref_out, dtype)
    # the cache's layout is the documented one: every cached feature of every row, zeros past N
    assert cache.shape == ref_cache.shape == cache_shape(3, N, layout[0], layout[1]) and cache.dtype == dtype
    assert close(cache, ref_cache, dtype)
    assert not cache.transpose(2, 3).reshape(3, -1, cache.shape[2])[:, N:].any()
    grad = ops.mlp_batch_backward(theta, X, cache, grad_out, *layout)
    assert grad.shape == theta.shape and grad.dtype == dtype
    ref_grad = reference.mlp_batch_backward(theta, X, ref_cache, grad_out, *layout)
    assert close(grad, ref_grad, dtype)
    # each backward reads the activations it is given (either cache, either side)
    assert close(ops.mlp_batch_backward(theta, X, ref_cache, grad_out, *layout), ref_grad, dtype)
    assert close(reference.mlp_batch_backward(theta, X, cache, grad_out, *layout), ref_grad, dtype)


@CPP
def test_the_backward_reads_the_cache_and_does_not_recompute():
    """A cache of other parameters gives the gradient at those activations: the backward uses what the
    forward left (the weights of the pull-back itself still come from theta)."""
    layout = LAYOUTS[0]
    theta, X, grad_out = case(layout, torch.float64, 2, 150)
    other, _, _ = case(layout, torch.float64, 2, 150, seed=5)
    _, cache = ops.mlp_batch(other, X, *layout)
    _, ref_cache = reference.mlp_batch(other, X, *layout)
    got = ops.mlp_batch_backward(theta, X, cache, grad_out, *layout)
    assert close(got, reference.mlp_batch_backward(theta, X, ref_cache, grad_out, *layout), torch.float64)
    assert not close(got, reference.mlp_batch_backward(theta, X, reference.mlp_batch(theta, X, *layout)[1], grad_out,
                                                       *layout), torch.float64)


@CPP
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tanh_far_out_and_at_zero(dtype):
    """Saturated and tiny pre-activations and a sweep of every binade up to saturation, within 4 ulp
    (the float32 kernel's tanh is a rational approximation with a clamp, and no branch for tiny
    arguments: subnormals too; the float64 one expm1(2|z|) / (expm1(2|z|) + 2))."""
    layout = ([1, 1], [2], [0])
    special = torch.tensor([0.0, 1e-30, -3e-4, 5e-4, 0.1, -0.13, 0.5, 2.0, -7.9, 8.0, 19.06, 19.5, 30.0, -1e5],
                           dtype=torch.float64)
    tiny = torch.finfo(dtype).tiny
    subnormal = torch.tensor([tiny / 2, -tiny / 3, tiny / 1000, -tiny * 2 ** -20], dtype=dtype)
    sweep = torch.logspace(-30, 1.6, 200_000, dtype=torch.float64)  # every binade from 1e-30 to 40
    z = torch.cat([special, sweep, -sweep]).to(dtype)
    out = ops.mlp_batch(torch.ones(1, 1, dtype=dtype), z.reshape(-1, 1), *layout)[0].reshape(-1)
    exact = torch.tanh(z.double())
    ulp = torch.finfo(dtype).eps
    assert float(((out.double() - exact).abs() / exact.abs().clamp_min(1e-300)).max()) <= 4 * ulp
    assert torch.equal(torch.sign(out), torch.sign(z))
    got = ops.mlp_batch(torch.ones(1, 1, dtype=dtype), subnormal.reshape(-1, 1), *layout)[0].reshape(-1)
    assert torch.equal(got, subnormal)  # tanh z = z to rounding below the smallest normal
    odd = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    got = ops.mlp_batch(torch.ones(1, 1, dtype=dtype), odd.reshape(-1, 1), *layout)[0].reshape(-1)
    assert torch.isnan(got[0])  # a NaN stays NaN (the walker's check reads it)
    assert float((got[1:] - torch.tensor([1.0, -1.0], dtype=dtype)).abs().max()) <= 4 * ulp


@CPP
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_independent_of_threads_and_of_the_other_walkers(dtype):
    """Each walker is computed whole by one thread: the same bits with 1 or 2 threads, and a walker's
    result does not depend on which other walkers share the call."""
    layout = LAYOUTS[0]
    theta, X, grad_out = case(layout, dtype, 8, 300)
    before = torch.get_num_threads()

    def both():
        out, cache = ops.mlp_batch(theta, X, *layout)
        return out, cache, ops.mlp_batch_backward(theta, X, cache, grad_out, *layout)

    try:
        torch.set_num_threads(1)
        one = both()
        torch.set_num_threads(2)
        two = both()
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    _, cache5 = ops.mlp_batch(theta[5:6].contiguous(), X, *layout)
    assert torch.equal(cache5[0], one[1][5])
    alone = ops.mlp_batch_backward(theta[5:6].contiguous(), X, cache5, grad_out[5:6].contiguous(), *layout)
    assert torch.equal(alone[0], one[2][5])


@CPP
def test_recycled_outputs_are_never_overwritten_while_held():
    """The cache and the gradient come from storage the operator keeps between calls (a fresh
    multi-megabyte tensor per step costs page faults): handed out again only once every tensor and
    view on it is gone, so a result still held keeps its values."""
    layout = LAYOUTS[0]
    theta, X, grad_out = case(layout, torch.float32, 4, 300)
    other, _, _ = case(layout, torch.float32, 4, 300, seed=9)
    out1, cache1 = ops.mlp_batch(theta, X, *layout)
    grad1 = ops.mlp_batch_backward(theta, X, cache1, grad_out, *layout)
    kept = cache1.clone(), grad1.clone()
    view = cache1[1:3]
    del cache1
    _, cache2 = ops.mlp_batch(other, X, *layout)  # the view still holds the first cache
    grad2 = ops.mlp_batch_backward(other, X, cache2, grad_out, *layout)
    assert torch.equal(view, kept[0][1:3]) and torch.equal(grad1, kept[1])
    assert not torch.equal(cache2[1:3], view) and not torch.equal(grad2, grad1)
    address = cache2.data_ptr()
    del cache2, grad2
    _, cache3 = ops.mlp_batch(theta, X, *layout)  # let go: its storage is used again
    assert cache3.data_ptr() == address and torch.equal(cache3, kept[0])


@CPP
def test_opcheck():
    layout = LAYOUTS[1]
    for dtype in (torch.float64, torch.float32):
        theta, X, grad_out = case(layout, dtype, 2, 20)
        torch.library.opcheck(ops.mlp_batch, (theta, X, *layout))
        cache = ops.mlp_batch(theta, X, *layout)[1]
        torch.library.opcheck(ops.mlp_batch_backward, (theta, X, cache, grad_out, *layout))


@CPP
def test_empty_batches():
    layout = LAYOUTS[0]
    theta, X, grad_out = case(layout, torch.float64, 2, 5)
    out, cache = ops.mlp_batch(theta[:0], X, *layout)
    assert out.shape == (0, 5, 1) and cache.shape == (0, 1, 61, 128)
    out, cache = ops.mlp_batch(theta, X[:0], *layout)
    assert out.shape == (2, 0, 1) and cache.shape == (2, 0, 61, 128)
    assert torch.equal(ops.mlp_batch_backward(theta, X[:0], cache, grad_out[:, :0], *layout), torch.zeros_like(theta))


@CPP
@pytest.mark.parametrize("change, needle", [
    (lambda a: a.update(theta=a["theta"].float()), "X: expected the dtype of theta"),
    (lambda a: a.update(theta=a["theta"].int()), "theta: expected float32 or float64"),
    (lambda a: a.update(theta=a["theta"].t()), "theta: expected"),
    (lambda a: a.update(theta=a["theta"][:, :-1].contiguous()), "theta: expected 1051 parameters"),
    (lambda a: a.update(theta=a["theta"].reshape(-1)), "theta: expected 2 dimensions"),
    (lambda a: a.update(X=a["X"][:, :1].contiguous()), "X: expected 2 columns"),
    (lambda a: a.update(X=a["X"][::2]), "X: expected a contiguous tensor"),
    (lambda a: a.update(sizes=[2]), "sizes: expected the widths"),
    (lambda a: a.update(sizes=[2, 30, 0, 1]), "sizes: expected widths in [1, 2^20]"),
    (lambda a: a.update(acts=[2, 2]), "acts: expected one activation per layer"),
    (lambda a: a.update(acts=[2, 7, 0]), "acts: expected codes"),
    (lambda a: a.update(bias=[1, 2, 1]), "bias: expected flags 0 or 1"),
    (lambda a: a.update(bias=[1, 1]), "bias: expected one flag per layer"),
    (lambda a: a.update(grad_out=a["grad_out"][:, :-1].contiguous()), "grad_out: expected shape (3, 40, 1)"),
    (lambda a: a.update(grad_out=a["grad_out"].float()), "grad_out: expected the dtype of theta"),
    (lambda a: a.update(grad_out=a["grad_out"].reshape(3, 40)), "grad_out: expected 3 dimensions"),
    (lambda a: a.update(cache=a["cache"][:, :, 1:].contiguous()), "cache: expected shape [3, 1, 61, 128]"),
    (lambda a: a.update(cache=a["cache"].float()), "cache: expected the dtype of theta"),
    (lambda a: a.update(cache=a["cache"].reshape(3, -1)), "cache: expected 4 dimensions"),
    (lambda a: a.update(cache=a["cache"].transpose(2, 3)), "cache: expected a contiguous tensor"),
])
def test_refusals_name_the_argument(change, needle):
    sizes, acts, bias = LAYOUTS[0]
    theta, X, grad_out = case(LAYOUTS[0], torch.float64, 3, 40)
    cache = reference.mlp_batch(theta, X, sizes, acts, bias)[1]
    a = dict(theta=theta, X=X, cache=cache, grad_out=grad_out, sizes=list(sizes), acts=list(acts), bias=list(bias))
    change(a)
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]").replace("^", r"\^")):
        ops.mlp_batch_backward(a["theta"], a["X"], a["cache"], a["grad_out"], a["sizes"], a["acts"], a["bias"])
    if not needle.startswith(("grad_out", "cache")):
        with pytest.raises(ValueError):
            ops.mlp_batch(a["theta"], a["X"], a["sizes"], a["acts"], a["bias"])


def test_which_models_take_the_batched_kernel():
    X = torch.zeros(4, 2, dtype=torch.float64)
    expected = ([2, 30, 30, 1], [2, 2, 0], [1, 1, 1]) if ops.COMPILED_OPERATORS else None
    assert mlp_layout(regression_mlp(30), X, X) == expected
    assert mlp_layout(regression_mlp(30), X.float(), X.float()) is None  # inputs of another dtype
    assert mlp_layout(regression_mlp(100), X, X) is None  # wider than the kernel wins at
    frozen = regression_mlp(4)
    frozen[0].bias.requires_grad_(False)
    assert mlp_layout(frozen, X, X) is None
    assert mlp_layout(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).double(), X, X) is None
    assert mlp_layout(nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1)).double(), X, X) is None


def spiral(K, dtype=torch.float64, kernel="auto"):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    X, y = (torch.as_tensor(a, dtype=dtype) for a in spiral_regression(60, seed=0))
    Xt, yt = (torch.as_tensor(a, dtype=dtype) for a in spiral_regression(60, seed=1))
    w = WLMD(regression_mlp(8).to(dtype), (X, y), (Xt, yt), loss="mse",
             grid=Grid(-12, 4, 400, -12, 4, 400), sigma=0.2, cutoff=0.8, walls=dict(x_max=0.5),
             schedule=dict(f_max=1.0, t1=100.0, t2=1e6, t3=0.0), dt=2e-3, gamma=0.1, walkers=K, compile="eager",
             seed=3)
    w.model_kernel = kernel
    return w


@CPP
@pytest.mark.parametrize("K", [1, 4])
def test_wlmd_step_over_the_batched_kernel_follows_functional_call(K):
    """The same run, 300 float64 steps, through the batched MLP operators and through
    ``functional_call`` (+ ``vmap``): the same trajectory to rounding, the same landscape."""
    a, b = spiral(K), spiral(K, kernel="torch")
    a.run(300)
    b.run(300)
    assert a.model_path == "mlp_batch" and b.model_path == "functional_call"
    assert torch.allclose(a.state.theta, b.state.theta, rtol=0, atol=1e-9)
    assert float(abs(a.S - b.S).max()) < 1e-8 * max(float(abs(b.S).max()), 1.0)


def test_model_kernel_is_checked():
    w = spiral(1, kernel="cpp")
    with pytest.raises(ValueError, match="model_kernel: expected 'auto' or 'torch', got 'cpp'"):
        w.run(2)


CHECK_LEVEL = r"""
import json, torch
from entropyeng import _core, reference
from entropyeng.kernels import ops
from entropyeng.tasks import mnist_cnn
from entropyeng.wlmd.models import net_layout
errs = {"isa": _core.cpu_isa}
g = torch.Generator().manual_seed(1)
for dt in (torch.float64, torch.float32):
    for sizes, acts, bias in [([2, 30, 30, 1], [2, 2, 0], [1, 1, 1]), ([3, 5, 7, 2], [1, 3, 0], [1, 0, 1])]:
        P = sum(sizes[k] * sizes[k + 1] + (sizes[k + 1] if bias[k] else 0) for k in range(len(sizes) - 1))
        th = (torch.randn(3, P, generator=g, dtype=torch.float64) * 0.6).to(dt)
        X = torch.randn(131, sizes[0], generator=g, dtype=torch.float64).to(dt)
        go = torch.randn(3, 131, sizes[-1], generator=g, dtype=torch.float64).to(dt)
        r, rc = reference.mlp_batch(th, X, sizes, acts, bias)
        rg = reference.mlp_batch_backward(th, X, rc, go, sizes, acts, bias)
        o, c = ops.mlp_batch(th, X, sizes, acts, bias)
        errs[f"mlp {sizes} {dt}"] = max(float((o - r).abs().max() / max(1, float(r.abs().max()))),
                                        float((ops.mlp_batch_backward(th, X, c, go, sizes, acts, bias) - rg).abs().max() / max(1, float(rg.abs().max()))))
    m = mnist_cnn(8, channels=3)
    X = torch.rand(21, 1, 8, 8, generator=g, dtype=torch.float64)
    spec = net_layout(m, X, X)
    th = torch.cat([p.detach().reshape(-1) for p in m.parameters()]).reshape(1, -1).repeat(2, 1).to(dt)
    go = torch.randn(2, 21, 10, generator=g, dtype=torch.float64).to(dt)
    X = X.to(dt)
    r, rg = reference.net_batch(th, X, spec), reference.net_batch_backward(th, X, go, spec)
    errs[f"net {dt}"] = max(float((ops.net_batch(th, X, spec) - r).abs().max() / max(1, float(r.abs().max()))),
                            float((ops.net_batch_backward(th, X, go, spec) - rg).abs().max() / max(1, float(rg.abs().max()))))
    # tanh in ulp over every binade up to saturation (the float64 one divides by a reciprocal estimate
    # and Newton steps at AVX2 and AVX-512)
    z = torch.cat([torch.logspace(-30, 1.6, 50_000, dtype=torch.float64), torch.tensor([0.1, 19.5, 30.0],
                                                                                      dtype=torch.float64)])
    z = torch.cat([z, -z]).to(dt)
    t = ops.mlp_batch(torch.ones(1, 1, dtype=dt), z.reshape(-1, 1), [1, 1], [2], [0])[0].reshape(-1).double()
    exact = torch.tanh(z.double())
    errs[f"tanh ulp {dt}"] = float(((t - exact).abs() / exact.abs()).max()) / torch.finfo(dt).eps
print(json.dumps(errs))
"""


@CPP
@pytest.mark.parametrize("level, name", LOWER_ISA_LEVELS)
def test_every_instruction_set_level(level, name):
    """The batched kernels' loops of the lower instruction-set levels (AVX2, the generic x86-64),
    which a CPU without AVX-512 runs, against the reference: ENTROPYENG_MAX_ISA caps the level of a
    fresh interpreter."""
    errs = run_at_isa_level(CHECK_LEVEL, level, name)
    for label, err in errs.items():
        if label.startswith("tanh ulp"):
            assert err <= 4, (label, err)
        else:
            assert err <= (1e-12 if "float64" in label else 2e-5), (label, err)


@CPP
def test_host_reads_between_blocks_come_from_the_kernel():
    """One walker's (x, y) read by the host between blocks of steps come from the batched MLP's
    forward, equal to the torch model's to rounding, without an autograd graph."""
    w = spiral(1)
    w.run(30)
    assert w.model_path == "mlp_batch"
    with torch.no_grad():
        out = w.model(torch.cat([w.X_tr, w.X_te]))
        n = w.X_tr.shape[0]
        x = torch.log(torch.nn.functional.mse_loss(out[:n].reshape(w.y_tr.shape), w.y_tr))
        y = torch.log(torch.nn.functional.mse_loss(out[n:].reshape(w.y_te.shape), w.y_te))
    assert abs(w._xv - float(x)) < 1e-12 * max(1.0, abs(float(x))) and abs(w._yv - float(y)) < 1e-12 * max(1.0, abs(float(y)))
