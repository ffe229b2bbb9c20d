"""entropyeng/_core.pyi describes the whole compiled module: mypy's stubtest compares it with the
module as built (every function, class, method and constant, with their arguments)."""

import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.cpp
def test_the_stub_of_the_compiled_module_is_true(tmp_path):
    pytest.importorskip("mypy")
    from entropyeng import _core

    allow = (HERE / "stubtest-allowlist.txt").read_text()
    if not _core.cuda_built:  # a build without CUDA (ENTROPYENG_CUDA=OFF) has no cuda_* functions
        allow += "\nentropyeng\\._core\\.cuda_.*\n"
    (tmp_path / "allow.txt").write_text(allow)
    done = subprocess.run([sys.executable, "-P", "-m", "mypy.stubtest", "entropyeng._core", "--allowlist",
                           str(tmp_path / "allow.txt")], capture_output=True, text=True, cwd="/", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
