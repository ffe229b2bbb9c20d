"""The batched network operators (``entropyeng::net_batch`` and ``net_batch_backward``): K walkers'
copies of one small CNN on one set of images and their vector-Jacobian product, the C++ kernels
against the torch reference, the reference against autograd through the torch model, refusals at
the C++ boundary, which models take the kernel, and the WLMD step over it against the step over
``functional_call``."""

import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call

from entropyeng import WLMD, Grid, reference

from entropyeng.kernels import ops
from entropyeng.tasks import mnist_cnn
from entropyeng.wlmd.models import net_layout

CPP = pytest.mark.operators  # skipped without the C++ operator library (conftest.py)
TOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def models():
    """(name, model, image shape): the paper's MNIST CNN (2 channels) and its 8 x 8 form, and a
    network with every layer kind in other sizes (3 -> 5 channels, a 5 x 5 kernel without padding,
    a 1 x 1 kernel, tanh, SiLU, an odd image that the pooling floors, biasless layers)."""
    torch.manual_seed(0)
    mixed = nn.Sequential(nn.Conv2d(3, 5, 5, padding=0), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(5, 4, 1, bias=False),
                          nn.SiLU(), nn.Conv2d(4, 6, 3, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(6 * 3 * 3, 7), nn.Tanh(), nn.Linear(7, 3, bias=False)).double()
    return [("mnist 28", mnist_cnn(28), (1, 28, 28)), ("digits 8", mnist_cnn(8, channels=3), (1, 8, 8)),
            ("mixed", mixed, (3, 15, 15))]


MODELS = models()


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def case(model, shape, dtype, K, N, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = flat(model)
    theta = torch.stack([base + 0.05 * torch.randn(base.shape, generator=g, dtype=torch.float64) for _ in range(K)])
    X = torch.rand(N, *shape, generator=g, dtype=torch.float64)
    spec = net_layout(model, X, X) if ops.COMPILED_OPERATORS else None
    out_dim = list(model.modules())[-1].out_features
    grad_out = torch.randn(K, N, out_dim, generator=g, dtype=torch.float64)
    return theta.to(dtype), X.to(dtype), grad_out.to(dtype), spec


def spec_of(model):
    """The flat description written out by hand from the model (for the reference without C++)."""
    spec = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            spec += [1, layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.padding[0],
                     int(layer.bias is not None)]
        elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.SiLU)):
            spec += [2, {nn.ReLU: 1, nn.Tanh: 2, nn.SiLU: 3}[type(layer)]]
        elif isinstance(layer, nn.MaxPool2d):
            spec += [3]
        elif isinstance(layer, nn.Flatten):
            spec += [4]
        else:
            spec += [5, layer.in_features, layer.out_features, int(layer.bias is not None)]
    return spec


@pytest.mark.parametrize("name, model, shape", MODELS, ids=[m[0] for m in MODELS])
def test_reference_is_autograd_through_the_model(name, model, shape):
    theta, X, grad_out, _ = case(model, shape, torch.float64, 2, 9)
    spec = spec_of(model)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    out = reference.net_batch(theta, X, spec)
    grad = reference.net_batch_backward(theta, X, grad_out, spec)
    for k in range(2):
        t = theta[k].clone().requires_grad_()
        o = functional_call(model, {n: v.view(s) for n, v, s in zip(names, torch.split(t, sizes), shapes)}, (X,))
        (o * grad_out[k]).sum().backward()
        assert torch.allclose(out[k], o.detach(), rtol=1e-12, atol=1e-12)
        assert torch.allclose(grad[k], t.grad, rtol=1e-10, atol=1e-12)


@CPP
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, model, shape", MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.parametrize("N", [1, 17, 40])
def test_kernels_match_the_reference(name, model, shape, dtype, N):
    theta, X, grad_out, spec = case(model, shape, dtype, 3, N)
    assert spec == spec_of(model)
    out, ref = ops.net_batch(theta, X, spec), reference.net_batch(theta, X, spec)
    assert out.shape == ref.shape and out.dtype == dtype
    assert float((out - ref).abs().max()) <= TOL[dtype] * max(float(ref.abs().max()), 1.0)
    grad, ref_g = ops.net_batch_backward(theta, X, grad_out, spec), reference.net_batch_backward(theta, X, grad_out, spec)
    assert float((grad - ref_g).abs().max()) <= TOL[dtype] * max(float(ref_g.abs().max()), 1.0)


@CPP
def test_pooling_ties_and_nan():
    """The pooled gradient goes to the first maximum of a window (ties after ReLU are common), as
    torch's does; a NaN in a window comes out as NaN (so a failed walker is seen)."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    X = torch.tensor([[[[1.0, 1.0, 0.0, 2.0], [1.0, 0.5, 2.0, 2.0], [3.0, 3.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]]]],
                     dtype=torch.float64)
    spec = net_layout(model, X, X)
    theta, g = flat(model).reshape(1, -1), torch.ones(1, 1, 1, dtype=torch.float64)
    assert torch.allclose(ops.net_batch_backward(theta, X, g, spec), reference.net_batch_backward(theta, X, g, spec))
    X[0, 0, 3, 3] = float("nan")
    assert torch.isnan(ops.net_batch(theta, X, spec)).all()


@CPP
def test_opcheck_and_threads():
    name, model, shape = MODELS[1]
    theta, X, grad_out, spec = case(model, shape, torch.float64, 5, 21)
    torch.library.opcheck(ops.net_batch, (theta, X, spec))
    torch.library.opcheck(ops.net_batch_backward, (theta, X, grad_out, spec))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.net_batch_backward(theta, X, grad_out, spec)
        torch.set_num_threads(2)
        two = ops.net_batch_backward(theta, X, grad_out, spec)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@CPP
@pytest.mark.parametrize("change, needle", [
    (lambda a: a.update(spec=a["spec"][:-1]), "spec: the description ends inside a linear layer"),
    (lambda a: a.update(spec=[9] + a["spec"]), "spec: unknown layer code 9"),
    (lambda a: a.update(spec=a["spec"][:-5]), "spec: the network must flatten its images"),
    (lambda a: a.update(spec=[1, 2, 2, 3, 1, 1] + a["spec"][6:]), "spec: a conv layer takes 2 channels, its input has 1"),
    (lambda a: a.update(spec=[1, 1, 2, 3, 3, 1] + a["spec"][6:]), "pad <= k - 1"),
    (lambda a: a.update(spec=a["spec"][:-4] + [5, 17, 10, 1]), "spec: a linear layer takes 17 features"),
    (lambda a: a.update(theta=a["theta"][:, 1:].contiguous()), "theta: expected 362 parameters"),
    (lambda a: a.update(X=a["X"].float()), "X: expected the dtype of theta"),
    (lambda a: a.update(X=a["X"][:, 0]), "X: expected 4 dimensions"),
    (lambda a: a.update(X=a["X"][:, :, ::2]), "X: expected a contiguous tensor"),
    (lambda a: a.update(grad_out=a["grad_out"][:, :, :9].contiguous()), "grad_out: expected shape"),
    (lambda a: a.update(theta=a["theta"].to(torch.int32)), "theta: expected float32 or float64"),
])
def test_refusals_name_the_argument(change, needle):
    name, model, shape = MODELS[0]
    theta, X, grad_out, spec = case(model, shape, torch.float64, 2, 4)
    a = dict(theta=theta, X=X, grad_out=grad_out, spec=list(spec))
    change(a)
    with pytest.raises(ValueError) as err:
        ops.net_batch_backward(a["theta"], a["X"], a["grad_out"], a["spec"])
    assert needle in str(err.value)


def test_which_models_take_the_kernel():
    X = torch.zeros(2, 1, 28, 28, dtype=torch.float64)
    assert (net_layout(mnist_cnn(28), X, X) is not None) == ops.COMPILED_OPERATORS
    odd = [nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Flatten(), nn.Linear(2 * 13 * 13, 3)),
           nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 26 * 26, 3)),
           nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 13 * 13, 3)),
           nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(2 * 8 * 8, 3)),
           nn.Sequential(nn.Flatten(), nn.Linear(784, 3)),
           nn.Sequential(nn.Conv2d(1, 32, 3), nn.Flatten(), nn.Linear(32 * 26 * 26, 3))]  # too many channels
    for model in odd:
        assert net_layout(model.double(), X, X) is None
    assert net_layout(mnist_cnn(28), X.float(), X.float()) is None  # inputs of another dtype


def cnn_sampler(kernel, K=1):
    warnings.filterwarnings("ignore", message=".*clamped into it")
    g = torch.Generator().manual_seed(0)
    X, Xt = torch.rand(30, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(30, 1, 8, 8, generator=g, dtype=torch.float64)
    y, yt = torch.randint(0, 10, (30,), generator=g), torch.randint(0, 10, (30,), generator=g)
    w = WLMD(mnist_cnn(8), (X, y), (Xt, yt), loss="ce", metric="accuracy", grid=Grid(-8, 4, 300, -12, 12, 300),
             sigma=0.2, cutoff=0.8, walls=dict(x_max=3.0), schedule=dict(f_max=1.0, t1=100.0, t2=1e6, t3=0.0),
             dt=1e-3, gamma=0.1, walkers=K, compile="eager", seed=5)
    w.model_kernel = kernel
    return w


@CPP
@pytest.mark.parametrize("K", [1, 3])
def test_wlmd_step_over_the_kernel_follows_functional_call(K):
    a, b = cnn_sampler("auto", K), cnn_sampler("torch", K)
    a.run(150)
    b.run(150)
    assert a.model_path == "net_batch" and b.model_path == "functional_call"
    assert torch.allclose(a.state.theta, b.state.theta, rtol=0, atol=1e-9)
    assert float(abs(a.S - b.S).max()) < 1e-8 * max(float(abs(b.S).max()), 1.0)


@CPP
def test_host_reads_between_blocks_come_from_the_kernel():
    """One walker's (x, y) and smoothed-accuracy error, read by the host between blocks of steps,
    come from the batched operator's forward (no autograd graph), equal to the torch model's (the
    same CV functions through functional_call) to rounding."""
    from entropyeng.wlmd import models

    w = cnn_sampler("auto")
    w.run(40)
    assert w.model_path == "net_batch"
    torch_path = models.build(w.model, w._loss, w.X_tr, w.y_tr, w.X_te, w.y_te, w.cv_y, w.alpha, w.logit_y, 1,
                              "torch")
    with torch.no_grad():
        x, y, err = (float(a[0]) for a in torch_path.evaluate(w.state.theta))
    assert abs(w._xv - x) < 1e-12 and abs(w._yv - y) < 1e-12
    assert abs(float(w._errs[0]) - err) < 1e-12
