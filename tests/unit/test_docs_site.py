"""The manual (``docs/``, mkdocs-material) builds strictly: a broken link between
pages, a page left out of the nav or a bad config fails ``make test``, as ``make docs``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_manual_builds_strictly(tmp_path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "security" / "index.html").is_file()


def test_the_readme_fits_a_screen_and_links_to_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")
    missing = [p for p in pages if f"docs/{p}" not in readme and p != "getting-started.md"]
    assert not missing, missing
