"""The one descent loop (entropyeng.analysis.descent) and its three callers: the SGD baselines, the
trainer's peers and the harvest's way down to its target."""

import ast
import pathlib

import pytest
import torch
from torch import nn

from entropyeng.analysis.descent import descend
from entropyeng.tasks.box import box_projection, into_box

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "entropyeng"


def _problem(n=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    return model, X, y


def _mse(out, y):
    return ((out - y) ** 2).mean()


def test_after_epoch_sees_every_epoch_count_and_the_run_stops_at_epochs():
    model, X, y = _problem()
    seen = []
    done = descend(model, X, y, _mse, torch.optim.SGD(model.parameters(), lr=1e-2), epochs=3, batch_size=5,
                   generator=torch.Generator().manual_seed(0), after_epoch=lambda d: seen.append(d) or False)
    assert done == 3 and seen == [0, 1, 2, 3]


def test_after_epoch_stops_the_descent_before_the_first_step():
    model, X, y = _problem()
    before = [p.detach().clone() for p in model.parameters()]
    done = descend(model, X, y, _mse, torch.optim.SGD(model.parameters(), lr=1e-2), epochs=5, after_epoch=lambda d: True)
    assert done == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_minibatches_are_a_permutation_from_the_generator_and_full_batch_keeps_the_rows_order():
    model, X, y = _problem()
    rows = []
    model.register_forward_hook(lambda m, inp, out: rows.append(inp[0].detach().clone()))
    descend(model, X, y, _mse, torch.optim.SGD(model.parameters(), lr=0.0), epochs=2, batch_size=5,
            generator=torch.Generator().manual_seed(7))
    assert [len(r) for r in rows] == [5, 5, 5, 5, 3] * 2
    g = torch.Generator().manual_seed(7)
    expected = torch.cat([X[torch.randperm(len(X), generator=g)] for _ in range(2)])
    assert torch.equal(torch.cat(rows), expected)
    rows.clear()
    descend(model, X, y, _mse, torch.optim.SGD(model.parameters(), lr=0.0), epochs=1)
    assert len(rows) == 1 and torch.equal(rows[0], X)


def test_the_projection_runs_after_every_step_and_keeps_the_box():
    model, X, y = _problem()
    calls = []
    project = box_projection(model, 0.05)

    def counted():
        calls.append(1)
        project()

    descend(model, X, y, _mse, torch.optim.SGD(model.parameters(), lr=1.0), epochs=2, batch_size=10,
            generator=torch.Generator().manual_seed(0), project=counted)
    assert len(calls) == 2 * 3
    assert all(float(p.detach().abs().max()) <= 0.05 for p in model.parameters())


def test_box_projection_is_into_box():
    a, _, _ = _problem()
    b, _, _ = _problem()
    with torch.no_grad():
        for p in list(a.parameters()) + list(b.parameters()):
            p.mul_(10)
    into_box(a, "paper")
    box_projection(b, "paper")()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="bound"):
        box_projection(b, "wide")


def test_a_closure_step_evaluates_the_loss_twice_a_step():
    model, X, y = _problem()
    evaluations = []

    def counted_loss(out, target):
        evaluations.append(1)
        return _mse(out, target)

    class TwoLook(torch.optim.SGD):
        def step(self, closure=None):
            assert closure is not None
            closure()
            return super().step()

    descend(model, X, y, counted_loss, TwoLook(model.parameters(), lr=1e-3), epochs=1, batch_size=10,
            generator=torch.Generator().manual_seed(0), closure_step=True)
    assert len(evaluations) == 2 * 3


def test_the_descent_loop_is_written_once():
    """No module of the package but analysis/descent.py draws minibatch permutations or steps an
    optimiser: the baselines, the peers and the harvest's descent call it."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in ("analysis/descent.py", "train/langevin.py"):  # train/langevin: Langevin dynamics, not descent
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                if f.attr == "randperm" or (f.attr == "step" and isinstance(f.value, ast.Name)
                                            and f.value.id in ("opt", "optimizer")):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
