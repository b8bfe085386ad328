"""pandas views of what Redis reports about streams.

Each function takes the reply of one redis-py call and returns a DataFrame
with a stable column order and sorted rows, so that a notebook shows the same
table on every backend. Replies may hold ``str`` (``decode_responses=True``)
or ``bytes``; bytes are decoded as UTF-8, with escapes for invalid bytes.

Idle times change from one run to the next; pass ``idle_bounds`` to show them
as ranges such as ``"< 1000 ms"`` instead of raw milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .common import as_text

__all__ = [
    "consumers_frame",
    "entries_frame",
    "groups_frame",
    "idle_bound",
    "pending_frame",
    "pending_summary_frame",
    "split_id",
    "stream_info_frame",
]

STREAM_INFO_FIELDS = (
    "length",
    "first-entry",
    "last-entry",
    "last-generated-id",
    "max-deleted-entry-id",
    "entries-added",
    "recorded-first-entry-id",
    "groups",
)
STREAM_INFO_INTERNALS = ("radix-tree-keys", "radix-tree-nodes")
GROUP_FIELDS = ("name", "consumers", "pending", "last-delivered-id", "entries-read", "lag")


def split_id(entry_id: str | bytes) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``.

    Raises:
        ValueError: the text is not a complete stream ID.
    """
    text = str(as_text(entry_id))
    ms, sep, seq = text.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        raise ValueError(f"{text!r} is not a stream ID of the form <milliseconds>-<sequence>")
    return int(ms), int(seq)


def idle_bound(idle_ms: int, bounds: Sequence[int]) -> str:
    """Put an idle time in the range it falls in, for output that does not flicker.

    >>> idle_bound(42, [100, 1000])
    '< 100 ms'
    >>> idle_bound(250, [100, 1000])
    '100-999 ms'
    >>> idle_bound(5000, [100, 1000])
    '>= 1000 ms'
    """
    ordered = sorted(bounds)
    if not ordered:
        raise ValueError("idle_bounds needs at least one bound in milliseconds")
    if idle_ms < ordered[0]:
        return f"< {ordered[0]} ms"
    for low, high in itertools.pairwise(ordered):
        if low <= idle_ms < high:
            return f"{low}-{high - 1} ms"
    return f">= {ordered[-1]} ms"


def _entries_of(reply: Any) -> list[tuple[str | None, Any, Any]]:
    """Flatten an XRANGE, XREAD or XREADGROUP reply into (stream, id, fields) triples."""
    if isinstance(reply, Mapping):  # RESP3 XREAD: {stream: [[id, fields], ...]}
        return [
            (as_text(stream), entry[0], entry[1]) for stream, entries in reply.items() for entry in entries
        ]
    rows: list[tuple[str | None, Any, Any]] = []
    for item in reply or []:
        first, second = item[0], item[1]
        if isinstance(second, list):  # XREAD: [stream, [(id, fields), ...]]
            rows.extend((as_text(first), entry[0], entry[1]) for entry in second)
        else:  # XRANGE: (id, fields)
            rows.append((None, first, second))
    return rows


def entries_frame(reply: Any) -> pd.DataFrame:
    """Stream entries as a table: ``id``, its two parts ``id_ms`` and ``id_seq``, then one column per field.

    Accepts the reply of XRANGE / XREVRANGE (keeps its order) or of XREAD /
    XREADGROUP (adds a ``stream`` column first). Field columns appear in the
    order fields are first seen; an entry without a field shows ``<NA>``. An
    entry whose message was deleted (XREADGROUP of history returns no fields)
    shows ``<NA>`` in every field column.
    """
    triples = _entries_of(reply)
    field_names: list[str] = []
    records: list[dict[str, Any]] = []
    with_stream = any(stream is not None for stream, _, _ in triples)
    for stream, entry_id, fields in triples:
        ms, seq = split_id(entry_id)
        record: dict[str, Any] = {"id": as_text(entry_id), "id_ms": ms, "id_seq": seq}
        if with_stream:
            record = {"stream": stream, **record}
        for name, value in (fields or {}).items():
            name = as_text(name)
            if name in ("stream", "id", "id_ms", "id_seq"):
                name = f"{name} (field)"  # a field must not overwrite a column of the ID
            if name not in field_names:
                field_names.append(name)
            record[name] = as_text(value)
        records.append(record)
    columns = (["stream"] if with_stream else []) + ["id", "id_ms", "id_seq"] + field_names
    frame = pd.DataFrame.from_records(records, columns=columns)
    for name in field_names:
        frame[name] = frame[name].astype("string")
    return frame


def stream_info_frame(info: Mapping[str, Any], *, internals: bool = False) -> pd.DataFrame:
    """XINFO STREAM as a two-column table (``field``, ``value``), in a fixed order.

    ``first-entry`` and ``last-entry`` show the entry IDs only. Fields that
    differ between servers of the same data (fakeredis adds newer fields and
    counts radix-tree nodes differently) are left out unless
    ``internals=True`` asks for the radix-tree counters.
    """
    decoded = {as_text(key): value for key, value in info.items()}
    names = STREAM_INFO_FIELDS + (STREAM_INFO_INTERNALS if internals else ())
    rows = []
    for name in names:
        if name not in decoded:
            continue
        value = decoded[name]
        if name in ("first-entry", "last-entry"):
            value = as_text(value[0]) if value else None
        rows.append({"field": name, "value": as_text(value)})
    return pd.DataFrame(rows, columns=["field", "value"])


def groups_frame(groups: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """XINFO GROUPS as a table, one row per group, sorted by name.

    Columns: name, consumers, pending, last-delivered-id, entries-read, lag.
    ``entries-read`` and ``lag`` show ``<NA>`` where Redis answers NULL (it cannot tell).
    """
    rows = []
    for group in groups:
        decoded = {as_text(key): as_text(value) for key, value in group.items()}
        rows.append({name: decoded.get(name) for name in GROUP_FIELDS})
    frame = pd.DataFrame(rows, columns=list(GROUP_FIELDS))
    # Nullable integers, so a NULL shows as <NA> and the column stays integral.
    frame = frame.astype({"consumers": "int64", "pending": "int64", "entries-read": "Int64", "lag": "Int64"})
    return frame.sort_values("name", kind="stable").reset_index(drop=True)


def consumers_frame(
    consumers: Iterable[Mapping[str, Any]], *, idle_bounds: Sequence[int] | None = None
) -> pd.DataFrame:
    """XINFO CONSUMERS as a table (name, pending, idle), sorted by name.

    Real servers sort consumers by name, fakeredis by creation; this view sorts
    either way. The ``inactive`` field (Redis 7.2 and later) is left out so that
    the table is the same on 7.0. With ``idle_bounds`` the idle column holds
    ranges (see :func:`idle_bound`) instead of milliseconds.
    """
    rows = []
    for consumer in consumers:
        decoded = {as_text(key): as_text(value) for key, value in consumer.items()}
        idle = int(decoded["idle"])
        rows.append(
            {
                "name": decoded["name"],
                "pending": int(decoded["pending"]),
                "idle": idle_bound(idle, idle_bounds) if idle_bounds else idle,
            }
        )
    frame = pd.DataFrame(rows, columns=["name", "pending", "idle"])
    return frame.sort_values("name", kind="stable").reset_index(drop=True)


def pending_summary_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The summary form of XPENDING as a table: one row per consumer, sorted by name.

    Columns: consumer, pending. The totals (``pending``, ``min``, ``max``) stay
    in the summary dict itself, and are also kept in ``frame.attrs``.
    """
    rows = [
        {"consumer": as_text(item["name"]), "pending": int(item["pending"])}
        for item in summary.get("consumers") or []
    ]
    frame = pd.DataFrame(rows, columns=["consumer", "pending"])
    frame = frame.sort_values("consumer", kind="stable").reset_index(drop=True)
    frame.attrs = {
        "pending": int(summary.get("pending") or 0),
        "min": as_text(summary.get("min")),
        "max": as_text(summary.get("max")),
    }
    return frame


def pending_frame(
    entries: Iterable[Mapping[str, Any]], *, idle_bounds: Sequence[int] | None = None
) -> pd.DataFrame:
    """The extended form of XPENDING (``xpending_range``) as a table, sorted by ID.

    Columns: id, consumer, idle, deliveries. With ``idle_bounds`` the idle
    column holds ranges (see :func:`idle_bound`) instead of milliseconds.
    """
    rows = []
    for entry in entries:
        idle = int(entry["time_since_delivered"])
        rows.append(
            {
                "id": as_text(entry["message_id"]),
                "consumer": as_text(entry["consumer"]),
                "idle": idle_bound(idle, idle_bounds) if idle_bounds else idle,
                "deliveries": int(entry["times_delivered"]),
            }
        )
    rows.sort(key=lambda row: split_id(row["id"]))
    return pd.DataFrame(rows, columns=["id", "consumer", "idle", "deliveries"])
