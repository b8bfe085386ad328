"""A folder that loses what was not fsynced when "the power goes": for durability experiments.

A SIGKILLed server loses nothing its append-only file had handed to the kernel: the kernel
still holds it and writes it later. A machine that loses power loses the kernel's page cache
too, so only what was fsynced survives. To show that difference on one machine, a
:class:`PowerLossDisk` mounts a small FUSE filesystem (:mod:`helpers.tools.powerloss_fs`)
over a backing folder. Contents reach the backing folder only when fsynced;
:meth:`PowerLossDisk.power_loss` kills the filesystem, and with it everything not fsynced::

    with PowerLossDisk() as disk:
        server = LocalServer(directory=disk.mount(), appendonly=True, appendfsync="everysec")
        server.start()
        ...                         # write
        server.kill()               # the machine stops...
        disk.power_loss()           # ...and its page cache is gone
        survivor = LocalServer(directory=disk.backing).start()   # what the disk kept

It needs Linux, FUSE (the ``fuse3`` package, and access to ``/dev/fuse``: usually root) and
the ``mfusepy`` package; :func:`unavailable_reason` says what is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from .errors import CourseSetupError

__all__ = ["PowerLossDisk", "unavailable_reason"]


def unavailable_reason() -> str | None:
    """None when a :class:`PowerLossDisk` can be mounted here, else why not, in one sentence."""
    if sys.platform != "linux":
        return "it needs Linux (FUSE)"
    if not os.path.exists("/dev/fuse"):
        return "this machine has no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "this user may not open /dev/fuse (mounting FUSE filesystems usually needs root)"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401  (loads libfuse3)
    except (ImportError, OSError) as exc:
        return f"the mfusepy package or libfuse3 is missing ({exc})"
    return None


class PowerLossDisk:
    """A FUSE mount whose file contents survive a :meth:`power_loss` only if they were fsynced.

    :attr:`backing` is the "disk": a temporary folder that keeps what was fsynced (and every
    file name). :meth:`mount` returns the folder to run a server in.
    """

    def __init__(self, *, fsync_seconds: float = 0.0, mount_timeout: float = 10.0) -> None:
        """``fsync_seconds``: how long every fsync takes at least, to act as a busy disk.

        Raises:
            ValueError: ``fsync_seconds`` is not a number from 0 to 60.
        """
        if (
            not isinstance(fsync_seconds, (int, float))
            or isinstance(fsync_seconds, bool)
            or not 0 <= fsync_seconds <= 60
        ):
            raise ValueError(f"fsync_seconds must be a number from 0 to 60, not {fsync_seconds!r}")
        self.fsync_seconds = float(fsync_seconds)
        self.backing = tempfile.mkdtemp(prefix="streams-course-disk-")
        self.mountpoint = tempfile.mkdtemp(prefix="streams-course-mount-")
        self._mount_timeout = mount_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def mounted(self) -> bool:
        return self._process is not None and self._process.poll() is None and os.path.ismount(self.mountpoint)

    def mount(self) -> str:
        """Mount the filesystem (if it is not mounted) and return the mountpoint.

        Raises:
            CourseSetupError: FUSE is not available here, or the mount did not come up.
        """
        if self.mounted:
            return self.mountpoint
        reason = unavailable_reason()
        if reason is not None:
            raise CourseSetupError(f"a PowerLossDisk cannot be mounted here: {reason}")
        command = [
            sys.executable,
            "-m",
            "helpers.tools.powerloss_fs",
            self.backing,
            self.mountpoint,
            str(self.fsync_seconds),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self._mount_timeout
        while not os.path.ismount(self.mountpoint):
            if self._process.poll() is not None or time.monotonic() > deadline:
                said = self._stop_process(signal.SIGKILL)
                raise CourseSetupError(f"the power-loss filesystem did not mount: {said or '(no message)'}")
            time.sleep(0.02)
        return self.mountpoint

    def power_loss(self) -> None:
        """Lose everything written but not fsynced: SIGKILL the filesystem, then detach the mount.

        Stop (or kill) whatever runs on the mount first, as the machine would stop it.
        """
        if self._process is None:
            return
        self._stop_process(signal.SIGKILL)
        self._detach()

    def unmount(self) -> None:
        """A clean unmount: what was written reaches the disk, as at a clean shutdown."""
        if self._process is None:
            return
        self._stop_process(signal.SIGTERM)
        self._detach()

    def close(self) -> None:
        """Unmount cleanly if mounted, and delete both folders."""
        self.unmount()
        shutil.rmtree(self.backing, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.mountpoint)

    def __enter__(self) -> PowerLossDisk:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _stop_process(self, how: signal.Signals) -> str:
        """Stop the filesystem process by its own pid; return what it said on stderr."""
        process, self._process = self._process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.send_signal(how)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=30)
        return (err or b"").decode("utf-8", "replace").strip()[-2000:]

    def _detach(self) -> None:
        # A killed FUSE process leaves its mount behind ("transport endpoint is not connected").
        if os.path.ismount(self.mountpoint) or _stale(self.mountpoint):
            subprocess.run(
                ["fusermount3", "-u", "-z", self.mountpoint], capture_output=True, timeout=30, check=False
            )


def _stale(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return True
    return False
