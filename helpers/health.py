"""Is the queue healthy? The figures that say so, per consumer group, and verdicts against bounds.

:func:`queue_health` reads what Redis reports (``XINFO STREAM``, ``XINFO GROUPS``,
``XPENDING``, ``MEMORY USAGE``) and returns one row per group of a stream:

- ``lag``: entries the group has not read yet, as Redis counts them (``entries-added``
  minus the group's ``entries-read``); None when Redis cannot tell (after ``XDEL`` of an
  entry the group had not read, or ``XGROUP SETID`` without ``ENTRIESREAD``). A group whose
  position is the stream's last ID has nothing to read: its lag is 0 whatever Redis says.
  (After a trim of unread entries, Redis 7.0 adds two too many for good, as in
  redis/redis#13957: this corrects it only while the group is at the stream's end;)
- ``pending``: read, not acknowledged; ``oldest_pending_ms``: the longest time any of them
  has waited since its last delivery; ``most_deliveries``: the highest delivery count
  among them (a message that keeps failing). Both come from the first 10,000 pending
  entries; an ``max_oldest_pending_ms`` alert is checked over all of them;
- ``trimmed_unread``: entries trimmed or deleted before this group read them
  (``entries-added`` minus ``entries-read`` minus the unread entries still there), None
  where it cannot be told. It shows a loss only until the group reads past it;
- ``last_seen_ms``: how long ago the group's most recently seen consumer last read or
  claimed (the smallest ``idle`` of ``XINFO CONSUMERS``; None without consumers). On Redis
  7.2 and later an empty read counts; on 7.0 only a read that returned entries does, so
  there an idle queue makes it grow too;
- ``dead_letters``: the length of the dead-letter stream; ``memory_bytes``: the stream's
  ``MEMORY USAGE`` (None where the server does not have the command).

``verdict`` is ``"ok"`` or the list of bounds a figure has reached. :class:`HealthCollector`
exposes the same figures to Prometheus through ``prometheus_client``, and
:class:`HealthHistory` samples one group over time and draws it (a small dashboard).
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pandas as pd
import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .common import AnyClient, as_text, optional_bound
from .views import split_id

__all__ = ["GroupHealth", "HealthCollector", "HealthHistory", "group_health", "queue_health"]


@dataclass(frozen=True)
class GroupHealth:
    """The health figures of one consumer group of one stream, and the verdict."""

    stream: str
    group: str
    consumers: int
    lag: int | None
    pending: int
    oldest_pending_ms: int | None
    most_deliveries: int
    trimmed_unread: int | None
    last_seen_ms: int | None
    dead_letters: int
    length: int
    memory_bytes: int | None
    verdict: str


# A health check reads at most this many pending entries (in pages of 1000) and counts at most
# this many unread entries: enough for any verdict, and a bounded cost per check.
SCAN_LIMIT = 10_000


def _pending_figures(
    client: AnyClient, stream: str, group: str, pending: int, oldest_bound: int | None
) -> tuple[int | None, int]:
    """The longest idle time among pending entries, and their highest delivery count.

    XPENDING lists entries by ID, not by age, so it reads the pending list in pages, up to
    SCAN_LIMIT entries. Beyond that, the figures cover the first SCAN_LIMIT entries only; the
    age bound is then checked over the whole list with ``XPENDING ... IDLE``, so that its
    alert is exact whatever the list's length.
    """
    if not pending:
        return None, 0
    oldest: int | None = None
    most = 0
    start, seen = "-", 0
    while seen < SCAN_LIMIT:
        page: Any = client.xpending_range(stream, group, start, "+", min(1000, SCAN_LIMIT - seen))
        if not page:
            break
        for entry in page:
            oldest = max(oldest or 0, int(entry["time_since_delivered"]))
            most = max(most, int(entry["times_delivered"]))
        seen += len(page)
        start = "(" + str(as_text(page[-1]["message_id"]))
    if seen >= SCAN_LIMIT and oldest_bound is not None and (oldest is None or oldest < oldest_bound):
        older: Any = client.xpending_range(stream, group, "-", "+", 1, idle=oldest_bound)
        if older:
            oldest = max(oldest or 0, int(older[0]["time_since_delivered"]))
    return oldest, most


def _removed_unread(client: AnyClient, stream: str, info: Any, group: Any) -> int | None:
    """Entries trimmed or deleted before the group read them, while that can be told.

    The group has read ``entries-read`` of the ``entries-added``; the entries after its
    position that are still in the stream are unread; the rest were removed unread. Trims
    remove the oldest entries, so when the group's position is at or after the stream's
    first entry and no entry after it was deleted, nothing unread was removed (no counting
    needed). None where it cannot be told: counters Redis does not have, or more than
    SCAN_LIMIT unread entries to count.
    """
    added = info.get("entries-added")
    read = group.get("entries-read")
    last = split_id(group["last-delivered-id"])
    if read is None and last == (0, 0):
        read = 0  # a group that has read nothing yet
    if added is None or read is None:
        return None
    first = info.get("first-entry")
    max_deleted = split_id(info.get("max-deleted-entry-id") or "0-0")
    if first and last >= split_id(first[0]) and max_deleted <= last:
        return 0
    unread: Any = client.xrange(stream, "(" + str(as_text(group["last-delivered-id"])), "+", count=SCAN_LIMIT)
    if len(unread) >= SCAN_LIMIT:
        return None
    return max(int(added) - int(read) - len(unread), 0)


def _last_seen(client: AnyClient, stream: str, group: str) -> int | None:
    consumers: Any = client.xinfo_consumers(stream, group)
    idle = [int(consumer["idle"]) for consumer in consumers]
    return min(idle) if idle else None


def _memory(client: AnyClient, stream: str) -> int | None:
    try:
        used = client.memory_usage(stream)
    except redis.ResponseError:  # fakeredis, or a user without MEMORY
        return None
    return int(used) if used is not None else None


def group_health(
    client: AnyClient,
    stream: str,
    *,
    dead_letter: str | None = None,
    max_lag: int | None = None,
    max_pending: int | None = None,
    max_oldest_pending_ms: int | None = None,
    max_deliveries: int | None = None,
    max_dead_letters: int | None = None,
    max_last_seen_ms: int | None = None,
) -> list[GroupHealth]:
    """One :class:`GroupHealth` per consumer group of ``stream``, sorted by group name.

    Args:
        dead_letter: the dead-letter stream (``"<stream>:dead"`` by default).
        max_lag, max_pending, max_oldest_pending_ms, max_deliveries, max_dead_letters,
        max_last_seen_ms: alert bounds (None: no alert). A figure that reaches its bound is named in the
            verdict; an unknown lag is named too when ``max_lag`` is set, since a lag that
            cannot be told cannot be said to be within bounds.

    Raises:
        ValueError: a bound is not a whole number of at least 0.
        redis.ResponseError: the stream does not exist, or holds another type.
    """
    bounds = {
        "lag": optional_bound("max_lag", max_lag, 0),
        "pending": optional_bound("max_pending", max_pending, 0),
        "oldest_pending_ms": optional_bound("max_oldest_pending_ms", max_oldest_pending_ms, 0),
        "most_deliveries": optional_bound("max_deliveries", max_deliveries, 0),
        "dead_letters": optional_bound("max_dead_letters", max_dead_letters, 0),
        "last_seen_ms": optional_bound("max_last_seen_ms", max_last_seen_ms, 0),
    }
    if not isinstance(stream, str) or not stream:
        raise ValueError(f"stream must be a non-empty string, not {stream!r}")
    info: Any = client.xinfo_stream(stream)
    length = int(info["length"])
    last_generated = info.get("last-generated-id")
    dead_key = dead_letter or f"{stream}:dead"
    dead_letters = int(client.xlen(dead_key)) if client.exists(dead_key) else 0
    memory = _memory(client, stream)
    groups: Any = client.xinfo_groups(stream)
    rows = []
    for group in sorted(groups, key=lambda g: str(as_text(g["name"]))):
        name = str(as_text(group["name"]))
        lag = group.get("lag")
        at_the_end = last_generated is not None and split_id(group["last-delivered-id"]) >= split_id(
            last_generated
        )
        if at_the_end:
            lag = 0  # nothing after the group's position, whatever Redis reports
        pending = int(group["pending"])
        oldest, most = _pending_figures(client, stream, name, pending, bounds["oldest_pending_ms"])
        last_seen = _last_seen(client, stream, name)
        trimmed = _removed_unread(client, stream, info, group)
        figures = {
            "lag": None if lag is None else int(lag),
            "pending": pending,
            "oldest_pending_ms": oldest,
            "most_deliveries": most,
            "dead_letters": dead_letters,
            "last_seen_ms": last_seen,
        }
        alerts = []
        for what, bound in bounds.items():
            if bound is None:
                continue
            value = figures[what]
            if value is None and what == "lag":
                alerts.append("lag unknown")
            elif value is not None and value >= bound:
                if what.endswith("_ms"):  # a time: the bound alone, so the verdict does not flicker
                    alerts.append(f"{what[:-3].replace('_', ' ')} >= {bound} ms")
                else:
                    alerts.append(f"{what.replace('_', ' ')} {value} >= {bound}")
        if trimmed:
            alerts.append(f"{trimmed} trimmed or deleted before this group read them")
        rows.append(
            GroupHealth(
                stream=stream,
                group=name,
                consumers=int(group["consumers"]),
                lag=figures["lag"],
                pending=pending,
                oldest_pending_ms=oldest,
                most_deliveries=most,
                trimmed_unread=trimmed,
                last_seen_ms=last_seen,
                dead_letters=dead_letters,
                length=length,
                memory_bytes=memory,
                verdict="ok" if not alerts else "ALERT: " + "; ".join(alerts),
            )
        )
    return rows


def queue_health(client: AnyClient, streams: str | Iterable[str], **bounds: Any) -> pd.DataFrame:
    """:func:`group_health` of one stream or several, as a table: one row per group.

    ``bounds`` are those of :func:`group_health` (``max_lag=...`` and so on).
    """
    names = [streams] if isinstance(streams, str) else list(streams)
    rows = [asdict(health) for stream in names for health in group_health(client, stream, **bounds)]
    columns = list(GroupHealth.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns)


class HealthCollector(Collector):
    """A ``prometheus_client`` collector: the health figures of ``streams``, read at each scrape.

    Register it (``registry.register(HealthCollector(client, ["jobs"]))``) and serve the
    registry (``prometheus_client.start_http_server``): every scrape reads Redis afresh,
    so the numbers are never stale. Times are sent in seconds, Prometheus's base unit.
    Unknown figures are left out, not sent as 0; ``<prefix>_lag_known`` is 1 or 0, so that
    an alert can tell a lag of 0 from a lag Redis cannot tell.
    """

    # figure -> (metric name, help text, factor)
    GAUGES: ClassVar[dict[str, tuple[str, str, float]]] = {
        "lag": ("lag", "Entries the group has not read yet (XINFO GROUPS lag, 0 at the stream's end)", 1),
        "pending": ("pending", "Entries read by the group and not acknowledged", 1),
        "oldest_pending_ms": (
            "oldest_pending_seconds",
            "Longest wait of a pending entry since its delivery",
            0.001,
        ),
        "most_deliveries": ("most_deliveries", "Highest delivery count among pending entries", 1),
        "trimmed_unread": ("trimmed_unread", "Entries trimmed or deleted before the group read them", 1),
        "last_seen_ms": (
            "last_seen_seconds",
            "Time since a consumer of the group last read or claimed",
            0.001,
        ),
        "dead_letters": ("dead_letters", "Entries in the dead-letter stream", 1),
        "length": ("length", "Entries in the stream", 1),
        "memory_bytes": ("memory_bytes", "MEMORY USAGE of the stream", 1),
    }

    def __init__(self, client: AnyClient, streams: Iterable[str], *, prefix: str = "redis_stream") -> None:
        self.client = client
        self.streams = list(streams)
        if not self.streams or not all(isinstance(stream, str) and stream for stream in self.streams):
            raise ValueError(f"streams must be a list of stream names, not {streams!r}")
        if not isinstance(prefix, str) or not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", prefix):
            raise ValueError(f"prefix must be a Prometheus metric name (as 'redis_stream'), not {prefix!r}")
        self.prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["stream", "group"]
        families = {
            what: GaugeMetricFamily(f"{self.prefix}_{name}", help_text, labels=labels)
            for what, (name, help_text, _) in self.GAUGES.items()
        }
        lag_known = GaugeMetricFamily(
            f"{self.prefix}_lag_known", "1 if Redis can tell the group's lag, 0 if not (NULL)", labels=labels
        )
        for stream in self.streams:
            for health in group_health(self.client, stream):
                for what, family in families.items():
                    value = getattr(health, what)
                    if value is not None:
                        family.add_metric([health.stream, health.group], float(value) * self.GAUGES[what][2])
                lag_known.add_metric([health.stream, health.group], 0.0 if health.lag is None else 1.0)
        yield from families.values()
        yield lag_known


class HealthHistory:
    """The health of one group, sampled over time, and its picture: a small dashboard.

    :meth:`watch` samples :func:`group_health` at a steady pace while something else (a
    worker, a producer) runs, and redraws the picture in place in a notebook after each
    sample; :meth:`figure` draws lag and pending count, the oldest pending entry's age,
    and dead letters, against seconds since the first sample.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("seconds", "lag", "pending", "oldest_pending_s", "dead_letters")

    def __init__(self, client: AnyClient, stream: str, group: str, *, dead_letter: str | None = None) -> None:
        if not isinstance(stream, str) or not stream or not isinstance(group, str) or not group:
            raise ValueError(f"stream and group must be non-empty strings, not {stream!r} and {group!r}")
        self.client = client
        self.stream = stream
        self.group = group
        self.dead_letter = dead_letter
        self.rows: list[dict[str, float | None]] = []
        self._started: float | None = None

    def sample(self) -> GroupHealth:
        """Read the group's health once and keep its figures.

        Raises:
            LookupError: the stream has no such group.
        """
        now = time.monotonic()
        if self._started is None:
            self._started = now
        healths = [
            h
            for h in group_health(self.client, self.stream, dead_letter=self.dead_letter)
            if h.group == self.group
        ]
        if not healths:
            raise LookupError(f"the stream {self.stream!r} has no group {self.group!r}")
        (health,) = healths
        oldest = None if health.oldest_pending_ms is None else health.oldest_pending_ms / 1000
        self.rows.append(
            {
                "seconds": now - self._started,
                "lag": health.lag,
                "pending": health.pending,
                "oldest_pending_s": oldest,
                "dead_letters": health.dead_letters,
            }
        )
        return health

    def frame(self) -> pd.DataFrame:
        """The samples as a table, one row per sample (``seconds`` since the first)."""
        return pd.DataFrame(self.rows, columns=list(self.COLUMNS))

    def figure(self) -> Any:
        """A matplotlib figure of the samples: lag and pending, oldest pending age, dead letters."""
        from matplotlib.figure import Figure  # only the dashboard needs matplotlib
        from matplotlib.ticker import MaxNLocator

        frame = self.frame()
        figure = Figure(figsize=(11, 3.2))
        lag_axes, age_axes, dead_axes = figure.subplots(1, 3)
        lag_axes.plot(frame["seconds"], frame["lag"], label="lag (not read)")
        lag_axes.plot(frame["seconds"], frame["pending"], label="pending (not acknowledged)")
        lag_axes.set(xlabel="seconds", ylabel="entries", title=f"{self.group}: backlog")
        lag_axes.legend(loc="upper left")
        age_axes.plot(frame["seconds"], frame["oldest_pending_s"].fillna(0), color="tab:red")
        age_axes.set(xlabel="seconds", ylabel="seconds", title="Oldest pending entry's age")
        dead_axes.step(frame["seconds"], frame["dead_letters"], where="post", color="tab:gray")
        dead_axes.set(xlabel="seconds", ylabel="entries", title="Dead letters")
        dead_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        figure.tight_layout()
        return figure

    def watch(
        self,
        seconds: float,
        *,
        every_s: float = 0.25,
        until: Callable[[], object] | None = None,
        live: bool | None = None,
        show: bool = True,
    ) -> pd.DataFrame:
        """Sample every ``every_s`` for up to ``seconds``, or until ``until()`` is true.

        Args:
            live: redraw the picture in place after every sample (in a notebook). The
                default is live unless the environment variable ``COURSE_STATIC_OUTPUT``
                is ``1``, as it is when the tests run the notebooks: then the picture is
                drawn once, at the end, so that the stored output is one picture.
            show: display the picture at all (``False`` in tests and scripts).

        Returns:
            :meth:`frame`, with the new samples.
        """
        for name, value in (("seconds", seconds), ("every_s", every_s)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if live is None:
            live = os.environ.get("COURSE_STATIC_OUTPUT") != "1"
        handle = None
        deadline = time.monotonic() + seconds
        while True:
            self.sample()
            if show and live:
                handle = self._draw(handle)
            if (until is not None and until()) or time.monotonic() >= deadline:
                break
            time.sleep(every_s)
        if show and not live:
            self._draw(None)
        return self.frame()

    def _draw(self, handle: Any) -> Any:
        """Show the picture as a PNG, or replace the one shown (a Figure made without pyplot
        has no notebook formatter of its own)."""
        from IPython.display import Image, display

        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=90)
        image = Image(data=buffer.getvalue(), format="png")  # type: ignore[no-untyped-call]
        if handle is None:
            return display(image, display_id=True)  # type: ignore[no-untyped-call]
        handle.update(image)
        return handle
