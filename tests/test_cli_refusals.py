"""The command refuses what is wrong in one line (exit 2), before any work, and leaves nothing
behind: bad options and values, checkpoints of other runs or corrupted ones, a full disk, Ctrl-C in
the SGD phase; files written atomically, strict JSON, no stale temporaries, no repeated metrics."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from entropyeng._io import load_npz, save_npz_atomic
from entropyeng.cli import main

CPP = pytest.mark.cpp  # skipped without the compiled extension (conftest.py)
TINY = ["--set", "sgd.runs=2", "--set", "sgd.epochs=5", "--quiet"]


def one_line_error(capsys, code, argv):
    assert main(argv) == code
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if not l.startswith("resuming ")]
    assert len(lines) == 1 and lines[0].startswith("entropyeng: error:"), lines
    return lines[0]


@pytest.mark.parametrize("argv, where", [
    (["run", "spiral", "--steps", "abc"], "--steps"),
    (["run", "house", "--set", "model.width=-3"], "model.width"),
    (["run", "spiral", "--set", "wlmc.steps_per_stage=0"], "wlmc.steps_per_stage"),
    (["run", "spiral", "--set", "sgd.lr=-1"], "sgd.lr"),
    (["run", "spiral", "--set", "sgd.runs=0"], "sgd.runs"),
    (["run", "spiral_regression", "--set", "wlmd.gamma=2"], "wlmd.gamma"),
    (["run", "spiral_regression", "--set", "wlmd.t2=1", "--set", "wlmd.t1=5"], "wlmd.t2"),
    (["run", "spiral_regression", "--set", "wlmd.compile=sometimes"], "wlmd.compile"),
    (["run", "spiral", "--threads", "0"], "--threads"),
    (["run", "spiral", "--set", "sgd.optimizer=bogus"], "sgd.optimizer"),
    (["run", "spiral", "--set", "task=house"], "--set task="),
    (["run", "spiral", "--seed", "99999999999999999999"], "--seed"),
    (["run", "spiral", "--set", "data.train_seed=99999999999999999999"], "data.train_seed"),
])
def test_bad_values_are_one_line_before_any_work(tmp_path, capsys, argv, where):
    out = tmp_path / "run"
    err = one_line_error(capsys, 2, argv + ["--out", str(out)])
    assert where in err
    assert not out.exists()  # nothing was started


def test_version_and_helpful_subcommand_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    from entropyeng import __version__

    assert capsys.readouterr().out.strip() == f"entropyeng {__version__}"
    with pytest.raises(SystemExit):
        main(["resume", "--help"])
    assert "the run directory" in capsys.readouterr().out


@pytest.fixture
def finished_run(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "spiral", "--steps", "4e5", "--set", "wlmc.steps_per_stage=100000", "--set",
                 "wlmc.checkpoint_every=1", "--out", str(out)] + TINY) == 0
    return out


def _untouched(out):
    return {name: (out / name).read_bytes() for name in ("landscape.npz", "summary.json", "metrics.jsonl")}


@CPP
def test_summary_is_strict_json(finished_run):
    text = (finished_run / "summary.json").read_text()

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    json.loads(text, parse_constant=refuse)


@CPP
def test_a_checkpoint_of_another_run_is_refused_without_touching_the_run(tmp_path, capsys, finished_run):
    other = tmp_path / "other"
    assert main(["run", "spiral", "--steps", "2e5", "--seed", "7", "--out", str(other)] + TINY) == 0
    before = _untouched(finished_run)
    (finished_run / "checkpoint.npz").write_bytes((other / "checkpoint.npz").read_bytes())
    err = one_line_error(capsys, 2, ["resume", str(finished_run), "--quiet"])
    assert "checkpoint.npz" in err and "run_digest" in err
    assert _untouched(finished_run) == before


@CPP
@pytest.mark.parametrize("corrupt, field", [
    (lambda a, m: a.update(lnG=np.full_like(a["lnG"], np.nan)), "lnG"),
    (lambda a, m: m.update(stage=10**9), "stage"),
    (lambda a, m: m.update(stage=-5), "stage"),
    (lambda a, m: a.pop("lnG"), "lnG"),
    (lambda a, m: a.update(H=-a["H"] - 1), "H"),
])
def test_corrupted_checkpoints_are_one_line(capsys, finished_run, corrupt, field):
    path = finished_run / "checkpoint.npz"
    arrays, meta = load_npz(path, "wlmc-checkpoint")
    corrupt(arrays, meta)
    meta.pop("format_version")
    save_npz_atomic(path, arrays, meta)
    before = _untouched(finished_run)
    err = one_line_error(capsys, 2, ["resume", str(finished_run), "--quiet"])
    assert "checkpoint.npz" in err and field in err
    assert _untouched(finished_run) == before


@CPP
def test_a_truncated_checkpoint_is_one_line(capsys, finished_run):
    path = finished_run / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:1000])
    err = one_line_error(capsys, 2, ["resume", str(finished_run), "--quiet"])
    assert "checkpoint.npz" in err and "cannot be read" in err


@CPP
def test_resume_removes_stale_temporaries_and_repeats_no_metrics(finished_run):
    (finished_run / ".tmp-abandoned.npz").write_bytes(b"x" * 100)
    lines = (finished_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["stage"] for l in lines] == [0, 1, 2, 3]
    # a checkpoint two stages back (as if killed after two more stages were logged)
    from entropyeng import WLMC

    w = WLMC.load(finished_run / "checkpoint.npz")
    assert w.stage == 4
    cfg = (finished_run / "config.toml").read_text()
    early = finished_run.parent / "early"
    assert main(["run", "spiral", "--steps", "2e5", "--set", "wlmc.steps_per_stage=100000", "--out", str(early)]
                + TINY) == 0
    (finished_run / "checkpoint.npz").write_bytes((early / "checkpoint.npz").read_bytes())
    (finished_run / "config.toml").write_text(cfg)
    assert main(["resume", str(finished_run), "--quiet"]) == 0
    assert not list(finished_run.glob(".tmp-*"))
    stages = [json.loads(l)["stage"] for l in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert stages == [0, 1, 2, 3]


@CPP
def test_a_full_disk_is_one_line_and_keeps_the_last_good_files(tmp_path, capsys, monkeypatch, finished_run):
    import entropyeng.runs.task as cli

    good = (finished_run / "summary.json").read_bytes()
    (finished_run / "sgd.npz").unlink()  # the SGD phase will run again and its write fail

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(cli, "savez_atomic", lambda path, **a: full(path, b""))
    err = one_line_error(capsys, 1, ["resume", str(finished_run), "--quiet"])
    assert "sgd.npz" in err and "No space left" in err
    assert (finished_run / "summary.json").read_bytes() == good and not (finished_run / "sgd.npz").exists()


@CPP
def test_ctrl_c_in_the_sgd_phase_exits_130(tmp_path, capsys, monkeypatch):
    import entropyeng.analysis.baselines as baselines

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(baselines, "sgd_trajectories", interrupted)
    out = tmp_path / "run"
    assert main(["run", "spiral", "--steps", "2e5", "--out", str(out)] + TINY) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "entropyeng resume" in err
    assert (out / "checkpoint.npz").exists() and (out / "landscape.npz").exists()


def test_progress_without_a_terminal_prints_plain_lines(capsys):
    from entropyeng.runs.loop import Progress

    bar = Progress(100, "steps", True, interval=0.0)
    bar.update(0)
    bar.update(50, "x")
    bar.update(100)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    stamp = r"\d\d:\d\d:\d\d "  # each line stamped with the time of day
    assert re.fullmatch(stamp + "progress: 0/100 steps  rate pending", lines[0])
    assert re.match(stamp + "progress: 100/100 steps", lines[-1])
    assert all("nan" not in l and "\r" not in l for l in lines)


def test_a_piped_log_gets_its_first_progress_line_at_once_then_every_interval(capsys):
    from entropyeng.runs.loop import Progress

    bar = Progress(100, "steps", True, interval=3600.0)
    bar.update(10)  # the first chunk: a line at once (a piped log was silent for its first 30 s)
    bar.update(20)  # within the interval: nothing
    assert capsys.readouterr().err.count("progress:") == 1


def test_slow_rates_read_as_seconds_per_item(capsys):
    from entropyeng.runs.loop import Progress

    bar = Progress(10, "SGD runs", True, interval=0.0)
    bar.update(0)
    bar.t0 -= 8.0  # as if 8 s had passed
    bar.update(2)
    assert "4.0 s per SGD run" in capsys.readouterr().err


def test_a_run_starts_with_a_header(tmp_path, capsys):
    from entropyeng.cli import main

    assert main(["run", "spiral", "--steps", "1e5", "--out", str(tmp_path / "r"), "--set", "sgd.runs=2",
                 "--set", "sgd.epochs=3"]) == 0
    err = capsys.readouterr().err
    from entropyeng import __version__

    for what in (f"entropyeng {__version__}, torch", "kernels", "cores", "run      spiral ->", "budget   1e+05 walker-steps",
                 "baseline 2 SGD runs", "(sgd.runs, sgd.epochs)", "threads  torch"):
        assert what in err, what


def test_the_source_tree_says_when_the_engine_is_missing(tmp_path):
    """Imported from a source tree without the compiled module, the package says so in one line."""
    import shutil

    src = tmp_path / "tree"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "entropyeng"), src / "entropyeng",
                    ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    (src / "pyproject.toml").write_text("[project]\nname = 'entropyeng'\n")
    proc = subprocess.run([sys.executable, "-c", "import entropyeng, entropyeng.kernels.backends as b; print(b.available())"],
                          cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if "cpp" in proc.stdout:  # an editable install's finder serves the engine to any tree: nothing to say
        assert "source tree" not in proc.stderr
        return
    assert proc.stdout.strip() == "['torch']"
    assert "compiled" in proc.stderr and "source tree" in proc.stderr and proc.stderr.count("\n") == 1


def _rewrite(path, change):
    arrays, meta = load_npz(path, "wlmc-checkpoint")
    change(arrays, meta)
    meta.pop("format_version")
    save_npz_atomic(path, arrays, meta)


@CPP
def test_a_checkpoint_without_its_digest_needs_trust(capsys, finished_run):
    """A checkpoint whose run_digest was removed is refused in one line naming the field and --trust,
    with nothing touched; with --trust it continues (its state still checked against the run)."""
    path = finished_run / "checkpoint.npz"
    _rewrite(path, lambda a, m: m.pop("run_digest"))
    before = _untouched(finished_run)
    err = one_line_error(capsys, 2, ["resume", str(finished_run), "--quiet"])
    assert "run_digest" in err and "--trust" in err
    assert _untouched(finished_run) == before
    assert main(["resume", str(finished_run), "--quiet", "--trust"]) == 0


@CPP
@pytest.mark.parametrize("change", [
    lambda a, m: a.update(X_train=a["X_train"] * 0 + 3.0),
    lambda a, m: a.update(y_test=1 - a["y_test"]),
    lambda a, m: m.update(seed=m["seed"] + 1),
], ids=["X_train", "y_test", "seed"])
def test_the_run_takes_its_data_and_seed_from_its_config_not_the_checkpoint(tmp_path, capsys, change):
    """The WLMC chain's checkpoint carries a copy of the data and the seed: resume builds the chain
    from config.toml and its data; an edited copy of the data changes nothing, another seed is refused."""
    runs = []
    for k in range(2):
        out = tmp_path / f"r{k}"
        assert main(["run", "spiral", "--steps", "2e5", "--set", "wlmc.steps_per_stage=100000", "--out", str(out)]
                    + TINY) == 0
        (out / "summary.json").unlink()
        (out / "landscape.npz").unlink()
        runs.append(out)
    # both stopped after stage 2 of 2: make them continue to 3 stages, one with an edited checkpoint
    for out in runs:
        cfg = (out / "config.toml").read_text().replace("stages = 2", "stages = 3")
        (out / "config.toml").write_text(cfg)
    _rewrite(runs[1] / "checkpoint.npz", change)
    assert main(["resume", str(runs[0]), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["resume", str(runs[1]), "--quiet"])
    err = capsys.readouterr().err
    if "seed" in err:
        assert code == 2 and "seed" in err
        return
    assert code == 0
    a = np.load(runs[0] / "landscape.npz", allow_pickle=False)
    b = np.load(runs[1] / "landscape.npz", allow_pickle=False)
    np.testing.assert_array_equal(a["entropy"], b["entropy"])


def test_a_toml_nested_too_deeply_and_a_landscape_of_objects_are_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text('task = "spiral"\na = ' + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in one_line_error(capsys, 2, ["run", str(deep), "--out", str(tmp_path / "r")])
    run = tmp_path / "objects"
    run.mkdir()
    np.savez(run / "landscape.npz", entropy=np.array([{"a": 1}], dtype=object))
    assert "cannot be read as a landscape" in one_line_error(capsys, 2, ["plot", str(run)])


def test_importing_the_package_and_its_command_loads_no_torch(tmp_path):
    """``import entropyeng`` (PEP 562: names load on first use), ``entropyeng.cli`` and the run layer
    import neither torch nor numpy; the public names resolve; the 0.1 module paths are gone (one
    API), and a module reloads as itself."""
    code = ("import sys, importlib, entropyeng, entropyeng.cli, entropyeng.runs; "
            "heavy = [m for m in ('torch', 'numpy') if m in sys.modules]; "
            "from entropyeng import WLMD, Grid, Sampler, kernels; from entropyeng.kernels import backends, ops; "
            "gone = []\n"
            "for old in ('ops', 'backends', 'plot', 'baselines', 'rewl', 'integrators', 'presets', 'bench'):\n"
            "    try:\n        importlib.import_module('entropyeng.' + old)\n"
            "    except ModuleNotFoundError:\n        gone.append(old)\n"
            "from entropyeng.wlmd import presets; presets.PRESETS = None; importlib.reload(presets)\n"
            "print(heavy, len(gone), WLMD.__module__, Sampler.__module__, backends.__name__, presets.PRESETS is not None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "8", "entropyeng.wlmd.sampler", "entropyeng.sampler", "entropyeng.kernels.backends",
                                  "True"]


@pytest.mark.parametrize("argv", [["--help"], ["tasks"], ["sweep", "--list"], ["run", "--help"]])
def test_the_commands_that_read_no_model_start_without_torch(tmp_path, argv):
    """``--help``, ``tasks`` and ``sweep --list`` import what they need and not torch (a second or
    two of every start-up: measured 0.15-0.22 s against 4 s before)."""
    code = ("import sys; from entropyeng.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "TORCH False"


def test_ctrl_c_while_the_commands_load_is_one_line_and_130(tmp_path):
    """An interrupt while the commands load (the command's first moments) ends in one line and exit
    130, not a KeyboardInterrupt traceback: made deterministic by an import of the commands that
    raises it (``tasks`` itself no longer loads torch)."""
    code = ("import sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'entropyeng.cli.dispatch':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "from entropyeng.cli import main\n"
            "sys.exit(main(['tasks']))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 130 and out.stderr.strip().splitlines() == ["entropyeng: interrupted"], out.stderr


@pytest.mark.parametrize("after", [0.3, 0.6, 1.0])
def test_a_real_ctrl_c_in_the_first_second_exits_130(tmp_path, after):
    # torch and the engine load in this second: a KeyboardInterrupt raised there once aborted the
    # interpreter (SIGABRT from C++), was swallowed by an import lock's callback (the run went on,
    # exit 0), or ended it by SIGINT (-2); Ctrl-C is deferred while they load. (Not earlier than
    # 0.3 s: on a loaded machine 0.1 s can still be Python's own start-up, which answers -2 for any program.)
    import signal
    import time

    cmd = [sys.executable, "-m", "entropyeng", "run", "spiral", "--steps", "1e7", "--out", str(tmp_path / "r"),
           "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err, err


def test_ctrl_c_inside_an_import_comes_again_after_it_and_raises_between_imports(tmp_path, monkeypatch):
    """An interrupt raised inside an import can land in an extension's C++ or an import lock's
    callback: the command's handler sends it again 50 ms later instead, and raises it elsewhere."""
    import importlib
    import signal
    import time

    from entropyeng.runs import sigint

    (tmp_path / "entropyeng_probe_module.py").write_text("import sys\nFRAME = sys._getframe()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    frame = importlib.import_module("entropyeng_probe_module").FRAME
    sent = []
    monkeypatch.setattr(sigint.os, "kill", lambda pid, sig: sent.append(sig))
    sigint.between_imports(signal.SIGINT, frame)  # inside the import: no exception, a retry
    time.sleep(10 * sigint.RETRY_SECONDS)
    assert sent == [signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):
        sigint.between_imports(signal.SIGINT, sys._getframe())


@pytest.mark.parametrize("after, gap", [(0.6, 0.05), (3.0, 0.05), (3.0, 0.005), (3.0, 0.2)])
def test_two_ctrl_cs_in_a_row_still_end_with_one_line_and_130(tmp_path, after, gap):
    """A user who presses Ctrl-C twice (the second 50 ms after the first, while the first is being
    handled): one line, exit 130, no traceback, whether the command was still loading or running."""
    import signal
    import time

    cmd = [sys.executable, "-m", "entropyeng", "run", "spiral", "--steps", "1e8", "--out", str(tmp_path / "r"),
           "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err


@CPP
@pytest.mark.parametrize("sgd, said", [(None, "no sgd.npz"), (b"not a zip file", "sgd.npz cannot be read"),
                                       ("objects", "sgd.npz cannot be read"), ("bad shape", "1 of the 2 SGD runs")])
def test_plot_says_what_it_could_not_draw_and_draws_the_rest(finished_run, capsys, sgd, said):
    path = finished_run / "sgd.npz"
    path.unlink()
    if isinstance(sgd, bytes):
        path.write_bytes(sgd)
    elif sgd == "objects":
        np.savez(path, run_0=np.array([{"a": 1}], dtype=object))
    elif sgd == "bad shape":
        np.savez(path, run_0=np.zeros((5, 2)), run_1=np.zeros(7))
    (finished_run / "landscape.png").unlink()
    capsys.readouterr()
    assert main(["plot", str(finished_run)]) == 0
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert (finished_run / "landscape.png").read_bytes()[:4] == b"\x89PNG"


@CPP
def test_resume_with_an_unreadable_sgd_npz_runs_the_baseline_again(finished_run, capsys):
    (finished_run / "sgd.npz").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["resume", str(finished_run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "cannot be read" in err and "runs again" in err and "Traceback" not in err
    with np.load(finished_run / "sgd.npz") as f:
        assert len(f.files) >= 1


@CPP
@pytest.mark.parametrize("edit, field", [
    (lambda a, m: a.update(params=a["params"].astype(np.float32)), "params"),
    (lambda a, m: a.update(params=a["params"].astype(np.int64)), "params"),
    (lambda a, m: a["cache"].__setitem__(0, np.inf), "cache"),
    (lambda a, m: a["H"].__setitem__((0, 0), 1e300), "H"),
    (lambda a, m: m["counters"].__setitem__("step", 1e300), "counters.step"),
])
def test_resume_refuses_an_edited_wlmc_checkpoint_naming_the_field(finished_run, capsys, edit, field):
    """Edits that would change the result (the audit's cases): params of another dtype, a non-finite
    activation cache, absurd counts or move width; one line naming the field, nothing changed."""
    import json

    path = finished_run / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k].copy() for k in f.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    edit(arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    before = _untouched(finished_run)
    err = one_line_error(capsys, 2, ["resume", str(finished_run), "--quiet"])
    assert field in err, err
    assert _untouched(finished_run) == before


@pytest.mark.parametrize("argv", [["md", "spiral", "--threads", "0", "--steps", "10", "--runs", "1"],
                                  ["train", "spiral", "--threads", "0", "--target-loss", "0.3"]])
def test_every_command_that_trains_takes_threads_checked(tmp_path, capsys, argv):
    err = one_line_error(capsys, 2, argv + ["--out", str(tmp_path / "o")])
    assert "--threads" in err


@CPP
def test_harvest_threads_are_checked(finished_run, capsys):
    err = one_line_error(capsys, 2, ["harvest", str(finished_run), "--train-loss", "0.3", "--threads", "0"])
    assert "--threads" in err
