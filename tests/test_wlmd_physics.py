"""The physics of WLMD, written once (entropyeng.wlmd.physics): the closed-form product of the
built-in losses against autograd, the walls, the grid check, the round trips, Eq. 4."""

import math

import pytest
import torch
from torch.func import vjp

from entropyeng import Grid
from entropyeng.wlmd import physics


def outputs(loss, K, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    n_tr, n_te = 7, 5
    if loss == "ce":
        out = torch.randn(K, n_tr + n_te, 4, generator=g, dtype=dtype)
        y_tr, y_te = torch.randint(0, 4, (n_tr,), generator=g), torch.randint(0, 4, (n_te,), generator=g)
    elif loss == "bce":
        out = torch.randn(K, n_tr + n_te, 1, generator=g, dtype=dtype)
        y_tr, y_te = ((torch.rand(n, generator=g, dtype=dtype) > 0.5).to(dtype) for n in (n_tr, n_te))
    else:
        out = torch.randn(K, n_tr + n_te, 2, generator=g, dtype=dtype)
        y_tr, y_te = torch.randn(n_tr, 2, generator=g, dtype=dtype), torch.randn(n_te, 2, generator=g, dtype=dtype)
    return out, y_tr, y_te, n_tr


@pytest.mark.parametrize("loss", ["mse", "ce", "bce"])
@pytest.mark.parametrize("K", [1, 3])
def test_the_closed_form_product_equals_autograds(loss, K):
    """x, y and the vector-Jacobian product of the joint built-in losses equal torch's losses
    (make_loss, make_heads) differentiated by autograd."""
    out, y_tr, y_te, n_tr = outputs(loss, K)
    cvs = physics.make_joint_test_loss_cvs(loss, y_tr, y_te, out.dtype)
    _, fn = physics.make_loss(loss)
    heads = physics.make_heads(fn, y_tr, y_te, "test_loss", 5.0, False)

    def reference(o):
        return torch.stack([torch.stack(heads(row[:n_tr], row[n_tr:])) for row in o])

    xy, pull = cvs(out)
    xy_ref, pull_ref = vjp(reference, out)
    seeds = torch.tensor([[0.3, -1.2]] * K, dtype=out.dtype) * torch.arange(1, K + 1, dtype=out.dtype)[:, None]
    torch.testing.assert_close(xy, xy_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(pull(seeds), pull_ref(seeds)[0], rtol=1e-11, atol=1e-14)


def test_walls_force_and_energy():
    box = physics.wall_box(dict(x_max=-1.0, y_min=-6.0))
    xy = torch.tensor([[0.0, -7.0], [-2.0, 0.0], [float("nan"), 0.0]], dtype=torch.float64)
    force = physics.wall_force(xy, box, 30.0)
    assert force[0].tolist() == [60.0, -60.0] and force[1].tolist() == [0.0, 0.0]
    assert physics.wall_energy(xy[:2], box, 30.0).tolist() == [60.0, 0.0]
    assert physics.wall_force(xy[:2], physics.wall_box({}), 30.0).abs().max() == 0


def test_the_grid_check_takes_edges_and_refuses_non_finite():
    g = Grid(-1.0, 1.0, 10, -2.0, 2.0, 10)
    xy = torch.tensor([[-1.0, 2.0], [1.0, -2.0], [1.0 + 1e-12, 0.0], [0.0, float("nan")], [float("inf"), 0.0],
                       [0.0, -2.5]], dtype=torch.float64)
    assert physics.on_grid(xy, physics.grid_box(g)).tolist() == [True, True, False, False, False, False]


@pytest.mark.parametrize("path", [(0.5, 0.95, 0.5, 0.05, 0.99, 0.01), (0.05, 0.95, 0.02, 0.5, 0.97, 0.03, 0.96),
                                  (0.95, 0.05), (0.5, 0.5), (0.95, 0.05, 0.95)])
def test_the_step_counts_round_trips_by_the_one_rule_of_live_walkers(path):
    """A trip is two passages between the ends (statistics.round_trips); a walker that is not live
    touches nothing."""
    from entropyeng.statistics import round_trips

    trips, last = torch.zeros(2, dtype=torch.int64), torch.full((2,), -1, dtype=torch.int64)
    live = torch.tensor([True, False])
    for x in path:  # ends at < 0.1 and > 0.9 of [0, 1]
        physics.count_round_trips(torch.tensor([x, x], dtype=torch.float64), live, trips, last, 0.0, 1.0)
    assert trips.tolist() == [round_trips(path, 0.1, 0.9), 0] and last[1] == -1


def test_eq4_schedule():
    s = dict(f_max=2.0, t1=10, t2=100, t3=50)
    assert physics.f_schedule(5, **s) == 1.0 and physics.f_schedule(10, **s) == 2.0
    assert physics.f_schedule(100, **s) == 2.0 and physics.f_schedule(150, **s) == pytest.approx(2.0 * 50 / 100)
    t = torch.tensor([1.0, 10.0, 50.0, 101.0, 1e6], dtype=torch.float64)
    assert physics.schedule_f(t, **s).tolist() == [physics.f_schedule(float(v), **s) for v in t]
    assert math.isfinite(physics.f_schedule(1e300, **s))


def test_config_temperature_and_kick_scale():
    assert physics.config_temperature("paper", 2.0, 0.1) == pytest.approx(2.0 * 1.9 / 1.8)
    assert physics.config_temperature("baoab", 2.0, 0.5) == 2.0
    assert physics.kick_scale("baoab", 0) == 1.0 and physics.kick_scale("baoab", 3) == 2.0
    assert physics.kick_scale("paper", 3) == 1.0
    assert physics.kick_scale("baoab", torch.tensor(0)).item() == 1.0
