"""The README's and the docs' examples run and do what they say."""

import pathlib
import re

import numpy as np
import pytest

# the README's and the tutorial's models start inside the samplers' box: a clamped start is an error here
pytestmark = pytest.mark.filterwarnings("error:.*initial parameters lie outside")

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_figure_exists():
    for path in re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README.read_text()):
        assert (README.parent / path).exists(), path


def test_kernel_example_runs(capsys):
    namespace = {}
    exec(compile(blocks()[0], "README.md", "exec"), namespace)
    S, theta = namespace["S"], namespace["theta"]
    assert np.isclose(S.sum(), 0.05)
    assert np.abs(theta).max() <= 0.1
    assert capsys.readouterr().out.strip()


def test_wlmc_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = blocks()[1].replace("run_stages(50, 100_000", "run_stages(3, 20_000")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    wl = namespace["wl"]
    assert wl.stage == 3 and wl.landscape.histogram.sum() == 60_000
    assert (tmp_path / "wlmc.npz").exists()
    many = namespace["many"]
    assert many.walkers == 8 and many.landscape.histogram.sum() == 60_000
    assert namespace["valid"].any() and (tmp_path / "landscape.png").exists()


def test_wlmd_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = blocks()[2].replace("md.run(1000, callback=print, every=500)", "md.run(20)")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["md"].t == 20 and (tmp_path / "wlmd.npz").exists()


def test_fig_1a_command_gives_the_papers_stages():
    """The README's Fig. 1a command: 10,000 stages of 3.2e6 WLMC steps (the paper's protocol)."""
    import shlex

    from entropyeng.runs.build import apply_steps as _apply_steps
    from entropyeng.runs.config import load_config

    line = next(l for l in (DOCS / "paper.md").read_text().splitlines() if l.startswith("| 1a |"))
    cmd = shlex.split(re.search(r"`(entropyeng run [^`]+)`", line).group(1))
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    config = load_config(cmd[2], sets)
    _apply_steps(config, cmd[cmd.index("--steps") + 1])
    assert config["wlmc"]["stages"] == 10_000 and config["wlmc"]["steps_per_stage"] == 3_200_000


def test_many_walkers_example_runs():
    code = next(b for b in blocks() if "walkers=16" in b).replace("md.run(100)", "md.run(3)")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    md = namespace["md"]
    assert md.K == 16 and md.landscape.histogram.sum() == 48 and md.landscape.meta["walker_steps"] == 48


def test_the_demo_numbers_in_the_readme_are_those_of_its_summary():
    """The Quickstart quotes the spiral demo's readout; docs/spiral-demo-summary.json is the run's
    summary.json: they must say the same (the summary was once stale by a version)."""
    import json

    text = " ".join(README.read_text().split())
    m = re.search(r"ln L = (−?-?[0-9.]+)\) the equilibrium accuracy is ([0-9.]+) against SGD's ([0-9.]+)", text)
    assert m, "the Quickstart's readout sentence changed; update this test"
    summary = json.loads((README.parent / "docs" / "spiral-demo-summary.json").read_text())
    x = float(m.group(1).replace("−", "-"))
    assert round(summary["x"], 1) == x
    assert f"{summary['equilibrium']:.3f}" == m.group(2)
    assert f"{summary['sgd']:.3f}" == m.group(3)


def test_trainer_example_runs(capsys):
    code = next(b for b in blocks() if "from entropyeng.train import train" in b)
    namespace = {}
    exec(compile(code.replace("batch_size=10)", "batch_size=10, steps=200)"), "README.md", "exec"), namespace)
    r = namespace["r"]
    assert r.reached and abs(__import__("math").log(r.train_loss / 0.3)) <= 0.05
    assert capsys.readouterr().out.strip()


def test_ci_installs_the_way_the_readme_says():
    """.ci/run does the README's Install block (its pip lines, comments aside) and runs its test
    command."""
    text = README.read_text()
    install = text.split("## Install", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    for line in install.splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith("pip install"):
            assert command in ci, command
    tests = text.split("## Tests", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert [ln.split("#", 1)[0].strip() for ln in tests.splitlines()][-1] == ci[-1]


def test_the_fig1b_table_in_the_docs_is_that_of_its_json():
    """docs/paper.md's reduced Fig. 1b table quotes docs/fig1b.json (written by python -m bench.fig1b from the fig1b-reduced sweep)."""
    import json

    points = {p["label"].split()[0]: p for p in json.loads((README.parent / "docs" / "fig1b.json").read_text())["points"]}
    rows = re.findall(r"^\| (\d)×(\d)[^|]*\| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \| ([+-][\d.]+) ± ([\d.]+) \|$",
                      (DOCS / "paper.md").read_text(), re.M)
    assert len(rows) == 4
    for depth, width, *numbers in rows:
        p = points[f"{depth}x{width}"]
        expected = [p["sgd"], p["sgd_error"], p["equilibrium"], p["error"], p["advantage"], p["advantage_error"]]
        assert [float(n) for n in numbers] == [round(e, 3) for e in expected], (depth, width)


def test_the_readme_is_a_door():
    """README.md reads in five minutes: at most 200 lines; its links into docs/ exist."""
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for path in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (README.parent / path).exists(), path


def test_the_tutorial_runs(tmp_path, monkeypatch):
    """docs/tutorial.md's Python blocks, in order, as written (a short run: 2,000 steps)."""
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code in re.findall(r"```python\n(.*?)```", (DOCS / "tutorial.md").read_text(), re.S):
        exec(compile(code, "docs/tutorial.md", "exec"), namespace)
    assert namespace["md"].t == 2_000 and namespace["valid"].any()
    assert (tmp_path / "my-run.npz").exists() and (tmp_path / "my-landscape.npz").exists()


def test_every_docs_page_is_in_the_site():
    """Every Markdown page under docs/ is in mkdocs.yml's navigation (a page left out is not found)."""
    nav = (README.parent / "mkdocs.yml").read_text()
    performance = (DOCS / "performance.md").read_text()
    for page in DOCS.rglob("*.md"):
        if page.is_relative_to(DOCS / "perf"):  # the benchmark's tables: included by the performance page
            assert f'--8<-- "{page.relative_to(README.parent)}"' in performance, page
            continue
        assert str(page.relative_to(DOCS)) in nav, page


def test_the_version_is_one_number_in_every_place_that_states_it():
    """pyproject.toml, entropyeng.__version__, CITATION.cff and the changelog's newest entry agree."""
    import entropyeng

    root = pathlib.Path(__file__).resolve().parents[1]
    pyproject = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    citation = re.search(r"^version: (\S+)", (root / "CITATION.cff").read_text(), re.M).group(1)
    changelog = re.search(r"^## (\S+) ", (root / "CHANGELOG.md").read_text(), re.M).group(1)
    assert pyproject == entropyeng.__version__ == citation == changelog


def test_every_install_of_the_source_keeps_the_build_without_isolation():
    """An isolated build has no torch to build the C++ torch operators against: every line that
    installs the source tree (``pip install .``, ``".[extra]"``, ``-e .``) in the README, the docs and
    the package's own messages says --no-build-isolation."""
    root = pathlib.Path(__file__).resolve().parents[1]
    files = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "entropyeng").rglob("*.py"))]
    source = re.compile(r"""pip install\b[^`\n]*?(\s\.(?=\s|$|`)|\s-e\s+\.|["']\.\[)""")
    bad = [f"{f.relative_to(root)}: {line.strip()}" for f in files for line in f.read_text().splitlines()
           if source.search(line) and "--no-build-isolation" not in line and "plain `pip install .`" not in line]
    assert not bad, bad
