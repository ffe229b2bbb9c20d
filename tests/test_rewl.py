"""Replica-exchange Wang-Landau on the exact case of docs/design.md: the joined landscape has the exact
slopes, the windows agree where they overlap, exchanges happen, and a checkpoint resumes exactly."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from entropyeng import Grid
from entropyeng.wlmc.rewl import REWL, window_ranges
from conftest import exact_case

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)
NA, NB = 3, 2
XA, YB = math.log(4 / NA), math.log(4 / NB)
GRID = Grid(XA - 4.5, XA + 0.5, 50, YB - 4.5, YB + 0.5, 50)


def exact_rewl(**kw):
    model, train, test = exact_case(NA, NB)
    args = dict(windows=3, overlap=0.75, walkers_per_window=2, seed=1, exchange_every=20_000)
    args.update(kw)
    return REWL(model, train, test, loss="mse", metric="loss", grid=GRID, **args)


def test_window_ranges_cover_the_axis_with_the_overlap():
    r = window_ranges(50, 3, 0.75)
    assert r[0][0] == 0 and r[-1][1] == 50
    for (a0, b0), (a1, b1) in zip(r, r[1:]):
        assert a0 < a1 < b0 < b1 and (b0 - a1) / (b0 - a0) == pytest.approx(0.75, abs=0.05)
    assert window_ranges(50, 1, 0.5) == [(0, 50)]
    with pytest.raises(ValueError, match="overlap"):
        window_ranges(50, 3, 1.0)


@CPP
def test_rewl_recovers_the_exact_slopes_and_the_windows_agree():
    """3 windows x 2 walkers, 300 stages of 1e5 steps each (1.8e8 steps, ~20 s on 2 cores)."""
    r = exact_rewl()
    r.run_stages(300, 100_000)
    L, joins = r.join()
    X, Y = np.meshgrid(*GRID.centers, indexing="ij")
    region = L.visited & (X < XA - 0.3) & (Y < YB - 0.3) & (X > XA - 4.2) & (Y > YB - 4.2)
    assert region.sum() > 1400
    sx, sy = np.linalg.lstsq(np.c_[X[region], Y[region], np.ones(region.sum())], L.entropy[region], rcond=None)[0][:2]
    assert sx == pytest.approx(NA / 2, rel=0.06)
    assert sy == pytest.approx(NB / 2, rel=0.06)
    # the windows overlap consistently: after the shift their ln g agree over >1000 common cells
    # to a spread far below the landscape's range (~10 nats)
    assert len(joins) == 2
    for j in joins:
        assert j.cells > 1000 and j.spread < 0.3
    # neighbouring windows do exchange configurations
    assert (r.exchange_acceptance() > 0.1).all()
    # each window alone has the exact x slope too (within its own x range)
    for W in r.window_landscapes():
        Xw, Yw = np.meshgrid(*W.grid.centers, indexing="ij")
        reg = W.visited & (Xw < XA - 0.3) & (Yw < YB - 0.3) & (Xw > XA - 4.2) & (Yw > YB - 4.2)
        s = np.linalg.lstsq(np.c_[Xw[reg], Yw[reg], np.ones(reg.sum())], W.entropy[reg], rcond=None)[0][:2]
        assert s[0] == pytest.approx(NA / 2, rel=0.15)


@CPP
def test_rewl_checkpoint_resumes_exactly(tmp_path):
    a = exact_rewl(exchange_every=5000)
    a.run_stages(4, 20_000)
    a.save(tmp_path / "rewl.npz")
    b = exact_rewl(exchange_every=5000)
    b.load_checkpoint(tmp_path / "rewl.npz")
    a.run_stages(3, 20_000)
    b.run_stages(3, 20_000)
    La, Lb = a.landscape, b.landscape
    np.testing.assert_array_equal(La.entropy, Lb.entropy)
    np.testing.assert_array_equal(La.histogram, Lb.histogram)
    np.testing.assert_array_equal(a.exchanges, b.exchanges)


@CPP
def test_rewl_reports_unreachable_windows():
    with pytest.raises(ValueError, match="were not reached"):
        exact_rewl(seed_steps=0, windows=4, overlap=0.5)


@CPP
def test_rewl_over_two_processes_is_the_single_process_run(tmp_path):
    """Windows 0 and 2 on rank 0, window 1 on rank 1 (gloo): the same exchanges and the same joined
    landscape, bit for bit, as one process with the same seed."""
    from test_wlmd_walkers import _launch

    res = _launch("rewl", tmp_path, 5, 20_000)
    for code, err in res:
        assert code == 0, err
    one = exact_rewl(exchange_every=5000, threads=1)
    one.run_stages(5, 20_000)
    L = one.landscape
    got = np.load(tmp_path / "rewl_joined.npz")
    np.testing.assert_array_equal(got["exchanges"], one.exchanges)
    assert one.exchanges[:, 0].sum() > 0
    np.testing.assert_array_equal(got["S"], L.entropy)
    np.testing.assert_array_equal(got["H"], L.histogram)
    # the checkpoint rank 0 wrote holds every window's walkers and resumes in one process
    two = exact_rewl(exchange_every=5000, threads=1)
    two.load_checkpoint(tmp_path / "rewl.npz")
    np.testing.assert_array_equal(two.landscape.entropy, L.entropy)
