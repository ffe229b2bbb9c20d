"""The sampler protocol (entropyeng.Sampler): WLMC, REWL and WLMD each offer it, and what it
promises holds on each: the walker-step clock, a frozen bias that learns nothing, positions that
move the walkers, save and load with one signature."""

import ast
import math
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import entropyeng
from entropyeng import REWL, WLMC, Grid, Sampler

from conftest import exact_case, exact_wlmd

pytestmark = pytest.mark.cpp

XA, YB = math.log(4 / 3), math.log(4 / 2)


def _problem(dtype=torch.float64):
    """The exact case as a problem object (what ``load`` takes)."""
    _, train, test = exact_case(3, 2, dtype=dtype)
    return SimpleNamespace(make_model=lambda seed: exact_case(3, 2, w0=0.3, dtype=dtype)[0], train=train, test=test,
                           loss="mse", metric="loss")


def wlmc():
    w = WLMC(*exact_case(3, 2), loss="mse", metric="loss", grid=Grid(XA - 4.5, XA + 0.5, 50, YB - 4.5, YB + 0.5, 50),
             seed=1)
    w.steps_per_stage = 2000
    return w


def rewl():
    r = REWL(*exact_case(3, 2), loss="mse", metric="loss", grid=Grid(XA - 4.5, XA + 0.5, 50, YB - 4.5, YB + 0.5, 50),
             windows=2, walkers_per_window=1, seed=1, exchange_every=500, threads=1)
    r.steps_per_stage = 1000
    return r


def wlmd(walkers=1):
    return exact_wlmd(10_000, walkers=walkers)


MAKERS = {"WLMC": wlmc, "REWL": rewl, "WLMD": wlmd}


@pytest.mark.parametrize("name", MAKERS)
def test_every_sampler_is_a_sampler_and_its_clock_counts_walker_steps(name):
    s = MAKERS[name]()
    assert isinstance(s, Sampler)
    assert s.backend in ("cpp", "torch", "cuda")
    seen = []
    before = s.walker_steps
    done = s.advance(1500, callback=seen.append)
    assert done >= 1500 and s.walker_steps - before == done and seen
    assert isinstance(s.info(), dict) or hasattr(s.info(), "__dataclass_fields__")
    xy = s.cvs()
    assert xy.ndim == 2 and xy.shape[1] == 2 and np.isfinite(xy).all()
    assert s.positions.ndim == 2 and s.positions.shape[0] == xy.shape[0]


def test_walker_steps_count_every_walker():
    s = wlmd(walkers=3)
    assert s.advance(10) == 12 and s.walker_steps == 12 and s.t == 4


@pytest.mark.parametrize("name", MAKERS)
def test_a_frozen_bias_is_what_the_landscape_holds_and_learns_nothing(name):
    s = MAKERS[name]()
    s.advance(1000)
    grid = s.grid
    X, Y = np.meshgrid(*grid.centers, indexing="ij")
    bias = 0.5 * X - 0.25 * Y  # any smooth bias
    s.set_bias(bias, frozen=True)
    # REWL's landscape joins its windows over the cells they visited: its windows hold the bias
    held = ((lambda: np.concatenate([L.entropy for L in s.window_landscapes()])) if name == "REWL"
            else (lambda: s.landscape.entropy))
    before = held().copy()
    s.advance(2000)
    np.testing.assert_allclose(held(), before)
    if name != "REWL":
        np.testing.assert_allclose(held(), bias)
    else:
        a, b = s.ranges[1]
        np.testing.assert_allclose(s.window_landscapes()[1].entropy, bias[a:b])


def test_set_bias_of_some_columns_keeps_the_others():
    s = wlmd()
    grid = s.grid
    first = np.full(grid.shape, 1.0)
    s.set_bias(first, frozen=True)
    s.set_bias(np.full(grid.shape, 2.0), frozen=True, columns=slice(10, 20))
    S = s.landscape.entropy
    assert (S[10:20] == 2.0).all() and (S[:10] == 1.0).all() and (S[20:] == 1.0).all()


@pytest.mark.parametrize("name", ["WLMC", "WLMD"])
def test_positions_move_the_walkers(name):
    s = MAKERS[name]()
    p = s.positions[0] * 0.5
    s.positions = p
    np.testing.assert_allclose(s.positions[0], p, rtol=1e-6)
    # the exact case: the train loss of a point is its mean squared first three weights
    assert s.cvs()[0, 0] == pytest.approx(math.log(np.mean(p[:3] ** 2)), rel=1e-6)
    with pytest.raises(ValueError, match="positions"):
        s.positions = np.zeros(p.size + 1)


@pytest.mark.parametrize("name", ["WLMC", "WLMD"])
def test_save_and_load_through_the_protocol_continue_where_the_run_was(name, tmp_path):
    s = MAKERS[name]()
    s.advance(2000)
    path = tmp_path / "state.npz"
    s.save(path)
    t = type(s).load(path, _problem())
    assert t.walker_steps == s.walker_steps
    np.testing.assert_allclose(t.positions, s.positions)
    np.testing.assert_allclose(t.landscape.entropy, s.landscape.entropy)


def test_rewl_loads_through_the_protocol_with_its_constructor_options(tmp_path):
    r = rewl()
    r.advance(4000)
    r.save(tmp_path / "r.npz")
    model, train, test = exact_case(3, 2)
    p = SimpleNamespace(make_model=lambda seed: exact_case(3, 2)[0], train=train, test=test, loss="mse", metric="loss")
    q = REWL.load(tmp_path / "r.npz", p, grid=r.grid, windows=2, walkers_per_window=1, seed=1, exchange_every=500,
                  threads=1)
    assert q.stage == r.stage
    np.testing.assert_allclose(q.positions, r.positions)


def test_no_module_outside_the_command_imports_it():
    """The run layer is below the commands: nothing of the package but cli/ (and the entry point)
    imports entropyeng.cli."""
    root = pathlib.Path(entropyeng.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] == "cli" or rel.name == "__main__.py" and len(rel.parts) == 1:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                resolved = n
                if n.startswith("."):
                    up = len(n) - len(n.lstrip("."))
                    pkg = ["entropyeng", *rel.parts[:-1]]
                    resolved = ".".join(pkg[:len(pkg) - up + 1] + [n.lstrip(".")]) if up else n
                if resolved == "entropyeng.cli" or resolved.startswith("entropyeng.cli."):
                    offenders.append(f"{rel}:{node.lineno} imports {resolved}")
    assert not offenders, offenders


def test_no_private_member_of_a_sampler_is_used_outside_its_subpackage():
    root = pathlib.Path(entropyeng.__file__).parent
    private = ("_chain", "_xv", "_yv", "_xs", "_ys", "_runner", "_share", "_fns", "_native_codes")
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in ("wlmc", "wlmd", "bench"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private and not (
                    isinstance(node.value, ast.Name) and node.value.id == "self"):
                found.append(f"{rel}:{node.lineno} .{node.attr}")
    assert not found, found


@pytest.mark.parametrize("package", ["entropyeng", "entropyeng.runs", "entropyeng.tasks", "entropyeng.wlmd",
                                     "entropyeng.train"])
def test_every_public_name_of_a_lazy_package_resolves(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
