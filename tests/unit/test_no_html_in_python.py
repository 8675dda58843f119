"""Pages render templates (chalicelib/web/templates/): no HTML is built in Python strings."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "chalicelib"
TAG = re.compile(r"<(?:div|form|p|input|h1|h2|ul|li|label|button|section|table|tr|td|a|span|"
                 r"main|header|html|script|style|select|option|fieldset|dl|dt|dd)[\s>]")

# Docs name tags as ``<main>``; that is prose, not markup.
LITERAL = re.compile(r"``[^`]*``")


def test_no_module_under_chalicelib_writes_an_html_tag():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted(ROOT.rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if TAG.search(LITERAL.sub("", line))]
    assert found == []


def test_no_page_escapes_by_hand():
    assert [p.name for p in ROOT.rglob("*.py") if re.search(r"\besc\(", p.read_text())] == []
