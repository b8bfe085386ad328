"""nbval settings for the course notebooks, kept out of the learners' folder.

Loaded for every pytest run (``-p tests.nbval_settings`` in pyproject.toml), so that
``pytest --nbval notebooks`` compares outputs the way the course needs without any
test machinery in ``notebooks/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

SANITIZE_RULES = Path(__file__).with_name("nbval-sanitize.cfg")


class UnixSocketKernelManager(KernelManager):
    """A kernel that talks over unix sockets in a folder of its own, not over TCP ports.

    Over TCP, jupyter_client picks a kernel's five ports by opening and closing them, and the
    kernel binds them a moment later; on a busy machine where tests start servers on free ports
    all the time, one of those can be taken in between, and the kernel dies before it answers
    (CI run: "Kernel died before replying to kernel_info" for a whole notebook). Unix sockets in a
    fresh folder cannot collide.
    """

    def __init__(self, **kwargs: Any) -> None:
        # A short path: a unix socket's path may not exceed about 100 bytes.
        self._socket_folder = tempfile.mkdtemp(prefix="nbval-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(self._socket_folder, "k"))
        super().__init__(**kwargs)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    # nbval starts each notebook's kernel with the KernelManager its module names.
    import nbval.kernel

    nbval.kernel.KernelManager = UnixSocketKernelManager
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
