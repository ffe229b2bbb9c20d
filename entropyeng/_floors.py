"""The oldest Python and torch the package runs on, said once (pyproject.toml declares the same, and
``tests/test_floors.py`` keeps the code below them).

- Python 3.9: the code parses as 3.9 and uses no newer API unguarded (``co_qualname`` only from 3.11,
  ``tomllib`` with its backport ``tomli``).
- torch 2.4: ``torch.library.register_fake`` and ``torch.library.custom_op`` (the WLMD step's
  operators) are 2.4's; the newer compile options (``torch.compiler.keep_tensor_guards_unsafe``)
  are used where present and skipped where not (the step is then compiled with torch's default
  guards, ~50 us more a call). Tested in CI on torch 2.13 only.

Below a floor the import says so in one line (pip refuses the install first, from the same numbers).
"""

PYTHON = (3, 9)
TORCH = (2, 4)


def _release(version: str):
    """(major, minor) of a version string such as '2.13.0+cpu' or '2.4.0a0+git...'."""
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (2 - len(parts)))


def check_python(version_info) -> None:
    if tuple(version_info[:2]) < PYTHON:
        raise ImportError(f"entropyeng needs Python >= {PYTHON[0]}.{PYTHON[1]}; this is "
                          f"{version_info[0]}.{version_info[1]}")


def check_torch(version: str) -> None:
    if _release(version) < TORCH:
        raise ImportError(f"entropyeng needs torch >= {TORCH[0]}.{TORCH[1]}; this is {version} "
                          f"(pip install torch>={TORCH[0]}.{TORCH[1]})")
