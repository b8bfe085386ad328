"""The course site's own Sphinx extension: anchors as JupyterLab makes them, and "how to run" boxes.

Loaded by ``site/conf.py``; ``site/build.py`` is the command that builds the site.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from sphinx.application import Sphinx

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def jupyter_anchor(title: str) -> str:
    """The anchor JupyterLab gives a heading: its text with each space turned into ``-``.

    The notebooks link to sections as JupyterLab names them (``04-crash-and-recover.ipynb#Taking-over-
    one-entry:-XCLAIM``), so the site names its sections the same way and those links work in both.
    """
    return title.replace(" ", "-")


def github_repository(remote_url: str) -> str | None:
    """``owner/name`` of a GitHub remote (https or ssh form), or None for anything else."""
    match = re.fullmatch(
        r"(?:https://github\.com/|git@github\.com:)([\w.-]+/[\w.-]+?)(?:\.git)?/?", remote_url
    )
    return match.group(1) if match else None


def course_repository(configured: str) -> str | None:
    """The GitHub repository the launch links point at: the one configured, else git's ``origin``."""
    if configured:
        return configured
    try:
        remote = subprocess.run(
            ["git", "-C", str(REPOSITORY_ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return None
    return github_repository(remote)


def how_to_run_rst(notebook_path: str | None, repository: str | None) -> str:
    """The "how to run" box, as reStructuredText: for one notebook, or (None) for the course."""
    what = "this notebook" if notebook_path else "the course"
    # ./course.sh lab serves the notebooks folder and opens 00 (JupyterLab's file browser starts there).
    then_open = f"; open ``{Path(notebook_path).name}`` from its file browser" if notebook_path else ""
    clone = (
        f"``git clone https://github.com/{repository}``, then "
        if repository
        else "in a clone of the repository, "
    )
    lines = [
        f".. admonition:: Run {what}",
        "   :class: how-to-run tip",
        "",
        f"   - **On your machine** (Linux or macOS, Python 3.11+): {clone}``./course.sh lab`` sets everything"
        f" up and opens JupyterLab on notebook 00{then_open}.",
    ]
    codespaces = (
        " it runs ``./course.sh setup`` while the codespace is built"
        " and ``./course.sh lab`` when you open it."
    )
    if repository:
        lab_path = notebook_path or "notebooks/00-start-here.ipynb"
        binder = f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/{lab_path}"
        lines.append(f"   - **On Binder**, nothing to install: `open {what} on mybinder.org <{binder}>`__.")
        lines.append(
            f"   - **In GitHub Codespaces**: `create a codespace <https://codespaces.new/{repository}>`__;"
            + codespaces
        )
    else:
        lines.append(
            "   - **On Binder**, nothing to install: give `mybinder.org <https://mybinder.org>`__"
            " the repository's address."
        )
        lines.append(
            "   - **In GitHub Codespaces**: on the repository's page, *Code → Codespaces → Create codespace*;"
            + codespaces
        )
    if notebook_path:
        lines.append(
            "   - **Here**, you read the outputs stored in the notebook (from Redis 8.2);"
            " run it to see your own."
        )
    return "\n".join(lines) + "\n"


def _insert_how_to_run(app: Sphinx, doctree: nodes.document) -> None:
    """Put the "how to run" box under the title of every page but the front page (which has its own)."""
    docname = app.env.docname
    if docname == app.config.root_doc:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    notebook_path = f"{docname}.ipynb" if docname.startswith("notebooks/") else None
    box = publish_doctree(
        how_to_run_rst(notebook_path, app.config.course_repository or None),
        settings_overrides={"report_level": 2, "halt_level": 2},
    )
    title_index = section.first_child_matching_class(nodes.title)
    position = 0 if title_index is None else title_index + 1
    for offset, child in enumerate(box.children):
        section.insert(position + offset, child.deepcopy())


def setup(app: Sphinx) -> dict[str, Any]:
    # owner/name of the course's GitHub repository, or "" (site/conf.py resolves it once).
    app.add_config_value("course_repository", "", "html", str)
    app.connect("doctree-read", _insert_how_to_run)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
