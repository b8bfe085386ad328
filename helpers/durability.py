"""What an acknowledged XADD survives: measured crashes, and a reading of a server's settings.

Two different crashes, never to be confused:

- the **server process** dies (SIGKILL, the out-of-memory killer) and restarts: the append-only
  file's writes had reached the kernel, which keeps them; with one exception: under
  ``appendfsync everysec``, while a background fsync is still running Redis holds new writes
  in its own memory, for up to two seconds, and replies anyway (``flushAppendOnlyFile`` in
  Redis's ``src/aof.c``), so on a slow disk a process crash loses acknowledged writes too;
- the **machine** loses power: only what was fsynced survives. :func:`crash_trial` shows it
  for real with a :class:`helpers.powerloss.PowerLossDisk`.

:func:`what_an_ok_survives` reads a live server's configuration and says, for each kind of
failure, what an acknowledged ``XADD`` survives there.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import fakeredis
import pandas as pd
import redis

from .common import as_text
from .powerloss import PowerLossDisk
from .servers import LocalServer, ServerBinary

__all__ = ["PERSISTENCE", "Trial", "crash_trial", "persistence_settings", "what_an_ok_survives"]

# The persistence settings the course compares: AOF with each fsync policy, RDB alone, nothing.
PERSISTENCE = ("always", "everysec", "no", "rdb", "none")


def persistence_settings(setting: str) -> dict[str, Any]:
    """:class:`LocalServer` keyword arguments for one of :data:`PERSISTENCE`.

    ``rdb`` snapshots after one second if anything changed (``save 1 1``), far more often
    than a production server would; the others save no snapshot.
    """
    if setting not in PERSISTENCE:
        raise ValueError(f"setting must be one of {', '.join(PERSISTENCE)}, not {setting!r}")
    if setting == "rdb":
        return {"config": {"save": "1 1"}}
    if setting == "none":
        return {}
    return {"appendonly": True, "appendfsync": setting}


@dataclass(frozen=True)
class Trial:
    """One crash: how many XADDs were tried, acknowledged, and found again after the restart."""

    setting: str
    crash: str  # "process" (the server is SIGKILLed) or "power" (and its page cache is lost too)
    attempted: int
    acknowledged: int
    present: int  # entries found after the restart
    lost: int  # acknowledged, and not found
    present_unacknowledged: int  # found, although the producer never saw its reply
    newest_lost: bool  # every entry lost is newer than every entry kept: the loss is a suffix
    held_back_bytes: int = 0  # AOF data the server still held in memory, not yet written, when killed

    def row(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "crash": self.crash,
            "acknowledged": self.acknowledged,
            "present": self.present,
            "lost": self.lost,
        }


def crash_trial(
    setting: str,
    *,
    seconds: float = 1.2,
    fsync_seconds: float = 0.0,
    binary: ServerBinary | str | None = None,
    disk_keeps_up: bool = False,
) -> tuple[Trial, Trial]:
    """Write XADDs for ``seconds``, crash, and count what survives two kinds of crash.

    The server runs in a :class:`~helpers.powerloss.PowerLossDisk` with persistence
    ``setting``. Entry ``n`` gets the explicit ID ``n-0``, so every acknowledgement is
    known. The server is SIGKILLed, with any child writing a snapshot; what the kernel
    then holds (the files as seen through the mount) is what a restart after a
    **process crash** finds. Then the disk loses
    what was not fsynced: what is left is what a restart after a **power loss** finds.
    A server is started on each copy and its entries counted. ``fsync_seconds`` makes each
    fsync of the disk take that long, as on a busy disk.

    Just before the kill, the server's ``INFO persistence`` tells how much AOF data it still
    held in its own memory (``aof_buffer_length``): under ``everysec``, writes that arrive
    while a background fsync runs wait there until it ends (milliseconds on a quick disk,
    seconds on a slow or busy one), and a process crash loses them. With ``disk_keeps_up``,
    a trial whose crash came while the server held writes back is run again (up to five
    times): the trial is then about a disk that keeps up, as a quick disk does on an idle
    machine. Each :class:`Trial` reports ``held_back_bytes``.

    Returns:
        (after a process crash, after a power loss)

    Raises:
        CourseSetupError: a PowerLossDisk cannot be mounted here (see
            :func:`helpers.powerloss.unavailable_reason`).
    """
    settings = persistence_settings(setting)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    for _ in range(5 if disk_keeps_up else 1):
        trials = _one_crash_trial(setting, settings, seconds, fsync_seconds, binary)
        if trials[0].held_back_bytes == 0:
            break
    return trials


def _one_crash_trial(
    setting: str,
    settings: dict[str, Any],
    seconds: float,
    fsync_seconds: float,
    binary: ServerBinary | str | None,
) -> tuple[Trial, Trial]:
    acknowledged: list[int] = []
    attempted = 0
    with (
        PowerLossDisk(fsync_seconds=fsync_seconds) as disk,
        tempfile.TemporaryDirectory(prefix="streams-course-kernel-") as kernel,
    ):
        server = LocalServer(binary, directory=disk.mount(), **settings)
        server.start()
        client = server.client(socket_timeout=5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            attempted += 1
            try:
                client.xadd("jobs", {"n": attempted}, id=f"{attempted}-0")
            except redis.RedisError:
                continue
            acknowledged.append(attempted)
        held_back = 0
        if settings.get("appendonly"):
            with contextlib.suppress(redis.RedisError):
                held_back = int(client.info("persistence").get("aof_buffer_length", 0))
        client.close()
        server.kill(with_children=True)  # a snapshot's child too, so that both copies see one moment
        shutil.copytree(disk.mountpoint, kernel, dirs_exist_ok=True)  # the kernel's view, page cache included
        disk.power_loss()
        trials = tuple(
            _count(setting, crash, directory, settings, server.binary, attempted, acknowledged, held_back)
            for crash, directory in (("process", kernel), ("power", disk.backing))
        )
    return trials[0], trials[1]


def _count(
    setting: str,
    crash: str,
    directory: str,
    settings: dict[str, Any],
    binary: ServerBinary,
    attempted: int,
    acknowledged: list[int],
    held_back: int,
) -> Trial:
    """Start a server on what a crash left in ``directory`` and compare its entries with the acks."""
    survivor = LocalServer(binary, directory=directory, **settings).start()
    try:
        found = survivor.client()
        entries: Any = found.xrange("jobs")
        present = {int(str(as_text(entry_id)).split("-")[0]) for entry_id, _ in entries}
        found.close()
    finally:
        survivor.stop()
    return Trial(
        setting=setting,
        crash=crash,
        attempted=attempted,
        acknowledged=len(acknowledged),
        present=len(present),
        lost=len(set(acknowledged) - present),
        present_unacknowledged=len(present - set(acknowledged)),
        newest_lost=not (set(acknowledged) - present)
        or min(set(acknowledged) - present) > max(present, default=0),
        held_back_bytes=held_back,
    )


def _config(client: redis.Redis, name: str) -> str:
    value = client.config_get(name).get(name, "")
    return str(as_text(value))


def what_an_ok_survives(client: redis.Redis) -> pd.DataFrame:
    """For the server ``client`` talks to: what an acknowledged XADD survives, per kind of
    failure, read from its configuration (``CONFIG GET``) and replication state (``INFO``).

    Columns: ``failure``, ``an acknowledged XADD``, ``because``. The verdicts come from
    the measurements of notebook 08; a managed service may restrict CONFIG GET, and then
    the frame says so.
    """
    if isinstance(client, fakeredis.FakeRedis):
        return pd.DataFrame(
            [{"failure": "any", "an acknowledged XADD": "is lost when this Python process ends",
              "because": "fakeredis keeps its data in this process's memory only"}]
        )  # fmt: skip
    try:
        appendonly = _config(client, "appendonly") == "yes"
        fsync = _config(client, "appendfsync")
        save = _config(client, "save").strip()
        policy = _config(client, "maxmemory-policy")
        maxmemory = int(_config(client, "maxmemory") or 0)
        min_replicas = int(_config(client, "min-replicas-to-write") or 0)
    except redis.ResponseError as exc:
        return pd.DataFrame(
            [{"failure": "any", "an acknowledged XADD": "cannot be told from here",
              "because": f"the server refused CONFIG GET ({exc})"}]
        )  # fmt: skip
    replicas = int(client.info("replication").get("connected_slaves", 0))
    rows = []
    if appendonly:
        if fsync == "everysec":
            process = (
                "survives while the disk keeps up; on a slow disk the last second or two may be lost",
                "appendfsync everysec: while a background fsync runs, Redis holds new writes in its "
                "memory (up to 2 s) and replies",
            )
        else:
            process = (
                "survives",
                f"AOF: every write reaches the kernel before the reply (appendfsync {fsync})",
            )
        rows.append(("the server process is killed and restarts", *process))
        power = {
            "always": ("survives", "appendfsync always: fsynced before the reply"),
            "everysec": (
                "may be lost if it is among the last second or two of writes",
                "appendfsync everysec: fsynced about once a second, later when the disk is slow",
            ),
            "no": (
                "may be lost if the kernel had not yet written it back (on Linux, dirty data can wait "
                "about 30 s)",
                "appendfsync no: Redis does not fsync while it runs; the kernel writes when it wants",
            ),
        }.get(fsync, ("cannot be told", f"unknown appendfsync {fsync!r}"))
        rows.append(("the machine loses power", *power))
    elif save:
        rows.append(
            (
                "the server process is killed and restarts",
                "is lost if it came after the last snapshot",
                f"RDB only: snapshots when {save!r} (seconds, changes) is met",
            )
        )
        rows.append(
            (
                "the machine loses power",
                "is lost if it came after the last snapshot",
                "RDB only: a finished snapshot is fsynced, nothing after it is on disk",
            )
        )
    else:
        rows.append(("the server process is killed and restarts", "is lost", "no persistence: memory only"))
        rows.append(("the machine loses power", "is lost", "no persistence: memory only"))
    if replicas:
        verdict = "survives if a replica had received it (WAIT tells the producer)"
        because = f"{replicas} replica(s) connected; replication is asynchronous"
        if min_replicas:
            because += f"; writes are refused while fewer than {min_replicas} replica(s) are in sync"
    else:
        verdict, because = "has no replica to fail over to", "no replica connected"
    rows.append(("the master fails and a replica takes over", verdict, because))
    if not maxmemory:
        rows.append(
            (
                "memory runs out",
                "survives as long as the machine has memory; then see a process crash",
                "no maxmemory: the server grows until the OS kills it",
            )
        )
    elif policy == "noeviction":
        rows.append(
            (
                "memory runs out",
                "survives; new XADDs fail with OOM",
                "maxmemory-policy noeviction: nothing is evicted",
            )
        )
    elif policy.startswith("allkeys"):
        rows.append(
            (
                "memory runs out",
                "can be evicted with its whole stream, groups and PEL",
                f"maxmemory-policy {policy}: any key may go",
            )
        )
    else:
        rows.append(
            (
                "memory runs out",
                "survives unless the stream has a TTL",
                f"maxmemory-policy {policy}: only keys with a TTL may go",
            )
        )
    return pd.DataFrame(rows, columns=["failure", "an acknowledged XADD", "because"])
