"""Public names that load on first use (PEP 562), so that importing a package costs neither torch nor
numpy until a name is used: the package, the command and the task catalog stay light."""

import importlib

__all__ = ["lazy_names"]


def lazy_names(package, names, namespace, submodules=()):
    """``(__getattr__, __dir__)`` for the package ``package`` (its ``__name__``): ``names`` maps a public
    name to the submodule that defines it, ``submodules`` are names that are submodules themselves;
    each loads on first use and is then kept in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(names) | set(submodules))

    return __getattr__, __dir__
