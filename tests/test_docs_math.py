"""The docs' formulas become MathML when the site is built (docs/hooks/mathml.py), and a formula
that does not convert stops the build instead of reaching a reader as raw TeX."""

import importlib.util
import pathlib
import types

import pytest

pytest.importorskip("latex2mathml")

HOOK = pathlib.Path(__file__).resolve().parents[1] / "docs" / "hooks" / "mathml.py"


def _hook():
    spec = importlib.util.spec_from_file_location("mathml_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGE = types.SimpleNamespace(file=types.SimpleNamespace(src_path="method.md"))


def test_inline_and_displayed_tex_become_mathml():
    html = ('<p>with <span class="arithmatex">\\(x = \\ln L_\\mathrm{train}\\)</span> and</p>\n'
            '<div class="arithmatex">\\[f(t) = \\begin{cases} 1 &amp; t \\le t_1 \\\\ 0 &amp; t &gt; t_1 \\end{cases}\\]</div>')
    out = _hook().on_page_content(html, PAGE, None, None)
    assert out.count('display="inline"') == 1 and out.count('display="block"') == 1
    assert "arithmatex" not in out and "\\(" not in out and "\\[" not in out
    assert "<mtable>" in out  # the cases became a table, the escaped & and > read as TeX


def test_a_formula_that_does_not_convert_stops_the_build_naming_the_page():
    with pytest.raises(ValueError, match="method.md: the formula"):
        _hook().on_page_content('<span class="arithmatex">\\(\\frac{1}{\\)</span>', PAGE, None, None)

