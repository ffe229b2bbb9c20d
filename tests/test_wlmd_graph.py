"""CUDA graphs of the WLMD step (entropyeng.wlmd.graph).

On the CPU (no graphs there) the sampler's side is tested with a stand-in capture that does what a
CUDA capture does to the run: warm-up calls on copies of the buffers, the n calls recorded without
changing the buffers, and a replay that makes those n calls. So the tests check the scheduling
(replays of n steps, the rest one call each), that capturing leaves the run's state alone, that a
new step function is captured anew, and the fallback with a warning when the capture fails; and the
CUDA body of the histogram count, which a graph needs free of host synchronisation. The capture
itself runs in the CUDA tests (skipped without a device)."""

import warnings

import numpy as np
import pytest
import torch
from test_ops import CPP, GL, G, regression_case, sampler

from entropyeng import Grid

from entropyeng.kernels import ops
from entropyeng.kernels.backends import cuda as cuda_backend
from entropyeng.kernels.backends import torch_ref

CUDA = pytest.mark.cuda  # skipped without a CUDA device (conftest.py)


class StandIn:
    """A CPU stand-in for entropyeng.wlmd.graph's CUDA capture (see the module docstring)."""

    def __init__(self, fail=False):
        self.captures, self.replays, self.fail = [], 0, fail

    def __call__(self, step, bufs, n, scratch):
        if self.fail:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        before = [b.clone() for b in bufs]
        for _ in range(2):
            step(*scratch)
        for b, s in zip(bufs, scratch):
            assert b.data_ptr() != s.data_ptr()  # the warm-up ran on copies
        for _ in range(n):
            step(*bufs)
        for b, s in zip(bufs, before):  # a capture records the kernels and runs none of them
            b.copy_(s)
        self.captures.append((step, n))
        stand_in = self

        class Graph:
            def replay(self):
                stand_in.replays += 1
                for _ in range(n):
                    step(*bufs)

        return Graph()


def graphed(capture, **over):
    w = sampler(**over)
    w._graph_capture = capture
    return w


@CPP
@pytest.mark.parametrize("compile", ["eager", True])
def test_replays_of_the_captured_steps_follow_single_steps_bit_for_bit(compile):
    plain = sampler(compile=compile, sync_every=10)
    plain.run(57)
    cap = StandIn()
    w = graphed(cap, compile=compile, sync_every=10)
    w.graph_steps = 4
    w.run(57)
    # 5 host reads of 10 steps (2 replays of 4 + 2 single steps each), then 7 steps (1 replay + 3)
    assert len(cap.captures) == 1 and cap.captures[0][1] == 4 and cap.replays == 5 * 2 + 1
    assert w.graph_info["captured"] and w.graph_info["steps"] == 4 and w.t == 57
    np.testing.assert_array_equal(w.theta.numpy(), plain.theta.numpy())
    np.testing.assert_array_equal(w.v.numpy(), plain.v.numpy())
    np.testing.assert_array_equal(w.landscape.entropy, plain.landscape.entropy)
    np.testing.assert_array_equal(w.landscape.histogram, plain.landscape.histogram)


@CPP
def test_short_calls_take_single_steps_and_capture_nothing():
    cap = StandIn()
    w = graphed(cap, compile="eager", sync_every=10)
    w.run(3)
    w.run(5, callback=lambda info: None, every=2)
    assert cap.captures == [] and w.graph_info is None and w.t == 8
    w.graph_steps = 0  # off
    w.run(30)
    assert cap.captures == [] and w.t == 38


@CPP
def test_a_new_step_function_or_length_is_captured_anew():
    """compile="auto" decides on the form after the first short runs: the capture of the eager
    step is replaced by one of the compiled step; a new graph_steps is captured anew too."""
    cap = StandIn()
    w = graphed(cap, compile="auto", compile_min_steps=100, sync_every=20, native=False)
    w.graph_steps = 10
    w.run(40)
    assert w.step_form is None and w._runner.form == "eager" and len(cap.captures) == 1  # undecided: eager
    w.run(200)
    assert w.step_form == "compiled" and len(cap.captures) == 2
    assert cap.captures[1][0] is w._runner.call and cap.captures[1][0] is not cap.captures[0][0]
    w.graph_steps = 5
    w.run(20)
    assert len(cap.captures) == 3 and cap.captures[2][1] == 5


@CPP
def test_a_failed_capture_warns_once_and_runs_single_steps():
    plain = sampler(compile="eager", sync_every=10)
    plain.run(40)
    w = graphed(StandIn(fail=True), compile="eager", sync_every=10)
    w.graph_steps = 4
    with pytest.warns(UserWarning, match="could not be captured.*not permitted"):
        w.run(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, no second try
        w.run(20)
    assert w.graph_info["captured"] is False
    np.testing.assert_array_equal(w.theta.numpy(), plain.theta.numpy())
    np.testing.assert_array_equal(w.landscape.histogram, plain.landscape.histogram)


def test_the_cuda_histogram_count_equals_the_cpu_operator():
    """The CUDA backend's histogram body (index_add_: no host synchronisation), run on CPU tensors,
    against the CPU operator and the reference: points inside, on the edges, off the grid, not
    finite, repeated."""
    x = torch.tensor([-1.0, 0.5, float("nan"), 1.99, -4.0, 2.0, 0.5, float("inf"), -7.0])
    y = torch.tensor([0.3, -2.9, 0.0, 3.4, -3.0, 3.0, -2.9, 0.0, 9.0])
    weight = torch.tensor([1.0, 2.0, 3.0, 0.5, 1.0, 1.0, 0.25, 1.0, 1.0], dtype=torch.float64)
    a, b, r = (torch.zeros(G.shape, dtype=torch.float64) for _ in range(3))
    ops.histogram(a, GL, x.double(), y.double(), weight)
    cuda_backend.histogram(b, G, x.double(), y.double(), weight)
    torch_ref.histogram(r, G, x.double(), y.double(), weight)
    np.testing.assert_array_equal(b.numpy(), a.numpy())
    np.testing.assert_array_equal(r.numpy(), a.numpy())
    assert b.sum() > 0
    c = torch.zeros((G.shape[1], G.shape[0]), dtype=torch.float64).t()  # a strided histogram
    cuda_backend.histogram(c, G, x.double(), y.double(), weight)
    np.testing.assert_array_equal(c.numpy(), a.numpy())


# -- on a CUDA device ---------------------------------------------------------------------------
def on_cuda(model, train, test):
    dev = torch.device("cuda")
    return model.to(dev), tuple(a.to(dev) for a in train), tuple(a.to(dev) for a in test)


def cuda_sampler(**over):
    """test_ops's sampler on the CUDA device."""
    from entropyeng import WLMD

    kw = dict(loss="mse", grid=Grid(-8.0, 4.0, 240, -8.0, 4.0, 240), sigma=0.15, cutoff=0.6,
              schedule=dict(f_max=0.05, t1=100, t2=1e4, t3=0.0), dt=0.01, gamma=0.1, seed=3,
              walls=dict(x_max=-1.0, y_min=-6.0), wall_c=30.0)
    kw.update(over)
    return WLMD(*on_cuda(*regression_case()), **kw)


@CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("compile", ["eager", True])
def test_cuda_graph_replays_equal_single_steps(compile):
    plain = cuda_sampler(compile=compile, sync_every=100)
    plain.graph_steps = 0
    plain.run(250)
    w = cuda_sampler(compile=compile, sync_every=100)
    w.graph_steps = 50
    w.run(250)
    assert w.graph_info is not None and w.graph_info["captured"], w.graph_info
    assert plain.graph_info is None
    # the same kernels on the same buffers; cuBLAS may pick another algorithm under capture (its
    # workspace there is its own), so to rounding rather than bit for bit
    np.testing.assert_allclose(w.theta.cpu().numpy(), plain.theta.cpu().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(w.landscape.entropy, plain.landscape.entropy, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(w.landscape.histogram, plain.landscape.histogram)
    assert w.landscape.histogram.sum() == 250


@CUDA
@pytest.mark.cuda
def test_cuda_graph_run_resumes(tmp_path):
    """A run saved after 130 steps (one graph of 100, 30 single steps) and resumed follows the
    uninterrupted run (three graphs), to rounding (see above)."""
    whole = cuda_sampler(compile="eager", sync_every=100)
    whole.run(300)
    half = cuda_sampler(compile="eager", sync_every=100)
    half.run(130)
    half.save(tmp_path / "c.npz")
    from entropyeng import WLMD

    resumed = WLMD.load(tmp_path / "c.npz", *on_cuda(*regression_case()), compile="eager")
    resumed.run(170)
    assert resumed.t == 300 and resumed.graph_info["captured"]
    np.testing.assert_allclose(resumed.theta.cpu().numpy(), whole.theta.cpu().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(resumed.landscape.entropy, whole.landscape.entropy, rtol=0, atol=1e-10)


@CUDA
@pytest.mark.cuda
def test_the_cuda_histogram_count_runs_on_the_device():
    x = torch.tensor([-1.0, 0.5, float("nan"), 1.99], dtype=torch.float64)
    y = torch.tensor([0.3, -2.9, 0.0, 3.4], dtype=torch.float64)
    w = torch.ones(4, dtype=torch.float64)
    a = torch.zeros(G.shape, dtype=torch.float64)
    b = torch.zeros(G.shape, dtype=torch.float64, device="cuda")
    ops.histogram(a, GL, x, y, w)
    ops.histogram(b, GL, x.cuda(), y.cuda(), w.cuda())
    np.testing.assert_array_equal(b.cpu().numpy(), a.numpy())


def test_the_compile_pause_says_so_on_stderr_unless_logging_is_configured(monkeypatch, capsys, caplog):
    """A script that waits half a minute for torch.compile is told why: on stderr when the
    application has not configured logging, through logging (and only there) when it has."""
    import logging

    from entropyeng.wlmd import runners

    monkeypatch.setattr(logging.root, "handlers", [])  # (nothing configured: what a script has)
    monkeypatch.setattr(logging.getLogger("entropyeng"), "handlers", [logging.NullHandler()])
    monkeypatch.setattr(logging.getLogger("entropyeng.wlmd"), "handlers", [])
    runners.say("WLMD step: compiling (%s); this takes seconds to a minute", "a test")
    assert capsys.readouterr().err == "entropyeng: WLMD step: compiling (a test); this takes seconds to a minute\n"
    monkeypatch.undo()
    with caplog.at_level(logging.INFO, logger="entropyeng"):
        runners.say("WLMD step: compiled in %.1f s", 1.25)
    assert capsys.readouterr().err == ""
    assert [r.getMessage() for r in caplog.records] == ["WLMD step: compiled in 1.2 s"]
