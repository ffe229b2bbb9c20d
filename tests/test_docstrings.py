"""The docstrings' testable claims hold: every cross-reference names something that exists, and every
parameter a public function's docstring describes is one of its parameters (a renamed argument
left behind in the text is found here, not by a user)."""

import importlib
import inspect
import pkgutil
import re

import pytest

import entropyeng

# modules that need what a default install may lack (dask, a GPU, pytest-benchmark) are read if they import
_MODULES = []
for info in pkgutil.walk_packages(entropyeng.__path__, "entropyeng."):
    if info.name.endswith("__main__"):
        continue
    try:
        _MODULES.append(importlib.import_module(info.name))
    except ImportError:
        pass

_REF = re.compile(r":(?:func|class|mod|meth|data|attr|exc):`~?(entropyeng(?:\.\w+)+)`")


def _docstrings():
    seen = set()
    for module in _MODULES:
        items = [(module.__name__, module)]
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) == module.__name__ and (inspect.isclass(obj) or inspect.isfunction(obj)):
                items.append((f"{module.__name__}.{name}", obj))
                if inspect.isclass(obj):
                    items += [(f"{module.__name__}.{name}.{m}", f) for m, f in vars(obj).items()
                              if inspect.isfunction(f) or isinstance(f, property)]
        for where, obj in items:
            doc = inspect.getdoc(obj) if not isinstance(obj, property) else obj.__doc__
            if doc and id(obj) not in seen:
                seen.add(id(obj))
                yield where, obj, doc


def _resolves(path):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_cross_reference_in_a_docstring_names_something_that_exists():
    broken = [f"{where}: {ref}" for where, _, doc in _docstrings() for ref in _REF.findall(doc) if not _resolves(ref)]
    assert not broken, "\n".join(broken)


def _documented_parameters(doc):
    """The names a numpy-style ``Parameters`` section describes."""
    m = re.search(r"^Parameters\n-+\n(.*?)(?:^\w[\w ]*\n-+\n|\Z)", doc, re.M | re.S)
    if not m:
        return []
    names = []
    for line in m.group(1).splitlines():
        head = re.match(r"^(\*{0,2}[A-Za-z_][\w, *]*?)\s*(?::|$)", line)
        if head and not line.startswith(" "):
            names += [n.strip().lstrip("*") for n in head.group(1).split(",") if n.strip()]
    return names


def test_every_documented_parameter_is_a_parameter():
    wrong = []
    for where, obj, doc in _docstrings():
        target = obj.__init__ if inspect.isclass(obj) and "Parameters\n---" in doc else obj
        if not callable(target) or isinstance(obj, property):
            continue
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        for name in _documented_parameters(doc):
            if name not in params:
                wrong.append(f"{where}: documents '{name}', not a parameter of {list(params)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", entropyeng.__all__)
def test_each_public_name_has_a_docstring_of_its_own(name):
    obj = getattr(entropyeng, name)
    assert inspect.getdoc(obj) and not inspect.getdoc(obj).startswith("#"), name


@pytest.mark.parametrize("name", ["WLMC", "REWL", "WLMD", "Grid", "Landscape"])
def test_every_argument_of_a_public_class_is_documented(name):
    cls = getattr(entropyeng, name)
    documented = set(_documented_parameters(inspect.getdoc(cls)))
    missing = [p for p in inspect.signature(cls.__init__).parameters if p != "self" and p not in documented]
    assert not missing, f"{name}: {missing} not in its Parameters section"
