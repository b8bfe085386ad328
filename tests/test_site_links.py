"""The course site's "how to run" box and launch links (``site/course_site.py``), without a browser.

The browser check (``tests/test_site.py``) reads a site built without a known repository; these
tests cover the links a site built for a GitHub repository gets.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from docutils import nodes
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("sphinx", reason="the site's tools are not installed (requirements-test.txt)")


def _course_site() -> ModuleType:
    spec = importlib.util.spec_from_file_location("course_site", ROOT / "site" / "course_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("course_site", module)
    spec.loader.exec_module(module)
    return module


course_site = _course_site()


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://github.com/learner/redis-streams-course.git", "learner/redis-streams-course"),
        ("https://github.com/learner/redis-streams-course", "learner/redis-streams-course"),
        ("git@github.com:learner/redis-streams-course.git", "learner/redis-streams-course"),
        ("https://gitlab.com/learner/redis-streams-course.git", None),
        ("/work/main", None),
        ("", None),
    ],
)
def test_github_repository_from_a_remote(remote: str, expected: str | None) -> None:
    assert course_site.github_repository(remote) == expected


def _links(rst: str) -> list[str]:
    tree = publish_doctree(rst, settings_overrides={"report_level": 2, "halt_level": 2})
    return [str(ref["refuri"]) for ref in tree.findall(nodes.reference) if "refuri" in ref]


def test_a_notebooks_box_links_binder_and_codespaces_to_that_notebook() -> None:
    rst = course_site.how_to_run_rst("notebooks/04-crash-and-recover.ipynb", "learner/course")
    assert _links(rst) == [
        "https://mybinder.org/v2/gh/learner/course/HEAD?urlpath=lab/tree/notebooks/04-crash-and-recover.ipynb",
        "https://codespaces.new/learner/course",
    ]
    assert "git clone https://github.com/learner/course" in rst
    # ./course.sh lab serves the notebooks folder: the file is named as its file browser shows it.
    assert "open ``04-crash-and-recover.ipynb`` from its file browser" in rst


def test_without_a_repository_the_box_says_how_in_words() -> None:
    rst = course_site.how_to_run_rst("notebooks/01-your-first-stream.ipynb", None)
    assert _links(rst) == ["https://mybinder.org"]
    assert "Code → Codespaces → Create codespace" in rst
    general = course_site.how_to_run_rst(None, None)
    assert "Run the course" in general and "opens JupyterLab on notebook 00." in general
    assert "stored in the notebook" not in general  # a page without outputs does not claim any


def test_anchors_are_jupyterlabs() -> None:
    # JupyterLab turns each space of a heading's text into '-' and keeps everything else.
    assert course_site.jupyter_anchor("Taking over one entry: XCLAIM") == "Taking-over-one-entry:-XCLAIM"
    assert course_site.jupyter_anchor("What's next?") == "What's-next?"
