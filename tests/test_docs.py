"""The pages beside the notebooks (README, docs/): every relative link resolves, and the README
links the cheat sheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, f"{page.name} has no relative links to check"
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, f"{page.name}: {missing}"


def test_the_readme_links_the_cheat_sheet() -> None:
    assert "(docs/cheatsheet.md)" in (ROOT / "README.md").read_text()
