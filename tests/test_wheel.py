"""The wheel: ``pip wheel --no-build-isolation .`` gives a wheel that installs in a fresh virtual
environment with no compiler on PATH and runs the spiral demo (slow: it compiles the package, some
minutes on 2 cores, and installs torch into the new environment)."""

import os
import pathlib
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_the_wheel_installs_without_a_compiler_and_runs_the_demo(tmp_path):
    import torch

    wheels = tmp_path / "wheels"
    env = dict(os.environ, ENTROPYENG_CUDA="OFF")
    _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(wheels), str(ROOT)],
         env=env, cwd=tmp_path)
    wheel = next(wheels.glob("entropyeng-*.whl"))
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    py = target / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}"], cwd=tmp_path)
    # no compiler on PATH: the environment's own bin only (pip, python, the command)
    bare = dict(os.environ, PATH=str(target / "bin"))
    for tool in ("gcc", "g++", "cc", "c++", "nvcc", "cmake"):
        assert shutil.which(tool, path=bare["PATH"]) is None
    _run([str(py), "-m", "pip", "install", "-q", str(wheel)], env=bare, cwd=tmp_path)
    probe = _run([str(py), "-c", "import entropyeng, entropyeng._core as c, entropyeng.kernels.ops as o; "
                                 "print(entropyeng.__version__, c.cpu_isa, o.COMPILED_OPERATORS)"], env=bare,
                 cwd=tmp_path)
    assert probe.stdout.split()[-1] == "True", probe.stdout  # the C++ torch operators came with the wheel
    run = _run([str(target / "bin" / "entropyeng"), "run", "spiral", "--steps", "2e6", "--set", "sgd.runs=2",
                "--set", "sgd.epochs=5", "--out", str(tmp_path / "demo"), "--quiet"], env=bare, cwd=tmp_path)
    assert "advantage" in run.stdout and (tmp_path / "demo" / "landscape.png").exists()
