"""Analysis functions against hand-computed landscapes."""

import math

import numpy as np
import pytest

from entropyeng import Grid, Landscape
from entropyeng import analysis as A


def accuracy_landscape():
    # x cells 0..3, y = accuracy k/4 (5 cells, centres 0, .25, .5, .75, 1)
    g = Grid(-2.0, 2.0, 4, -0.125, 1.125, 5)
    S = np.array([[0, 0, 0, 0, 0],
                  [0, math.log(3), 0, 0, 0],
                  [0, 0, 5, 5, 0],
                  [0, 0, 0, 0, 0]], dtype=float)
    H = np.ones(g.shape)
    H[3, :] = 0  # x cell 3 never visited
    H[0, 4] = 0  # one cell of x row 0 unvisited
    return Landscape(S, H, g, {"sampler": "WLMC"})


def test_equilibrium_by_hand():
    L = accuracy_landscape()
    x, eq, valid = A.equilibrium(L)
    assert valid.tolist() == [True, True, True, False]
    assert eq[0] == pytest.approx((0 + 0.25 + 0.5 + 0.75) / 4)  # the unvisited cell does not count
    assert eq[1] == pytest.approx((0 + 3 * 0.25 + 0.5 + 0.75 + 1.0) / 7)
    w = np.array([1, 1, math.e**5, math.e**5, 1])
    assert eq[2] == pytest.approx((w * np.array([0, .25, .5, .75, 1])).sum() / w.sum())
    assert math.isnan(eq[3])


def test_max_entropy_by_hand():
    x, m, valid = A.max_entropy(accuracy_landscape())
    assert m[1] == 0.25 and m[2] == 0.5 and math.isnan(m[3])


def test_sgd_curve_and_advantage():
    L = accuracy_landscape()
    traj = [np.array([[-1.5, 0.2], [-0.5, 0.4], [0.5, 0.6]]), np.array([[-1.2, 0.4], [0.7, 0.5]])]
    centres, mean, counts = A.sgd_curve(traj, L.grid.edges[0])
    assert counts.tolist() == [2, 1, 2, 0]
    assert mean[0] == pytest.approx(0.3) and mean[2] == pytest.approx(0.55)
    with pytest.raises(ValueError, match="enough records"):
        A.advantage(L, traj)
    assert A.runs_per_bin(traj, L.grid.edges[0]).tolist() == [2, 1, 2, 0]
    res = A.advantage([L, L], traj * 5)
    _, eq, _ = A.equilibrium(L)
    assert res["x"] == pytest.approx(0.5) and res["sgd"] == pytest.approx(0.55)
    assert res["equilibrium"] == pytest.approx(eq[2]) and res["advantage"] == pytest.approx(eq[2] - 0.55)
    assert res["error"] == 0.0 and res["n"] == 2


def test_logit_axis_of_smoothed_accuracy_is_undone():
    g = Grid(0, 1, 3, -5, 5, 10)
    L = Landscape(np.zeros(g.shape), np.ones(g.shape), g, {"cv_y": "smoothed_accuracy", "logit_y": True})
    y = A.y_values(L)
    p = 1 / (1 + np.exp(-g.centers[1]))
    np.testing.assert_allclose(y, np.clip((p - 1e-4) / (1 - 2e-4), 0, 1))


def test_shared_gap_by_hand():
    L = accuracy_landscape()
    traj = [np.array([[-1.5, 0.2], [-0.5, 0.4], [0.5, 0.6]]), np.array([[-1.2, 0.4], [0.7, 0.5]])] * 5
    _, eq, _ = A.equilibrium(L)
    _, mean, _ = A.sgd_curve(traj, L.grid.edges[0])
    res = A.shared_gap(L, traj)  # cells 0, 1, 2 are in both (cell 3: never visited)
    assert res["cells"] == 3 and res["x_min"] == -1.5 and res["x_max"] == 0.5
    assert res["gap"] == pytest.approx(np.mean(eq[:3] - mean[:3]))
    assert A.shared_gap(L, traj, higher_is_better=False)["gap"] == pytest.approx(-res["gap"])
    with pytest.raises(ValueError, match="share no"):
        A.shared_gap(L, [np.array([[1.5, 0.5]])] * 5)


def test_sgd_readouts_mean_best_and_band():
    from entropyeng import analysis

    edges = np.array([0.0, 1.0, 2.0, 3.0])
    traj = [np.array([[0.5, 0.6], [1.5, 0.7]]), np.array([[0.5, 0.8], [1.5, 0.9], [2.5, 0.1]])]
    c, mean, n = analysis.sgd_curve(traj, edges)
    np.testing.assert_allclose(mean, [0.7, 0.8, 0.1])
    _, best, _ = analysis.sgd_curve(traj, edges, "best", higher_is_better=True)
    np.testing.assert_allclose(best, [0.8, 0.9, 0.1])
    _, lowest, _ = analysis.sgd_curve(traj, edges, "best", higher_is_better=False)  # losses: the lowest
    np.testing.assert_allclose(lowest, [0.6, 0.7, 0.1])
    _, lo, hi, counts = analysis.sgd_band(traj, edges, 0, 100)
    np.testing.assert_allclose(lo, [0.6, 0.7, 0.1]) and np.testing.assert_allclose(hi, [0.8, 0.9, 0.1])
    assert counts.tolist() == [2, 2, 1]
    import pytest

    with pytest.raises(ValueError, match="readout"):
        analysis.sgd_curve(traj, edges, "median")


def test_compare_figure_holds_the_error_bars(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from entropyeng.analysis.plot import advantage_figure

    path = advantage_figure([dict(label="a", sgd=0.5, equilibrium=0.6, error=0.3, sgd_error=0.2)], tmp_path / "f.png")
    assert path.exists()
    import matplotlib.pyplot as plt

    # redraw to read the limits the function chose
    from entropyeng.analysis import plot

    seen = {}
    orig = plt.subplots

    def spy(*a, **k):
        fig, ax = orig(*a, **k)
        seen["ax"] = ax
        return fig, ax

    plt.subplots = spy
    try:
        plot.advantage_figure([dict(label="a", sgd=0.5, equilibrium=0.6, error=0.3, sgd_error=0.2)], tmp_path / "g.png")
    finally:
        plt.subplots = orig
    lo, hi = seen["ax"].get_ylim()
    assert lo <= 0.3 and hi >= 0.9


@pytest.mark.parametrize("meta, label", [({"cv_y": "test_loss"}, "ln(test loss)"),
                                         ({"cv_y": "smoothed_accuracy"}, "smoothed test accuracy"),
                                         ({"metric": "accuracy"}, "test accuracy"), ({"metric": "loss"}, "ln(test loss)"),
                                         ({"y": "ln test loss"}, "ln test loss"), ({}, "y")])
def test_a_figure_labels_its_y_axis_from_the_landscapes_metadata(meta, label):
    from entropyeng.analysis.plot import y_axis_label

    assert y_axis_label(meta) == label


def test_width_points_average_readouts_and_shared_gaps_over_data_sets(tmp_path):
    """A run whose walker missed the baseline's best train loss counts as missing in the readouts
    but its shared-range gap is still averaged; the width figure draws all three series."""
    from entropyeng.analysis.plot import width_figure

    def run(adv, gap, x_min):
        eq = dict(shared_gap=dict(gap=gap, cells=10, x_min=x_min, x_max=0.0))
        if adv is not None:
            eq.update(x=-2.0, sgd=-1.0, equilibrium=-1.0 - adv, advantage=adv)
        else:
            eq["error_message"] = "never visited"
        return dict(label="W", metric="loss", n_params=10, readouts=dict(equilibrium_vs_sgd_mean=eq,
                                                                         max_entropy_vs_sgd_mean=dict(eq)))

    points = A.width_points([(30, run(0.2, 0.1, -2.2)), (30, run(0.4, 0.3, -2.4)), (30, run(None, 0.5, -1.8)),
                             (100, run(None, -0.1, -1.5)), (100, run(None, 0.1, -1.7))])
    p30, p100 = points
    assert (p30["network"], p30["n"], p30["missing"]) == (30, 3, 1)
    assert p30["advantage"] == pytest.approx(0.3) and p30["advantage_error"] == pytest.approx(0.1)
    assert p30["shared_gap"] == pytest.approx(0.3) and p30["shared_gap_error"] == pytest.approx(0.2 / math.sqrt(3))
    assert p30["shared_x_min"] == pytest.approx(-2.1333333)
    assert (p100["missing"], p100["shared_gap"]) == (2, pytest.approx(0.0))
    assert math.isnan(p100["advantage"])
    width_figure(points, {}, "model.width", tmp_path / "w.png", "t")
    assert (tmp_path / "w.png").stat().st_size > 0
