"""The runnable examples of docs/examples/ run as a user would run them (at reduced budgets)."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "examples"

pytestmark = pytest.mark.cpp


@pytest.mark.parametrize("script, args, says", [
    ("wlmc_own_data.py", ["10"], "equilibrium test accuracy"),
    ("own_mlp_to_harvest.py", ["1e5"], "harvest at ln L_train"),
])
def test_an_example_runs_and_says_what_it_found(tmp_path, script, args, says):
    out = subprocess.run([sys.executable, "-P", str(EXAMPLES / script), *args], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert says in out.stdout
