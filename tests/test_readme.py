"""The README's example runs and prints what it says."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    S, theta = namespace["S"], namespace["theta"]
    assert np.isclose(S.sum(), 0.05)
    assert np.abs(theta).max() <= 0.1
    assert capsys.readouterr().out.strip()
