"""Bad input gets a TypeError or ValueError naming the argument, before anything is written."""

import numpy as np
import pytest
from conftest import to_numpy

from entropyeng import Grid, kernels

from entropyeng.kernels import backends

G = Grid(0.0, 1.0, 10, 0.0, 1.0, 10)


def deposit_call(backend, **over):
    args = dict(S=np.zeros(G.shape), grid=G, x=0.5, y=0.5, height=1.0, sigma=0.1, cutoff=0.3)
    args.update(over)
    return lambda: kernels.deposit(args.pop("S"), args.pop("grid"), backend=backend, **args)


DEPOSIT_CASES = [
    ("S", TypeError, dict(S=np.zeros(G.shape, np.int64))),
    ("S", ValueError, dict(S=np.zeros((10, 11)))),
    ("S", ValueError, dict(S=np.zeros((10, 20))[:, ::2])),
    ("S", TypeError, dict(S=[[0.0] * 10] * 10)),
    ("grid", TypeError, dict(grid=(0, 1, 10, 0, 1, 10))),
    ("x", ValueError, dict(x=np.nan)),
    ("y", ValueError, dict(y=np.inf)),
    ("x", ValueError, dict(x=[0.5, np.nan], y=[0.5, 0.5])),
    ("y", ValueError, dict(x=[0.5, 0.4], y=[0.5])),
    ("height", ValueError, dict(x=[0.5, 0.4], y=[0.5, 0.5], height=[1.0, 2.0, 3.0])),
    ("height", ValueError, dict(height=np.nan)),
    ("x", ValueError, dict(x=np.zeros((2, 2)), y=np.zeros((2, 2)))),
    ("x", TypeError, dict(x="0.5")),
    ("sigma", ValueError, dict(sigma=0.0)),
    ("sigma", ValueError, dict(sigma=-1.0)),
    ("cutoff", ValueError, dict(cutoff=0.05)),
    ("cutoff", ValueError, dict(cutoff=1e6)),
]


@pytest.mark.parametrize("name, exc, over", DEPOSIT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(DEPOSIT_CASES)])
def test_deposit_bad_input(backend, name, exc, over):
    if backend == "cuda":
        pytest.skip("host-side argument checks are shared; CUDA arrays are checked in test_cuda_arrays")
    S = over.get("S", np.zeros(G.shape))
    over = dict(over, S=S)
    with pytest.raises(exc, match=name):
        deposit_call(backend, **over)()
    if isinstance(S, np.ndarray) and S.dtype.kind == "f":
        assert not S.any(), "nothing may be written before the error"


def test_deposit_batch_with_one_bad_walker_writes_nothing(backend):
    if backend == "cuda":
        pytest.skip("host values only")
    S = np.zeros(G.shape)
    with pytest.raises(ValueError, match="x"):
        kernels.deposit(S, G, [0.5, 0.2, np.nan], [0.5, 0.5, 0.5], 1.0, 0.1, 0.3, backend=backend)
    assert not S.any()


def test_deposit_read_only(backend):
    if backend == "cuda":
        pytest.skip("numpy only")
    S = np.zeros(G.shape)
    S.setflags(write=False)
    with pytest.raises(ValueError, match="S"):
        kernels.deposit(S, G, 0.5, 0.5, 1.0, 0.1, 0.3, backend=backend)


@pytest.mark.parametrize("call, name, exc", [
    (lambda b: kernels.gradient(np.zeros((3, 3)), G, 0.5, 0.5, backend=b), "S", ValueError),
    (lambda b: kernels.gradient(np.zeros(G.shape, np.float16), G, 0.5, 0.5, backend=b), "S", TypeError),
    (lambda b: kernels.gradient(np.zeros(G.shape), G, np.nan, 0.5, backend=b), "x", ValueError),
    (lambda b: kernels.gradient(np.zeros(G.shape), G, [0.5, 0.1], [0.5], backend=b), "y", ValueError),
    (lambda b: kernels.smooth(np.zeros(10), 1.0, backend=b), "S", ValueError),
    (lambda b: kernels.smooth(np.zeros((10, 10)), -1.0, backend=b), "sigma_bins", ValueError),
    (lambda b: kernels.smooth(np.zeros((10, 10)), (1.0, 2.0, 3.0), backend=b), "sigma_bins", ValueError),
    (lambda b: kernels.smooth(np.zeros((10, 10)), np.nan, backend=b), "sigma_bins", ValueError),
    (lambda b: kernels.smooth(np.zeros((10, 10)).T[::2], 1.0, backend=b), "S", ValueError),
    (lambda b: kernels.normal(-1, 0, 10, backend=b), "seed", ValueError),
    (lambda b: kernels.normal(0, 2**64, 10, backend=b), "step", ValueError),
    (lambda b: kernels.normal(0, 0, -3, backend=b), "n", ValueError),
    (lambda b: kernels.normal(0, 0, 3, backend=b, dtype="int32"), "dtype", TypeError),
])
def test_other_kernels_bad_input(backend, call, name, exc):
    if backend == "cuda":
        pytest.skip("host arrays")
    with pytest.raises(exc, match=name):
        call(backend)


def langevin_args(**over):
    n = 8
    args = dict(theta=np.zeros(n), v=np.zeros(n), grad=np.zeros(n), bound=1.0, dt=0.1, gamma=0.1, kT=1.0,
                seed=0, step=0)
    args.update(over)
    return args


LANGEVIN_CASES = [
    ("theta", TypeError, dict(theta=np.zeros(8, np.int32))),
    ("theta", ValueError, dict(theta=np.zeros(16)[::2])),
    ("v", TypeError, dict(v=np.zeros(8, np.float32))),
    ("v", ValueError, dict(v=np.zeros(9))),
    ("grad", ValueError, dict(grad=np.zeros((2, 4)))),
    ("bound", ValueError, dict(bound=-1.0)),
    ("bound", ValueError, dict(bound=0.0)),
    ("bound", ValueError, dict(bound=np.nan)),
    ("bound", ValueError, dict(bound=np.array([1.0] * 7 + [-1.0]))),
    ("bound", ValueError, dict(bound=np.ones(7))),
    ("bound", TypeError, dict(bound="wide")),
    ("dt", ValueError, dict(dt=0.0)),
    ("dt", ValueError, dict(dt=np.inf)),
    ("gamma", ValueError, dict(gamma=1.5)),
    ("kT", ValueError, dict(kT=-1.0)),
    ("seed", TypeError, dict(seed=1.5)),
    ("step", ValueError, dict(step=-1)),
]


@pytest.mark.parametrize("name, exc, over", LANGEVIN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LANGEVIN_CASES)])
def test_langevin_bad_input(backend, name, exc, over):
    if backend == "cuda":
        pytest.skip("host arrays")
    args = langevin_args(**over)
    theta_before = np.array(args["theta"], copy=True)
    with pytest.raises(exc, match=name):
        kernels.langevin(**args, backend=backend)
    np.testing.assert_array_equal(args["theta"], theta_before)


@pytest.mark.parametrize("backend_name, env, exc", [("fortran", None, ValueError), (None, "fortran", ValueError)])
def test_unknown_backend(monkeypatch, backend_name, env, exc):
    if env:
        monkeypatch.setenv("ENTROPYENG_BACKEND", env)
    with pytest.raises(exc, match="backend|ENTROPYENG_BACKEND"):
        kernels.normal(0, 0, 4, backend=backend_name)


def test_environment_variable_selects_default(monkeypatch):
    monkeypatch.setenv("ENTROPYENG_BACKEND", "torch")
    assert backends.select(None, np.zeros(3)) == "torch"
    monkeypatch.delenv("ENTROPYENG_BACKEND")
    assert backends.select(None, np.zeros(3)) == backends.available()[-2 if "cpp" in backends.available() else -1]


def test_one_rule_chooses_the_backend_of_the_kernels_and_the_samplers(monkeypatch):
    """backends.select serves the checked API, WLMC and REWL; WLMD has no backend argument (its
    operators follow the model's device) and reports what runs its step."""
    import torch

    from entropyeng import WLMC, WLMD

    monkeypatch.delenv("ENTROPYENG_BACKEND", raising=False)
    cuda = "cuda" in backends.available()
    assert backends.select(None, walkers=4) == ("cuda" if cuda else backends.available()[0])
    with pytest.raises(ValueError, match="several walkers"):
        backends.select("torch", walkers=4)
    monkeypatch.setenv("ENTROPYENG_BACKEND", "torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    X, y = np.eye(2), np.zeros(2)
    assert WLMC(model, (X, y), (X, y), loss="mse", metric="loss").backend == "torch"
    with pytest.raises(TypeError):
        WLMD(model, (torch.eye(2), torch.zeros(2, 1)), (torch.eye(2), torch.zeros(2, 1)), loss="mse", steps=10,
             backend="cpp")
    w = WLMD(model, (torch.eye(2), torch.zeros(2, 1)), (torch.eye(2), torch.zeros(2, 1)), loss="mse", steps=10)
    assert w.backend == backends.for_operator(torch.zeros(1))


def test_cuda_backend_refuses_cpu_arrays():
    if "cuda" in backends.available():
        with pytest.raises(ValueError, match="cuda"):
            kernels.smooth(np.zeros((5, 5)), 1.0, backend="cuda")
    else:
        with pytest.raises(ValueError, match="not available"):
            kernels.smooth(np.zeros((5, 5)), 1.0, backend="cuda")


def test_cuda_arrays(backend):
    if backend != "cuda":
        pytest.skip("needs a CUDA device")
    import torch

    S = torch.zeros(G.shape, dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match="S"):
        kernels.deposit(S[:, :5], G, 0.5, 0.5, 1.0, 0.1, 0.3, backend="cuda")
    with pytest.raises(TypeError, match="S"):
        kernels.deposit(S.to(torch.int32), G, 0.5, 0.5, 1.0, 0.1, 0.3, backend="cuda")
    with pytest.raises(ValueError, match="cpp"):
        kernels.deposit(S, G, 0.5, 0.5, 1.0, 0.1, 0.3, backend="cpp")
    assert not to_numpy(S).any()


@pytest.mark.parametrize("args, match", [((-1e308, 1e308, 10, 0.0, 1.0, 10), "overflows"),
                                         ((0.0, 1.0, 2**32, 0.0, 1.0, 2**32), "beyond the"),
                                         ((0.0, 1.0, 10, -1e308, 1e308, 10), "y_max: the range")])
def test_grids_whose_size_or_cell_overflows_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        Grid(*args)


@pytest.mark.parametrize("backend", backends.available())
def test_langevin_refuses_non_finite_input_and_shared_memory(backend):
    def call(theta=None, v=None, grad=None):
        theta = np.zeros(4) if theta is None else theta
        v = np.ones(4) if v is None else v
        grad = np.zeros(4) if grad is None else grad
        kernels.langevin(theta, v, grad, 1.0, 0.1, 0.1, 1.0, 0, 0, backend=backend)

    if backend == "cuda":
        pytest.skip("the CUDA path does not read its arrays back to check them (documented)")
    for name in ("theta", "v", "grad"):
        bad = np.zeros(4)
        bad[1] = np.nan
        with pytest.raises(ValueError, match=f"{name}: expected finite values"):
            call(**{name: bad})
    a = np.zeros(4)
    with pytest.raises(ValueError, match="share memory"):
        kernels.langevin(a, a, np.zeros(4), 1.0, 0.1, 0.1, 1.0, 0, 0, backend=backend)
    buf = np.zeros(8)
    with pytest.raises(ValueError, match="share memory"):  # overlapping views
        kernels.langevin(buf[:4], buf[2:6], np.zeros(4), 1.0, 0.1, 0.1, 1.0, 0, 0, backend=backend)
    theta = np.full(4, 0.5)
    kernels.langevin(theta, np.ones(4), np.zeros(4), 1.0, 1e154, 0.1, 1.0, 0, 0, backend=backend)
    assert np.all(np.abs(theta) <= 1.0)  # a huge finite dt still keeps the box
    # a step that could overflow the dtype is refused (it left NaN in theta); one just inside stays finite
    for dtype, dt in ((np.float64, 1e154), (np.float32, 1e39), (np.float32, 1e38)):
        theta, v = np.full(4, 0.5, dtype), np.full(4, 1e154 if dtype == np.float64 else 1.0, dtype)
        with pytest.raises(ValueError, match="^dt: .*range"):
            kernels.langevin(theta, v, np.zeros(4, dtype), 1.0, dt, 0.1, 1.0, 0, 0, backend=backend)
        assert np.all(theta == 0.5)  # refused before anything was written
    with pytest.raises(ValueError, match="^bound: "):
        kernels.langevin(np.zeros(4), np.ones(4), np.zeros(4), 1e308, 0.1, 0.1, 1.0, 0, 0, backend=backend)
    for dtype, dt in ((np.float64, 1e150), (np.float32, 1e17)):
        theta = np.full(4, 0.5, dtype)
        kernels.langevin(theta, np.ones(4, dtype), np.ones(4, dtype), 1.0, dt, 0.1, 1.0, 0, 0, backend=backend)
        assert np.all(np.isfinite(theta)) and np.all(np.abs(theta) <= 1.0)


@pytest.mark.parametrize("backend", [b for b in backends.available() if b != "cuda"])
def test_smooth_refuses_a_filter_wider_than_its_axis(backend):
    """A filter wider than its axis and than 100 bins is refused (its cost grows with 4 sigma per
    cell: sigma 1e5 on a 2000 x 2000 grid ran for hours); up to there it is computed as scipy does."""
    S = np.zeros((10, 200))
    with pytest.raises(ValueError, match="wider than its axis"):
        kernels.smooth(S, (101.0, 1.0), backend=backend)
    with pytest.raises(ValueError, match="wider than its axis"):
        kernels.smooth(S, 1e5, backend=backend)
    assert kernels.smooth(S + 1.0, (100.0, 200.0), backend=backend) == pytest.approx(np.ones((10, 200)))


def test_tensors_on_a_device_no_kernel_reads_are_refused_naming_them(backend):
    """A meta tensor (no data) is a ValueError naming the argument on every backend, not a
    TypeError from numpy or a false 'shared memory' (all meta tensors have data pointer 0)."""
    import torch

    meta = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device="meta")  # noqa: E731
    cpu = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
    calls = [("S", lambda: kernels.deposit(meta(*G.shape), G, 0.5, 0.5, 1.0, 0.1, 0.3, backend=backend)),
             ("S", lambda: kernels.gradient(meta(*G.shape), G, 0.5, 0.5, backend=backend)),
             ("S", lambda: kernels.smooth(meta(*G.shape), 1.0, backend=backend)),
             ("theta", lambda: kernels.langevin(meta(5), meta(5), meta(5), 1.0, 0.1, 0.1, 1.0, 1, 1, backend=backend)),
             ("grad", lambda: kernels.langevin(cpu(5), cpu(5) + 1, meta(5), 1.0, 0.1, 0.1, 1.0, 1, 1,
                                               backend=backend))]
    for name, call in calls:
        with pytest.raises(ValueError, match=f"^{name}: .*device 'meta'"):
            call()


def test_the_wlmc_counters_setter_checks_every_field_before_writing():
    """The compiled chain's ``counters`` setter: a TypeError or ValueError naming the field, and a
    refused dict changes nothing."""
    if "cpp" not in backends.available():
        pytest.skip("the compiled extension is not built")
    import warnings

    from entropyeng import WLMC
    from entropyeng.tasks import spiral_classification, spiral_mlp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = WLMC(spiral_mlp(), spiral_classification(20, 0), spiral_classification(20, 1000), loss="bce",
                     metric="accuracy")._chain
    good = dict(chain.counters)
    cases = [("x", TypeError, "counters: expected a dict"), ({}, ValueError, "missing key 'step'"),
             (dict(good, t=-1), ValueError, r"counters\['t'\]"), (dict(good, t=1e300), TypeError, r"counters\['t'\]"),
             (dict(good, accepted=True), TypeError, r"counters\['accepted'\]"),
             (dict(good, step=float("nan")), ValueError, r"counters\['step'\]"),
             (dict(good, rejected_wl=2**64), ValueError, r"counters\['rejected_wl'\]"),
             (dict(good, step=0.5, rejected_box="3"), TypeError, r"counters\['rejected_box'\]")]
    for value, exc, match in cases:
        with pytest.raises(exc, match=match):
            chain.counters = value
        assert chain.counters == good
    chain.counters = dict(good, t=np.int64(7))
    assert chain.counters["t"] == 7


def test_a_samplers_warning_points_at_the_users_line():
    """The box-clamp warning (raised deep in the package) names the line that built the sampler."""
    import inspect
    import warnings

    import torch

    from entropyeng import WLMC, WLMD

    def model():
        m = torch.nn.Sequential(torch.nn.Linear(2, 1))
        with torch.no_grad():
            m[0].weight.fill_(50.0)  # far outside the paper's box
        return m

    X, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    for build in (lambda: WLMD(model().double(), (X, y), (X, y), loss="mse", steps=10),
                  lambda: WLMC(model(), (np.eye(2), np.zeros(2)), (np.eye(2), np.zeros(2)), loss="mse",
                               metric="loss")):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            build()
        boxes = [w for w in seen if "box" in str(w.message)]
        assert boxes and all(w.filename == __file__ for w in boxes), [(w.filename, w.lineno) for w in seen]
        assert boxes[0].lineno in range(inspect.currentframe().f_lineno - 12, inspect.currentframe().f_lineno)


def _boundary_cases():
    import torch

    from entropyeng import WLMC, WLMD

    def m():
        return torch.nn.Sequential(torch.nn.Linear(2, 1))

    X, y = np.eye(2), np.zeros(2)
    T, t = torch.eye(2), torch.zeros(2, 1)
    return {
        "wlmc steps_per_stage 2^63": (lambda: WLMC(m(), (X, y), (X, y), loss="mse", metric="loss").run_stages(1, 2**63),
                                      "steps_per_stage"),
        "wlmc run 2^63": (lambda: WLMC(m(), (X, y), (X, y), loss="mse", metric="loss").run(2**63, 0.1), "n_steps"),
        "wlmc walkers 2^20+1": (lambda: WLMC(m(), (X, y), (X, y), loss="mse", metric="loss", walkers=2**20 + 1),
                                "walkers"),
        "wlmc y of another length": (lambda: WLMC(m(), (X, np.zeros(3)), (X, y), loss="mse", metric="loss"), "y"),
        "wlmc 3-D X": (lambda: WLMC(m(), (X[None], y), (X, y), loss="mse", metric="loss"), "X"),
        "wlmd meta model": (lambda: WLMD(m().to("meta"), (T, t), (T, t), loss="mse", steps=10), "meta"),
        "wlmd meta data": (lambda: WLMD(m(), (T.to("meta"), t), (T, t), loss="mse", steps=10), "meta"),
        "wlmd run 2^63": (lambda: WLMD(m(), (T, t), (T, t), loss="mse", steps=10).run(2**63), "n_steps"),
        "wlmd walkers 2^20+1": (lambda: WLMD(m(), (T, t), (T, t), loss="mse", steps=10, walkers=2**20 + 1), "walkers"),
        "wlmd X of another width": (lambda: WLMD(m(), (torch.eye(3), torch.zeros(3, 1)), (T, t), loss="mse", steps=10),
                                    "cannot evaluate"),
        "wlmd scalar X": (lambda: WLMD(m(), (torch.tensor(1.0), t), (T, t), loss="mse", steps=10), "scalar"),
    }


@pytest.mark.cpp
@pytest.mark.parametrize("case", list(_boundary_cases()))
def test_the_library_boundary_says_what_is_wrong_in_its_own_words(case):
    """The audit's raw torch / numpy / pybind11 messages at the samplers' boundary: each is now a
    ValueError or TypeError naming the argument (int and bool inputs are taken as numbers)."""
    import warnings

    build, name = _boundary_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError), match=name):
            build()


def test_integer_and_boolean_inputs_are_numbers_to_wlmd():
    import torch

    from entropyeng import WLMD

    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    t = torch.zeros(2, 1)
    for X in (torch.eye(2).long(), torch.eye(2).bool()):
        w = WLMD(model, (X, t), (X, t), loss="mse", steps=10)
        assert w.X_tr.dtype == torch.float32
