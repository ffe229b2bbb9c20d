"""The release path's configuration (pyproject's [tool.cibuildwheel]) agrees with the rest of the
project: the torch its wheels are built against is the one CI and the README install, and it builds
only Pythons that torch has wheels for and the package supports. (Running cibuildwheel needs docker
and the manylinux image; this checks what can go stale without it.)"""

import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CIBW = PYPROJECT["tool"]["cibuildwheel"]
# the CPython versions torch 2.13 ships wheels for (pip download torch==2.13.0 --python-version X.Y)
TORCH_PYTHONS = {(3, 10), (3, 11), (3, 12), (3, 13)}


def _pins(text):
    return set(re.findall(r"torch==([0-9][0-9.]*)", text))


def test_the_wheels_build_and_test_against_the_torch_ci_and_the_readme_install():
    ci = _pins((ROOT / ".ci" / "run").read_text())
    readme = _pins((ROOT / "README.md").read_text())
    assert len(ci) == 1 and readme == ci
    assert _pins(CIBW["before-build"]) == ci and _pins(CIBW["before-test"]) == ci


def test_every_wheel_is_a_python_torch_has_and_the_package_supports():
    floor = tuple(int(p) for p in re.search(r">=\s*([0-9.]+)", PYPROJECT["project"]["requires-python"]).group(1).split("."))
    builds = CIBW["build"].split()
    assert builds
    for b in builds:
        m = re.fullmatch(r"cp3(\d+)-manylinux_x86_64", b)
        assert m, b
        version = (3, int(m.group(1)))
        assert version in TORCH_PYTHONS and version >= floor, b


def test_the_wheels_keep_the_torch_operators_and_leave_libtorch_to_torch():
    assert CIBW["build-frontend"]["args"] == ["--no-build-isolation"]
    assert CIBW["environment"]["ENTROPYENG_CUDA"] == "OFF"
    assert all(f"--exclude '{lib}" in CIBW["repair-wheel-command"] for lib in ("libtorch", "libc10"))
