"""One set of limits (entropyeng/limits.py), applied by every command and the sweep spec, and files
checked before they are believed: each bad input is one line naming it, exit code 2, before any
allocation or work."""

import json
import os
import time
import zipfile

import numpy as np
import pytest

from entropyeng import Grid, Landscape
from entropyeng import _io
from entropyeng.cli import main

BAD_COMMANDS = [
    (["harvest", "{tmp}", "--train-loss", "0.5", "--steps", "1e14"], "--steps must be <= 1e+13"),
    (["harvest", "{tmp}", "--train-loss", "0.5", "--seed", "-1"], "--seed must be an integer in [0, 2^63 - 1]"),
    (["train", "spiral", "--method", "maxent", "--target-loss", "0.3", "--steps", "1e14"], "--steps must be <= 1e+13"),
    (["train", "spiral", "--method", "maxent", "--target-loss", "0.3", "--walkers", "100000"],
     "--walkers must be an integer in [1, 65,536]"),
    (["train", "spiral", "--method", "maxent", "--target-loss", "0.3", "--seed", "-1"],
     "--seed must be an integer in [0, 2^63 - 1]"),
    (["md", "spiral", "--runs", "1000000"], "--runs must be an integer in [1, 100,000]"),
    (["md", "spiral", "--dt", "1e300"], "--dt must be <= 1"),
    (["run", "spiral", "--set", "model.depth=10000"], "key 'model.depth' must be >= 1 and <= 1000"),
    (["run", "spiral", "--set", "model.width=1e9"], "key 'model.width' must be >= 1 and <= 65536"),
    (["run", "spiral", "--set", "data.n_per_class=1e9"], "key 'data.n_per_class' must be >= 1 and <= 10000000"),
    (["run", "spiral", "--set", "model.width=60000", "--set", "model.depth=900"], "multiply-adds a forward pass"),
    (["run", "spiral", "--set", "sgd.runs=1e9"], "key 'sgd.runs' must be >= 1 and <= 100000"),
    (["run", "spiral_regression", "--set", "wlmd.compile=sometimes"], "must be one of auto, native, true"),
    (["sweep", "/dev/zero"], "is not a regular file"),
    (["sweep", "fig3", "--workers", "100000"], "--workers must be in [1, 1024]"),
    (["sweep", "fig1b-reduced", "--out", "", "--dry-run"], "--out: expected a path, got an empty one"),
    (["train", "spiral", "--method", "maxent", "--target-loss", "0.3", "--out", ""], "--out: expected a path"),
]


@pytest.mark.parametrize("argv, message", BAD_COMMANDS, ids=[" ".join(a[:3]) for a, _ in BAD_COMMANDS])
def test_a_bad_command_line_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    t0 = time.perf_counter()
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + (["--out", str(tmp_path / "o")]
                                                                     if argv[0] in ("run", "md") else []))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and message in err, err
    assert time.perf_counter() - t0 < 20


def test_a_sweep_spec_that_is_a_fifo_or_too_large_or_too_many_runs_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    assert main(["sweep", str(fifo), "--dry-run"]) == 2
    assert "not a regular file" in capsys.readouterr().err and time.perf_counter() - t0 < 5
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    assert main(["sweep", str(big), "--dry-run"]) == 2
    assert "more than a spec's" in capsys.readouterr().err
    many = tmp_path / "many.toml"
    many.write_text('task = "spiral"\n[axes]\n"data.train_seed" = ' + str(list(range(1000))) + "\n"
                    '"data.test_seed" = ' + str(list(range(1000, 2000))) + "\n")
    t0 = time.perf_counter()
    assert main(["sweep", str(many), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "1,000,000 runs, more than 100,000" in err and time.perf_counter() - t0 < 10


def test_local_sweep_workers_are_bounded_by_the_runs_and_the_cores(tmp_path, capsys, monkeypatch):
    from entropyeng.sweep import driver

    seen = {}

    def fake(spec, out, workers=None, **kw):
        seen["workers"] = workers
        return []

    monkeypatch.setattr(driver, "run_sweep", fake)
    spec = tmp_path / "s.toml"
    spec.write_text('task = "spiral"\nsteps = 1e5\n[axes]\n"data.train_seed" = [0, 1, 2]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--workers", "500"]) == 0
    assert seen["workers"] == min(3, os.cpu_count() or 1)
    assert "--workers 500:" in capsys.readouterr().err


# -- files checked before they are believed --------------------------------------------------------

def _landscape(tmp_path):
    g = Grid(-4, 0, 40, -4, 0, 40)
    S = np.zeros(g.shape)
    S[10:14, 20:25] = np.arange(20).reshape(4, 5) + 1.0
    path = tmp_path / "l.npz"
    Landscape(S, (S > 0).astype(float), g, {"sampler": "test"}).save(path)
    return path


def _rewrite_meta(path, edit):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    edit(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_a_crop_origin_moved_by_one_cell_is_refused(tmp_path):
    path = _landscape(tmp_path)
    assert Landscape.load(path).entropy[10, 20] == 1.0

    def shift(meta):
        meta["cropped"]["entropy"]["origin"][0] += 1

    _rewrite_meta(path, shift)
    with pytest.raises(ValueError, match="does not match its crop record's digest"):
        Landscape.load(path)


def test_a_crop_record_off_the_grid_is_refused_before_allocating(tmp_path):
    path = _landscape(tmp_path)

    def grow(meta):
        for box in meta["cropped"].values():
            box["shape"] = [20000, 20000]
            box.pop("digest")

    _rewrite_meta(path, grow)
    with pytest.raises(ValueError, match="crop record says 20000 x 20000 cells, its grid 40 x 40"):
        Landscape.load(path)


def test_a_small_npz_that_inflates_past_the_limit_is_refused_from_its_headers(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, __meta__=np.frombuffer(b'{"kind": "landscape"}', dtype=np.uint8),
                        entropy=np.zeros(4 * 2**20 // 8))
    assert path.stat().st_size < 64 * 1024
    monkeypatch.setattr(_io, "MAX_NPZ_BYTES", 2**20)
    with pytest.raises(ValueError, match="more than 0 GiB; refused|GiB once read"):
        _io.load_npz(path, "landscape")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip at all", b"\x93NUMPY"])
def test_a_truncated_or_foreign_file_is_one_value_error(tmp_path, content):
    path = tmp_path / "landscape.npz"
    good = _landscape(tmp_path)
    data = good.read_bytes()
    path.write_bytes(content or data[: len(data) // 2])
    with pytest.raises(ValueError, match="landscape.npz"):
        Landscape.load(path)


def test_a_directory_or_device_is_not_read_as_a_file(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        _io.load_npz(tmp_path, "landscape")
    with pytest.raises(ValueError, match="not a regular file"):
        _io.load_npz("/dev/zero", "landscape")
    assert zipfile.is_zipfile(_landscape(tmp_path))


def _wlmd_checkpoint(tmp_path):
    import torch
    from torch import nn

    from entropyeng import WLMD

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1, bias=False)).double()
    eye = torch.eye(4, dtype=torch.float64)
    data = (eye, torch.zeros(4, 1, dtype=torch.float64))
    w = WLMD(model, data, data, loss="mse", grid=Grid(-12, 2, 70, -12, 2, 70), steps=1000, bound=0.5)
    w.run(20)
    path = tmp_path / "c.npz"
    w.save(path)
    return path, model, data


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(theta=a["theta"].astype(np.float32)), "field 'theta' must be float64"),
    (lambda a: a.update(theta=a["theta"].astype(np.int64)), "field 'theta' must be float64"),
    (lambda a: a.update(H=a["H"] * 0 + 1e300 * (a["H"] > 0)), "field 'H' counts"),
    (lambda a: a["theta"].__setitem__(0, np.inf), "field 'theta' holds non-finite values"),
])
def test_an_edited_checkpoint_that_would_change_the_result_is_refused(tmp_path, edit, message):
    from entropyeng import WLMD

    path, model, data = _wlmd_checkpoint(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta.pop("cropped", None)  # store S and H whole, so the edit is what is read
    from entropyeng._io import load_npz
    whole, _ = load_npz(path, meta["kind"])
    arrays.update(whole)
    edit(arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        WLMD.load(path, model, data, data)


def test_a_checkpoint_step_beyond_any_run_is_refused(tmp_path):
    from entropyeng import WLMD

    path, model, data = _wlmd_checkpoint(tmp_path)
    _rewrite_meta(path, lambda meta: meta.update(t=10**16))
    with pytest.raises(ValueError, match="field 't' must be a step count in"):
        WLMD.load(path, model, data, data)


@pytest.mark.parametrize("field, value, message", [("entropy", np.nan, "NaN or infinite"),
                                                   ("histogram", -1.0, "negative counts")])
def test_a_landscape_with_nan_entropy_or_negative_counts_is_refused(tmp_path, field, value, message):
    g = Grid(-4, 0, 20, -4, 0, 20)
    S, H = np.zeros(g.shape), np.zeros(g.shape)
    S[3, 4], H[3, 4] = 1.0, 1.0
    (S if field == "entropy" else H)[5, 5] = value
    path = tmp_path / "l.npz"
    _io.save_npz_atomic(path, {"entropy": S, "histogram": H}, {"kind": "landscape", "grid": g.to_dict(), "meta": {}})
    with pytest.raises(ValueError, match=message):
        Landscape.load(path)


def test_train_refuses_another_tasks_landscape(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text('task = "spiral_regression"\n')
    code = main(["train", "spiral", "--method", "maxent", "--target-loss", "0.3", "--landscape", str(run),
                 "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is a spiral_regression run, not a spiral one" in err and len(err.splitlines()) == 1


def test_two_sweeps_into_one_directory_are_refused(tmp_path, capsys):
    from entropyeng.runs.rundir import RunLock

    spec = tmp_path / "s.toml"
    spec.write_text('task = "spiral"\nsteps = 1e5\n[axes]\n"data.train_seed" = [0, 1]\n')
    out = tmp_path / "sweep"
    out.mkdir()
    with RunLock(out):  # a sweep driver holds it
        assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "is in use by" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("address, message", [("head", "expected tcp://HOST:PORT"), ("tcp://head", "expected tcp"),
                                              ("tls://head:8786", "tls:// protocol is not supported"),
                                              ("ucx://head:8786", "ucx:// protocol"),
                                              ("inproc://x", "inproc:// protocol"),
                                              ("tcp://head:99999", "the port must be in 1..65535")])
def test_a_scheduler_address_of_another_form_is_one_line(tmp_path, capsys, address, message):
    assert main(["sweep", "fig1b-reduced", "--out", str(tmp_path / "o"), "--scheduler", address]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_silent_scheduler_is_given_up_on_within_its_timeout(tmp_path, capsys, monkeypatch):
    import socket

    from entropyeng.sweep import driver

    monkeypatch.setattr(driver, "SCHEDULER_TIMEOUT_S", 4.0)
    with socket.socket() as s:  # a listener that accepts and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        port = s.getsockname()[1]
        t0 = time.perf_counter()
        code = main(["sweep", "fig1b-reduced", "--out", str(tmp_path / "o"), "--scheduler", f"tcp://127.0.0.1:{port}"])
        seconds = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot reach" in err and seconds < 20, (code, err, seconds)


def test_a_scheduler_that_sends_garbage_is_one_line(tmp_path, capsys):
    """A listener that answers with bytes that are not Dask's protocol (the audit: an attempt to
    allocate 3 EiB) is one line and exit 2, not a traceback."""
    import os
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
                conn.sendall(b"\xff" * 64 + os.urandom(4096))
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        code = main(["sweep", "fig1b-reduced", "--out", str(tmp_path / "o"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    finally:
        srv.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot reach" in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
