"""Many WLMC walkers sharing one ln g on CPU threads: the per-walker code the CUDA blocks run
(csrc/wlmc_walker.h), so these tests carry the GPU path's logic on any machine. The schedule counts
walker-steps; the exact entropy does not depend on the number of walkers; checkpoints continue."""

import math

import numpy as np
import pytest
import torch
from test_wlmc import exact_case, exact_fit, mlp, spiral_like
from torch import nn

from entropyeng import WLMC, Grid

from entropyeng.kernels import backends
from entropyeng.wlmc.walkers import COL, STATE

pytestmark = pytest.mark.skipif("cpp" not in backends.available(), reason="the compiled extension is not built")


def exact_slopes(walkers, stages, steps, threads=1, seed=1, schedule=None):
    nA, nB = 3, 2
    model, train, test = exact_case(nA, nB)
    xa, yb = math.log(4 / nA), math.log(4 / nB)
    grid = Grid(xa - 4.5, xa + 0.5, 50, yb - 4.5, yb + 0.5, 50)
    w = WLMC(model, train, test, loss="mse", metric="loss", grid=grid, seed=seed, walkers=walkers, threads=threads)
    w.run_stages(stages, steps, schedule=schedule)
    L = w.landscape
    assert L.histogram.sum() == stages * steps  # walker-steps in all, whatever the number of walkers
    sx, sy, cells = exact_fit(L, grid, xa, yb)
    assert cells > 1500
    return sx / (nA / 2) - 1, sy / (nB / 2) - 1


def test_walkers_exact_entropy_on_two_threads():
    """16 walkers on 2 threads (atomic adds), 2e8 walker-steps: the slopes of DESIGN's exact case."""
    dx, dy = exact_slopes(16, 1000, 200_000, threads=2)
    assert abs(dx) < 0.03 and abs(dy) < 0.03


@pytest.mark.slow
def test_exact_entropy_does_not_depend_on_the_number_of_walkers():
    """W = 1, 4, 16 at the same total budget (2e8 walker-steps): every slope within 3 %, and the
    deviation does not grow with W (no larger than one walker's plus 1 %)."""
    devs = {W: exact_slopes(W, 1000, 200_000) for W in (1, 4, 16)}
    for W, (dx, dy) in devs.items():
        assert abs(dx) < 0.03 and abs(dy) < 0.03, (W, dx, dy)
    one = max(abs(v) for v in devs[1])
    assert max(abs(v) for v in devs[16]) < one + 0.01, devs


def test_run_counts_walker_steps_in_all():
    X, y = spiral_like(30)
    w = WLMC(mlp([2, 6, 1]), (X, y), spiral_like(30, 1), loss="bce", metric="accuracy", walkers=4, threads=1)
    w.run(10_003, 0.25)  # 2,501 for walkers 0..2, 2,500 for walker 3
    st = w._chain.states
    assert st[:, COL["t"]].tolist() == [2501, 2501, 2501, 2500]
    L = w.landscape
    assert L.histogram.sum() == 10_003 and w.counters["t"] == 10_003
    assert L.entropy.sum() == pytest.approx(0.25 * 10_003)
    c = w.counters
    assert c["accepted"] + c["rejected_box"] + c["rejected_grid"] + c["rejected_wl"] == 10_003
    seen = []
    w.run_stages(2, 8000, callback=seen.append)
    assert [s.steps for s in seen] == [8000, 8000] and w.landscape.histogram.sum() == 26_003
    assert seen[-1].visited == int(w.landscape.visited.sum())
    assert seen[-1].flatness == pytest.approx(w.landscape.flatness())


@pytest.mark.parametrize("loss, metric, act", [("bce", "accuracy", nn.Tanh), ("ce", "accuracy", nn.ReLU),
                                               ("ce", "loss", nn.SiLU), ("mse", "loss", nn.Tanh)])
def test_walker_caches_equal_a_fresh_forward(loss, metric, act):
    classes = 3 if loss == "ce" else 2
    X, y = spiral_like(40, 0, classes)
    Xt, yt = spiral_like(40, 1, classes)
    if loss == "mse":
        y, yt = np.sin(X[:, 0]), np.sin(Xt[:, 0])
    model = mlp([2, 8, 8, 8, classes if loss == "ce" else 1], act=act)
    w = WLMC(model, (X, y), (Xt, yt), loss=loss, metric=metric, walkers=3, threads=1, refresh_every=0, seed=4)
    w.run(150_000, 0.05)
    assert w.counters["accepted"] > 0.2 * 150_000
    st = w._chain.states
    for k, params in enumerate(w._chain.walker_params):
        one = WLMC(mlp([2, 8, 8, 8, classes if loss == "ce" else 1], act=act), (X, y), (Xt, yt), loss=loss,
                   metric=metric, grid=w.grid)
        one._chain.set_params(params)
        assert st[k, COL["loss"]] == pytest.approx(one.train_loss, rel=1e-10)
        assert st[k, COL["metric"]] == pytest.approx(one.test_metric, rel=1e-10)


def test_walkers_start_apart_on_the_grid_or_together():
    X, y = spiral_like(30)
    kw = dict(loss="bce", metric="accuracy", walkers=8, seed=2)
    apart = WLMC(mlp([2, 6, 1]), (X, y), spiral_like(30, 1), **kw)
    P = apart._chain.walker_params
    assert np.array_equal(P[0], apart.params) and len({tuple(p) for p in P}) == 8
    assert (np.abs(P) <= apart.bounds).all()
    assert (apart._chain.states[:, COL["i"]] >= 0).all()  # every walker on the grid
    together = WLMC(mlp([2, 6, 1]), (X, y), spiral_like(30, 1), walker_starts="model", **kw)
    assert len({tuple(p) for p in together._chain.walker_params}) == 1


def test_one_thread_resume_is_bit_exact(tmp_path):
    X, y = spiral_like(30)
    Xt, yt = spiral_like(30, 1)
    kw = dict(loss="bce", metric="accuracy", seed=11, walkers=5, threads=1, refresh_every=3000)
    whole = WLMC(mlp([2, 6, 6, 1]), (X, y), (Xt, yt), **kw)
    whole.run_stages(4, 50_000)
    half = WLMC(mlp([2, 6, 6, 1]), (X, y), (Xt, yt), **kw)
    half.run_stages(2, 50_000)
    half.save(tmp_path / "ckpt.npz")
    del half
    resumed = WLMC.load(tmp_path / "ckpt.npz")
    assert resumed.stage == 2 and resumed.walkers == 5 and resumed.threads == 1
    resumed.run_stages(2, 50_000)
    assert resumed.counters == whole.counters
    np.testing.assert_array_equal(resumed.landscape.entropy, whole.landscape.entropy)
    np.testing.assert_array_equal(resumed.landscape.histogram, whole.landscape.histogram)
    np.testing.assert_array_equal(resumed._chain.walker_params, whole._chain.walker_params)
    np.testing.assert_array_equal(resumed._chain.states, whole._chain.states)


def test_two_thread_resume_continues_the_run(tmp_path):
    """Several threads are not bitwise reproducible (the atomic adds interleave); the continued run
    carries the checkpoint's landscape and walkers and adds exactly its steps."""
    X, y = spiral_like(30)
    Xt, yt = spiral_like(30, 1)
    w = WLMC(mlp([2, 6, 1]), (X, y), (Xt, yt), loss="bce", metric="accuracy", seed=3, walkers=6, threads=2)
    w.run_stages(2, 60_000)
    w.save(tmp_path / "c.npz")
    r = WLMC.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(r.landscape.entropy, w.landscape.entropy)
    np.testing.assert_array_equal(r._chain.walker_params, w._chain.walker_params)
    r.run_stages(1, 60_000)
    assert r.landscape.histogram.sum() == 180_000 and r.counters["t"] == 180_000
    assert r.landscape.entropy.sum() == pytest.approx(60_000 * (5 / 10 + 5 / 11 + 5 / 12))


def test_corrupted_walker_state_is_refused_not_crashed():
    X, y = spiral_like(30)
    w = WLMC(mlp([2, 6, 1]), (X, y), spiral_like(30, 1), loss="bce", metric="accuracy", walkers=3)
    s = w.state_dict()
    bad = dict(s, walker_state=s["walker_state"].copy())
    bad["walker_state"][1, COL["i"]] = 1e9
    with pytest.raises(ValueError, match="walker 1"):
        w.load_state_dict(bad)
    bad = dict(s, walker_state=s["walker_state"].copy())
    bad["walker_state"][0, COL["t"]] = np.nan
    with pytest.raises(ValueError, match="state"):
        w.load_state_dict(bad)
    bad = dict(s, params=s["params"][:2])
    with pytest.raises(ValueError, match="3 walkers"):
        w.load_state_dict(bad)
    bad = dict(s, cache=np.full_like(s["cache"], 0.0))  # states of all zeros: a valid bin, step 0
    with pytest.raises(ValueError, match="step"):
        w.load_state_dict(bad)
    assert len(STATE) == backends.core().walker_state_size


def test_one_over_t_schedule_takes_over_from_the_paper_stages():
    X, y = spiral_like(30)
    w = WLMC(mlp([2, 6, 1]), (X, y), spiral_like(30, 1), loss="bce", metric="accuracy", walkers=2, threads=1)
    seen = []
    w.run_stages(6, 20_000, schedule="1/t", callback=seen.append)
    assert seen[0].ln_f == 5 / 10  # t = 0: the paper's stage
    for k in range(1, 6):
        assert seen[k].ln_f == pytest.approx(min(5 / (k + 10), seen[k - 1].visited / (20_000 * k)))
    assert seen[-1].ln_f < 5 / 15  # the 1/t tail is below the paper's stage here
    assert w.landscape.meta["schedule"] == "min(5/(n+10), N/t)"
    with pytest.raises(ValueError, match="schedule"):
        w.run_stages(1, 10, schedule="1/t^2")


def test_walker_params_are_torch_parameters_of_the_model():
    """A walker's parameter vector evaluates to its recorded train loss in torch itself."""
    X, y = spiral_like(30)
    Xt, yt = spiral_like(30, 1)
    model = mlp([2, 6, 1])
    w = WLMC(model, (X, y), (Xt, yt), loss="bce", metric="accuracy", walkers=4, threads=2, seed=9)
    w.run(40_000, 0.1)
    m64 = mlp([2, 6, 1]).double()
    for params, state in zip(w._chain.walker_params, w._chain.states):
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.tensor(params), m64.parameters())
            z = m64(torch.tensor(X))[:, 0]
            ref = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(y))
        assert state[COL["loss"]] == pytest.approx(float(ref), rel=1e-10)
