"""Notebook hygiene: stored outputs from one clean run, the house anatomy, working links.

nbval (run with `pytest --nbval`) re-executes every notebook and compares outputs;
these tests check what nbval does not.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
IDS = [path.stem for path in NOTEBOOKS]


def _load(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text())
    return notebook


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else str(source)


def test_notebooks_exist() -> None:
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{n:02d}" for n in range(len(NOTEBOOKS))]
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_come_from_one_clean_run(path: Path) -> None:
    cells = _load(path)["cells"]
    code_cells = [cell for cell in cells if cell["cell_type"] == "code" and _source(cell).strip()]
    counts = [cell["execution_count"] for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), f"{path.name}: restart the kernel, run all, save"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_stored_errors_or_stray_output(path: Path) -> None:
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                where = _source(cell)[:60]
                assert "raises-exception" in tags, f"{path.name}: an error is stored in {where!r}"
            text = "".join(output.get("data", {}).get("text/plain", ""))
            stray = re.search(r"<matplotlib\.\w+\.\w+ (object )?at 0x", text)
            assert not stray, "end plot cells with plt.show()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_anatomy(path: Path) -> None:
    notebook = _load(path)
    cells = notebook["cells"]
    markdown = [_source(cell) for cell in cells if cell["cell_type"] == "markdown"]
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("#")]
    assert _source(cells[0]).startswith("# "), "the first cell is the title"
    assert sum(1 for line in headings if re.match(r"# \S", line)) == 1, "one title"
    assert "[Index](00-start-here.ipynb)" in _source(cells[1]), "navigation is the second cell"
    assert _source(cells[-1]) == _source(cells[1]), "navigation is repeated as the last cell"
    text = "\n".join(markdown)
    for needed in ("What you will learn", "Prerequisites", "Time to learn", "## Summary", "## What's next?"):
        assert needed in text, f"{path.name} lacks {needed!r}"
    assert any("helpers.check_" in _source(cell) for cell in cells), "exercises that check themselves"
    setup = next(cell for cell in cells if cell["cell_type"] == "code")
    assert "helpers.describe(client)" in _source(setup), "the setup cell says which backend runs"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_relative_links_resolve(path: Path) -> None:
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for target in re.findall(r"\]\(([^)#]+\.ipynb)\)", _source(cell)):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_every_notebook_is_on_the_maps() -> None:
    readme = (ROOT / "README.md").read_text()
    start_here = "\n".join(_source(cell) for cell in _load(NOTEBOOKS[0])["cells"])
    for path in NOTEBOOKS:
        number = path.name[:2]
        assert f"notebooks/{path.name}" in readme, f"README's map lacks {path.name}"
        assert re.search(rf"\*\*{number} · [^*]+\*\* \| .* \| ready", start_here), f"00's map lacks {number}"


NBVAL_MARKERS = {"# NBVAL_IGNORE_OUTPUT", "# NBVAL_CHECK_OUTPUT", "# NBVAL_SKIP", "# NBVAL_RAISES_EXCEPTION"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_backend_marked_cells_are_exact_and_explained(path: Path) -> None:
    """nbval only honours a marker alone on its line; a marked cell follows prose that says why."""
    cells = _load(path)["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        lines = [line.strip() for line in _source(cell).splitlines() if "NBVAL_" in line]
        for line in lines:
            assert line in NBVAL_MARKERS, f"{path.name}: {line!r} is not a marker nbval recognises"
        if "# NBVAL_IGNORE_OUTPUT" in lines:
            before = _source(cells[index - 1])
            assert cells[index - 1]["cell_type"] == "markdown" and "Backend difference" in before, (
                f"{path.name}: say in the markdown cell before a marked cell what differs between backends"
            )


def test_the_learners_folder_holds_only_the_notebooks() -> None:
    """Test machinery (nbval settings, sanitize rules) lives in tests/, out of the learners' way."""
    tracked = subprocess.run(
        ["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and all(name.endswith(".ipynb") for name in tracked), tracked
