"""The course site (``site/build.py``, ``./course.sh site``) as a reader meets it, in Chromium.

The site is built from the stored outputs (``COURSE_SITE_DIR`` names one already built, as
``./course.sh test`` does; otherwise the test builds one), served over HTTP on 127.0.0.1, and every
page is opened in Debian's ``chromium`` through Playwright:

- every page loads, with no script error and no request of the site failing;
- every picture is there and decoded, described in words, and each notebook's page has as many as
  the notebook stores;
- every internal link leads to a page of the site, and to a section that exists on it;
- the pages come in course order (sidebar and "next" links), each with its "how to run" box;
- folded solutions and answers stay folded until clicked; the search finds a command's notebook;
- on a phone, the menu button opens the course list.

A test sabotages a copy of the site (a picture deleted, a link to a missing section, a solution
left open) to show the checks fail. Screenshots go to ``test-artifacts/site/``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "site"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# The reading order: the front page, the notebooks, then the cheat sheet.
COURSE_ORDER = ["index.html", *(f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS), "docs/cheatsheet.html"]

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytest.importorskip("myst_nb", reason="the site's tools are not installed (requirements-test.txt)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


@dataclass
class PageReport:
    """What one page showed in the browser."""

    path: str
    status: int | None = None
    errors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    images: list[dict[str, Any]] = field(default_factory=list)
    solutions: list[dict[str, Any]] = field(default_factory=list)
    sidebar: list[str] = field(default_factory=list)
    next_page: str | None = None
    how_to_run: str = ""


_READ_PAGE = """() => {
    for (const img of document.images) img.loading = 'eager';
    const article = document.querySelector('.bd-article') || document.body;
    return {
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        ids: [...document.querySelectorAll('[id]')].map(e => e.id),
        sidebar: [...document.querySelectorAll('nav.bd-docs-nav a.reference.internal')].map(a => a.href),
        next: (document.querySelector('a.right-next') || {}).href || null,
        howToRun: [...article.querySelectorAll('.how-to-run')].map(e => e.innerText).join('\\n'),
        solutions: [...article.querySelectorAll('details')].map(d => ({
            open: d.open,
            summary: (d.querySelector('summary') || {}).innerText || '',
            hiddenVisible: [...d.children].filter(c => c.tagName !== 'SUMMARY')
                .some(c => c.checkVisibility()),
        })),
    };
}"""

_READ_IMAGES = """async () => {
    const images = [...document.querySelectorAll('.bd-article img')];
    await Promise.all(images.map(i => i.decode().catch(() => null)));
    return images.map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth, alt: i.alt,
                              output: !!i.closest('.cell_output'),
                              link: (i.closest('a') || {}).href || null}));
}"""


def read_page(page: Any, base: str, path: str) -> PageReport:
    """Open ``path`` of the site at ``base`` in the browser page and record what it shows."""
    report = PageReport(path)
    origin = urlsplit(base).netloc

    def on_response(response: Any) -> None:
        if urlsplit(response.url).netloc == origin and response.status >= 400:
            report.errors.append(f"{response.status} for {response.url}")

    def on_failed(request: Any) -> None:
        if urlsplit(request.url).netloc == origin:
            report.errors.append(f"request failed: {request.url} ({request.failure})")

    def on_script_error(error: Any) -> None:
        report.errors.append(f"script error: {error}")

    def on_console(message: Any) -> None:
        _console_error(report, message)

    # One browser page reads every page of the site: each report listens only while its page loads.
    listeners = {"response": on_response, "requestfailed": on_failed}
    listeners |= {"pageerror": on_script_error, "console": on_console}
    for event, listener in listeners.items():
        page.on(event, listener)
    try:
        response = page.goto(base + path, wait_until="load")
        report.status = response.status if response else None
        state = page.evaluate(_READ_PAGE)
        report.images = page.evaluate(_READ_IMAGES)
    finally:
        for event, listener in listeners.items():
            page.remove_listener(event, listener)
    report.links = state["links"]
    report.ids = set(state["ids"])
    report.sidebar = [_site_path(base, href) for href in state["sidebar"]]
    report.next_page = _site_path(base, state["next"]) if state["next"] else None
    report.how_to_run = state["howToRun"]
    report.solutions = state["solutions"]
    return report


# Not problems of the site: a first visit has no saved light/dark choice yet (the theme logs that
# as an error), and "Failed to load resource" repeats a failed request, which the response
# listener reports with its address (the browser's own favicon request is not the site's).
_HARMLESS_CONSOLE_ERRORS = ("Got invalid theme mode", "Failed to load resource")


def _console_error(report: PageReport, message: Any) -> None:
    if message.type == "error" and not message.text.startswith(_HARMLESS_CONSOLE_ERRORS):
        report.errors.append(f"console: {message.text}")


def _site_path(base: str, url: str) -> str:
    """``http://host/notebooks/01.html#x`` -> ``notebooks/01.html``; ``.../`` -> ``index.html``."""
    path = urldefrag(url).url.split("?")[0]
    path = path[len(base) :] if path.startswith(base) else path
    return path + "index.html" if path == "" or path.endswith("/") else path


def notebook_facts(notebook: Path) -> dict[str, int]:
    """What a notebook stores that its page must show: pictures and folded blocks."""
    cells = json.loads(notebook.read_text())["cells"]
    pictures = sum(
        "image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", [])
    )
    folded = sum(
        len(re.findall(r"<details\b", "".join(cell["source"])))
        for cell in cells
        if cell["cell_type"] == "markdown"
    )
    return {"pictures": pictures, "folded": folded}


def site_problems(reports: dict[str, PageReport], base: str, site_dir: Path) -> list[str]:
    """Everything wrong with the pages read: loading, pictures, links, order, folding, how to run."""
    problems: list[str] = []
    for path, report in sorted(reports.items()):
        if report.status != 200:
            problems.append(f"{path}: answered {report.status}")
        problems += [f"{path}: {error}" for error in report.errors]
        for image in report.images:
            if image["width"] == 0:
                problems.append(f"{path}: picture not shown: {image['src']}")
            # A notebook's picture says what it shows (cell metadata mystnb.image.alt), not its file name.
            if image["output"] and (len(image["alt"]) < 40 or image["alt"].endswith(".png")):
                problems.append(f"{path}: picture without a description: {image['alt']!r}")
            if image["output"] and image["link"] != image["src"]:
                problems.append(f"{path}: picture does not open at full size: {image['src']}")
        for link in report.links:
            if not link.startswith(base):
                continue  # another site (mybinder.org, the products' documentation): not fetched here
            target, fragment = urldefrag(link)
            target_path = _site_path(base, target)
            if not (site_dir / target_path).is_file():
                problems.append(f"{path}: link to a missing page: {link}")
            elif fragment and target_path in reports and fragment not in reports[target_path].ids:
                problems.append(f"{path}: link to a missing section: {link}")
        for solution in report.solutions:
            if solution["open"] or solution["hiddenVisible"]:
                problems.append(f"{path}: a folded block is open: {solution['summary']!r}")
    front = reports.get("index.html")
    if front is not None and front.sidebar != COURSE_ORDER:
        problems.append(f"index.html: the sidebar's order is {front.sidebar}, not {COURSE_ORDER}")
    for here, after in itertools.pairwise(COURSE_ORDER):
        if here in reports and reports[here].next_page != after:
            problems.append(f"{here}: 'next' leads to {reports[here].next_page}, not {after}")
    for path, report in reports.items():
        if path in COURSE_ORDER[1:] and "Run " not in report.how_to_run:
            problems.append(f"{path}: no 'how to run' box")
        if path.startswith("notebooks/") and f"{Path(path).stem}.ipynb" not in report.how_to_run:
            problems.append(f"{path}: the 'how to run' box does not name its notebook")
    for notebook in NOTEBOOKS:
        path = f"notebooks/{notebook.stem}.html"
        if path not in reports:
            continue
        facts, report = notebook_facts(notebook), reports[path]
        shown = sum(image["output"] for image in report.images)
        if shown != facts["pictures"]:
            problems.append(f"{path}: {shown} pictures in outputs, the notebook stores {facts['pictures']}")
        if len(report.solutions) != facts["folded"]:
            problems.append(
                f"{path}: {len(report.solutions)} folded blocks, the notebook has {facts['folded']}"
            )
    return problems


def site_pages(site_dir: Path) -> list[str]:
    """Every HTML page of the site (the theme's own template fragments in _static are not pages)."""
    return sorted(
        path.relative_to(site_dir).as_posix()
        for path in site_dir.rglob("*.html")
        if "_static" not in path.relative_to(site_dir).parts
    )


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a free 127.0.0.1 port; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("COURSE_SITE_DIR")
    if built:
        return Path(built).resolve()
    output = tmp_path_factory.mktemp("site") / "site"
    result = subprocess.run(
        [sys.executable, str(ROOT / "site" / "build.py"), str(output)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"the site did not build:\n{result.stdout}\n{result.stderr}"
    return output


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        yield page
        chromium.close()


def test_every_page_loads_with_its_pictures_links_order_and_folded_solutions(
    site_dir: Path, browser_page: Any
) -> None:
    pages = site_pages(site_dir)
    assert set(COURSE_ORDER) <= set(pages), f"pages missing from the site: {set(COURSE_ORDER) - set(pages)}"
    with serve(site_dir) as base:
        reports = {path: read_page(browser_page, base, path) for path in pages}
        browser_page.goto(base + "notebooks/04-crash-and-recover.html")
        browser_page.screenshot(path=ARTIFACTS / "04-top.png")
        browser_page.goto(base + "notebooks/10-observability.html")
        browser_page.locator(".cell_output img").first.scroll_into_view_if_needed()
        browser_page.screenshot(path=ARTIFACTS / "10-dashboard.png")
        browser_page.goto(base + "index.html")
        browser_page.screenshot(path=ARTIFACTS / "index.png")
    assert site_problems(reports, base, site_dir) == []
    # The checks had something to check: pictures, folded blocks and links to sections were seen.
    assert sum(len(r.images) for r in reports.values()) >= sum(
        notebook_facts(nb)["pictures"] for nb in NOTEBOOKS
    )
    assert sum(len(r.solutions) for r in reports.values()) >= 100
    assert sum("#" in link for r in reports.values() for link in r.links if link.startswith(base)) >= 100


def test_a_folded_solution_opens_when_clicked(site_dir: Path, browser_page: Any) -> None:
    with serve(site_dir) as base:
        browser_page.goto(base + "notebooks/04-crash-and-recover.html")
        solution = (
            browser_page.locator(".bd-article details")
            .filter(has_text="How do you recover messages from a consumer that died?")
            .first
        )
        answer = solution.locator(":scope > :not(summary)").first
        assert not answer.is_visible()
        solution.locator("summary").click()
        assert answer.is_visible()
        solution.scroll_into_view_if_needed()
        browser_page.screenshot(path=ARTIFACTS / "04-solution-unfolded.png")


def test_on_a_phone_the_menu_opens_and_leads_to_another_notebook(site_dir: Path, browser_page: Any) -> None:
    """On a narrow screen the course list is behind the menu button: it must open and work."""
    browser_page.set_viewport_size({"width": 390, "height": 844})
    try:
        with serve(site_dir) as base:
            browser_page.goto(base + "notebooks/04-crash-and-recover.html")
            course_link = browser_page.locator("#pst-primary-sidebar-modal a", has_text="08 · Durability")
            assert not course_link.is_visible()
            browser_page.locator("button.primary-toggle:visible").first.click()
            course_link.wait_for(state="visible", timeout=10_000)
            browser_page.screenshot(path=ARTIFACTS / "phone-menu.png")
            course_link.click()
            browser_page.wait_for_url("**/notebooks/08-durability.html")
    finally:
        browser_page.set_viewport_size({"width": 1280, "height": 900})


def test_the_search_finds_a_commands_notebook(site_dir: Path, browser_page: Any) -> None:
    with serve(site_dir) as base:
        browser_page.goto(base + "search.html?q=XAUTOCLAIM")
        results = browser_page.locator("#search-results")
        results.get_by_text("Search finished").wait_for(timeout=30_000)
        found = [
            _site_path(base, href) for href in results.locator("a").evaluate_all("as => as.map(a => a.href)")
        ]
        snippets = results.locator("p.context").all_inner_texts()
        browser_page.screenshot(path=ARTIFACTS / "search.png")
    assert "notebooks/04-crash-and-recover.html" in found
    # Snippets come from the article, not from the page's list of contents or its buttons.
    assert snippets and all("XAUTOCLAIM" in snippet for snippet in snippets), snippets
    assert not [s for s in snippets if "A crash, simulated A real crash" in s or "Light Dark" in s], snippets


def test_the_checks_catch_a_missing_picture_a_broken_link_and_an_open_solution(
    site_dir: Path, browser_page: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "site"
    shutil.copytree(site_dir, broken)
    page_10 = broken / "notebooks" / "10-observability.html"
    picture = re.search(r'src="\.\./(_images/[^"]+\.png)"', page_10.read_text())
    assert picture is not None
    (broken / picture.group(1)).unlink()
    page_04 = broken / "notebooks" / "04-crash-and-recover.html"
    html = page_04.read_text()
    html = html.replace('href="#taking-over-everything-xautoclaim"', 'href="#no-such-section"', 1)
    html = html.replace("<details>", "<details open>", 1)
    page_04.write_text(html)
    with serve(broken) as base:
        reports = {
            path: read_page(browser_page, base, path)
            for path in COURSE_ORDER[1:]
            if "/04-" in path or "/10-" in path
        }
        problems = site_problems(reports, base, broken)
    assert any("10-observability.html: picture not shown" in p for p in problems), problems
    assert any(
        "04-crash-and-recover.html: link to a missing section" in p and "#no-such-section" in p
        for p in problems
    )
    assert any("04-crash-and-recover.html: a folded block is open" in p for p in problems), problems
    assert any("10-observability.html: 404 for" in p for p in problems), problems
