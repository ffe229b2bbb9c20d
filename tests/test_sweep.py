"""entropyeng sweep: a spec's runs on a Dask LocalCluster equal serial `entropyeng run`s bit for bit,
survive a killed worker, do no work twice, and a bad spec is one line before any run starts."""

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from entropyeng.cli import main

pytest.importorskip("distributed")
CPP = pytest.mark.cpp

SMALL = """
task = "spiral"
steps = 4e5
[wlmc]
steps_per_stage = 100000
checkpoint_every = 1
[sgd]
runs = 2
epochs = 3
[axes]
model.width = [4, 5]
data_set = [0, 1]
"""
SMALL_SETS = ["--steps", "4e5", "--set", "wlmc.steps_per_stage=100000", "--set", "wlmc.checkpoint_every=1",
              "--set", "sgd.runs=2", "--set", "sgd.epochs=3"]


# every process runs outside the source tree: there its folder, which has no compiled module, would
# shadow the installed package (the torch reference chain, hundreds of times slower)
def _cli(*args, cwd, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "entropyeng", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def _serial(out, width, k, sets=SMALL_SETS, depth=None):
    extra = ["--set", f"model.depth={depth}"] if depth else []
    out = pathlib.Path(out)
    return subprocess.Popen([sys.executable, "-m", "entropyeng", "run", "spiral", *sets, "--set", f"model.width={width}",
                             *extra, "--set", f"data.train_seed={k}", "--set", f"data.test_seed={1000 + k}",
                             "--threads", "1", "--out", str(out), "--quiet"],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=out.parent)


def _same_run(a, b):
    """Two run directories hold the same run: config, landscape and SGD arrays bit for bit."""
    assert (a / "config.toml").read_text() == (b / "config.toml").read_text()
    for name in ("landscape.npz", "sgd.npz"):
        with np.load(a / name) as fa, np.load(b / name) as fb:
            assert sorted(fa.files) == sorted(fb.files)
            for key in fa.files:
                if key == "__meta__":
                    continue
                np.testing.assert_array_equal(fa[key], fb[key], err_msg=f"{name}:{key}")


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    spec = root / "small.toml"
    spec.write_text(SMALL)
    done = _cli("sweep", spec, "--out", root / "out", "--workers", 2, "--quiet", cwd=root)
    serial = {}
    for width in (4, 5):
        procs = [(k, _serial(root / f"serial-w{width}-k{k}", width, k)) for k in (0, 1)]
        for k, p in procs:
            assert p.wait(timeout=600) == 0, p.stderr.read()
            serial[(width, k)] = root / f"serial-w{width}-k{k}"
    return root, spec, done, serial


@CPP
def test_a_sweep_on_two_workers_equals_serial_runs_bit_for_bit(small_sweep):
    root, _, done, serial = small_sweep
    assert done.returncode == 0, done.stderr
    record = json.loads((root / "out" / "sweep.json").read_text())
    assert record["counts"] == {"done": 4}
    assert {r["name"] for r in record["runs"]} == {"width4-data_set0", "width4-data_set1", "width5-data_set0",
                                                    "width5-data_set1"}
    for r in record["runs"]:
        assert r["steps_done"] == r["steps_total"] == 400_000 and r["summary"]["steps"] == 400_000
        _same_run(root / "out" / r["name"], serial[(r["axes"]["model.width"], r["axes"]["data_set"])])


@CPP
def test_running_a_finished_sweep_again_does_no_work(small_sweep):
    root, spec, done, _ = small_sweep
    before = {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*") if p.name != "sweep.json"}
    again = _cli("sweep", spec, "--out", root / "out", "--workers", 2, cwd=root)
    assert again.returncode == 0, again.stderr
    assert "all 4 runs finished" in again.stderr and "nothing to do" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*") if p.name != "sweep.json"} == before
    assert json.loads((root / "out" / "sweep.json").read_text())["counts"] == {"kept": 4}


@CPP
def test_compare_draws_fig1b_from_a_sweep_directory(small_sweep):
    root = small_sweep[0]
    done = _cli("compare", root / "out", cwd=root)
    assert done.returncode == 0, done.stderr
    points = json.loads((root / "out" / "compare.json").read_text())
    assert sorted((p["label"], p["n"]) for p in points) == [("4x4 relu", 2), ("4x5 relu", 2)]
    assert (root / "out" / "panels.png").read_bytes()[:4] == b"\x89PNG"  # the across-sizes panels
    # the paper's width figure: the advantage against model.width, one point per width over 2 data sets
    width = json.loads((root / "out" / "width.json").read_text())
    assert width["axis"] == "model.width" and [(p["network"], p["n"]) for p in width["points"]] == [(4, 2), (5, 2)]
    for p in width["points"]:
        mine = [json.loads((root / "out" / f"width{p['network']}-data_set{k}" / "summary.json").read_text())
                for k in (0, 1)]
        values = [s["readouts"]["equilibrium_vs_sgd_mean"]["advantage"] for s in mine]
        assert p["advantage"] == pytest.approx(sum(values) / 2)
    assert (root / "out" / "width.png").read_bytes()[:4] == b"\x89PNG"


@CPP
def test_a_worker_killed_mid_run_the_sweep_completes_and_the_run_equals_the_serial_one(tmp_path):
    """SIGKILL of the worker process running a run (its run's process dies with it): Dask gives the
    run to a worker again, which resumes it from its last checkpoint; the landscape is the serial
    run's bit for bit."""
    import psutil

    sets = ["--steps", "8e6", "--set", "wlmc.steps_per_stage=200000", "--set", "wlmc.checkpoint_every=1",
            "--set", "sgd.runs=2", "--set", "sgd.epochs=3"]
    spec = tmp_path / "kill.toml"
    spec.write_text('task = "spiral"\nsteps = 8e6\n[wlmc]\nsteps_per_stage = 200000\ncheckpoint_every = 1\n'
                    '[sgd]\nruns = 2\nepochs = 3\n[axes]\nmodel.width = [6, 7]\ndata_set = [0]\n')
    out = tmp_path / "out"
    sweep = subprocess.Popen([sys.executable, "-m", "entropyeng", "sweep", str(spec), "--out", str(out), "--workers",
                              "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    target = out / "width6-data_set0"
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and sweep.poll() is None:
        time.sleep(0.1)
        try:
            lines = (target / "metrics.jsonl").read_text().splitlines()
        except OSError:
            continue
        if len(lines) < 5 or not (target / "checkpoint.npz").exists():
            continue
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if "resume" in cmd and str(target) in cmd:
                killed = p.ppid()
                os.kill(killed, signal.SIGKILL)  # the Dask worker; its run's process follows it
                break
    assert killed is not None, "the run finished before it could be killed"
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr
    record = {r["name"]: r for r in json.loads((out / "sweep.json").read_text())["runs"]}
    assert record["width6-data_set0"]["state"] == "done" and record["width6-data_set0"]["attempts"] == 2
    assert record["width7-data_set0"]["state"] == "done"
    log = (target / "run.log").read_text()
    assert log.count("== ") == 2 and "resuming at step" in log
    serial = _serial(tmp_path / "serial", 6, 0, sets=sets)
    assert serial.wait(timeout=600) == 0, serial.stderr.read()
    _same_run(target, tmp_path / "serial")


@pytest.mark.parametrize("body, message", [
    ('task = "spiral"\n[modle]\nwidth = 3\n[axes]\nmodel.width = [4]\n', "unknown key 'modle'"),
    ('task = "spiral"\n[axes]\nmodel.width = []\n', "axis 'model.width' must be a non-empty list"),
    ('task = "spiral"\n[axes]\nmodel.height = [3, 4]\n', "axis 'model.height' is not a config key"),
    ('task = "spiral"\n[axes]\nwlmc = [3, 4]\n', "axis 'wlmc' is not a config key"),
    ('task = "spiral"\n[axes]\nmodel.width = [4, 0]\n', "the run model.width = 0: key 'model.width' must be >= 1"),
    ('task = "spiral"\n[axes]\ndata_set = [0, 1.5]\n', "axis 'data_set' must hold whole numbers"),
    ('task = "spiral"\n[sweep]\nworkers = 3\n', "unknown key 'sweep.workers'"),
    ('task = "nope"\n', "key 'task' must name a task"),
    ('task = "polymer"\n[axes]\nmodel.width = [2]\n', "needs its data: pass --data"),
])
def test_a_bad_spec_is_one_line_exit_2_before_any_run(tmp_path, capsys, body, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_spec_that_changed_is_refused_and_nothing_is_touched(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL)
    run_dir = tmp_path / "out" / "width4-data_set0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text('task = "spiral"\n# another run\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "holds a run of another config" in capsys.readouterr().err
    assert (run_dir / "config.toml").read_text() == 'task = "spiral"\n# another run\n'
    assert sorted(os.listdir(tmp_path / "out")) == ["width4-data_set0"]


def test_without_dask_the_command_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # an import of it fails
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'entropyeng[sweep]'" in err and len(err.splitlines()) == 1


def test_every_shipped_spec_loads_and_names_its_runs(tmp_path):
    from entropyeng.sweep import load_spec, shipped_specs

    names = shipped_specs()
    assert {"fig1b-reduced", "fig1b", "fig3", "fig7", "fig8", "fig9"} <= set(names)
    data = tmp_path / "emb.npz"
    for name in names:
        spec = load_spec(name, data=str(data) if name == "fig9" else None)
        assert spec.runs and len({r.name for r in spec.runs}) == len(spec.runs)
    reduced = load_spec("fig1b-reduced")
    assert len(reduced.runs) == 12 and all(r.config["wlmc"]["stages"] * r.config["wlmc"]["steps_per_stage"] == 2e8
                                          for r in reduced.runs)
    assert {(r.config["data"]["train_seed"], r.config["data"]["test_seed"]) for r in reduced.runs} == {
        (0, 1000), (1, 1001), (2, 1002)}
    paper = load_spec("fig1b")
    assert len(paper.runs) == 48 and {r.config["wlmc"]["stages"] for r in paper.runs} == {5000, 10000}


def test_example_prints_a_shipped_spec_that_loads(tmp_path, capsys):
    assert main(["sweep", "--example", "fig1b-reduced"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "mine.toml").write_text(text)
    from entropyeng.sweep import load_spec

    assert len(load_spec(str(tmp_path / "mine.toml")).runs) == 12


def test_the_terminal_table_shows_each_running_run_with_its_rate_and_eta(tmp_path):
    from entropyeng.sweep import load_spec
    from entropyeng.sweep.board import Board
    from entropyeng.sweep.driver import plan_dirs

    spec_path = tmp_path / "s.toml"
    spec_path.write_text(SMALL)
    spec = load_spec(str(spec_path))
    runs = plan_dirs(spec, str(tmp_path / "out"))
    r = runs[0]
    os.makedirs(r.dir)
    with open(os.path.join(r.dir, "metrics.jsonl"), "w") as fh:
        fh.write(json.dumps(dict(stage=1)) + "\n")
    r.state, r.seen = "running", [(0.0, 0)]
    r.observe(10.0)  # 1e5 walker-steps in 10 s

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    board = Board(str(tmp_path / "out"), spec, runs, stream=stream)
    board.show()
    text = stream.getvalue()
    assert "1 running, 3 waiting" in text
    row = next(line for line in text.splitlines() if line.startswith(r.name))
    assert "100,000 / 400,000" in row and "10,000/s" in row and "30 s" in row
    board.show()  # redrawn in place: the cursor goes back over the table
    assert "\x1b[" in stream.getvalue()


@CPP
def test_a_sweep_on_a_running_cluster_by_its_scheduler_address(tmp_path, monkeypatch):
    """--scheduler: the sweep is only the client of a cluster it did not start (here a LocalCluster
    of this test), and the cluster outlives it."""
    from distributed import LocalCluster

    from entropyeng.sweep import load_spec, run_sweep

    monkeypatch.chdir(tmp_path)  # the workers' processes start here, outside the source tree
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL.replace("model.width = [4, 5]", "model.width = [4]").replace("data_set = [0, 1]",
                                                                                      "data_set = [0]"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        runs = run_sweep(load_spec(str(spec)), str(tmp_path / "out"), scheduler=cluster.scheduler_address,
                         progress=False)
        assert [r.state for r in runs] == ["done"]
        assert len(cluster.scheduler_info["workers"]) == 1  # still there
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert record["cluster"] and record["runs"][0]["summary"]["steps"] == 400_000


@CPP
def test_the_docs_sweep_of_two_widths_runs_and_draws_the_width_figure(tmp_path):
    """docs/examples.md's sweep, as a user copies it, at a budget cut for the test (the spec's own
    steps and SGD baseline through --set-free edits of its numbers only)."""
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "examples.md").read_text()
    spec = text.split("cat > widths.toml <<'TOML'\n")[1].split("TOML\n")[0]
    assert 'task = "spiral_regression"' in spec and "model.width = [10, 30]" in spec
    spec = spec.replace("steps = 2e6", "steps = 2e4").replace("runs = 10", "runs = 2\nepochs = 3")
    (tmp_path / "widths.toml").write_text(spec)
    done = _cli("sweep", "widths.toml", "--out", "runs/widths", "--workers", 2, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / "runs" / "widths").glob("*/summary.json"))) == 6
    done = _cli("compare", "runs/widths", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs" / "widths" / "width.png").stat().st_size > 0
    widths = json.loads((tmp_path / "runs" / "widths" / "width.json").read_text())
    assert sorted(p["network"] for p in widths["points"]) == [10, 30]
