"""An MkDocs hook: the TeX that pymdownx.arithmatex marks in a page (``$...$`` inline, ``$$...$$``
displayed) becomes MathML when the site is built, which every current browser draws without a
script or a network (latex2mathml, a pure-Python converter). TeX that does not convert stops the
build, so ``mkdocs build --strict`` checks every formula."""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_SPAN = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_DIV = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _mathml(tex: str, display: str, page) -> str:
    source = html.unescape(tex).strip()
    try:
        return convert(source, display=display)
    except Exception as e:  # latex2mathml raises its own exceptions and plain ones
        raise ValueError(f"{page.file.src_path}: the formula {source!r} does not convert to MathML: {e}") from None


def on_page_content(content, page, config, files):
    content = _DIV.sub(lambda m: _mathml(m.group(1), "block", page), content)
    return _SPAN.sub(lambda m: _mathml(m.group(1), "inline", page), content)
