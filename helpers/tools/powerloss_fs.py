"""A FUSE filesystem that keeps written data in memory until it is fsynced, as a disk's
page cache does, so that killing it loses exactly what was never fsynced: a power loss.

    python -m helpers.tools.powerloss_fs BACKING_DIR MOUNTPOINT [FSYNC_SECONDS]

Files and folders appear under MOUNTPOINT as they are in BACKING_DIR. Names (create,
rename, unlink, mkdir) reach the backing folder at once; the *contents* of a file written
through the mount reach it only when the file is fsynced (``fsync`` or ``fdatasync``), or
when the filesystem is unmounted cleanly (SIGTERM, as a clean shutdown flushes the page
cache). FSYNC_SECONDS (default 0) makes every fsync take at least that long, as on a busy
disk. SIGKILL this process and everything not yet fsynced is gone, the way a machine
that loses power loses its page cache. This is the idea of Jepsen's LazyFS, in a few
lines of Python; :class:`helpers.powerloss.PowerLossDisk` runs it.

It runs single-threaded (FUSE calls it one operation at a time) and keeps each file with
unsynced writes whole in memory: meant for the course's experiments, megabytes, not a
production disk.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import Any

import mfusepy

__all__ = ["PowerLossFS", "main"]


class PowerLossFS(mfusepy.Operations):  # type: ignore[misc]
    """A pass-through filesystem whose file contents are durable only once fsynced."""

    use_ns = True  # utimens gets nanoseconds

    def __init__(self, backing: str, fsync_seconds: float = 0.0) -> None:
        self.backing = os.path.realpath(backing)
        self.fsync_seconds = fsync_seconds
        # The current contents of every file written since its last fsync: the page cache.
        self.unsynced: dict[str, bytearray] = {}

    # Helpers ----------------------------------------------------------------------------------

    def _real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _contents(self, path: str) -> bytearray:
        """The file's current contents, in the page cache from now on."""
        if path not in self.unsynced:
            with open(self._real(path), "rb") as handle:
                self.unsynced[path] = bytearray(handle.read())
        return self.unsynced[path]

    def _sync(self, path: str) -> None:
        data = self.unsynced.pop(path, None)
        if data is None:
            return
        fd = os.open(self._real(path), os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    # Names: straight to the backing folder -------------------------------------------------------

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._real(path))
        except FileNotFoundError:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        attributes = {
            key: getattr(st, key)
            for key in (
                "st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid"
            )
        }  # fmt: skip
        if path in self.unsynced:
            attributes["st_size"] = len(self.unsynced[path])
        return attributes

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        if times:
            os.utime(self._real(path), ns=times)
        else:
            os.utime(self._real(path))
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._real(path))
        self.unsynced.pop(path, None)
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._real(old), self._real(new))
        self.unsynced.pop(new, None)
        if old in self.unsynced:
            self.unsynced[new] = self.unsynced.pop(old)
        return 0

    def statfs(self, path: str) -> dict[str, Any]:
        st = os.statvfs(self._real(path))
        return {key: getattr(st, key) for key in dir(st) if key.startswith("f_")}

    def fsyncdir(self, path: str, datasync: int, fh: Any) -> int:
        return 0  # names are durable at once here

    # Contents: in the page cache until fsync -----------------------------------------------------

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        fd = os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.close(fd)
        self.unsynced[path] = bytearray()
        return 0

    def open(self, path: str, flags: int) -> int:
        if not os.path.exists(self._real(path)):
            raise mfusepy.FuseOSError(errno.ENOENT)
        if flags & os.O_TRUNC:
            self.unsynced[path] = bytearray()
        return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        if path in self.unsynced:
            return bytes(self.unsynced[path][offset : offset + size])
        with open(self._real(path), "rb") as handle:
            handle.seek(offset)
            return handle.read(size)

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        contents = self._contents(path)
        if offset > len(contents):
            contents.extend(bytes(offset - len(contents)))
        contents[offset : offset + len(data)] = data
        return len(data)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        contents = self._contents(path)
        if length < len(contents):
            del contents[length:]
        else:
            contents.extend(bytes(length - len(contents)))
        return 0

    def flush(self, path: str, fh: Any) -> int:
        return 0  # close() is not a sync

    def release(self, path: str, fh: Any) -> int:
        return 0

    def fsync(self, path: str, datasync: int, fh: Any) -> int:
        if self.fsync_seconds > 0:
            time.sleep(self.fsync_seconds)  # a busy disk; single-threaded, so other calls wait too
        self._sync(path)
        return 0

    def destroy(self, path: str) -> None:
        # A clean unmount writes the page cache out, as the kernel does at shutdown.
        for name in list(self.unsynced):
            self._sync(name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(
            "usage: python -m helpers.tools.powerloss_fs BACKING_DIR MOUNTPOINT [FSYNC_SECONDS]",
            file=sys.stderr,
        )
        return 2
    backing, mountpoint = args[:2]
    fsync_seconds = float(args[2]) if len(args) == 3 else 0.0
    mfusepy.FUSE(
        PowerLossFS(backing, fsync_seconds),
        mountpoint,
        foreground=True,
        nothreads=True,
        default_permissions=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
