"""Self-checking exercises.

Each ``check_*`` function looks at a learner's answer (a value, a function, or
the state it left in Redis) and returns a :class:`CheckResult`. In a notebook
the result shows itself as one line: a pass, or a hint that says what to look
at next. Tests use ``result.passed``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from .partitions import hash_slot
from .views import _text

if TYPE_CHECKING:
    from .cluster import LocalCluster

__all__ = [
    "CheckResult",
    "check_acked_consumer",
    "check_all_claimed",
    "check_billing_run",
    "check_blocking_client",
    "check_claim_idle",
    "check_confirmed_writer",
    "check_dead_letter",
    "check_duplicates_bound",
    "check_explicit_ids",
    "check_fan_out_deliveries",
    "check_group_from_start",
    "check_group_rewound",
    "check_idempotent_handler",
    "check_next_id",
    "check_orphans",
    "check_page_reader",
    "check_partition_design",
    "check_ping",
    "check_retention_window",
    "check_safe_minid",
    "check_same_slot",
    "check_trimmed_safely",
    "check_xack_count",
    "check_zombie_ack",
    "setup_billing_exercise",
]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "NOT YET"
        return f"[{mark}] {self.exercise}: {self.message}"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.passed


def _passed(exercise: str, message: str) -> CheckResult:
    return CheckResult(exercise, True, message)


def _hint(exercise: str, message: str) -> CheckResult:
    return CheckResult(exercise, False, message)


def _check_number(
    exercise: str, answer: Any, right: int, praise: str, hints: dict[int, str], otherwise: str
) -> CheckResult:
    """A quiz with one whole-number answer: praise, a hint for a known wrong answer, or ``otherwise``."""
    if answer is None:
        return _hint(exercise, "answer is still None: write a whole number.")
    if answer == right:
        return _passed(exercise, praise)
    if answer in hints:
        return _hint(exercise, hints[answer])
    return _hint(exercise, f"{answer!r}: {otherwise}")


# 00: start here ---------------------------------------------------------------------


def check_ping(answer: Any) -> CheckResult:
    """Exercise 0.1: store the reply of ``client.ping()`` in ``answer``."""
    name = "Exercise 0.1 (ping)"
    if answer is None:
        return _hint(name, "answer is still None: set answer = client.ping() and run the cell again.")
    if answer is True:
        return _passed(name, "the server answered PING, and redis-py turned its PONG into True.")
    return _hint(name, f"expected the reply of client.ping(), which is True; got {answer!r}.")


# 01: your first stream ---------------------------------------------------------------

EXPLICIT_IDS = ("1000-0", "1000-1", "1001-0")


def check_explicit_ids(client: redis.Redis, key: str) -> CheckResult:
    """Exercise 1.1: the stream ``key`` holds exactly IDs 1000-0, 1000-1, 1001-0, each with ``celsius``."""
    name = "Exercise 1.1 (explicit IDs)"
    if not client.exists(key):
        return _hint(name, f"{key} does not exist yet: XADD creates the stream with its first entry.")
    if client.type(key) not in ("stream", b"stream"):
        return _hint(name, f"{key} holds a {client.type(key)!r}, not a stream: delete it and use XADD.")
    entries = client.xrange(key) or []
    found = [_text(entry_id) for entry_id, _ in entries]
    if found != list(EXPLICIT_IDS):
        return _hint(
            name,
            f"the stream holds IDs {found}, expected {list(EXPLICIT_IDS)}. "
            "Pass id=... to xadd; delete the key to start over.",
        )
    missing = [_text(entry_id) for entry_id, fields in entries if "celsius" not in _decoded_keys(fields)]
    if missing:
        return _hint(name, f"entries {missing} have no 'celsius' field.")
    return _passed(name, "three entries with the IDs you chose, in order.")


def check_next_id(answer: Any) -> CheckResult:
    """Exercise 1.2: after top ID ``5-3``, the smallest ID XADD accepts is ``5-4``."""
    name = "Exercise 1.2 (the next ID)"
    text = _text(answer).strip() if isinstance(answer, (str, bytes)) else answer
    if text is None:
        return _hint(name, "answer is still None: write the ID as a string, such as '7-0'.")
    if text == "5-4":
        return _passed(name, "same millisecond, next sequence number: 5-4 (5-* would produce it too).")
    if text == "5-3":
        return _hint(name, "5-3 is equal to the top ID, and XADD needs a strictly greater one.")
    if isinstance(text, str) and text.count("-") == 1 and all(p.isdigit() for p in text.split("-")):
        ms, seq = (int(part) for part in text.split("-"))
        if (ms, seq) < (5, 3):
            return _hint(name, f"{text} is smaller than the top ID 5-3, so XADD refuses it.")
        return _hint(name, f"XADD accepts {text}, but a smaller ID would do: stay in millisecond 5.")
    return _hint(name, f"{answer!r} is not an ID of the form <milliseconds>-<sequence>.")


def check_page_reader(
    read_all: Callable[[redis.Redis, str, int], list[str]], client: redis.Redis
) -> CheckResult:
    """Exercise 1.3: ``read_all(client, key, page_size)`` pages through a stream with XRANGE.

    The check builds its own stream of 23 entries (several share a millisecond),
    calls ``read_all`` with pages of 5, and looks at both the result and the
    XRANGE calls it made.
    """
    name = "Exercise 1.3 (paging with XRANGE)"
    key = "course:check:paging"
    page_size = 5
    client.delete(key)
    expected = []
    for n in range(23):
        entry_id = f"{100 + n // 3}-{n % 3}"
        client.xadd(key, {"n": n}, id=entry_id)
        expected.append(entry_id)
    spy = _XrangeSpy(client)
    try:
        result = read_all(spy, key, page_size)  # type: ignore[arg-type]
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return _hint(name, f"read_all raised {type(exc).__name__}: {exc}")
    finally:
        client.delete(key)
    got = [_text(item[0] if isinstance(item, (tuple, list)) else item) for item in (result or [])]
    if not spy.calls:
        return _hint(name, "read_all never called client.xrange: page with xrange(key, min, max, count=...).")
    if any(count is None or count > page_size for count in spy.calls):
        return _hint(name, f"pass count={page_size} (page_size) to every xrange call, so no page is larger.")
    if len(got) > len(set(got)):
        return _hint(
            name, "some IDs came back twice: start each page after the last ID with an exclusive '(' bound."
        )
    if got != expected:
        return _hint(name, f"expected {len(expected)} IDs in order, got {len(got)}: {got[:8]}...")
    if len(spy.calls) < math.ceil(len(expected) / page_size):
        return _hint(name, "the result is right but the pages were not: use count=page_size.")
    pages = len(spy.calls)
    return _passed(name, f"all {len(expected)} IDs, in order, in {pages} pages of at most {page_size}.")


def check_blocking_client(client: redis.Redis, block_ms: int) -> CheckResult:
    """Exercise 1.4: a client whose socket timeout cannot cut a BLOCK of ``block_ms`` short."""
    name = "Exercise 1.4 (blocking reads and socket_timeout)"
    timeout = _effective_socket_timeout(client)
    if timeout is None:
        return _passed(name, "socket_timeout=None: the socket waits as long as the server blocks.")
    if timeout * 1000 > block_ms:
        return _passed(name, f"socket_timeout={timeout} s outlasts BLOCK {block_ms} ms.")
    return _hint(
        name,
        f"this client's socket_timeout is {timeout} s, which ends before BLOCK {block_ms} ms does, so the "
        "read raises TimeoutError. Pass a socket_timeout longer than the block time, or None.",
    )


# 02: consumer groups ------------------------------------------------------------------


def _group_info(client: redis.Redis, stream: str, group: str) -> dict[str, Any] | None:
    """XINFO GROUPS of ``stream`` for ``group`` with str keys, or None if either is missing."""
    if not client.exists(stream):
        return None
    for info in client.xinfo_groups(stream):
        decoded = {_text(key): _text(value) for key, value in info.items()}
        if decoded["name"] == group:
            return decoded
    return None


def check_group_from_start(client: redis.Redis, stream: str, group: str) -> CheckResult:
    """Exercise 2.1: ``group`` exists on ``stream`` and will deliver the whole backlog."""
    name = "Exercise 2.1 (a group that reads the backlog)"
    info = _group_info(client, stream, group)
    if info is None:
        return _hint(name, f"there is no group {group!r} on {stream}: create it with xgroup_create.")
    if info["last-delivered-id"] == "0-0":
        return _passed(
            name, f"{group} starts before the first entry, so '>' delivers all {client.xlen(stream)}."
        )
    if info["pending"]:
        return _hint(
            name, "the group has already delivered entries: destroy it and create it again, without reading."
        )
    return _hint(
        name,
        f"the group starts after {info['last-delivered-id']}, so it skips the entries already there. "
        "Create it with id='0' instead of '$' (destroy it first).",
    )


def check_fan_out_deliveries(answer: Any) -> CheckResult:
    """Exercise 2.2: 12 entries, group A with 2 consumers and group B with 3: 24 deliveries."""
    return _check_number(
        "Exercise 2.2 (fan-out)",
        answer,
        24,
        "each group gets all 12 entries once, shared among its own consumers: 2 x 12 = 24.",
        {
            12: "12 would be right for one group. Each group has its own position in the stream.",
            60: "within one group an entry goes to one consumer, not to each of them.",
        },
        "count, group by group, how often each entry is delivered.",
    )


def check_group_rewound(client: redis.Redis, stream: str, group: str) -> CheckResult:
    """Exercise 2.3: ``group`` will deliver the entries after 3-0 again with '>'."""
    name = "Exercise 2.3 (rewind a group)"
    info = _group_info(client, stream, group)
    if info is None:
        return _hint(name, f"there is no group {group!r} on {stream}: the setup cell above creates it.")
    position = info["last-delivered-id"]
    if position == "3-0":
        return _passed(name, "the group's last-delivered ID is 3-0, so '>' delivers 4-0 onwards again.")
    return _hint(
        name,
        f"the group's last-delivered ID is {position}. '>' delivers entries after that ID: "
        "set it to 3-0 with xgroup_setid.",
    )


# 03: acknowledgements and the PEL ------------------------------------------------------


def _pending_by_consumer(client: redis.Redis, stream: str, group: str) -> dict[str, int]:
    summary = client.xpending(stream, group)
    return {_text(item["name"]): int(item["pending"]) for item in summary.get("consumers") or []}


def check_acked_consumer(
    client: redis.Redis, stream: str, group: str, acked: str, untouched: str, untouched_pending: int
) -> CheckResult:
    """Exercise 3.1: every entry pending for ``acked`` is acknowledged, none of ``untouched``'s."""
    name = "Exercise 3.1 (acknowledge one consumer's work)"
    try:
        pending = _pending_by_consumer(client, stream, group)
    except redis.ResponseError as exc:
        return _hint(name, f"XPENDING failed ({exc}): run the setup lines of the exercise cell again.")
    left = pending.get(acked, 0)
    if pending.get(untouched, 0) != untouched_pending:
        return _hint(
            name,
            f"{untouched} should still have {untouched_pending} pending entries, and has "
            f"{pending.get(untouched, 0)}: acknowledge only {acked}'s IDs "
            "(the extended XPENDING with a consumer tells which).",
        )
    if left:
        return _hint(name, f"{acked} still has {left} pending: XACK takes several IDs at once.")
    return _passed(name, f"{acked} has nothing pending and {untouched} still has {untouched_pending}.")


def check_xack_count(answer: Any) -> CheckResult:
    """Exercise 3.2: XACK of 4-0, 4-0, 5-0, 99-0 with 4-0 and 5-0 pending returns 2."""
    return _check_number(
        "Exercise 3.2 (what XACK returns)",
        answer,
        2,
        "XACK counts the IDs it removed from the pending list: 4-0 once, and 5-0.",
        {
            4: "XACK does not count the IDs you pass, only those it found pending.",
            3: "the second 4-0 was no longer pending by the time XACK reached it.",
        },
        "which of the four IDs are pending when XACK reaches them?",
    )


def check_idempotent_handler(
    handle: Callable[[redis.Redis, str, dict[str, str]], Any], client: redis.Redis
) -> CheckResult:
    """Exercise 3.3: ``handle(client, message_id, fields)`` adds each payment once, however often delivered.

    The check uses its own keys: it delivers five payments, three of them twice
    or more, and compares the balance with the sum of the distinct payments.
    """
    name = "Exercise 3.3 (an idempotent handler)"
    balance_key = "course:check:balance"
    helper_pattern = "course:check:*"
    for key in client.scan_iter(match=helper_pattern):
        client.delete(key)
    payments = {"1-0": 10, "2-0": 20, "3-0": 30, "4-0": 40, "5-0": 50}
    deliveries = ["1-0", "2-0", "2-0", "3-0", "1-0", "4-0", "5-0", "2-0"]
    try:
        for message_id in deliveries:
            handle(client, message_id, {"account": "balance", "amount": str(payments[message_id])})
        stored = client.get(balance_key)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return _hint(name, f"handle raised {type(exc).__name__}: {exc}")
    finally:
        for key in client.scan_iter(match=helper_pattern):
            client.delete(key)
    expected = sum(payments.values())
    naive = sum(payments[message_id] for message_id in deliveries)
    total = int(stored) if stored is not None else 0
    if total == expected:
        return _passed(name, f"{len(deliveries)} deliveries of {len(payments)} payments, balance {expected}.")
    if total == naive:
        return _hint(name, f"the balance is {naive}: every delivery was counted, duplicates included.")
    if stored is None:
        return _hint(name, f"nothing was written to {balance_key}: add each amount there with INCRBY.")
    return _hint(name, f"the balance is {total}, expected {expected}.")


# 04: crash and recover ---------------------------------------------------------------


def _pending_ids(client: redis.Redis, stream: str, group: str, consumer: str | None = None) -> list[str]:
    entries = client.xpending_range(stream, group, "-", "+", 10_000, consumername=consumer)
    return [_text(entry["message_id"]) for entry in entries]


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def check_orphans(
    answer: Any, client: redis.Redis, stream: str, group: str, dead_consumer: str
) -> CheckResult:
    """Exercise 4.1: ``answer`` lists exactly the IDs pending for ``dead_consumer``."""
    name = "Exercise 4.1 (find the orphans)"
    if answer is None:
        return _hint(name, "answer is still None: make it a list of entry IDs.")
    try:
        given = sorted({_text(item) for item in answer}, key=_id_key)
    except (TypeError, ValueError):
        return _hint(name, f"{answer!r} is not a list of entry IDs such as ['1-0', '2-0'].")
    expected = sorted(_pending_ids(client, stream, group, dead_consumer), key=_id_key)
    if given == expected:
        return _passed(
            name, f"{len(expected)} entries wait for {dead_consumer}, who will never acknowledge them."
        )
    extra = [entry_id for entry_id in given if entry_id not in expected]
    if extra:
        return _hint(name, f"{extra[:3]} are not pending for {dead_consumer}: filter by consumer.")
    return _hint(
        name,
        f"{len(expected) - len(given)} of {dead_consumer}'s pending entries are missing: "
        "xpending_range returns at most `count` entries, so ask for enough (or page).",
    )


def check_all_claimed(
    client: redis.Redis, stream: str, group: str, dead_consumer: str, rescuer: str, expected: int
) -> CheckResult:
    """Exercise 4.2: ``rescuer`` owns all ``expected`` entries that ``dead_consumer`` had."""
    name = "Exercise 4.2 (rescue everything)"
    left = len(_pending_ids(client, stream, group, dead_consumer))
    rescued = len(_pending_ids(client, stream, group, rescuer))
    if left == 0 and rescued == expected:
        return _passed(name, f"{rescuer} owns all {expected} entries; {dead_consumer} owns none.")
    if rescued and left:
        return _hint(
            name,
            f"{rescuer} has {rescued}, {dead_consumer} still has {left}: XAUTOCLAIM returns a cursor; "
            "call it again from that cursor until it returns '0-0'.",
        )
    if left == expected:
        return _hint(name, f"{dead_consumer} still has all {expected}: claim them with xautoclaim.")
    return _hint(name, f"{rescuer} has {rescued} and {dead_consumer} has {left}; expected {expected} and 0.")


def check_dead_letter(mover: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 4.3: ``mover(client, stream, group, entry_id, fields, reason)`` dead-letters one entry.

    The check builds its own stream ``course:check:poison`` with one entry
    delivered three times, calls ``mover``, and expects the entry in
    ``course:check:poison:dead`` (original fields, ``original_id``, ``reason``)
    and no longer pending.
    """
    name = "Exercise 4.3 (a dead-letter move)"
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
        still_pending = _pending_ids(client, stream, group)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return _hint(name, f"the mover raised {type(exc).__name__}: {exc}")
    finally:
        for key in (stream, dead):
            client.delete(key)
    if len(moved) != 1:
        return _hint(name, f"{dead} holds {len(moved)} entries, expected exactly 1 (XADD it there).")
    fields = {_text(key): _text(value) for key, value in (moved[0][1] or {}).items()}
    wanted = {"order": "42", "sku": "tea", "original_id": "1-0", "reason": "handler failed 3 times"}
    missing = {key: value for key, value in wanted.items() if fields.get(key) != value}
    if missing:
        return _hint(name, f"the dead letter lacks {missing}: keep the original fields and add these.")
    if still_pending:
        return _hint(name, "the entry is still pending: XACK it in the same transaction as the XADD.")
    return _passed(name, "moved with its fields, its ID and the reason, and acknowledged.")


def check_zombie_ack(answer: Any) -> CheckResult:
    """Exercise 4.4: a zombie's XACK of an entry that another consumer claimed returns 1."""
    return _check_number(
        "Exercise 4.4 (the zombie's XACK)",
        answer,
        1,
        "XACK does not check who owns the entry: the zombie removes it from B's hands.",
        {0: "that would be safer, but XACK only asks whether the ID is pending in the group."},
        "XACK returns how many of the given IDs it removed from the PEL.",
    )


# 05: trimming and memory --------------------------------------------------------------


def check_retention_window(client: redis.Redis, stream: str, newest_ms: int, window_ms: int) -> CheckResult:
    """Exercise 5.1: ``stream`` keeps exactly the entries with IDs from ``newest_ms - window_ms`` on."""
    name = "Exercise 5.1 (a time window)"
    boundary = newest_ms - window_ms
    first = client.xrange(stream, count=1) or []
    if not first:
        return _hint(name, f"{stream} is empty: trim with MINID, which keeps entries at or after an ID.")
    first_ms = _id_key(_text(first[0][0]))[0]
    if first_ms == boundary:
        return _passed(
            name, f"the stream starts at {boundary}-0: the last {window_ms // 1000} seconds and no more."
        )
    if first_ms < boundary:
        return _hint(
            name,
            f"the stream still starts at {first_ms}-0. If you trimmed with '~', Redis only removes whole "
            "nodes: trim exactly (approximate=False). The boundary is the newest ID minus the window.",
        )
    return _hint(
        name, f"the stream starts at {first_ms}-0, after {boundary}-0: entries inside the window are gone."
    )


def _successor(entry_id: str) -> str:
    ms, seq = _id_key(entry_id)
    return f"{ms}-{seq + 1}"


def _reference_safe_minid(client: redis.Redis, stream: str) -> str:
    """The greatest MINID that trims no pending entry and no entry some group has not been given yet."""
    limits = []
    for info in client.xinfo_groups(stream):
        group = {_text(key): _text(value) for key, value in info.items()}
        limits.append(_successor(group["last-delivered-id"]))
        oldest_pending = _text(client.xpending(stream, group["name"]).get("min"))
        if oldest_pending:
            limits.append(oldest_pending)
    return min(limits, key=_id_key)


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


def check_safe_minid(safe_minid: Callable[[redis.Redis, str], Any], client: redis.Redis) -> CheckResult:
    """Exercise 5.2: ``safe_minid(client, stream)`` returns the greatest MINID that loses no work."""
    name = "Exercise 5.2 (a safe MINID)"
    key = "course:check:minid"
    for stale in client.scan_iter(match=f"{key}:*"):
        client.delete(stale)
    try:
        for stream, description in _minid_scenarios(client, key):
            expected = _reference_safe_minid(client, stream)
            try:
                answer = safe_minid(client, stream)
            except Exception as exc:  # the learner's code: report, don't crash the notebook
                return _hint(name, f"safe_minid raised {type(exc).__name__}: {exc}")
            if answer is None:
                return _hint(name, "safe_minid returned None: return an ID such as '5-0'.")
            try:
                given = _id_key(_text(answer))
            except ValueError:
                return _hint(name, f"safe_minid returned {answer!r}, which is not a stream ID.")
            if given > _id_key(expected):
                return _hint(
                    name, f"when {description}, MINID {_text(answer)} would trim work that is not done."
                )
            if given < _id_key(expected):
                return _hint(
                    name,
                    f"when {description}, MINID {_text(answer)} is safe but keeps more than needed: "
                    "everything before the oldest pending entry and before each group's next entry can go.",
                )
    finally:
        for stale in client.scan_iter(match=f"{key}:*"):
            client.delete(stale)
    return _passed(
        name, "right in all three situations: pending entries and unread entries survive, no more."
    )


def check_trimmed_safely(client: redis.Redis, stream: str, total: int) -> CheckResult:
    """Exercise 5.3: ``stream`` (IDs 1-0 .. total-0) is trimmed exactly to its safe MINID."""
    name = "Exercise 5.3 (trim as far as is safe)"
    boundary = _id_key(_reference_safe_minid(client, stream))
    remaining = [_id_key(_text(entry_id)) for entry_id, _ in client.xrange(stream) or []]
    expected = [(n, 0) for n in range(1, total + 1) if (n, 0) >= boundary]
    if remaining == expected:
        return _passed(name, f"{total - len(expected)} entries trimmed; every pending and unread entry kept.")
    if len(remaining) > len(expected):
        return _hint(
            name, f"{len(remaining) - len(expected)} entries could still go: trim exactly to the safe MINID."
        )
    return _hint(
        name, "entries that a group still needs were trimmed: run the exercise cell again and trim less."
    )


# 06: a worker you can deploy ------------------------------------------------------------------


def check_duplicates_bound(answer: Any) -> CheckResult:
    """Exercise 6.1: one worker with batch 10 is SIGKILLed once: at most 10 messages run twice."""
    return _check_number(
        "Exercise 6.1 (how many duplicates?)",
        answer,
        10,
        "at most one batch: what the killed worker handled but had not yet acknowledged.",
        {
            0: "the worker acknowledges after handling, so work done just before the kill is done again.",
            1: "the worker acknowledges a whole batch at once, not each message.",
        },
        "think of what was handled but not yet acknowledged when the process died.",
    )


ORDER_AMOUNTS = (12, 7, -3, 25, 4, -10, 8, 15, 3, -1, 6, 9)


def setup_billing_exercise(client: redis.Redis, stream: str) -> None:
    """Exercise 6.2's starting point: 12 orders on ``stream``, three with a negative amount."""
    for key in (stream, f"{stream}:dead", f"{stream}:total"):
        client.delete(key)
    pipe = client.pipeline(transaction=False)
    for number, amount in enumerate(ORDER_AMOUNTS, start=1):
        pipe.xadd(stream, {"order": number, "amount": amount})
    pipe.execute()


def check_billing_run(client: redis.Redis, stream: str) -> CheckResult:
    """Exercise 6.2: billing handled every order, negative ones became dead letters, the total is right."""
    name = "Exercise 6.2 (run a worker)"
    info = _group_info(client, stream, "billing")
    if info is None:
        return _hint(
            name, "there is no group 'billing' yet: create a helpers.Worker with group='billing' and run it."
        )
    if info["pending"] or info["lag"]:
        return _hint(
            name,
            f"{info['pending']} orders are still pending and {info['lag']} not delivered: "
            "run(max_messages=12) handles them all (use max_deliveries=1 so a failure is final).",
        )
    dead = client.xrange(f"{stream}:dead") or []
    dead_orders = sorted(int(_text((fields or {}).get("order", 0))) for _, fields in dead)
    negative = sorted(n for n, amount in enumerate(ORDER_AMOUNTS, start=1) if amount < 0)
    if dead_orders != negative:
        return _hint(
            name,
            f"the dead letters hold orders {dead_orders}, expected {negative}: raise for negative amounts.",
        )
    total = client.get(f"{stream}:total")
    expected = sum(amount for amount in ORDER_AMOUNTS if amount > 0)
    if total is None or int(total) != expected:
        return _hint(
            name, f"{stream}:total is {_text(total)}, expected {expected}: INCRBY each positive amount once."
        )
    return _passed(name, f"9 orders billed ({expected} in total), 3 refused into {stream}:dead.")


def check_claim_idle(answer: Any) -> CheckResult:
    """Exercise 6.3: handlers take up to 20 s and nothing extends leases: claim_idle_ms must exceed 20000."""
    name = "Exercise 6.3 (choosing claim_idle_ms)"
    if answer is None:
        return _hint(name, "answer is still None: write a number of milliseconds.")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return _hint(name, f"{answer!r} is not a number of milliseconds.")
    if answer <= 20_000:
        return _hint(
            name, "a message could be claimed by another worker while its handler still runs: go higher."
        )
    if answer > 10 * 60_000:
        return _hint(
            name, "safe, but a crashed worker's messages would wait more than ten minutes: go lower."
        )
    return _passed(name, f"{answer:g} ms outlasts the slowest handler, with a margin, and recovers in time.")


# Internals -----------------------------------------------------------------------------


def _decoded_keys(fields: Any) -> set[str]:
    return {_text(key) for key in (fields or {})}


def _effective_socket_timeout(client: redis.Redis) -> float | None:
    """The socket timeout the client's connections get, defaults included.

    A pool built by ``from_url`` leaves defaults out of ``connection_kwargs``, so
    ask the connection class, without connecting.
    """
    pool = client.connection_pool
    connection = pool.connection_class(**pool.connection_kwargs)
    timeout: float | None = connection.socket_timeout
    return timeout


class _XrangeSpy:
    """Wraps a client and records the ``count`` of every ``xrange`` call."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.calls: list[int | None] = []

    def xrange(self, name: str, min: str = "-", max: str = "+", count: int | None = None) -> Any:
        self.calls.append(count)
        return self._client.xrange(name, min=min, max=max, count=count)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._client, attribute)


# 07: scaling out ---------------------------------------------------------------------


def check_same_slot(stream: Any, dead_letter: Any) -> CheckResult:
    """Exercise 7.1: a stream and its dead-letter stream that a worker can use on a cluster."""
    name = "Exercise 7.1 (one slot for both)"
    for what, value in (("stream", stream), ("dead_letter", dead_letter)):
        if value is None:
            return _hint(name, f"{what} is still None: write a key name.")
        if not isinstance(value, str) or not value:
            return _hint(name, f"{what} must be a non-empty key name (a str), not {value!r}.")
    if stream == dead_letter:
        return _hint(name, "the dead-letter stream must be another key than the stream itself.")
    stream_slot, dead_slot = hash_slot(stream), hash_slot(dead_letter)
    if stream_slot != dead_slot:
        return _hint(
            name,
            f"{stream!r} hashes to slot {stream_slot} and {dead_letter!r} to slot {dead_slot}: only the "
            "part in the first {...} is hashed when there is one; give both keys the same hash tag.",
        )
    if "{" not in stream or "}" not in stream.split("{", 1)[1]:
        return _passed(name, f"both in slot {stream_slot}, by luck of CRC16: a hash tag makes it certain.")
    return _passed(name, f"both hash to slot {stream_slot}, so the dead-letter script may touch both.")


def check_confirmed_writer(
    cluster: LocalCluster, writer: Callable[[Any, str, list[dict[str, Any]]], Any], timeout: float = 10.0
) -> CheckResult:
    """Exercise 7.2: ``writer(client, stream, messages)`` appends the messages and returns True only
    when a replica has them. Checked twice: with the replica up, and with it paused (SIGSTOP)."""
    name = "Exercise 7.2 (confirm on the right connection)"
    if not callable(writer):
        return _hint(name, "writer must be a function writer(client, stream, messages).")
    client = cluster.client()
    try:
        # A stream on another master than the client's default node, where RedisCluster.wait() goes:
        # there, a WAIT on the wrong connection "confirms" at once, and the check can tell.
        default_port = client.get_default_node().port  # type: ignore[no-untyped-call]
        suffix = 0
        while cluster.master_of(f"{{course:07:exercise-7.2.{suffix}}}").port == default_port:
            suffix += 1
        stream = f"{{course:07:exercise-7.2.{suffix}}}"
        client.delete(stream)
        master = cluster.master_of(stream)
        replica = cluster.replica_of(master)

        def call(message: dict[str, Any]) -> tuple[bool, Any]:
            """Run the writer in a thread, so that a WAIT without a timeout cannot hang the check."""
            outcome: list[Any] = []
            thread = threading.Thread(
                target=lambda: outcome.append(_capture(writer, client, stream, [message])), daemon=True
            )
            thread.start()
            thread.join(timeout)
            return (not thread.is_alive()), (outcome[0] if outcome else None)

        finished, healthy = call({"n": 1})
        if not finished:
            return _hint(name, f"the writer ran for more than {timeout:g} s with every node up.")
        if isinstance(healthy, Exception):
            return _hint(name, f"the writer raised {type(healthy).__name__}: {healthy}")
        if healthy is not True:
            return _hint(name, f"with the replica up, the writer should return True, not {healthy!r}.")
        if client.xlen(stream) != 1:
            entries = client.xlen(stream)
            return _hint(name, f"after one message the stream holds {entries} entries: write the messages.")
        cluster.pause(replica)
        try:
            finished, lagging = call({"n": 2})
        finally:
            cluster.resume(replica)
        if not finished:
            return _hint(
                name,
                f"with the replica paused, the writer waited more than {timeout:g} s: give WAIT a timeout "
                "(WAIT 1 0 waits forever).",
            )
        if isinstance(lagging, Exception):
            return _hint(name, f"the writer raised {type(lagging).__name__}: {lagging}")
        if lagging is not False:
            return _hint(
                name,
                f"the replica was paused, yet the writer returned {lagging!r}: WAIT only counts the writes "
                "of the connection it is sent on. RedisCluster.wait() goes to a default node; send the "
                "XADD and the WAIT together to the stream's master (a pipeline on one node connection).",
            )
        return _passed(
            name,
            "True with the replica up, False while it lagged: it knows what a failover may lose.",
        )
    finally:
        client.close()


def _capture(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # the learner's error is the check's message
        return exc


PARTITION_DESIGNS = {
    "a": "one stream, and more consumers in its group",
    "b": "3 streams, a message's stream chosen by a hash of its customer ID",
    "c": "3 streams, messages sent to them in turn (round robin)",
    "d": "3 streams named {orders}:0, {orders}:1 and {orders}:2, chosen by a hash of the customer ID",
}


def check_partition_design(answer: Any) -> CheckResult:
    """Exercise 7.3: which design uses all three masters and keeps each customer's messages in order?"""
    name = "Exercise 7.3 (choose a design)"
    hints = {
        "a": "one stream is one key in one slot on one master: more consumers share its reads, "
        "but every command still goes to that one server.",
        "c": "in turn, one customer's messages land on different partitions, whose consumers run "
        "side by side: their order is lost.",
        "d": "only the part in braces is hashed: {orders} puts all three streams in one slot, on one master.",
    }
    if answer is None:
        return _hint(name, "answer is still None: write one letter, 'a' to 'd'.")
    if not isinstance(answer, str) or answer.strip().lower() not in PARTITION_DESIGNS:
        return _hint(name, f"{answer!r}: write one letter, 'a' to 'd'.")
    letter = answer.strip().lower()
    if letter == "b":
        return _passed(
            name,
            "hashing the customer keeps each customer on one partition; a tag per stream spreads them.",
        )
    return _hint(name, hints[letter])
