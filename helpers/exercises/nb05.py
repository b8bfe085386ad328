"""Exercise checkers of notebook 05, trimming and memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    checker,
    hint,
    id_key,
    passed,
)

__all__ = ["check_retention_window", "check_safe_minid", "check_trimmed_safely"]


@checker("Exercise 5.1 (a time window)")
def check_retention_window(
    name: str, client: redis.Redis, stream: str, newest_ms: int, window_ms: int
) -> CheckResult:
    """Exercise 5.1: ``stream`` keeps exactly the entries with IDs from ``newest_ms - window_ms`` on."""
    boundary = newest_ms - window_ms
    first = client.xrange(stream, count=1) or []
    if not first:
        return hint(name, f"{stream} is empty: trim with MINID, which keeps entries at or after an ID.")
    first_ms = id_key(as_text(first[0][0]))[0]
    if first_ms == boundary:
        return passed(
            name, f"the stream starts at {boundary}-0: the last {window_ms // 1000} seconds and no more."
        )
    if first_ms < boundary:
        return hint(
            name,
            f"the stream still starts at {first_ms}-0. If you trimmed with '~', Redis only removes whole "
            "nodes: trim exactly (approximate=False). The boundary is the newest ID minus the window.",
        )
    return hint(
        name, f"the stream starts at {first_ms}-0, after {boundary}-0: entries inside the window are gone."
    )


def _successor(entry_id: str) -> str:
    ms, seq = id_key(entry_id)
    return f"{ms}-{seq + 1}"


def _reference_safe_minid(client: redis.Redis, stream: str) -> str:
    """The greatest MINID that trims no pending entry and no entry some group has not been given yet."""
    limits = []
    for info in client.xinfo_groups(stream):
        group = {as_text(key): as_text(value) for key, value in info.items()}
        limits.append(_successor(group["last-delivered-id"]))
        oldest_pending = as_text(client.xpending(stream, group["name"]).get("min"))
        if oldest_pending:
            limits.append(oldest_pending)
    return min(limits, key=id_key)


def _minid_scenarios(client: redis.Redis, key: str) -> list[tuple[str, str]]:
    """Build three streams on ``key``:N; return (stream, description) pairs."""
    scenarios = []
    # 1: a group with pending entries, another that has read further.
    stream = f"{key}:1"
    for n in range(1, 11):
        client.xadd(stream, {"n": n}, id=f"{n}-0")
    client.xgroup_create(stream, "billing", id="0")
    client.xreadgroup("billing", "a", {stream: ">"}, count=6)
    client.xack(stream, "billing", "1-0", "2-0", "3-0", "4-0")
    client.xgroup_create(stream, "audit", id="0")
    client.xreadgroup("audit", "b", {stream: ">"}, count=8)
    client.xack(stream, "audit", *[f"{n}-0" for n in range(1, 9)])
    scenarios.append((stream, "billing still has 5-0 and 6-0 pending"))
    # 2: nothing pending; one group has only read three entries.
    stream = f"{key}:2"
    for n in range(1, 11):
        client.xadd(stream, {"n": n}, id=f"{n}-0")
    for group, count in (("fast", 10), ("slow", 3)):
        client.xgroup_create(stream, group, id="0")
        client.xreadgroup(group, "c", {stream: ">"}, count=count)
        client.xack(stream, group, *[f"{n}-0" for n in range(1, count + 1)])
    scenarios.append((stream, "group slow has only been given 1-0 to 3-0"))
    # 3: a group that has read nothing yet.
    stream = f"{key}:3"
    for n in range(1, 6):
        client.xadd(stream, {"n": n}, id=f"{n}-0")
    client.xgroup_create(stream, "new", id="0")
    scenarios.append((stream, "group new has not read anything"))
    return scenarios


@checker("Exercise 5.2 (a safe MINID)")
def check_safe_minid(name: str, safe_minid: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 5.2: ``safe_minid(client, stream)`` returns the greatest MINID that loses no work."""
    key = "course:check:minid"
    for stale in client.scan_iter(match=f"{key}:*"):
        client.delete(stale)
    try:
        for stream, description in _minid_scenarios(client, key):
            expected = _reference_safe_minid(client, stream)
            try:
                answer = safe_minid(client, stream)
            except Exception as exc:  # the learner's code: report, don't crash the notebook
                return hint(name, f"safe_minid raised {type(exc).__name__}: {exc}")
            if answer is None:
                return hint(name, "safe_minid returned None: return an ID such as '5-0'.")
            try:
                given = id_key(as_text(answer))
            except ValueError:
                return hint(name, f"safe_minid returned {answer!r}, which is not a stream ID.")
            if given > id_key(expected):
                return hint(
                    name, f"when {description}, MINID {as_text(answer)} would trim work that is not done."
                )
            if given < id_key(expected):
                return hint(
                    name,
                    f"when {description}, MINID {as_text(answer)} is safe but keeps more than needed: "
                    "everything before the oldest pending entry and before each group's next entry can go.",
                )
    finally:
        for stale in client.scan_iter(match=f"{key}:*"):
            client.delete(stale)
    return passed(name, "right in all three situations: pending entries and unread entries survive, no more.")


@checker("Exercise 5.3 (trim as far as is safe)")
def check_trimmed_safely(name: str, client: redis.Redis, stream: str, total: int) -> CheckResult:
    """Exercise 5.3: ``stream`` (IDs 1-0 .. total-0) is trimmed exactly to its safe MINID."""
    boundary = id_key(_reference_safe_minid(client, stream))
    remaining = [id_key(as_text(entry_id)) for entry_id, _ in client.xrange(stream) or []]
    expected = [(n, 0) for n in range(1, total + 1) if (n, 0) >= boundary]
    if remaining == expected:
        return passed(name, f"{total - len(expected)} entries trimmed; every pending and unread entry kept.")
    if len(remaining) > len(expected):
        return hint(
            name, f"{len(remaining) - len(expected)} entries could still go: trim exactly to the safe MINID."
        )
    return hint(
        name, "entries that a group still needs were trimmed: run the exercise cell again and trim less."
    )
