"""Exercise checkers of notebook 04, crash and recover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    Crash,
    check_number,
    checker,
    crash_after_first_step,
    hint,
    id_key,
    passed,
    pending_ids,
    race_before_first_step,
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


_POISON_STREAM, _POISON_DEAD, _POISON_GROUP = "course:check:poison", "course:check:poison:dead", "workers"
_POISON_FIELDS: dict[Any, Any] = {"order": "42", "sku": "tea"}
_POISON_REASON = "handler failed 3 times"


def _poison_entry(client: redis.Redis) -> None:
    """One entry, delivered three times to consumer ``w``, and no dead-letter stream."""
    client.delete(_POISON_STREAM, _POISON_DEAD)
    client.xadd(_POISON_STREAM, _POISON_FIELDS, id="1-0")
    client.xgroup_create(_POISON_STREAM, _POISON_GROUP, id="0")
    client.xreadgroup(_POISON_GROUP, "w", {_POISON_STREAM: ">"})
    for _ in range(2):
        client.xclaim(_POISON_STREAM, _POISON_GROUP, "w", 0, ["1-0"])


def _move(mover: Callable[..., Any], client: Any) -> BaseException | None:
    """Call the learner's mover on the poison entry; return what it raised, if anything."""
    try:
        mover(client, _POISON_STREAM, _POISON_GROUP, "1-0", dict(_POISON_FIELDS), _POISON_REASON)
    except (Exception, Crash) as exc:  # the learner's code, or the simulated crash
        return exc
    return None


def _other_worker_moves(client: redis.Redis) -> None:
    """Another worker dead-letters the poison entry, in one step, as a right answer would."""
    if pending_ids(client, _POISON_STREAM, _POISON_GROUP):
        with client.pipeline(transaction=True) as pipe:
            pipe.xadd(_POISON_DEAD, {**_POISON_FIELDS, "original_id": "1-0", "reason": "the other worker"})
            pipe.xack(_POISON_STREAM, _POISON_GROUP, "1-0")
            pipe.execute()


def _state(client: redis.Redis) -> tuple[list[dict[str, Any]], bool]:
    """(dead letters, whether 1-0 is still pending)."""
    is_stream = as_text(client.type(_POISON_DEAD)) == "stream"  # a string while the write is made to fail
    entries: Any = client.xrange(_POISON_DEAD) if is_stream else []
    dead = [{as_text(k): as_text(v) for k, v in (fields or {}).items()} for _, fields in entries]
    return dead, bool(pending_ids(client, _POISON_STREAM, _POISON_GROUP))


@checker("Exercise 4.3 (a dead-letter move)")
def check_dead_letter(name: str, mover: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 4.3: ``mover(client, stream, group, entry_id, fields, reason)`` moves one pending entry
    to ``<stream>:dead`` and acknowledges it, never losing it and never moving it twice.

    On a stream of its own (``course:check:poison``, one entry delivered three times), the
    check calls the mover: normally; again once the entry is no longer pending; with the
    dead-letter key holding a string, so that the write fails, and again once that is repaired;
    with a process that dies after its first step that may write (a command, a script and a
    transaction are one step each); and with another worker moving the entry just before the
    mover's first step.
    """
    if not callable(mover):
        return hint(name, "move_to_dead_letter must be a function.")
    try:
        _poison_entry(client)
        raised = _move(mover, client)
        dead, pending = _state(client)
        if raised is not None and not dead:
            return hint(name, f"the mover raised {type(raised).__name__}: {raised}")
        if len(dead) != 1:
            return hint(
                name, f"{_POISON_DEAD} holds {len(dead)} entries, expected exactly 1 (XADD it there)."
            )
        wanted = {**_POISON_FIELDS, "original_id": "1-0", "reason": _POISON_REASON}
        missing = {key: value for key, value in wanted.items() if dead[0].get(key) != value}
        if missing:
            return hint(name, f"the dead letter lacks {missing}: keep the original fields and add these.")
        if pending:
            return hint(name, "the entry is still pending: XACK it in the same step as the XADD.")

        _move(mover, client)  # a second worker, or a retry, for an entry already moved
        if len(_state(client)[0]) != 1:
            return hint(
                name,
                "called again for an entry that was no longer pending, the mover wrote a second dead letter: "
                "check that the entry is still pending in the same atomic step (a Lua script) that moves it.",
            )

        _poison_entry(client)
        client.set(_POISON_DEAD, "not a stream")  # the dead-letter write fails with WRONGTYPE
        _move(mover, client)
        if not _state(client)[1]:
            return hint(
                name,
                "when the XADD to the dead-letter stream failed, the entry was acknowledged anyway: the "
                "message is lost. MULTI/EXEC runs every queued command even if one fails, and nothing is "
                "rolled back; in a Lua script an error stops the script, so write the dead letter first "
                "and XACK last.",
            )
        client.delete(_POISON_DEAD)  # repaired: now it must move, once
        _move(mover, client)
        dead, pending = _state(client)
        if len(dead) != 1 or pending:
            return hint(
                name,
                f"after the dead-letter key was repaired, a second call left {len(dead)} dead letters and "
                f"the entry {'still' if pending else 'no longer'} pending; expected 1 and no longer pending.",
            )

        _poison_entry(client)
        _move(mover, crash_after_first_step(client))
        dead, pending = _state(client)
        if dead and pending:
            return hint(
                name,
                "the process died between your two writes: the message is now in both places, and the "
                "retry will dead-letter it a second time. Make the move one step (a Lua script).",
            )
        if not dead and not pending:
            return hint(name, "the process died between your two writes: the message is lost.")

        _poison_entry(client)
        _move(mover, race_before_first_step(client, lambda: _other_worker_moves(client)))
        if len(_state(client)[0]) != 1:
            return hint(
                name,
                "another worker moved the entry just before your mover wrote, and the mover moved it again: "
                "check that it is still pending in the same atomic step that moves it (a Lua script, or "
                "WATCH before the check).",
            )
    finally:
        client.delete(_POISON_STREAM, _POISON_DEAD)
    return passed(
        name,
        "moved once with its fields, its ID and the reason; nothing lost when the write failed or the "
        "process died, and nothing moved twice, not even when another worker raced it.",
    )


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
