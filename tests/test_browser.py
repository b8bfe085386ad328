"""The course as a learner meets it: JupyterLab started as ``./course.sh lab`` starts it, driven
by a real Chromium (Debian's ``chromium`` with Playwright). It opens on notebook 00 without
pop-ups; notebooks 01 and 04 run top to bottom through the UI with no error shown and every
picture rendered. A notebook with a failing cell is caught by the same check.

Run once per test run (``./course.sh test`` runs it as its own check, and reports it as not
run where there is no browser). Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "course-browser-test"

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


@contextlib.contextmanager
def _lab(notebook: str, home: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab as ``./course.sh lab`` starts it (its settings, the notebook it opens), without a
    browser, for a learner who never ran it before (fresh workspace and user settings).

    It serves a copy of ``notebook``'s folder, and autosave is off: running cells in the browser
    must never rewrite the course's notebooks (other checks compare their stored outputs).
    Yields the server's base URL and the page JupyterLab would open in a browser.
    """
    source = ROOT / notebook
    shutil.copytree(source.parent, home / "course" / source.parent.name)
    no_autosave = (
        home / "user-settings" / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    )
    no_autosave.parent.mkdir(parents=True)
    no_autosave.write_text('{"autosave": false}')
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert settings.exists(), "the course's JupyterLab settings are missing: run ./course.sh lab or test once"
    env = {
        **os.environ,
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    port = helpers.free_port()
    command = [str(Path(sys.prefix) / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1"]
    command += [f"--port={port}", f"--IdentityProvider.token={TOKEN}", f"{source.parent.name}/{source.name}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # as course.sh does for root
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / f"jupyterlab-{Path(notebook).stem}.log").open("w") as log_file:
        lab = subprocess.Popen(
            command, cwd=home / "course", env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            helpers.wait_for(lambda: _answers(f"{base}/api/status?token={TOKEN}"), 60, "JupyterLab to start")
            opener = home / "runtime" / f"jpserver-file-to-run-{lab.pid}-open.html"
            helpers.wait_for(opener.exists, 30, "JupyterLab's page to open in a browser")
            yield base, opener.as_uri()
        finally:
            lab.terminate()
            lab.wait(timeout=30)


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with _lab("notebooks/00-start-here.ipynb", tmp_path_factory.mktemp("learner")) as lab:
        yield lab


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


_STATE = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
        .map(e => e.textContent.trim());
    const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return {
        prompts,
        busy: prompts.some(p => p === '[*]:'),
        errors: [...document.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => e.textContent).filter(t => /Traceback|Error/.test(t)),
        images: [...document.querySelectorAll('.jp-OutputArea-output img')]
            .map(i => i.complete && i.naturalWidth > 0),
        dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.textContent.slice(0, 80)),
        toasts: [...document.querySelectorAll('.Toastify__toast')].map(t => t.textContent.slice(0, 80)),
        kernel: status ? status.getAttribute('data-status') : null,
    };
}"""


def _menu(page: Any, menu: str, item: str) -> None:
    """Click ``menu`` in the menu bar, then its item labelled exactly ``item``, once it is enabled."""
    page.click(f"div.lm-MenuBar-itemLabel:text-is('{menu}')")
    entry = page.locator(
        f"li.lm-Menu-item:not(.lm-mod-disabled):has(div.lm-Menu-itemLabel:text-is('{item}'))"
    )
    entry.first.click(timeout=30_000)


def _started(page: Any, seconds: float) -> bool:
    """Whether the first code cell has started (queued, running or done) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if page.evaluate(_STATE)["prompts"][0] != "[ ]:":
            return True
        time.sleep(0.25)
    return False


def _kernel_of(base: str, notebook: str) -> str | None:
    """The kernel of ``notebook``'s one session on the server (None while there is not exactly one)."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={TOKEN}", timeout=5) as response:
        sessions = [s for s in json.load(response) if s["path"].endswith(Path(notebook).name)]
    return sessions[0]["kernel"]["id"] if len(sessions) == 1 else None


def _settled_kernel(base: str, notebook: str, seconds: float = 60) -> None:
    """Wait until the notebook has kept one kernel for two seconds. On a busy machine JupyterLab
    sometimes starts two kernels for a notebook it opens and shuts one down a moment later (seen in
    CI: the page ran one cell and lost the rest of its queue); running cells before then races that."""
    deadline = time.monotonic() + seconds
    kernel, same_since = None, time.monotonic()
    while time.monotonic() < deadline:
        now_kernel = _kernel_of(base, notebook)
        if now_kernel is None or now_kernel != kernel:
            kernel, same_since = now_kernel, time.monotonic()
        elif time.monotonic() - same_since >= 2:
            return
        time.sleep(0.25)
    raise AssertionError(f"{notebook} never kept one kernel for two seconds")


def run_through_the_ui(browser: Any, base: str, notebook: str, seconds: float = 240) -> dict[str, Any]:
    """Open ``notebook`` in a fresh workspace, clear its outputs, run all cells through the menus,
    wait until the kernel is done, and return what the page shows (with a screenshot saved)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        name = Path(notebook).stem
        page.goto(f"{base}/lab/workspaces/browser-{name}/tree/{Path(notebook).name}?reset&token={TOKEN}")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')", timeout=60_000
        )
        helpers.wait_for(lambda: page.evaluate(_STATE)["kernel"] == "idle", 60, "the kernel to start")
        _settled_kernel(base, notebook)
        helpers.wait_for(lambda: page.evaluate(_STATE)["kernel"] == "idle", 60, "the kernel to be idle")
        _menu(page, "Edit", "Clear Outputs of All Cells")
        helpers.wait_for(lambda: page.evaluate(_STATE)["prompts"][0] == "[ ]:", 30, "the outputs to clear")
        _menu(page, "Run", "Run All Cells")
        if not _started(page, 20):  # a busy machine can swallow a click: once more
            _menu(page, "Run", "Run All Cells")
            _started(page, 20)
        deadline = time.monotonic() + seconds
        settled = 0
        state = page.evaluate(_STATE)
        while time.monotonic() < deadline:
            state = page.evaluate(_STATE)
            ran = state["prompts"] and state["prompts"][0] not in ("[ ]:", "")
            settled = settled + 1 if ran and not state["busy"] and state["kernel"] == "idle" else 0
            if settled >= 8:  # idle for two seconds running
                break
            time.sleep(0.25)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
        state["settled"] = settled >= 8
        return dict(state)
    finally:
        page.close()


def test_the_lab_opens_on_00_without_pop_ups(browser: Any, course_lab: tuple[str, str]) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(course_lab[1])  # the page JupyterLab would open in the learner's browser
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        helpers.wait_for(lambda: page.evaluate(_STATE)["kernel"] == "idle", 60, "the kernel to start")
        time.sleep(2)  # the news prompt and kernel dialog come a moment after the notebook
        title = page.title()  # JupyterLab names the document it shows: "00-start-here.ipynb - JupyterLab"
        state = page.evaluate(_STATE)
        page.screenshot(path=str(ARTIFACTS / "00-opened.png"))
        assert page.url.split("?")[0].endswith("/tree/00-start-here.ipynb") and title.startswith(
            "00-start"
        ), (page.url, title)
        assert state["dialogs"] == [], state["dialogs"]  # no "Select Kernel"
        assert not [toast for toast in state["toasts"] if "news" in toast.lower()], state["toasts"]
        # The table of contents lists the notebook's headings.
        page.click("[data-id='table-of-contents']")
        page.wait_for_selector(".jp-TableOfContents .jp-tocItem-content", timeout=10_000)
        entries = page.locator(".jp-TableOfContents .jp-tocItem-content").all_text_contents()
        assert any("How to run the course" in entry for entry in entries), entries[:10]
    finally:
        page.close()


@pytest.mark.parametrize(
    "notebook", ["notebooks/01-your-first-stream.ipynb", "notebooks/04-crash-and-recover.ipynb"]
)
def test_a_notebook_runs_through_the_ui(browser: Any, course_lab: tuple[str, str], notebook: str) -> None:
    state = run_through_the_ui(browser, course_lab[0], notebook)
    assert state["settled"], f"{notebook} did not finish: {state['prompts']}"
    assert state["errors"] == [], state["errors"]  # first: an error also stops the cells after it
    assert all(prompt.startswith("[") and prompt[1:-2].isdigit() for prompt in state["prompts"]), state[
        "prompts"
    ]
    assert state["images"] and all(state["images"]), state["images"]


def test_the_check_catches_a_failing_cell(browser: Any, tmp_path: Path) -> None:
    with _lab("tests/browser/a-failing-cell.ipynb", tmp_path) as (base, _):
        state = run_through_the_ui(browser, base, "a-failing-cell.ipynb", seconds=60)
    assert state["settled"]
    assert any("ZeroDivisionError" in error for error in state["errors"]), state["errors"]
    assert state["images"] == [True], "the picture before the failure rendered"
