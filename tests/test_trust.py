"""Trust: no code from a data folder, no run directory destroyed by a run started in the wrong
place, one run per directory (a lock), results that follow the umask."""

import json
import os
import pickle
import socket
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from entropyeng.cli import main
from entropyeng.runs.rundir import LOCK_NAME, RunLock, RunLocked
from entropyeng.tasks.cifar import load_cifar_pair

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)
TINY = ["--steps", "2e5", "--set", "sgd.runs=2", "--set", "sgd.epochs=5", "--quiet"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _batch(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, size=n).tolist())}


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_batches_load_through_the_restricted_unpickler(tmp_path, protocol):
    for k in range(1, 6):
        (tmp_path / f"data_batch_{k}").write_bytes(pickle.dumps(_batch(40, k), protocol=protocol))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(_batch(40, 9), protocol=protocol))
    (X, y), (Xt, yt) = load_cifar_pair(tmp_path, n_train=10, n_test=5)
    assert X.shape == (10, 3, 32, 32) and set(np.unique(y)) <= {0, 1} and len(yt) == 5


def test_a_crafted_cifar_batch_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    data = tmp_path / "cifar"
    data.mkdir()
    (data / "data_batch_1").write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": [0]}))
    with pytest.raises(ValueError, match=r"data_batch_1.*posix\.system|data_batch_1.*os\.system|data_batch_1.*system"):
        load_cifar_pair(data)
    assert not marker.exists()
    assert main(["run", "cifar", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data_batch_1" in err[0] and "refused" in err[0]
    assert not marker.exists()
    (data / "data_batch_1").write_bytes(b"garbage, not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        load_cifar_pair(data)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@CPP
def test_a_directory_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"my": "results"}')
    (out / "sgd.npz").write_bytes(b"precious")
    (out / "notes.txt").write_text("keep me")
    before = _snapshot(out)
    assert main(["run", "spiral", "--out", str(out)] + TINY) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(out) == before  # nothing lost, nothing added (the lock is gone too)


@CPP
def test_force_replaces_only_the_files_a_run_writes(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"old": true}')
    (out / "notes.txt").write_text("keep me")
    assert main(["run", "spiral", "--out", str(out), "--force"] + TINY) == 0
    err = capsys.readouterr().err
    assert "--force: replacing summary.json" in err and "other files are kept" in err
    assert (out / "notes.txt").read_text() == "keep me"
    assert "old" not in json.loads((out / "summary.json").read_text())
    assert (out / "checkpoint.npz").exists() and not (out / LOCK_NAME).exists()
    # a finished run: refused without --force, with the way to resume
    assert main(["run", "spiral", "--out", str(out)] + TINY) == 2
    assert "already holds a run; use 'entropyeng resume" in capsys.readouterr().err


HOLD = """
import sys, time
from entropyeng.runs.rundir import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


@CPP
def test_a_running_runs_directory_is_refused_at_once_even_with_force(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for extra in ([], ["--force"]):
            t0 = time.perf_counter()
            assert main(["run", "spiral", "--out", str(out)] + extra + TINY) == 1
            err = capsys.readouterr().err
            assert "is in use by a running run, pid" in err and str(holder.pid) in err
            assert time.perf_counter() - t0 < 30  # refused before any work (the run itself takes longer)
        assert main(["resume", str(out), "--quiet"]) == 1
        assert "in use" in capsys.readouterr().err
        assert sorted(os.listdir(out)) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_on_this_host_is_taken_over_and_another_hosts_is_refused(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps(dict(pid=dead.pid, host=socket.gethostname(), started="yesterday")))
    said = []
    with RunLock(tmp_path, say=said.append):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert len(said) == 1 and "taking over the stale lock" in said[0] and "no longer running" in said[0]
    assert not lock.exists()
    lock.write_text(json.dumps(dict(pid=1, host="elsewhere.example", started="now")))
    with pytest.raises(RunLocked, match="another host"):
        with RunLock(tmp_path, say=said.append):
            pass
    assert lock.exists()  # another host's lock is left for its owner


@CPP
def test_results_follow_the_umask(tmp_path):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        code = ("import sys; from entropyeng.cli import main; sys.exit(main(sys.argv[1:]))")
        subprocess.run([sys.executable, "-c", code, "run", "spiral", "--out", str(out)] + TINY, check=True,
                       cwd=tmp_path)
    finally:
        os.umask(old)
    for name in ("config.toml", "checkpoint.npz", "landscape.npz", "summary.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


SGD_FOREVER = """
import torch
from entropyeng.analysis.baselines import sgd_trajectories
from entropyeng.tasks import spiral_classification, spiral_mlp
train, test = spiral_classification(20, seed=0), spiral_classification(20, seed=1)
print("start", flush=True)
sgd_trajectories(spiral_mlp, train, test, loss="bce", metric="accuracy", runs=4, epochs=10**7, lr=0.01,
                 batch_size=4, processes=2)
"""


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry))
    return kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sgd_pool_workers_die_with_their_parent():
    """SIGKILL of the process running the SGD baseline (as of `entropyeng run` in its SGD phase):
    its pool workers die within seconds instead of living on, orphaned, holding its pipes."""
    parent = subprocess.Popen([sys.executable, "-c", SGD_FOREVER], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "start"
        deadline = time.time() + 60
        workers = []
        while len(workers) < 2 and time.time() < deadline:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= 2, workers
    finally:
        parent.kill()
        parent.wait()
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), [w for w in workers if _alive(w)]


def test_sizes_beyond_their_limits_are_refused_before_work(capsys, monkeypatch):
    """--threads beyond 4 per core, --steps beyond 1e13, and a grid larger than the memory the
    machine has are refused in one line before anything runs (the grid with the estimate)."""
    import torch
    from torch import nn

    from entropyeng import WLMC, WLMD, Grid, _checks

    before = torch.get_num_threads()
    assert main(["run", "spiral", "--threads", "100000", "--quiet"]) == 2
    assert "--threads must be in [1," in capsys.readouterr().err
    assert torch.get_num_threads() == before
    assert main(["run", "spiral", "--steps", "1e30", "--quiet"]) == 2
    assert "--steps must be <= 1e+13" in capsys.readouterr().err
    monkeypatch.setattr(_checks, "available_memory", lambda: 2**30)  # a machine with 1 GiB free
    X = torch.randn(8, 2, dtype=torch.float64)
    big = Grid(-1, 1, 20_000, -1, 1, 20_000)  # 3.2 GB per float64 array
    with pytest.raises(ValueError, match=r"^grid: 20000 x 20000 cells .* needs about 8.94 GiB.* 1 GiB available"):
        WLMD(nn.Sequential(nn.Linear(2, 1)).double(), (X, X[:, :1]), (X, X[:, :1]), loss="mse", grid=big,
             schedule=dict(f_max=1, t1=1, t2=2, t3=0))
    with pytest.raises(ValueError, match=r"^grid: 20000 x 20000 cells .* needs about 5.96 GiB"):
        WLMC(nn.Sequential(nn.Linear(2, 1)).double(), (X, X[:, :1]), (X, X[:, :1]), loss="mse", metric="loss",
             grid=big)


def _regression(width=6, seed=0):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(30, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1)).double(), (X, torch.sin(X[:, :1]))


def test_samplers_refuse_what_they_cannot_sample():
    """WLMC of a model without parameters, stages that are not whole numbers, a modification factor
    that would overflow ln g: refused in one line naming the argument (no ln g turned inf)."""
    import torch
    from torch import nn

    from entropyeng import WLMC

    X = torch.randn(10, 2, dtype=torch.float64)
    data = (X, X[:, :1])
    with pytest.raises(ValueError, match="^model: it has no trainable parameters"):
        WLMC(nn.Sequential(), data, data, loss="mse", metric="loss")
    wl = WLMC(nn.Sequential(nn.Linear(2, 1)).double(), data, data, loss="mse", metric="loss")
    for args, name in (((-1, 100), "n_stages"), (("2", 100), "n_stages"), ((1, 2.5), "steps_per_stage"),
                       ((True, 100), "n_stages")):
        with pytest.raises(ValueError, match=f"^{name}: expected a whole number"):
            wl.run_stages(*args)
    with pytest.raises(ValueError, match=r"^ln_f: expected a number in \[0, 1000\]"):
        wl.run(10, ln_f=1e308)
    assert np.isfinite(wl.landscape.entropy).all() and wl.stage == 0


def test_wlmd_evaluates_dropout_and_batchnorm_models_in_eval_mode():
    """A model with dropout or batch normalisation in train mode makes the loss a random variable:
    WLMD says so and evaluates it in eval mode, for one walker and for several."""
    import torch
    from torch import nn

    from entropyeng import WLMD
    from entropyeng.wlmd import reads

    X = torch.randn(12, 2, dtype=torch.float64)
    for layer in (nn.Dropout(0.5), nn.BatchNorm1d(8)):
        for K in (1, 3):
            model = nn.Sequential(nn.Linear(2, 8), layer, nn.Tanh(), nn.Linear(8, 1)).double()
            with pytest.warns(UserWarning, match="eval mode"):
                w = WLMD(model, (X, X[:, :1]), (X, X[:, :1]), loss="mse", steps=1000, walkers=K)
            assert not model.training
            before = w._ys.copy()
            reads.evaluate(w)  # the host's read again
            np.testing.assert_array_equal(w._ys, before)  # the same weights, the same loss
            w.run(3)


def test_wlmd_load_refuses_another_model_or_other_data(tmp_path):
    """WLMD.load onto a model of another size: one ValueError naming both sizes (not a raw shape error);
    onto other data: refused by the checkpoint's data digest."""
    import warnings

    import torch

    from entropyeng import WLMD

    model, data = _regression()
    w = WLMD(model, data, data, loss="mse", steps=1000)
    w.run(3)
    w.save(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="the checkpoint has 25 parameters, this model 41"):
        WLMD.load(tmp_path / "c.npz", _regression(width=10)[0], data, data)
    other = (data[0] + 1.0, data[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="made on other data"):
            WLMD.load(tmp_path / "c.npz", _regression()[0], other, other)
        again = WLMD.load(tmp_path / "c.npz", _regression()[0], data, data)
    assert again.t == 3 and torch.equal(again.theta, w.theta)


# -- no writes through symbolic links ---------------------------------------------------------------

def _link_to_victim(tmp_path, at):
    tmp_path.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(victim)
    return victim


def test_the_writers_refuse_a_symlink_at_their_name(tmp_path):
    from entropyeng._io import SymlinkRefused, open_append, save_figure, savez_atomic, write_atomic

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    writers = {"atomic.json": lambda p: write_atomic(p, b"x"), "a.npz": lambda p: savez_atomic(p, a=np.zeros(2)),
               "metrics.jsonl": lambda p: open_append(p).close(), "figure.png": lambda p: save_figure(fig, p)}
    for name, write in writers.items():
        victim = _link_to_victim(tmp_path / name.replace(".", "_"), tmp_path / "run" / name)
        with pytest.raises(SymlinkRefused, match="symbolic link"):
            write(tmp_path / "run" / name)
        assert victim.read_text() == "keep me" and (tmp_path / "run" / name).is_symlink()
    dangling = tmp_path / "run" / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere" / "x.png")
    with pytest.raises(SymlinkRefused):
        save_figure(fig, dangling)
    assert not (tmp_path / "nowhere").exists()
    plt.close(fig)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]


def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    victim = _link_to_victim(tmp_path, out / LOCK_NAME)
    assert main(["run", "spiral", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "symbolic link" in err and LOCK_NAME in err
    assert victim.read_text() == "keep me"


@CPP
def test_run_resume_and_plot_write_through_no_symlink(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "spiral", "--out", str(out), *TINY]) == 0
    (out / "landscape.png").unlink()
    victim = _link_to_victim(tmp_path / "a", out / "landscape.png")
    capsys.readouterr()
    assert main(["plot", str(out)]) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "keep me"
    (out / "landscape.png").unlink()
    victim = _link_to_victim(tmp_path / "b", out / LOCK_NAME)
    assert main(["resume", str(out), "--quiet"]) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "keep me"
    (out / LOCK_NAME).unlink()
    (out / "metrics.jsonl").unlink()
    victim = _link_to_victim(tmp_path / "c", out / "metrics.jsonl")
    assert main(["run", "spiral", "--out", str(out), "--force", *TINY]) == 0  # --force removes the link, not its file
    assert victim.read_text() == "keep me" and not (out / "metrics.jsonl").is_symlink()


@CPP
def test_the_raw_langevin_binding_refuses_aliased_arrays():
    from entropyeng import _core

    a = np.zeros(16)
    g = np.zeros(16)
    with pytest.raises(ValueError, match="v: expected an array that does not share memory with theta"):
        _core.langevin(a, a, g, 1.0, 0.01, 0.1, 1.0, 0, 0)
    with pytest.raises(ValueError, match="v: expected an array that does not share memory"):
        _core.langevin(a[:8], a[4:12], g[:8], 1.0, 0.01, 0.1, 1.0, 0, 0)
    assert not a.any()


@pytest.mark.parametrize("content", [b"[1, 2]", b'"a string"', b'{"pid": "abc"}', b'{"pid": 1180591620717411303424}',
                                     b'{"pid": {"nested": [1, {"deeper": 2}]}}', b"[" * 100000, b"\xff\xfe",
                                     b'{"pid": true, "host": 5}'])
def test_a_lock_file_of_odd_contents_is_no_owner_and_is_taken_over(tmp_path, content):
    (tmp_path / LOCK_NAME).write_bytes(content)
    said = []
    with RunLock(tmp_path, say=said.append):
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
