"""Exercise checkers of notebook 04, crash and recover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    check_number,
    checker,
    hint,
    id_key,
    passed,
    pending_ids,
)

__all__ = ["check_all_claimed", "check_dead_letter", "check_orphans", "check_zombie_ack"]


@checker("Exercise 4.1 (find the orphans)")
def check_orphans(
    name: str, answer: Any, client: redis.Redis, stream: str, group: str, dead_consumer: str
) -> CheckResult:
    """Exercise 4.1: ``answer`` lists exactly the IDs pending for ``dead_consumer``."""
    if answer is None:
        return hint(name, "answer is still None: make it a list of entry IDs.")
    try:
        given = sorted({as_text(item) for item in answer}, key=id_key)
    except (TypeError, ValueError):
        return hint(name, f"{answer!r} is not a list of entry IDs such as ['1-0', '2-0'].")
    expected = sorted(pending_ids(client, stream, group, dead_consumer), key=id_key)
    if given == expected:
        return passed(
            name, f"{len(expected)} entries wait for {dead_consumer}, who will never acknowledge them."
        )
    extra = [entry_id for entry_id in given if entry_id not in expected]
    if extra:
        return hint(name, f"{extra[:3]} are not pending for {dead_consumer}: filter by consumer.")
    return hint(
        name,
        f"{len(expected) - len(given)} of {dead_consumer}'s pending entries are missing: "
        "xpending_range returns at most `count` entries, so ask for enough (or page).",
    )


@checker("Exercise 4.2 (rescue everything)")
def check_all_claimed(
    name: str, client: redis.Redis, stream: str, group: str, dead_consumer: str, rescuer: str, expected: int
) -> CheckResult:
    """Exercise 4.2: ``rescuer`` owns all ``expected`` entries that ``dead_consumer`` had."""
    left = len(pending_ids(client, stream, group, dead_consumer))
    rescued = len(pending_ids(client, stream, group, rescuer))
    if left == 0 and rescued == expected:
        return passed(name, f"{rescuer} owns all {expected} entries; {dead_consumer} owns none.")
    if rescued and left:
        return hint(
            name,
            f"{rescuer} has {rescued}, {dead_consumer} still has {left}: XAUTOCLAIM returns a cursor; "
            "call it again from that cursor until it returns '0-0'.",
        )
    if left == expected:
        return hint(name, f"{dead_consumer} still has all {expected}: claim them with xautoclaim.")
    return hint(name, f"{rescuer} has {rescued} and {dead_consumer} has {left}; expected {expected} and 0.")


@checker("Exercise 4.3 (a dead-letter move)")
def check_dead_letter(name: str, mover: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 4.3: ``mover(client, stream, group, entry_id, fields, reason)`` dead-letters one entry.

    The check builds its own stream ``course:check:poison`` with one entry
    delivered three times, calls ``mover``, and expects the entry in
    ``course:check:poison:dead`` (original fields, ``original_id``, ``reason``)
    and no longer pending.
    """
    stream, dead, group = "course:check:poison", "course:check:poison:dead", "workers"
    for key in (stream, dead):
        client.delete(key)
    client.xadd(stream, {"order": "42", "sku": "tea"}, id="1-0")
    client.xgroup_create(stream, group, id="0")
    client.xreadgroup(group, "w", {stream: ">"})
    for _ in range(2):
        client.xclaim(stream, group, "w", 0, ["1-0"])
    try:
        mover(client, stream, group, "1-0", {"order": "42", "sku": "tea"}, "handler failed 3 times")
        moved = client.xrange(dead) or []
        still_pending = pending_ids(client, stream, group)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return hint(name, f"the mover raised {type(exc).__name__}: {exc}")
    finally:
        for key in (stream, dead):
            client.delete(key)
    if len(moved) != 1:
        return hint(name, f"{dead} holds {len(moved)} entries, expected exactly 1 (XADD it there).")
    fields = {as_text(key): as_text(value) for key, value in (moved[0][1] or {}).items()}
    wanted = {"order": "42", "sku": "tea", "original_id": "1-0", "reason": "handler failed 3 times"}
    missing = {key: value for key, value in wanted.items() if fields.get(key) != value}
    if missing:
        return hint(name, f"the dead letter lacks {missing}: keep the original fields and add these.")
    if still_pending:
        return hint(name, "the entry is still pending: XACK it in the same transaction as the XADD.")
    return passed(name, "moved with its fields, its ID and the reason, and acknowledged.")


@checker("Exercise 4.4 (the zombie's XACK)")
def check_zombie_ack(name: str, answer: Any) -> CheckResult:
    """Exercise 4.4: a zombie's XACK of an entry that another consumer claimed returns 1."""
    return check_number(
        name,
        answer,
        1,
        "XACK does not check who owns the entry: the zombie removes it from B's hands.",
        {0: "that would be safer, but XACK only asks whether the ID is pending in the group."},
        "XACK returns how many of the given IDs it removed from the PEL.",
    )
