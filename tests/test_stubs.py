"""entropyeng/_core.pyi describes the whole compiled module: mypy's stubtest compares it with the
module as built (every function, class, method and constant, with their arguments)."""

import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.cpp
def test_the_stub_of_the_compiled_module_is_true():
    pytest.importorskip("mypy")
    done = subprocess.run([sys.executable, "-P", "-m", "mypy.stubtest", "entropyeng._core", "--allowlist",
                           str(HERE / "stubtest-allowlist.txt")], capture_output=True, text=True, cwd="/",
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
