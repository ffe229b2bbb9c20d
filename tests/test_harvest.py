"""Harvest: on the exact case the harvested test losses follow the analytic distribution of a shell,
the window's mean agrees with the landscape's readout, the kept networks are what they say; the
statistics helpers; the command on a finished run, and its refusals."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from entropyeng import WLMC, Grid
from entropyeng.cli import main
from entropyeng.harvest import Harvest, frozen_bias, harvest_wlmc, load_model, marginal
from entropyeng.statistics import autocorrelation_time, round_trips, thin
from conftest import exact_case

CPP = pytest.mark.cpp
NA, NB = 3, 2
XA, YB = math.log(4 / NA), math.log(4 / NB)  # the box [-2, 2]: the spheres lie inside below these
GRID = Grid(XA - 4.5, XA + 0.5, 50, YB - 4.5, YB + 0.5, 50)


def _model():
    return exact_case(NA, NB)[0]


TRAIN, TEST = exact_case(NA, NB)[1:]


def _walker(seed, **kw):
    return WLMC(_model(), TRAIN, TEST, loss="mse", metric="loss", grid=GRID, seed=seed, **kw)


def _square_cdf(s):
    """P(|w|^2 <= s) for w uniform in the square [-2, 2]^2 (a disc, then the disc cut by the sides)."""
    s = np.asarray(s, dtype=np.float64)
    cut = np.sqrt(np.maximum(s, 4.0))
    area = np.where(s <= 4.0, np.pi * s,
                    np.pi * s - 4.0 * (s * np.arccos(np.minimum(1.0, 2.0 / cut)) - 2.0 * np.sqrt(np.maximum(s - 4.0, 0))))
    return area / 16.0


def exact_shell_cdf(t, y_min=GRID.y_min, y_max=GRID.y_max):
    """The exact case's ln test loss in any train-loss shell: w_B is independent of w_A, so its law
    is that of y = ln(|w_B|^2 / 2), w_B uniform in [-2, 2]^2, cut to [y_min, y_max] (the grid's y range)."""
    lo, hi = _square_cdf(2 * np.exp(y_min)), _square_cdf(2 * np.exp(y_max))
    return (_square_cdf(2 * np.exp(np.clip(t, y_min, y_max))) - lo) / (hi - lo)


@pytest.fixture(scope="module")
def exact_landscape():
    w = _walker(1)
    w.run_stages(200, 100_000)  # 2e7 steps, ~3 s: a rough landscape (the harvest must not depend on it)
    return w.landscape, w.params


@CPP
def test_the_harvest_of_the_exact_case_follows_the_analytic_shell_distribution(exact_landscape):
    from scipy import stats

    L, start = exact_landscape
    x0 = XA - 1.5
    h = harvest_wlmc(lambda **kw: _walker(5, **kw), L, x0, window=0.1, steps=4_000_000, every=100, start=start)
    assert h.samples > 1000 and h.count > 300
    assert np.all(np.abs(h.ln_train_loss - x0) <= 0.05 + 1e-12)
    ks = stats.kstest(h.test_metric, exact_shell_cdf)
    assert ks.pvalue > 0.01, ks
    t = np.linspace(GRID.y_min, GRID.y_max, 200_001)
    exact_mean = float(np.sum(t[:-1] * np.diff(exact_shell_cdf(t))))
    assert abs(h.mean - exact_mean) < 4 * h.error, (h.mean, h.error, exact_mean)
    # the landscape's Eq. 1 over the same cells: within the harvest's error and the landscape's
    # resolution (y cells of 0.1; a 2e7-step landscape)
    assert abs(h.mean - h.landscape_mean) < 4 * h.error + 0.05
    assert h.round_trips > 20 and h.flatness > 0.5


def _md_sampler(seed, walls=(), **kw):
    """A WLMD walker on the exact case (BAOAB: it samples at kT = 1, so S = ln g), held on the grid's
    y range by walls inside it (y = ln(|w_B|^2 / 2) falls fast as |w_B| shrinks: a margin of a few
    tenths and a small dt keep the walker on the grid)."""
    from entropyeng import WLMD

    model, train, test = exact_case(NA, NB, dtype=torch.float64)
    return WLMD(model, train, test, loss="mse", grid=GRID, sigma=0.2,
                cutoff=0.8, bound=2.0, integrator="baoab", dt=0.02, gamma=0.5, seed=seed, compile="eager",
                walls=dict(walls, y_min=Y_WALLS[0], y_max=Y_WALLS[1]), wall_c=300.0, **kw)


Y_WALLS = (GRID.y_min + 0.8, GRID.y_max - 0.3)


@CPP
def test_a_wlmd_walker_under_the_frozen_marginal_harvests_the_exact_shell_distribution(exact_landscape):
    """The WLMD harvest (the walker of CNNs and WLMD landscapes) on the same landscape: the test
    losses in the window follow the analytic law too (cut where its walls hold it on the grid)."""
    from scipy import stats

    from entropyeng.harvest import harvest_wlmd

    L, _ = exact_landscape
    x0 = XA - 1.5
    # the model's own start (ln L = -1.39) lies in the reach, as the walker's start must (walls at its ends)
    h = harvest_wlmd(lambda **kw: _md_sampler(7, **kw), L, x0, window=0.1, steps=40_000, every=5)
    assert h.samples > 1000 and h.count > 25 and h.meta["walker"] == "WLMD"
    assert np.all(np.abs(h.ln_train_loss - x0) <= 0.05 + 1e-12)
    cdf = lambda t: exact_shell_cdf(t, *Y_WALLS)  # noqa: E731
    ks = stats.kstest(h.test_metric, cdf)
    assert ks.pvalue > 0.01, (ks, h.count, h.tau)
    t = np.linspace(*Y_WALLS, 200_001)
    exact_mean = float(np.sum(t[:-1] * np.diff(cdf(t))))
    assert abs(h.mean - exact_mean) < 4 * h.error + 0.02, (h.mean, h.error, exact_mean)


@CPP
def test_the_wlmd_harvests_tuning_finds_the_bias_where_the_landscape_never_went(exact_landscape):
    """The landscape blanked over the whole reach: the WLMD harvest refuses it untuned, and tuned
    (Wang-Landau on the x columns, hills in x) it rebuilds a bias that moves the walker across the
    reach and harvests the analytic law; no readout (the landscape has none there)."""
    from scipy import stats

    from entropyeng.harvest import harvest_wlmd

    L, _ = exact_landscape
    x0 = XA - 1.5
    blank = (GRID.centers[0] > x0 - 0.45) & (GRID.centers[0] < x0 + 0.45)
    L = type(L)(L.entropy, np.where(blank[:, None], 0.0, L.histogram), GRID)
    with pytest.raises(ValueError, match="never visited"):
        harvest_wlmd(lambda **kw: _md_sampler(8, **kw), L, x0, window=0.1, steps=1000, every=5, tune=0)
    h = harvest_wlmd(lambda **kw: _md_sampler(8, **kw), L, x0, window=0.1, steps=40_000, every=5)  # (ln L -1.39)
    assert h.meta["tune_halvings"] >= 4 and h.meta["tune_steps"] == 20_000
    assert h.samples > 500 and h.round_trips > 20 and h.flatness > 0.3, h.summary()
    cdf = lambda t: exact_shell_cdf(t, *Y_WALLS)  # noqa: E731
    assert stats.kstest(h.test_metric, cdf).pvalue > 0.01
    assert math.isnan(h.landscape_mean)


def test_the_tuning_schedule_halves_on_every_visited_column_then_falls_as_one_over_t():
    from entropyeng.harvest.tune import XSchedule

    reach = np.zeros(10, dtype=bool)
    reach[2:5] = True
    s = XSchedule(reach)
    assert s.visit(0) == 0.0 and s.visit(2) == 1.0 and s.visit(3) == 1.0
    assert s.visit(4) == 0.5 and s.halvings == 1  # every column seen: halved
    for _ in range(3):
        for i in (2, 3, 4):
            s.visit(i)
    assert s.halvings == 4 and s.one_over_t
    assert s.visit(3) == pytest.approx(3 / s.t)  # N / t from here on,
    for _ in range(100):
        s.visit(2)
    assert s.ln_f == pytest.approx(3 / s.t)  # however fast the columns are seen (no halving to nothing)


def test_the_hills_of_the_wlmd_tuning_are_smooth_keep_their_mass_in_the_reach_and_fill_it_evenly():
    from entropyeng.harvest.tune import hill_in_x

    g = Grid(0.0, 1.0, 50, 0.0, 1.0, 4)
    reach = slice(10, 30)
    mid = hill_in_x(g, g.centers[0][20], 2.0, reach)
    assert mid.sum() == pytest.approx(2.0) and mid.argmax() == 10
    np.testing.assert_allclose(mid[10 + np.arange(1, 9)], mid[10 - np.arange(1, 9)])  # symmetric about its centre
    edge = hill_in_x(g, g.centers[0][10], 2.0, reach)
    assert edge.sum() == pytest.approx(2.0) and edge.argmax() == 0  # reflected, not cut
    # hills at every column of the reach add up to the same everywhere: Wang-Landau with them
    # flattens the visits (hills cut at the ends would fill the middle faster)
    total = sum(hill_in_x(g, x, 1.0, reach) for x in g.centers[0][reach])
    np.testing.assert_allclose(total, 1.0, rtol=1e-4)  # (the 4-sigma cut: 1e-5)


@CPP
def test_kept_networks_are_what_the_harvest_says(exact_landscape, tmp_path):
    L, start = exact_landscape
    h = harvest_wlmc(lambda **kw: _walker(6, **kw), L, XA - 1.0, window=0.2, steps=400_000, every=100, count=25, start=start)
    assert h.count == 25
    path = tmp_path / "h.npz"
    h.save(path)
    back = Harvest.load(path)
    np.testing.assert_array_equal(back.params, h.params)
    assert back.summary() == h.summary()
    for k in (0, 7, 24):
        m = back.network(k, _model().double())  # float64: the walker's own precision
        w = m[0].weight.detach().double().numpy().ravel()
        assert math.log(np.mean(w[:NA] ** 2)) == pytest.approx(back.ln_train_loss[k], abs=1e-9)
        assert math.log(np.mean(w[NA:] ** 2)) == pytest.approx(back.test_metric[k], abs=1e-9)
    with pytest.raises(IndexError, match="kept 25"):
        back.network(25, _model())


@CPP
def test_a_window_the_landscape_never_visited_or_off_its_grid_is_refused(exact_landscape):
    L, _ = exact_landscape
    with pytest.raises(ValueError, match="leaves the landscape's grid"):
        harvest_wlmc(lambda **kw: _walker(1, **kw), L, GRID.x_max, window=0.1, steps=1000)
    empty = type(L)(L.entropy, np.where(np.arange(GRID.nx)[:, None] < 5, 0.0, L.histogram), GRID)
    with pytest.raises(ValueError, match="never visited"):
        harvest_wlmc(lambda **kw: _walker(1, **kw), empty, GRID.x_min + 0.15, window=0.1, steps=1000)
    with pytest.raises(ValueError, match="window"):
        harvest_wlmc(lambda **kw: _walker(1, **kw), L, XA - 1, window=0.0, steps=1000)


def test_the_bias_is_the_marginal_inside_the_reach_and_walls_or_a_slope_outside():
    from entropyeng import Landscape

    g = Grid(0.0, 1.0, 10, 0.0, 1.0, 4)
    S = np.tile(np.arange(10.0)[:, None], (1, 4)) + np.log(np.arange(1.0, 5.0))[None, :]
    H = np.ones((10, 4))
    H[9] = 0  # never visited
    L = Landscape(S, H, g)
    lng, valid = marginal(L)
    np.testing.assert_allclose(lng[:9], np.arange(9.0) + math.log(10.0))
    assert not valid[9]
    b = frozen_bias(L, 0.3, 0.6)
    x = g.centers[0]
    inside = (x >= 0.3) & (x <= 0.6)
    np.testing.assert_allclose(b[inside, 0] - b[inside, 0][0], np.arange(inside.sum()))
    assert np.all(b[:, 0][None, :] == b.T)  # the same in every y cell of a column
    assert b[9, 0] >= 1e4
    assert b[1, 0] > lng[1] - np.nanmax(lng)  # the slope below the reach
    walls = frozen_bias(L, 0.3, 0.6, walls=True)
    assert np.all(walls[~inside, 0] >= 1e4)


def test_autocorrelation_time_of_an_ar1_series_and_thinning():
    rng = np.random.default_rng(0)
    phi, n = 0.8, 200_000
    e = rng.normal(size=n)
    y = np.empty(n)
    y[0] = e[0]
    for i in range(1, n):
        y[i] = phi * y[i - 1] + e[i]
    assert autocorrelation_time(y) == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    assert autocorrelation_time(rng.normal(size=10_000)) == pytest.approx(1.0, abs=0.15)
    assert list(thin(10, 2.5)) == [0, 3, 6, 9]
    assert len(thin(1000, 1.0, count=7)) == 7


def test_round_trips_count_lo_to_hi_and_back():
    assert round_trips([0, 1, 0, 1, 0], 0.1, 0.9) == 2
    assert round_trips([0.5, 1, 0.5, 0], 0.1, 0.9) == 0  # half a trip
    assert round_trips([0.5, 1, 0.5, 0, 0.95], 0.1, 0.9) == 1
    assert round_trips([0, 0.5, 0.2, 0.6], 0.1, 0.9) == 0


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("harvest") / "run"
    assert main(["run", "spiral", "--steps", "4e6", "--out", str(out), "--set", "sgd.runs=2", "--set", "sgd.epochs=5",
                 "--quiet"]) == 0
    return out


@CPP
def test_the_command_harvests_a_finished_run_and_the_file_loads_into_the_model(spiral_run, capsys):
    out = spiral_run
    capsys.readouterr()
    assert main(["harvest", str(out), "--train-loss", "0.5", "--steps", "4e5", "--window", "0.2", "--quiet"]) == 0
    text = capsys.readouterr()
    path = out / "harvest-L0.5.npz"
    assert str(path) in text.out and "test accuracy" in text.err
    record = json.loads((out / "harvest-L0.5.json").read_text())
    assert record["kept"] >= 1 and record["task"] == "spiral" and "config" not in record
    model = load_model(path, 0)
    h = Harvest.load(path)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    np.testing.assert_allclose(flat, h.params[0])


@pytest.mark.parametrize("args, message", [
    (["--train-loss", "0"], "--train-loss must be > 0"),
    (["--train-loss", "0.5", "--window", "-1"], "--window must be > 0"),
    (["--train-loss", "0.5", "--out", "x.txt"], "must end in .npz"),
])
def test_the_command_refuses_bad_settings_in_one_line(tmp_path, capsys, args, message):
    assert main(["harvest", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_command_refuses_a_directory_without_a_finished_run(tmp_path, capsys):
    assert main(["harvest", str(tmp_path), "--train-loss", "0.5"]) == 2
    assert "holds no run" in capsys.readouterr().err
    (tmp_path / "config.toml").write_text('task = "spiral"\n')
    assert main(["harvest", str(tmp_path), "--train-loss", "0.5"]) == 2
    assert "holds no landscape.npz" in capsys.readouterr().err


@CPP
def test_train_method_harvest_gives_a_network_of_the_target_train_loss(spiral_run, tmp_path, capsys):
    from entropyeng.train import TrainError, train

    out = tmp_path / "t"
    assert main(["train", "spiral", "--method", "harvest", "--target-loss", "0.5", "--landscape", str(spiral_run),
                 "--steps", "4e5", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    r = json.loads((out / "result.json").read_text())
    assert r["method"] == "harvest" and r["reached"] and abs(r["ln_train_loss"] - math.log(0.5)) <= 0.05 + 1e-6
    assert r["kept"] >= 1 and r["landscape_seconds"] > 0 and (out / "on-landscape.png").exists()
    from entropyeng.tasks import spiral_classification, spiral_mlp

    with pytest.raises(TrainError, match="needs a finished"):
        train(spiral_mlp(), spiral_classification(20, seed=0), spiral_classification(20, seed=1000), loss="bce",
              metric="accuracy", method="harvest", target_loss=0.5)
    with pytest.raises(TrainError, match="other train data"):
        train(spiral_mlp(), spiral_classification(20, seed=5), spiral_classification(20, seed=1000), loss="bce",
              metric="accuracy", method="harvest", target_loss=0.5, landscape=str(spiral_run))


@CPP
def test_the_stored_networks_are_thinned_when_they_would_take_too_much_memory(exact_landscape, monkeypatch):
    """At most STORED_BYTES of the window's networks are held (the stride doubles): the kept ones are
    still the networks their numbers say."""
    import entropyeng.harvest.core as core

    monkeypatch.setattr(core, "STORED_BYTES", 0)  # the floor: 1000 networks
    L, start = exact_landscape
    h = harvest_wlmc(lambda **kw: _walker(7, **kw), L, XA - 1.5, window=0.1, steps=4_000_000, every=100, start=start)
    assert h.samples > 1000  # more than were stored: the stride doubled at least once
    for k in range(h.count):
        w = h.params[k]
        assert math.log(np.mean(w[:NA] ** 2)) == pytest.approx(h.ln_train_loss[k], abs=1e-9)
        assert math.log(np.mean(w[NA:] ** 2)) == pytest.approx(h.test_metric[k], abs=1e-9)


def test_the_md_bias_is_the_marginal_at_kt_c_and_a_ramp_where_the_landscape_never_went():
    """A WLMD walker needs a smooth bias: kT_c log sum exp(S / kT_c) in the reach (S = kT_c ln g),
    the 2-nat ramp outside, and unvisited columns continuing that ramp, never a wall of 10^4 nats."""
    from entropyeng import Landscape
    from entropyeng.harvest.bias import CONFINE_PER_COLUMN
    from entropyeng.harvest.md import md_bias

    g = Grid(0.0, 1.0, 10, 0.0, 1.0, 4)
    T = 1.05
    S = T * (np.tile(np.arange(10.0)[:, None], (1, 4)) + np.log(np.arange(1.0, 5.0))[None, :])
    H = np.ones((10, 4))
    H[8:] = 0  # never visited
    b = md_bias(Landscape(S, H, g), 0.3, 0.6, temperature=T)
    inside = (g.centers[0] >= 0.3) & (g.centers[0] <= 0.6)
    np.testing.assert_allclose(b[inside, 0] - b[inside, 0][0], T * np.arange(inside.sum()))
    assert np.all(b[:, 0][None, :] == b.T)
    assert b.max() < 100  # no wall
    np.testing.assert_allclose(b[8:, 0] - b[7, 0], CONFINE_PER_COLUMN * np.array([1.0, 2.0]))
    H[4:8] = 0  # unvisited inside the reach: the nearest visited column's marginal (tuning corrects it)
    b = md_bias(Landscape(S, H, g), 0.3, 0.6, temperature=T)
    np.testing.assert_allclose(b[4:7, 0], b[3, 0] + CONFINE_PER_COLUMN * np.array([0.0, 0.0, 1.0]))
    H[:] = 1
    H[3:5] = 0  # a gap between visited columns: bridged linearly, no step and no wall
    b = md_bias(Landscape(S, H, g), 0.3, 0.6, temperature=T)
    assert np.all(np.isfinite(b)) and b.max() < 100
    np.testing.assert_allclose(np.diff(b[3:6, 0]), np.diff(b[3:6, 0]).mean())  # the gap's columns: on a line
    assert b[5, 0] > b[4, 0] > b[3, 0]


@CPP
@pytest.mark.parametrize("walkers", [1, 2])
def test_the_command_harvests_a_wlmd_run_with_a_wlmd_walker(tmp_path, capsys, walkers):
    """A finished WLMD run (spiral regression, short) is harvested by WLMD walkers with its own
    settings, as many as the run had; the file's numbers say so and its networks load into the
    task's model."""
    out = tmp_path / "run"
    assert main(["run", "spiral_regression", "--steps", "3000", "--out", str(out), "--set", "data.n=50",
                 "--set", "sgd.runs=2", "--set", "sgd.epochs=5", "--set", f"wlmd.walkers={walkers}", "--quiet"]) == 0
    x = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["x"]  # where the walker starts
    x = float(np.ravel(x)[0])
    capsys.readouterr()
    assert main(["harvest", str(out), "--train-loss", f"{math.exp(x):.6g}", "--steps", "3000", "--every", "10",
                 "--window", "0.2", "--quiet"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    h = Harvest.load(path)
    assert h.meta["walker"] == "WLMD" and h.meta["sampler"] == "WLMD" and h.samples > 0
    assert h.metric == "loss" and np.all(np.abs(h.ln_train_loss - h.target) <= 0.1 + 1e-9)
    assert h.steps == walkers * 3000 and h.meta.get("walkers", 1) == walkers
    model = load_model(path, 0)
    assert sum(p.numel() for p in model.parameters()) == h.params.shape[1]


def _harvest(mean, error, samples, params, **kw):
    n = params.shape[0]
    base = dict(ln_train_loss=np.zeros(n), test_metric=np.full(n, mean), target=-1.0, window=(-1.05, -0.95),
                mean=mean, error=error, tau=2.0, samples=samples, landscape_mean=mean, round_trips=3, flatness=0.5,
                steps=1000, every=10, seconds=1.0, metric="loss")
    return Harvest(params, **dict(base, **kw))


def test_pooled_walkers_weigh_their_samples_and_combine_their_errors_as_independent_chains():
    a = _harvest(1.0, 0.1, 100, np.zeros((4, 3)))
    b = _harvest(2.0, 0.2, 300, np.ones((6, 3)), round_trips=1, flatness=0.2)
    p = Harvest.pool([a, b])
    assert p.mean == pytest.approx(0.25 * 1.0 + 0.75 * 2.0)
    assert p.error == pytest.approx(math.sqrt(0.25 ** 2 * 0.01 + 0.75 ** 2 * 0.04))
    assert p.samples == 400 and p.count == 10 and p.steps == 2000 and p.round_trips == 4 and p.flatness == 0.2
    assert p.meta["walkers"] == 2
    assert Harvest.pool([a, b], count=5).count == 5
    with pytest.raises(ValueError, match="share their window"):
        Harvest.pool([a, _harvest(1.0, 0.1, 10, np.zeros((1, 3)), window=(-2.0, -1.0))])


@CPP
@pytest.mark.parametrize("name", ["landscape.npz", "checkpoint.npz", "sgd.npz", "summary.npz"])
def test_the_harvest_never_writes_over_a_runs_own_files(spiral_run, capsys, name):
    """--out naming a run file (or one whose .json companion is a run file: summary.npz -> summary.json)
    is refused in one line, exit 2, and the run's files are unchanged."""
    before = {p.name: p.read_bytes() for p in spiral_run.iterdir() if p.is_file()}
    assert main(["harvest", str(spiral_run), "--train-loss", "0.5", "--steps", "2e4", "--out", str(spiral_run / name),
                 "--force", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the run owns" in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in spiral_run.iterdir() if p.is_file()} == before


@CPP
def test_the_harvest_replaces_an_existing_file_only_with_force_and_waits_for_a_running_run(spiral_run, tmp_path, capsys):
    from entropyeng.runs.rundir import RunLock

    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"precious")
    args = ["harvest", str(spiral_run), "--train-loss", "0.5", "--steps", "4e5", "--window", "0.2", "--out", str(mine), "--quiet"]
    assert main(args) == 2
    assert "exists; --force replaces it" in capsys.readouterr().err and mine.read_bytes() == b"precious"
    with RunLock(spiral_run):  # a run or resume holds the directory
        assert main(args + ["--force"]) == 1
    assert "in use by" in capsys.readouterr().err and mine.read_bytes() == b"precious"
    assert main(args + ["--force"]) == 0
    assert mine.read_bytes() != b"precious" and (tmp_path / "mine.json").exists()
    assert not (spiral_run / ".entropyeng.lock").exists()
