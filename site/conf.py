"""Sphinx settings of the course site (built by ``site/build.py``; ``./course.sh site`` runs it)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import course_site  # this folder, just put on the path

project = "Reliable task queues with Redis Streams"
author = "the course's authors"
copyright = "the course's authors, MIT licence"
html_title = project

extensions = ["myst_nb", "course_site"]
root_doc = "index"
# README.md is staged only for the front page to include its table of notebooks.
exclude_patterns = ["README.md", "**/.ipynb_checkpoints"]

# The pages show the outputs stored in the notebooks (from Redis 8.2): nothing is re-run.
nb_execution_mode = "off"
# Section anchors as JupyterLab makes them, so the notebooks' links to sections work here too.
myst_heading_anchors = 3
myst_heading_slug_func = "course_site.jupyter_anchor"
# Launch links (Binder, Codespaces) need the GitHub repository: set COURSE_REPOSITORY=owner/name,
# or let it come from git's origin remote; without one ("") the pages say how to launch in words.
course_repository = course_site.course_repository(os.environ.get("COURSE_REPOSITORY", "")) or ""

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_js_files = ["course.js"]
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    # No top bar from the parent theme (pydata): its hidden menu buttons come first in the page, and
    # the themes' scripts wire those instead of the visible ones, so the menus never opened on a
    # phone (pydata-sphinx-theme issue 2451). The book theme's own bar and sidebar search remain.
    "navbar_start": [],
    "navbar_center": [],
    "navbar_end": [],
    "navbar_persistent": [],
}
# With a known GitHub repository, the top bar links to it.
if course_repository:
    html_theme_options["repository_url"] = f"https://github.com/{course_repository}"
    html_theme_options["use_repository_button"] = True
# No "show source" link: the download button already offers each page's notebook.
html_show_sourcelink = False
