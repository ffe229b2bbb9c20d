"""The declared floors (Python 3.9, torch 2.4) are the ones the code needs.

An AST scan of the package, the benchmark and the tests (the files a user's Python runs): the syntax
parses as the floor's grammar, and no API newer than the floor is used unguarded. The tables below
list the known newer APIs; a use inside ``if sys.version_info >= ...`` or a ``try`` that catches
ImportError/AttributeError, or read with ``getattr(..., default)``, counts as guarded.
"""

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

from entropyeng import _floors

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("entropyeng", "bench", "tests") for p in (ROOT / d).rglob("*.py"))

#: qualified name -> (the Python that brought it); "module.attr" matches ``module.attr`` and
#: ``from module import attr``, "import module" an import of it, ".attr" any attribute of that name,
#: a bare name a builtin
PYTHON_APIS = {
    ".co_qualname": (3, 11), "import tomllib": (3, 11), "itertools.pairwise": (3, 10), "itertools.batched": (3, 12),
    ".bit_count": (3, 10), "typing.TypeAlias": (3, 10), "typing.ParamSpec": (3, 10), "typing.TypeGuard": (3, 10),
    "typing.Concatenate": (3, 10), "typing.Self": (3, 11), "typing.LiteralString": (3, 11),
    "typing.assert_never": (3, 11), "typing.override": (3, 12), "enum.StrEnum": (3, 11), "datetime.UTC": (3, 11),
    "asyncio.TaskGroup": (3, 11), "ExceptionGroup": (3, 11), "hashlib.file_digest": (3, 11),
    "os.process_cpu_count": (3, 13), "sys.stdlib_module_names": (3, 10), "sys.orig_argv": (3, 10),
    "dataclasses.KW_ONLY": (3, 10), "anext": (3, 10), "aiter": (3, 10), "contextlib.chdir": (3, 11),
    "sys.exception": (3, 11), "math.cbrt": (3, 11), "math.exp2": (3, 11), "operator.call": (3, 11),
}
#: keyword arguments newer than 3.9: (function name, keyword) -> Python
PYTHON_KEYWORDS = {("zip", "strict"): (3, 10), ("dataclass", "slots"): (3, 10),
                   ("dataclass", "kw_only"): (3, 10), ("bisect_left", "key"): (3, 10),
                   ("bisect_right", "key"): (3, 10), ("insort", "key"): (3, 10)}
#: torch attribute -> the torch that brought it
TORCH_APIS = {".register_fake": (2, 4), ".custom_op": (2, 4), ".keep_tensor_guards_unsafe": (2, 7),
              ".skip_guard_on_globals_unsafe": (2, 7), ".set_stance": (2, 6), ".nested_compile_region": (2, 8),
              ".register_autograd": (2, 4), ".opcheck": (2, 4), ".triton_op": (2, 6)}


def _guarded_nodes(tree):
    """Every node inside a version check, a try that catches ImportError/AttributeError/TypeError, or
    a getattr with a default."""
    guarded = set()
    for node in ast.walk(tree):
        inside = []
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            inside = node.body
        elif isinstance(node, ast.Try):
            caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type is not None)
            if any(name in caught for name in ("ImportError", "ModuleNotFoundError", "AttributeError", "TypeError")):
                inside = node.body
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) == 3:
            inside = [node]
        for stmt in inside:
            guarded.update(id(n) for n in ast.walk(stmt))
    return guarded


def _names(node):
    """The qualified names a node uses, in the tables' spelling."""
    if isinstance(node, ast.Attribute):
        return [f".{node.attr}", f"{ast.unparse(node.value).split('.')[-1]}.{node.attr}"]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.keyword) and node.arg:
        return [f".{node.arg}"]
    if isinstance(node, ast.Import):
        return [f"import {a.name}" for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [f"import {node.module}"] + [f"{node.module.split('.')[-1]}.{a.name}" for a in node.names]
    return []


def _uses(path):
    """(line, what, Python or torch, version) of every unguarded newer API in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded = _guarded_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        for name in _names(node):
            if PYTHON_APIS.get(name, (0,)) > _floors.PYTHON:
                found.append((node.lineno, name, "Python", PYTHON_APIS[name]))
            if TORCH_APIS.get(name, (0,)) > _floors.TORCH:
                found.append((node.lineno, name, "torch", TORCH_APIS[name]))
        if isinstance(node, ast.Call):
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            for kw in node.keywords:
                version = PYTHON_KEYWORDS.get((fn, kw.arg))
                if version and version > _floors.PYTHON:
                    found.append((node.lineno, f"{fn}({kw.arg}=...)", "Python", version))
    return found


def _annotations_need_future(tree):
    """Lines whose annotations use ``X | Y`` (evaluated at definition time on 3.9) in a module
    without ``from __future__ import annotations``."""
    if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
           for n in tree.body):
        return []
    lines = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            annotations += [a.annotation for a in args.args + args.kwonlyargs + args.posonlyargs if a.annotation]
            annotations += [a.annotation for a in (args.vararg, args.kwarg) if a is not None and a.annotation]
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for ann in annotations:
            if ann is not None and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(ann)):
                lines.append(node.lineno)
    return lines


def test_the_declared_floors_are_the_packages():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'requires-python = ">={_floors.PYTHON[0]}.{_floors.PYTHON[1]}"' in text
    assert f'"torch>={_floors.TORCH[0]}.{_floors.TORCH[1]}"' in text


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_parses_as_the_floor_python(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=_floors.PYTHON)
    assert not _annotations_need_future(tree), f"{path}: 'X | Y' annotations need 'from __future__ import annotations'"


def test_no_api_newer_than_the_floors_unguarded():
    offences = [f"{p.relative_to(ROOT)}:{line}: {what} needs {kind} {'.'.join(map(str, v))}"
                for p in FILES for line, what, kind, v in _uses(p)]
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize("source, expect", [
    ("code.replace(co_qualname='x')", True),
    ("if sys.version_info >= (3, 11):\n    code.replace(co_qualname='x')", False),
    ("import tomllib", True),
    ("from itertools import batched", True),
    ("itertools.batched(a, 2)", True),
    ("batched = 3; x.batched", False),
    ("try:\n    import tomllib\nexcept ImportError:\n    import tomli as tomllib", False),
    ("torch.library.register_fake('a')", False),          # 2.4: the floor itself
    ("torch.compiler.keep_tensor_guards_unsafe", True),
    ("getattr(torch.compiler, 'keep_tensor_guards_unsafe', None)", False),
    ("zip(a, b, strict=True)", True),
])
def test_the_scan_finds_what_it_should(tmp_path, source, expect):
    """The scan itself: each known case is caught, each guarded form passes."""
    path = tmp_path / "probe.py"
    path.write_text(source + "\n")
    assert bool(_uses(path)) is expect


def test_floor_checks_say_one_line():
    with pytest.raises(ImportError, match=r"needs Python >= 3\.9; this is 3\.8"):
        _floors.check_python((3, 8, 10))
    with pytest.raises(ImportError, match=r"needs torch >= 2\.4; this is 2\.3\.1\+cpu"):
        _floors.check_torch("2.3.1+cpu")
    _floors.check_torch("2.13.0+cpu")
    _floors.check_torch("2.4.0a0+git1234")
    _floors.check_python(sys.version_info)


def _floor_python():
    """An interpreter of the floor's version on this machine (a pyenv shim that cannot run it does not
    count), or None."""
    name = f"python{_floors.PYTHON[0]}.{_floors.PYTHON[1]}"
    candidates = [shutil.which(name)] + sorted(map(str, pathlib.Path.home().glob(f".pyenv/versions/{name[6:]}*/bin/{name}")))
    for exe in filter(None, candidates):
        try:
            if subprocess.run([exe, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
                return exe
        except OSError:
            continue
    return None


FLOOR_PYTHON = _floor_python()


@pytest.mark.skipif(FLOOR_PYTHON is None, reason="no interpreter of the floor's Python on this machine (the AST checks "
                                                 "above still ran)")
def test_the_floor_python_compiles_every_file():
    """The floor's own interpreter compiles every file (its real grammar, not a feature_version)."""
    script = "import sys\nfor p in sys.argv[1:]:\n    compile(open(p, encoding='utf-8').read(), p, 'exec')\n"
    out = subprocess.run([FLOOR_PYTHON, "-c", script, *map(str, FILES)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
