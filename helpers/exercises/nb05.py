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
    pending_ids,
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


MAX_SEQ = 2**64 - 1  # a stream ID's two parts are unsigned 64-bit numbers


def _successor(entry_id: str) -> str:
    """The smallest ID after ``entry_id``: the next sequence number, or the next millisecond's 0."""
    ms, seq = id_key(entry_id)
    return f"{ms + 1}-0" if seq == MAX_SEQ else f"{ms}-{seq + 1}"


def _reference_safe_minid(client: redis.Redis, stream: str) -> str:
    """The smallest MINID that trims every entry no group still needs, and no other: not below any
    group's oldest pending entry, nor past the entry after its last-delivered ID. (Any ID from here
    up to the next entry that exists trims the same entries.)"""
    limits = []
    for info in client.xinfo_groups(stream):
        group = {as_text(key): as_text(value) for key, value in info.items()}
        limits.append(_successor(group["last-delivered-id"]))
        oldest_pending = as_text(client.xpending(stream, group["name"]).get("min"))
        if oldest_pending:
            limits.append(oldest_pending)
    return min(limits, key=id_key)


def _trimmed_by(client: redis.Redis, stream: str, minid: tuple[int, int]) -> list[tuple[int, int]]:
    """The IDs that ``XTRIM stream MINID minid`` would remove: those below it."""
    return [key for key in (id_key(entry_id) for entry_id, _ in client.xrange(stream) or []) if key < minid]


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
    """Exercise 5.2: ``safe_minid(client, stream)`` returns a MINID that trims every entry no group
    still needs, and nothing else. Answers are judged by the entries XTRIM would remove, so any ID
    from the smallest such ID up to the next entry that exists passes."""
    if not callable(safe_minid):
        return hint(name, "safe_minid must be a function: safe_minid(client, stream).")
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
                given = id_key(answer)
            except ValueError:
                return hint(name, f"safe_minid returned {answer!r:.60}, which is not a stream ID.")
            if max(given) > MAX_SEQ:
                return hint(name, f"{as_text(answer)} is past the largest stream ID part ({MAX_SEQ}).")
            # Judge the effect: every ID that removes the same entries is as good as any other.
            removed = _trimmed_by(client, stream, given)
            needed = _trimmed_by(client, stream, id_key(expected))
            if len(removed) > len(needed):
                extra = ", ".join(f"{ms}-{seq}" for ms, seq in removed[len(needed) :][:3])
                return hint(
                    name,
                    f"when {description}, MINID {as_text(answer)} would also trim {extra}: work that a "
                    "group has not finished or not been given yet.",
                )
            if len(removed) < len(needed):
                return hint(
                    name,
                    f"when {description}, MINID {as_text(answer)} is safe but keeps more than needed: "
                    "everything before the oldest pending entry and before each group's next entry can go.",
                )
    finally:
        for stale in client.scan_iter(match=f"{key}:*"):
            client.delete(stale)
    return passed(name, "right in all three situations: pending entries and unread entries survive, no more.")


# Exercise 5.3's stream, as its cell builds it: entries 1-0 .. 20-0; billing has been given
# 1-0 .. 12-0 and acknowledged 1-0 .. 9-0; audit has been given and acknowledged 1-0 .. 15-0.
TRIM_EXERCISE_GROUPS = {"billing": ("12-0", ["10-0", "11-0", "12-0"]), "audit": ("15-0", [])}
TRIM_EXERCISE_FIRST_KEPT = (10, 0)


@checker("Exercise 5.3 (trim as far as is safe)")
def check_trimmed_safely(name: str, client: redis.Redis, stream: str, total: int) -> CheckResult:
    """Exercise 5.3: ``stream``, built by the exercise cell, is trimmed exactly as far as its groups
    allow, and its groups are as the cell left them (acknowledging or deleting work is not trimming)."""
    groups = (
        {as_text(info["name"]): info for info in client.xinfo_groups(stream)} if client.exists(stream) else {}
    )
    for group, (last_delivered, pending) in TRIM_EXERCISE_GROUPS.items():
        if group not in groups:
            return hint(
                name, f"the group {group} is gone: trim only; run the exercise cell again to rebuild it."
            )
        if as_text(groups[group]["last-delivered-id"]) != last_delivered:
            return hint(name, f"{group}'s position changed: trim only; run the exercise cell again.")
        if pending_ids(client, stream, group) != pending:
            return hint(
                name,
                f"{group} should still have {pending or 'nothing'} pending, and has "
                f"{pending_ids(client, stream, group) or 'nothing'}: acknowledging work that was never done "
                "is not trimming. Run the exercise cell again and only trim.",
            )
    remaining = [id_key(entry_id) for entry_id, _ in client.xrange(stream) or []]
    expected = [(n, 0) for n in range(1, total + 1) if (n, 0) >= TRIM_EXERCISE_FIRST_KEPT]
    if remaining == expected:
        return passed(name, f"{total - len(expected)} entries trimmed; every pending and unread entry kept.")
    if len(remaining) > len(expected):
        return hint(
            name, f"{len(remaining) - len(expected)} entries could still go: trim exactly to the safe MINID."
        )
    return hint(
        name, "entries that a group still needs were trimmed: run the exercise cell again and trim less."
    )
