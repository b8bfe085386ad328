"""nbval settings for the course notebooks."""

from __future__ import annotations

import pytest


def pytest_collectstart(collector: pytest.Collector) -> None:
    # Warnings and notices (such as the fakeredis fallback notice) go to stderr and
    # differ between backends by design; compare only what a cell shows as output.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)  # type: ignore[attr-defined]
