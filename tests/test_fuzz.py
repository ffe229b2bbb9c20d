"""Fuzz: random arrays, dtypes, shapes and strides at every binding of entropyeng._core and at the
public kernels. Only clean TypeError / ValueError or correct results may come back; a crash of the
interpreter would end the test run."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from entropyeng import Grid, kernels

from entropyeng.kernels import backends

core = backends.core()
pytestmark = pytest.mark.skipif(core is None, reason="the compiled extension is not built")

DTYPES = st.sampled_from([np.float64, np.float32, np.int32, np.int64, np.float16, np.complex128, np.bool_,
                          np.dtype(">f8")])
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def arrays(draw, max_dims=3, max_side=6):
    """Arrays of any dtype and shape, sometimes non-contiguous, read-only or misaligned."""
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    a = draw(hnp.arrays(dtype, shape, elements=None if np.dtype(dtype).kind in "fc" else None))
    kind = draw(st.sampled_from(["plain", "strided", "transposed", "readonly", "misaligned", "list", "none"]))
    if kind == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=0)[::2]
    elif kind == "transposed":
        a = a.T
    elif kind == "readonly":
        a.setflags(write=False)
    elif kind == "misaligned" and a.size:
        buf = np.zeros(a.nbytes + 1, np.uint8)
        m = buf[1:].view(a.dtype) if a.dtype.itemsize == 1 else None
        if m is not None:
            a = m[: a.size].reshape(a.shape)
        else:
            raw = np.frombuffer(buf.data, dtype=np.uint8, count=a.nbytes, offset=1)
            try:
                a = raw.view(a.dtype).reshape(a.shape)
            except ValueError:
                pass
    elif kind == "list":
        return a.tolist()
    elif kind == "none":
        return None
    return a


grids = st.tuples(st.floats(-1e3, 1e3), st.floats(1e-3, 1e3), st.integers(-2, 8),
                  st.floats(-1e3, 1e3), st.floats(1e-3, 1e3), st.integers(-2, 8))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))


def clean(fn):
    try:
        return fn()
    except (TypeError, ValueError):
        return None


@SETTINGS
@given(S=arrays(), g=grids, x=arrays(1), y=arrays(1), h=arrays(1), sigma=numbers, cutoff=numbers)
def test_core_deposit(S, g, x, y, h, sigma, cutoff):
    x0, w, nx, y0, wy, ny = g
    clean(lambda: core.deposit(S, x0, x0 + w, nx, y0, y0 + wy, ny, x, y, h, sigma, cutoff))


@SETTINGS
@given(S=arrays(), g=grids, x=arrays(1), y=arrays(1))
def test_core_gradient(S, g, x, y):
    x0, w, nx, y0, wy, ny = g
    out = clean(lambda: core.gradient(S, x0, x0 + w, nx, y0, y0 + wy, ny, x, y))
    if out is not None:
        assert out[0].shape == out[1].shape == np.shape(x)


@SETTINGS
@given(S=arrays(), sx=numbers, sy=numbers)
def test_core_smooth(S, sx, sy):
    out = clean(lambda: core.smooth(S, sx, sy))
    if out is not None:
        assert out.shape == S.shape and out.dtype == S.dtype


@SETTINGS
@given(theta=arrays(), v=arrays(), grad=arrays(), bound=st.one_of(arrays(), numbers), dt=numbers,
       gamma=numbers, kT=numbers, seed=st.integers(-3, 2**64 + 3), step=st.integers(-3, 2**64 + 3))
def test_core_langevin(theta, v, grad, bound, dt, gamma, kT, seed, step):
    clean(lambda: core.langevin(theta, v, grad, bound, dt, gamma, kT, seed, step))


@SETTINGS
@given(seed=st.integers(-3, 2**64 + 3), step=st.integers(-3, 2**64 + 3), n=st.integers(-5, 50),
       dtype=st.sampled_from(["float64", "float32", "int8", ""]))
def test_core_normal(seed, step, n, dtype):
    out = clean(lambda: core.normal(seed, step, n, dtype))
    if out is not None:
        assert out.shape == (n,) and np.all(np.isfinite(out))


@SETTINGS
@given(data=st.data())
def test_public_deposit_is_correct_or_refuses(data):
    """Valid-looking random calls on the public API: either a clean error or the reference result."""
    g = Grid(0.0, 1.0, data.draw(st.integers(3, 12)), -1.0, 1.0, data.draw(st.integers(3, 12)))
    n = data.draw(st.integers(0, 4))
    x = data.draw(hnp.arrays(np.float64, n, elements=st.floats(-2, 3)))
    y = data.draw(hnp.arrays(np.float64, n, elements=st.floats(-2, 3)))
    sigma = data.draw(st.floats(0.01, 0.5))
    cutoff = sigma * data.draw(st.floats(0.5, 4.0))
    S = np.zeros(g.shape)
    R = np.zeros(g.shape)
    try:
        kernels.deposit(S, g, x, y, 1.0, sigma, cutoff, backend="cpp")
    except ValueError as e:
        assert "cutoff" in str(e) and cutoff < sigma
        assert not S.any()
        return
    kernels.deposit(R, g, x, y, 1.0, sigma, cutoff, backend="torch")
    np.testing.assert_allclose(S, R, rtol=1e-12, atol=1e-15)


# -- constructors: any value of any argument is accepted or refused with TypeError / ValueError -------
ODD = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.integers(-2**70, 2**70),
                st.floats(allow_nan=True, allow_infinity=True), st.just([]), st.just({}), st.just((1, 2)))


@SETTINGS
@given(st.lists(ODD, min_size=6, max_size=6))
def test_grid_accepts_or_refuses_cleanly(args):
    try:
        g = Grid(*args)
    except (TypeError, ValueError):
        return
    assert np.isfinite(g.dx) and np.isfinite(g.dy) and g.nx * g.ny <= 2**34


def _tiny_wlmd_kwargs():
    return dict(loss="mse", grid=Grid(-12.0, 4.0, 40, -12.0, 4.0, 40), sigma=0.4, cutoff=1.2,
                schedule=dict(f_max=1.0, t1=10.0, t2=20.0, t3=0.0), dt=0.01, gamma=0.1, bound=2.0, compile="eager")


WLMD_KEYS = ["alpha", "sigma", "cutoff", "wall_c", "dt", "gamma", "kT", "bound", "seed", "walkers", "sync_every",
             "threads", "compile", "integrator", "metric", "cv_y", "timeout_s", "compile_min_steps", "walls", "schedule"]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(WLMD_KEYS), ODD)
def test_wlmd_constructor_accepts_or_refuses_cleanly(key, value):
    import torch

    from entropyeng import WLMD

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1)).double()
    X = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(8, 3)
    kw = dict(_tiny_wlmd_kwargs(), **{key: value})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # cv_y, metric's older name, says so
            w = WLMD(model, (X, X[:, :1]), (X, X[:, :1]), **kw)
    except (TypeError, ValueError):
        return
    import tempfile

    from entropyeng import WLMDError

    with tempfile.TemporaryDirectory() as tmp:
        try:  # a time step so large that the loss overflows is a failed step, reported with the last good state
            w.run(3, checkpoint=f"{tmp}/last-good.npz")
        except WLMDError:
            pass
    assert np.isfinite(w.landscape.entropy).all()


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["target_loss", "steps", "walkers", "lr", "batch_size", "max_epochs", "dt", "width",
                        "method", "kT0"]), ODD)
@example(key="lr", value=2**63 + 1)  # found by CI: an int lr above 2^63 overflowed in torch's SGD
def test_trainer_accepts_or_refuses_cleanly(key, value):
    import torch

    from entropyeng.train import TrainError, train

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1)).double()
    X = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(8, 3)
    kw = dict(dict(target_loss=0.5, steps=5, max_epochs=3, method="sgd"), **{key: value})
    try:
        r = train(model, (X, X[:, :1]), (X, X[:, :1]), loss="mse", metric="loss", **kw)
    except (TypeError, ValueError, TrainError):
        return
    assert r.train_loss >= 0
