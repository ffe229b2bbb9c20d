"""Many WLMD walkers: K walkers in one process, two processes over gloo sharing the landscape, the
exact entropy of docs/design.md, dropped walkers, a rank that dies, and resume."""

import math
import os
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from entropyeng import WLMD, Grid, WalkerDropped, WLMDError
from conftest import exact_wlmd

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)
WORKER = os.path.join(os.path.dirname(__file__), "_dist_worker.py")
XA, YB = math.log(1 / 3), math.log(1 / 2)


def slopes_of(S, H, grid):
    X, Y = np.meshgrid(*grid.centers, indexing="ij")
    region = (X > -3.5) & (X < XA - 0.4) & (Y > -3.5) & (Y < YB - 0.4) & (H > 0)
    return np.linalg.lstsq(np.c_[X[region], Y[region], np.ones(region.sum())], S[region], rcond=None)[0][:2]


EXACT_GRID = Grid(-5.0, 1.0, 120, -5.0, 1.5, 130)


def exact_walkers(K, steps, seed=1, compile="auto", schedule=None):
    kw = dict(schedule=schedule) if schedule else {}
    return exact_wlmd(steps * K, seed=seed, walkers=K, compile=compile, **kw)


def run_exact(K, steps, seed=1):
    w = exact_walkers(K, steps, seed)
    w.run(steps)
    return w


@CPP
def test_k_walkers_recover_the_exact_slopes():
    """16 walkers, 3e5 hills in all (as the single walker's test): slopes 1.5 and 1.0 within 10 %."""
    w = run_exact(16, 300_000 // 16)
    assert isinstance(w, WLMD) and w.theta.shape == (16, 5)
    L = w.landscape
    assert L.histogram.sum() == 300_000 // 16 * 16
    sx, sy = slopes_of(L.entropy, L.histogram, EXACT_GRID)
    assert sx == pytest.approx(1.5, rel=0.10)
    assert sy == pytest.approx(1.0, rel=0.10)
    # the walkers decorrelated: different parameters
    assert torch.unique(w.theta.detach()[:, 0]).numel() == 16


@CPP
def test_the_schedule_clock_counts_walker_steps():
    """K walkers' step t deposits K hills at Eq. 4's f of deposit (t - 1) K + 1: the same hill mass per
    walker-step as one walker, whatever K."""
    one, many = exact_walkers(1, 4000), exact_walkers(8, 500)
    for t in (1, 2, 100, 500):
        assert many.f(t) == one.f((t - 1) * 8 + 1)
    many.run(500)
    one.run(4000)
    L1, L8 = one.landscape, many.landscape
    assert L8.histogram.sum() == L1.histogram.sum() == 4000
    assert L8.meta["walker_steps"] == 4000
    assert L8.entropy.sum() == pytest.approx(L1.entropy.sum(), rel=0.02)  # the hills' mass inside the grid


@CPP
@pytest.mark.slow
@pytest.mark.parametrize("K", [1, 4, 16])
def test_exact_slopes_do_not_depend_on_the_number_of_walkers(K):
    """K = 1, 4, 16 at the same total deposits (3e5 per run, two runs averaged as in the single
    walker's test: one run's y slope scatters by several per cent around a +5 % bias at f_max 0.08):
    slopes within the WLMD tolerance (10 %)."""
    runs = [run_exact(K, 300_000 // K, seed) for seed in (1, 2)]
    S = np.mean([w.landscape.entropy for w in runs], axis=0)
    H = np.min([w.landscape.histogram for w in runs], axis=0)
    sx, sy = slopes_of(S, H, EXACT_GRID)
    assert sx == pytest.approx(1.5, rel=0.10) and sy == pytest.approx(1.0, rel=0.10)


def test_many_walkers_run_one_step_function_compiled_or_not():
    """K walkers are one WLMD: compile=False runs the uncompiled step function (there is no per-step
    path for many walkers), and the compiled step follows it to rounding."""
    eager = exact_walkers(3, 400)
    eager.compile = False
    compiled = exact_walkers(3, 400)
    compiled.compile = True
    eager.run(300)
    compiled.run(300)
    assert eager.step_form == "eager" and compiled.step_form == "compiled"
    np.testing.assert_allclose(compiled.theta.numpy(), eager.theta.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(compiled.landscape.entropy, eager.landscape.entropy, rtol=0, atol=1e-9)
    assert eager.landscape.histogram.sum() == 900 and eager.landscape.meta["walker_steps"] == 900


def _poison(monkeypatch, w, walkers):
    """The next Langevin update puts a NaN into the first parameter of the given walkers (the eager
    step function calls the operator through the module); the step after it finds it."""
    from entropyeng.kernels import ops

    original, calls = ops.langevin, []

    def poisoned(theta, *args):
        original(theta, *args)
        if not calls:
            for k in walkers:
                theta[k * w.n_params] = float("nan")
        calls.append(1)

    monkeypatch.setattr(ops, "langevin", poisoned)


@CPP
def test_a_walker_that_goes_bad_is_dropped_and_the_others_go_on(monkeypatch):
    """A walker whose loss turns NaN is dropped with a warning: the step that finds it (the one after
    the update that made it) deposits nothing for it, nor does any later step; the landscape stays
    finite and the other walkers keep sampling."""
    w = exact_walkers(4, 400, compile="eager")  # (the poison goes through the torch step's operator)
    w.run(20)
    before = w.theta[2].clone()
    _poison(monkeypatch, w, [2])
    with pytest.warns(WalkerDropped, match="walker 2 .rank 0. dropped: the loss is not finite at step 21"):
        w.run(50)
    assert torch.equal(w.theta[2], before)  # back at its last checked state
    assert list(w.active) == [True, True, False, True]
    L = w.landscape
    assert np.isfinite(L.entropy).all() and np.isfinite(w.theta.detach().numpy()).all()
    assert L.histogram.sum() == 21 * 4 + 49 * 3  # step 21 started from its last good state
    assert L.meta["active"] == 3


@CPP
def test_all_walkers_bad_raises_with_a_checkpoint(tmp_path, monkeypatch):
    w = exact_walkers(2, 100, compile="eager")
    w.run(3)
    _poison(monkeypatch, w, [0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(WLMDError, match="every walker was dropped"):
            w.run(5, checkpoint=tmp_path / "last.npz")
    assert (tmp_path / "last.npz").exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, *args, world=2):
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, WORKER, str(out), *map(str, args)], env=env,
                                      stderr=subprocess.PIPE, text=True))
    return _wait(procs)


def _wait(procs):
    """(return code, stderr) of each process, killed after 10 minutes."""
    results = []
    for p in procs:
        try:
            err = p.communicate(timeout=600)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            err = p.communicate()[1]
        results.append((p.returncode, err))
    return results


@CPP
def test_two_processes_share_one_landscape_with_the_exact_slopes(tmp_path):
    """Two ranks of 4 walkers over gloo: after the run both hold the same landscape, and it has the
    exact slopes (3e5 hills in all)."""
    steps = 300_000 // 8
    res = _launch(tmp_path, "--walkers", 4, "--steps", steps, "--sync-every", 100)
    for code, err in res:
        assert code == 0, err
    a, b = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    np.testing.assert_array_equal(a["S"], b["S"])
    np.testing.assert_array_equal(a["H"], b["H"])
    assert a["H"].sum() == steps * 8
    sx, sy = slopes_of(a["S"], a["H"], EXACT_GRID)
    assert sx == pytest.approx(1.5, rel=0.10)
    assert sy == pytest.approx(1.0, rel=0.10)


@CPP
def test_a_dead_rank_stops_the_other_with_a_clear_error_and_the_checkpoint_resumes(tmp_path):
    res = _launch(tmp_path, "--walkers", 2, "--steps", 3000, "--sync-every", 50, "--checkpoint-every", 500,
                  "--die-at", 1250, "--timeout", 20)
    (code0, err0), (code1, err1) = res
    assert code1 == 3 and "dies" in err1, err1
    assert code0 != 0 and "another rank died" in err0, err0
    ckpt = tmp_path / "checkpoint.npz"
    assert ckpt.exists()
    res = _launch(tmp_path, "--walkers", 2, "--steps", 3000, "--sync-every", 50, "--checkpoint-every", 500,
                  "--resume", ckpt)
    for code, err in res:
        assert code == 0, err
    a, b = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    assert int(a["t"]) == 3000
    np.testing.assert_array_equal(a["S"], b["S"])
    assert a["H"].sum() == 3000 * 4


@CPP
def test_a_rank_that_dies_before_a_checkpoint_stops_the_other_with_one_line(tmp_path):
    """Rank 1 exits just before the collective checkpoint of step 1000: rank 0's all-gather fails,
    and it reports it as a ``distributed:`` error naming the step (not a raw gloo error); the
    checkpoint of step 500 stays on disk."""
    res = _launch(tmp_path, "--walkers", 2, "--steps", 3000, "--sync-every", 50, "--checkpoint-every", 500,
                  "--die-before-save", 1000, "--timeout", 20)
    (code0, err0), (code1, err1) = res
    assert code1 == 3 and "dies before the checkpoint" in err1, err1
    assert code0 == 4, err0
    assert "distributed: the checkpoint's all-gather at step 1000 failed on rank 0 (another rank died" in err0, err0
    from entropyeng._io import load_npz

    arrays, meta = load_npz(tmp_path / "checkpoint.npz", "wlmd-checkpoint")
    assert meta["t"] == 500 and arrays["theta"].shape[:2] == (2, 2)
