"""nbval settings for the course notebooks, kept out of the learners' folder.

Loaded for every pytest run (``-p tests.nbval_settings`` in pyproject.toml), so that
``pytest --nbval notebooks`` compares outputs the way the course needs without any
test machinery in ``notebooks/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SANITIZE_RULES = Path(__file__).with_name("nbval-sanitize.cfg")


def pytest_configure(config: pytest.Config) -> None:
    # Live pictures (a dashboard redrawn in place) are drawn once, at the end, so that each
    # cell stores one picture to compare; the kernels inherit this from the test run.
    os.environ["COURSE_STATIC_OUTPUT"] = "1"
    # The rules that hide what differs on purpose (clock-made IDs, ports, the backend line).
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(SANITIZE_RULES)


def pytest_collectstart(collector: pytest.Collector) -> None:
    # Warnings and notices (such as the fakeredis fallback notice) go to stderr and
    # differ between backends by design; compare only what a cell shows as output.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)  # type: ignore[attr-defined]
