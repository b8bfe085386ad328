"""Every exercise checker, with a right and a wrong answer."""

from __future__ import annotations

import contextlib
import inspect
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

import helpers
from helpers.cluster import LocalCluster


def test_check_ping(client: redis.Redis) -> None:
    assert helpers.check_ping(client.ping()).passed
    assert not helpers.check_ping(None).passed
    assert not helpers.check_ping("PONG").passed
    assert "answer is still None" in str(helpers.check_ping(None))


def test_check_explicit_ids_right(client: redis.Redis) -> None:
    for entry_id in ("1000-0", "1000-1", "1001-0"):
        client.xadd("ex:sensor", {"celsius": 21}, id=entry_id)
    result = helpers.check_explicit_ids(client, "ex:sensor")
    assert result.passed and str(result).startswith("[PASS]")


def test_check_explicit_ids_wrong(client: redis.Redis) -> None:
    assert "does not exist" in helpers.check_explicit_ids(client, "ex:sensor").message
    client.set("ex:sensor", "x")
    assert "not a stream" in helpers.check_explicit_ids(client, "ex:sensor").message
    client.delete("ex:sensor")
    client.xadd("ex:sensor", {"celsius": 21}, id="1000-0")
    client.xadd("ex:sensor", {"celsius": 22}, id="1001-0")
    result = helpers.check_explicit_ids(client, "ex:sensor")
    assert not result.passed and "expected" in result.message and str(result).startswith("[NOT YET]")
    client.delete("ex:sensor")
    for entry_id in ("1000-0", "1000-1", "1001-0"):
        client.xadd("ex:sensor", {"kelvin": 294}, id=entry_id)
    assert "no 'celsius' field" in helpers.check_explicit_ids(client, "ex:sensor").message


def test_check_next_id() -> None:
    for right in ("5-4", b"5-4", " 5-4 ", "05-4", "5-04"):  # XADD reads 05-4 as 5-4
        assert helpers.check_next_id(right).passed, right
    for wrong, words in [
        ("5-3", "equal"),
        ("4-9", "smaller"),
        ("6-0", "stay in millisecond 5"),
        ("5-10", "smaller sequence number would do"),
        ("five", "not an ID"),
        ("5-4-1", "not an ID"),
        (None, "still None"),
        (5.4, "not an ID"),
        (["5-4"], "not an ID"),
    ]:
        result = helpers.check_next_id(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def _right_reader(client: redis.Redis, key: str, page_size: int) -> list[str]:
    ids: list[str] = []
    start = "-"
    while True:
        page: Any = client.xrange(key, min=start, max="+", count=page_size)
        ids += [entry_id for entry_id, _ in page]
        if len(page) < page_size:
            return ids
        start = "(" + page[-1][0]


def _inclusive_reader(client: redis.Redis, key: str, page_size: int) -> list[str]:
    ids: list[str] = []
    start = "-"
    for _ in range(20):
        page: Any = client.xrange(key, min=start, max="+", count=page_size)
        ids += [entry_id for entry_id, _ in page]
        if len(page) < page_size:
            break
        start = page[-1][0]  # inclusive: the last entry comes back at the top of the next page
    return ids


def test_check_page_reader(client: redis.Redis) -> None:
    assert helpers.check_page_reader(_right_reader, client).passed
    assert "twice" in helpers.check_page_reader(_inclusive_reader, client).message
    everything = helpers.check_page_reader(lambda c, k, n: [i for i, _ in c.xrange(k)], client)
    assert not everything.passed and "count=5" in everything.message
    assert "never called" in helpers.check_page_reader(lambda c, k, n: [], client).message
    assert "raised ZeroDivisionError" in helpers.check_page_reader(lambda c, k, n: 1 // 0, client).message
    assert client.exists("course:check:paging") == 0


def test_check_blocking_client() -> None:
    assert helpers.check_blocking_client(redis.Redis(socket_timeout=None), 10_000).passed
    assert helpers.check_blocking_client(redis.Redis(socket_timeout=15), 10_000).passed
    default = helpers.check_blocking_client(redis.Redis(), 10_000)
    assert not default.passed and "TimeoutError" in default.message
    assert not helpers.check_blocking_client(redis.Redis(socket_timeout=10), 10_000).passed
    from_url_default = helpers.check_blocking_client(redis.Redis.from_url("redis://127.0.0.1:6379"), 10_000)
    assert not from_url_default.passed and "is 5 s" in from_url_default.message
    assert helpers.check_blocking_client(
        redis.Redis.from_url("redis://127.0.0.1:6379", socket_timeout=None), 10_000
    ).passed


def test_check_group_from_start(client: redis.Redis) -> None:
    for n in range(1, 6):
        client.xadd("ex:events", {"n": n}, id=f"{n}-0")
    assert "no group" in helpers.check_group_from_start(client, "ex:events", "audit").message
    client.xgroup_create("ex:events", "audit", id="$")
    assert "skips the entries" in helpers.check_group_from_start(client, "ex:events", "audit").message
    client.xgroup_destroy("ex:events", "audit")
    client.xgroup_create("ex:events", "audit", id="0")
    assert helpers.check_group_from_start(client, "ex:events", "audit").passed
    client.xreadgroup("audit", "a", {"ex:events": ">"}, count=1)
    assert "already delivered" in helpers.check_group_from_start(client, "ex:events", "audit").message


def test_check_fan_out_deliveries() -> None:
    for right in (24, 24.0, "24"):
        assert helpers.check_fan_out_deliveries(right).passed, right
    for wrong, words in [
        (None, "still None"),
        (12, "one group"),
        (60, "one consumer"),
        (5, "group by group"),
        ([24], "not a whole number"),
        ({"a": 12}, "not a whole number"),
        (True, "not a whole number"),
        (24.5, "not a whole number"),
    ]:
        result = helpers.check_fan_out_deliveries(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_group_rewound(client: redis.Redis) -> None:
    assert "no group" in helpers.check_group_rewound(client, "ex:replay", "replay").message
    for n in range(1, 7):
        client.xadd("ex:replay", {"n": n}, id=f"{n}-0")
    client.xgroup_create("ex:replay", "replay", id="0")
    client.xreadgroup("replay", "a", {"ex:replay": ">"})
    wrong = helpers.check_group_rewound(client, "ex:replay", "replay")
    assert not wrong.passed and "6-0" in wrong.message
    client.xgroup_setid("ex:replay", "replay", "3-0")
    assert helpers.check_group_rewound(client, "ex:replay", "replay").passed


def _two_consumers_pending(client: redis.Redis) -> None:
    for n in range(1, 7):
        client.xadd("ex:acks", {"n": n}, id=f"{n}-0")
    client.xgroup_create("ex:acks", "g", id="0")
    client.xreadgroup("g", "alice", {"ex:acks": ">"}, count=3)
    client.xreadgroup("g", "bob", {"ex:acks": ">"}, count=3)


def test_check_acked_consumer(client: redis.Redis) -> None:
    _two_consumers_pending(client)
    check = helpers.check_acked_consumer
    assert "still has 3 pending" in check(client, "ex:acks", "g", "bob", "alice", 3).message
    client.xack("ex:acks", "g", "4-0")
    assert "still has 2 pending" in check(client, "ex:acks", "g", "bob", "alice", 3).message
    client.xack("ex:acks", "g", "1-0", "5-0", "6-0")
    assert "should still have 3" in check(client, "ex:acks", "g", "bob", "alice", 3).message
    assert check(client, "ex:acks", "g", "bob", "alice", 2).passed
    assert "XPENDING failed" in check(client, "ex:acks", "nogroup", "bob", "alice", 2).message


def test_check_xack_count() -> None:
    assert helpers.check_xack_count(2).passed
    for wrong in (None, 3, 4, 1):
        assert not helpers.check_xack_count(wrong).passed


_CREDIT_ONCE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], 1, 'EX', 604800)
return 1
"""


def _idempotent(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    """Right: keyed on the producer's payment ID; credit first, marker last, in one script."""
    done = f"course:check:done:{fields['payment_id']}"
    client.eval(_CREDIT_ONCE, 2, "course:check:balance", done, int(fields["amount"]))


def _keyed_on_entry_id(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    done = f"course:check:done:{message_id}"
    client.eval(_CREDIT_ONCE, 2, "course:check:balance", done, int(fields["amount"]))


def _marker_in_multi(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    """The old lesson's transaction: a failing INCRBY still leaves the marker behind."""
    done = f"course:check:done:{fields['payment_id']}"

    def apply(pipe: Any) -> None:
        if pipe.exists(done):
            return
        pipe.multi()
        pipe.incrby("course:check:balance", int(fields["amount"]))
        pipe.set(done, 1, ex=604_800)

    client.transaction(apply, done)


def _marker_first(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    if client.set(f"course:check:done:{fields['payment_id']}", 1, nx=True):
        client.incrby("course:check:balance", int(fields["amount"]))


def _naive(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    client.incrby("course:check:balance", int(fields["amount"]))


def test_check_idempotent_handler(client: redis.Redis) -> None:
    check = helpers.check_idempotent_handler
    assert check(_idempotent, client).passed
    for handler, words in [
        (_naive, "duplicates included"),
        (_keyed_on_entry_id, "key the marker on the ID the producer gave"),
        (_marker_in_multi, "the marker was written anyway"),
        (_marker_first, "the marker was written anyway"),
        (lambda c, i, f: None, "nothing was written"),
        (lambda c, i, f: f["nope"], "raised KeyError"),
        (None, "must be a function"),
    ]:
        result = check(handler, client)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (handler, result)
    assert not list(client.scan_iter(match="course:check:*"))


def _ghost_and_alive(client: redis.Redis, entries: int = 12) -> None:
    for n in range(1, entries + 1):
        client.xadd("ex:orphans", {"n": n}, id=f"{n}-0")
    client.xgroup_create("ex:orphans", "g", id="0")
    client.xreadgroup("g", "ghost", {"ex:orphans": ">"}, count=entries - 2)
    client.xreadgroup("g", "alive", {"ex:orphans": ">"}, count=2)


def test_check_orphans(client: redis.Redis) -> None:
    _ghost_and_alive(client)
    right = [f"{n}-0" for n in range(1, 11)]
    assert helpers.check_orphans(right, client, "ex:orphans", "g", "ghost").passed
    assert helpers.check_orphans(list(reversed(right)), client, "ex:orphans", "g", "ghost").passed
    assert (
        "filter by consumer"
        in helpers.check_orphans([*right, "11-0"], client, "ex:orphans", "g", "ghost").message
    )
    assert "are missing" in helpers.check_orphans(right[:5], client, "ex:orphans", "g", "ghost").message
    assert "still None" in helpers.check_orphans(None, client, "ex:orphans", "g", "ghost").message
    for odd in (["x"], [1, 2, 3], 5, "1-0", [None], [["1-0"]]):
        result = helpers.check_orphans(odd, client, "ex:orphans", "g", "ghost")
        assert not result.passed and "not a list of entry IDs" in result.message, (odd, result)


def test_check_all_claimed(client: redis.Redis) -> None:
    _ghost_and_alive(client)
    check = helpers.check_all_claimed
    assert "still has all 10" in check(client, "ex:orphans", "g", "ghost", "rescuer", 10).message
    client.xautoclaim("ex:orphans", "g", "rescuer", 0, "0-0", count=4)
    assert "cursor" in check(client, "ex:orphans", "g", "ghost", "rescuer", 10).message
    cursor = "0-0"
    while True:
        cursor, _, _ = client.xautoclaim("ex:orphans", "g", "rescuer", 0, cursor, count=4)
        if cursor == "0-0":
            break
    # XAUTOCLAIM also took alive's two entries (min-idle 0): not what was asked.
    assert not check(client, "ex:orphans", "g", "ghost", "rescuer", 10).passed
    client.xclaim("ex:orphans", "g", "alive", 0, ["11-0", "12-0"])
    assert check(client, "ex:orphans", "g", "ghost", "rescuer", 10).passed


_MOVE_SCRIPT = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def _dead_letter_pairs(fields: dict[Any, Any], entry_id: str, reason: str) -> list[Any]:
    return [item for pair in {**fields, "original_id": entry_id, "reason": reason}.items() for item in pair]


def _script_mover(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> Any:
    pairs = _dead_letter_pairs(fields, entry_id, reason)
    return client.eval(_MOVE_SCRIPT, 2, stream, f"{stream}:dead", group, entry_id, *pairs)


def _watch_mover(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    """Also right: check everything that could fail under WATCH, then MULTI/EXEC."""
    dead = f"{stream}:dead"

    def move(pipe: Any) -> None:
        if not pipe.xpending_range(stream, group, entry_id, entry_id, 1):
            return
        if pipe.type(dead) not in ("none", "stream"):
            raise ValueError(f"{dead} is not a stream")
        pipe.multi()
        pipe.xadd(dead, {**fields, "original_id": entry_id, "reason": reason})
        pipe.xack(stream, group, entry_id)

    client.transaction(move, stream, dead)


def _multi_mover(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    """The old lesson: atomic against a crash, but it moves twice and loses the message on WRONGTYPE."""
    with client.pipeline(transaction=True) as pipe:
        pipe.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})
        pipe.xack(stream, group, entry_id)
        pipe.execute()


def _checked_multi_mover(
    client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str
) -> None:
    """Checks the entry is pending, but not the destination: MULTI runs the XACK after a failed XADD."""
    if not client.xpending_range(stream, group, entry_id, entry_id, 1):
        return
    _multi_mover(client, stream, group, entry_id, fields, reason)


def _ack_first_script(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> Any:
    script = """
    if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
      redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
    end
    """
    pairs = _dead_letter_pairs(fields, entry_id, reason)
    return client.eval(script, 2, stream, f"{stream}:dead", group, entry_id, *pairs)


def _two_calls(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    if client.xpending_range(stream, group, entry_id, entry_id, 1):
        client.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})
        client.xack(stream, group, entry_id)


def _ack_then_add(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    if client.xack(stream, group, entry_id):
        client.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})


def test_check_dead_letter(client: redis.Redis) -> None:
    check = helpers.check_dead_letter
    assert check(_script_mover, client).passed
    assert check(_watch_mover, client).passed
    for mover, words in [
        (_multi_mover, "second dead letter"),
        (_checked_multi_mover, "acknowledged anyway: the message is lost"),
        (_ack_first_script, "acknowledged anyway: the message is lost"),
        (_ack_then_add, "acknowledged anyway: the message is lost"),
        (_two_calls, "in both places"),
    ]:
        result = check(mover, client)
        assert not result.passed and words in result.message, (mover.__name__, result)

    def no_ack(c: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
        c.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})

    def no_fields(c: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
        c.xadd(f"{stream}:dead", {"original_id": entry_id, "reason": reason})
        c.xack(stream, group, entry_id)

    assert "still pending" in check(no_ack, client).message
    assert "lacks" in check(no_fields, client).message
    assert "holds 0 entries" in check(lambda *args: None, client).message
    assert "raised ZeroDivisionError" in check(lambda *args: 1 / 0, client).message
    assert "must be a function" in check(None, client).message  # type: ignore[arg-type]
    assert not list(client.scan_iter(match="course:check:*"))


def test_check_zombie_ack() -> None:
    assert helpers.check_zombie_ack(1).passed
    for wrong in (None, 0, 2):
        assert not helpers.check_zombie_ack(wrong).passed


def _metrics(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    for second in range(1, 121):
        pipe.xadd("ex:metrics", {"cpu": second % 7}, id=f"{second * 1000}-0")
    pipe.execute()


def test_check_retention_window(client: redis.Redis) -> None:
    _metrics(client)
    check = helpers.check_retention_window
    assert "still starts at 1000-0" in check(client, "ex:metrics", 120_000, 30_000).message
    client.xtrim("ex:metrics", minid="90000-0", approximate=False)
    assert check(client, "ex:metrics", 120_000, 30_000).passed
    client.xtrim("ex:metrics", minid="95000-0", approximate=False)
    assert "inside the window are gone" in check(client, "ex:metrics", 120_000, 30_000).message
    client.delete("ex:metrics")
    assert "empty" in check(client, "ex:metrics", 120_000, 30_000).message


def _right_safe_minid(client: redis.Redis, stream: str) -> str:
    limits: list[tuple[int, int]] = []
    for group in client.xinfo_groups(stream):
        ms, seq = group["last-delivered-id"].split("-")
        limits.append((int(ms), int(seq) + 1))
        oldest = client.xpending(stream, group["name"])["min"]
        if oldest:
            limits.append(helpers.split_id(oldest))
    ms, seq = min(limits)
    return f"{ms}-{seq}"


def _pending_only(client: redis.Redis, stream: str) -> str | None:
    oldest = [client.xpending(stream, group["name"])["min"] for group in client.xinfo_groups(stream)]
    found = [entry_id for entry_id in oldest if entry_id]
    return min(found, key=lambda entry_id: tuple(map(int, entry_id.split("-")))) if found else "999-0"


def _next_needed_entry(client: redis.Redis, stream: str) -> str:
    """Equally right: the oldest entry some group still needs (pending, or the next to be given)."""
    needed = []
    for group in client.xinfo_groups(stream):
        oldest = client.xpending(stream, group["name"])["min"]
        following: Any = client.xrange(stream, min="(" + group["last-delivered-id"], count=1)
        needed += [oldest] if oldest else []
        needed += [following[0][0]] if following else []
    return min(needed, key=helpers.split_id) if needed else "999-0"


def test_check_safe_minid(client: redis.Redis) -> None:
    assert helpers.check_safe_minid(_right_safe_minid, client).passed
    assert helpers.check_safe_minid(_next_needed_entry, client).passed
    unsafe = helpers.check_safe_minid(_pending_only, client)
    assert not unsafe.passed and "would also trim" in unsafe.message
    past_the_limit = helpers.check_safe_minid(lambda c, s: f"1-{2**64}", client)
    assert "past the largest" in past_the_limit.message
    assert "not a stream ID" in helpers.check_safe_minid(lambda c, s: ["5-0"], client).message
    assert "keeps more than needed" in helpers.check_safe_minid(lambda c, s: "0-0", client).message
    assert "returned None" in helpers.check_safe_minid(lambda c, s: None, client).message
    assert "not a stream ID" in helpers.check_safe_minid(lambda c, s: "soon", client).message
    assert "raised" in helpers.check_safe_minid(lambda c, s: 1 / 0, client).message
    assert not list(client.scan_iter(match="course:check:*"))


def _trim_exercise(client: redis.Redis) -> None:
    """Exercise 5.3's stream, as its cell builds it."""
    client.delete("ex:orders")
    for n in range(1, 21):
        client.xadd("ex:orders", {"n": n}, id=f"{n}-0")
    client.xgroup_create("ex:orders", "billing", id="0")
    client.xreadgroup("billing", "a", {"ex:orders": ">"}, count=12)
    client.xack("ex:orders", "billing", *[f"{n}-0" for n in range(1, 10)])
    client.xgroup_create("ex:orders", "audit", id="0")
    client.xreadgroup("audit", "b", {"ex:orders": ">"}, count=15)
    client.xack("ex:orders", "audit", *[f"{n}-0" for n in range(1, 16)])


def test_check_trimmed_safely(client: redis.Redis) -> None:
    _trim_exercise(client)
    check = helpers.check_trimmed_safely
    assert "could still go" in check(client, "ex:orders", 20).message
    client.xtrim("ex:orders", minid="10-0", approximate=False)
    assert check(client, "ex:orders", 20).passed
    client.xtrim("ex:orders", minid="11-0", approximate=False)
    assert "were trimmed" in check(client, "ex:orders", 20).message


def test_check_trimmed_safely_refuses_work_thrown_away(client: redis.Redis) -> None:
    """Acknowledging billing's pending work, or destroying a group, and then trimming further is not safe."""
    check = helpers.check_trimmed_safely
    for destroy, words in [
        (lambda: client.xack("ex:orders", "billing", "10-0", "11-0", "12-0"), "acknowledging work"),
        (lambda: client.xgroup_destroy("ex:orders", "billing"), "group billing is gone"),
    ]:
        _trim_exercise(client)
        destroy()
        client.xtrim("ex:orders", minid="13-0", approximate=False)
        result = check(client, "ex:orders", 20)
        assert not result.passed and words in result.message, result
    assert "group billing is gone" in check(client, "no-such-stream", 20).message


def test_check_duplicates_bound() -> None:
    assert helpers.check_duplicates_bound(10).passed
    for wrong in (None, 0, 1, 30):
        assert not helpers.check_duplicates_bound(wrong).passed


def _bill(client: redis.Redis, stream: str) -> helpers.WorkerStats:
    def handler(message_id: str, fields: dict[str, str]) -> None:
        amount = int(fields["amount"])
        if amount < 0:
            raise ValueError("negative amount")
        client.incrby(f"{stream}:total", amount)

    worker = helpers.Worker(client, stream, group="billing", consumer="b1", handler=handler, max_deliveries=1)
    return worker.run(max_messages=12)


def test_check_billing_run(client: redis.Redis) -> None:
    stream = "ex:orders"
    helpers.setup_billing_exercise(client, stream)
    assert "no group 'billing'" in helpers.check_billing_run(client, stream).message
    client.xgroup_create(stream, "billing", id="0")
    assert "still pending" in helpers.check_billing_run(client, stream).message
    _bill(client, stream)
    assert helpers.check_billing_run(client, stream).passed
    client.incrby(f"{stream}:total", 1)
    assert "INCRBY each positive amount once" in helpers.check_billing_run(client, stream).message
    helpers.setup_billing_exercise(client, stream)
    helpers.Worker(client, stream, group="billing", consumer="b1", handler=lambda i, f: None).run(
        max_messages=12
    )
    assert "raise for negative amounts" in helpers.check_billing_run(client, stream).message


def test_check_claim_idle() -> None:
    for right in (25_000, 30_000, 60_000, 45_000.5):
        assert helpers.check_claim_idle(right).passed, right
    for wrong, words in [
        (None, "still None"),
        ("soon", "not a number"),
        ([30_000], "not a number"),
        (float("nan"), "not a number"),
        (20_000, "go higher"),
        (20_001, "only 1 ms"),
        (24_000, "a margin"),
        (3_600_000, "go lower"),
    ]:
        result = helpers.check_claim_idle(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_same_slot() -> None:
    assert helpers.check_same_slot("{jobs:0}", "{jobs:0}:dead").passed
    assert "hash tag makes it certain" not in helpers.check_same_slot("{jobs:0}", "{jobs:0}:dead").message
    for stream, dead_letter, words in [
        (None, "x", "still None"),
        ("jobs", 3, "non-empty key name"),
        ("{jobs}", "{jobs}", "another key"),
        ("jobs:0", "jobs:0:dead", "the same tag"),
        ("{jobs:0}", "{jobs:1}:dead", "the same tag"),
        ("{}jobs", "{}jobs:dead", "if not empty"),
    ]:
        result = helpers.check_same_slot(stream, dead_letter)
        assert not result.passed and words in result.message, (stream, dead_letter, result)


def test_check_partition_design() -> None:
    assert helpers.check_partition_design("b").passed
    assert helpers.check_partition_design(" B ").passed
    for wrong, words in [
        (None, "still None"),
        ("e", "one letter"),
        (2, "one letter"),
        ("a", "one master"),
        ("c", "order is lost"),
        ("d", "one slot"),
    ]:
        result = helpers.check_partition_design(wrong)
        assert not result.passed and words in result.message, wrong


@pytest.mark.needs_server
def test_check_confirmed_writer(cluster: LocalCluster) -> None:
    def right(client: Any, stream: str, messages: list[dict[str, Any]]) -> bool:
        return helpers.write_and_wait(client, stream, messages, timeout_ms=100)[1] >= 1

    def waits_on_the_default_node(client: Any, stream: str, messages: list[dict[str, Any]]) -> bool:
        for fields in messages:
            client.xadd(stream, fields)
        return bool(client.wait(1, 100) >= 1)

    def never_writes(client: Any, stream: str, messages: list[dict[str, Any]]) -> bool:
        return True

    def waits_forever(client: Any, stream: str, messages: list[dict[str, Any]]) -> bool:
        node = client.get_redis_connection(client.get_node_from_key(stream))
        pipe = node.pipeline(transaction=False)
        for fields in messages:
            pipe.xadd(stream, fields)
        pipe.execute_command("WAIT", 1, 0)
        return bool(pipe.execute()[-1] >= 1)

    assert helpers.check_confirmed_writer(cluster, right).passed
    result = helpers.check_confirmed_writer(cluster, waits_on_the_default_node)
    assert not result.passed and "default node" in result.message
    assert "write the messages" in helpers.check_confirmed_writer(cluster, never_writes).message
    assert "give WAIT a timeout" in helpers.check_confirmed_writer(cluster, waits_forever, timeout=1).message
    assert "must be a function" in helpers.check_confirmed_writer(cluster, None).message  # type: ignore[arg-type]


CHECKERS = sorted(name for name in helpers.__all__ if name.startswith("check_"))
ODD_VALUES: list[Any] = [None, "", "nonsense", b"\xff", 0, -1, 2.5, float("nan"), [], [1, 2, 3], {}, object()]


@pytest.mark.parametrize("name", CHECKERS)
def test_a_checker_never_raises_whatever_it_is_given(name: str, client: redis.Redis) -> None:
    """Each argument of each checker replaced in turn by odd values: a hint every time, never an exception."""
    check = getattr(helpers, name)
    parameters = list(inspect.signature(check).parameters)
    assert parameters, name
    for position in range(len(parameters)):
        for odd in ODD_VALUES:
            args = [client if parameter == "client" else "course:check:odd" for parameter in parameters]
            if parameters[position] == "cluster":
                continue  # needs a live cluster; its odd writers are tested with one
            args[position] = odd
            result = check(*args)
            assert isinstance(result, helpers.CheckResult), (name, position, odd)
            # (0 is a number some quizzes want: only odd values of other kinds must not pass.)
            assert not result.passed or parameters[position] != "answer" or odd == 0, (name, odd, result)
    assert not list(client.scan_iter(match="course:check:*"))


# Answers that look right and are not (from a review of the checkers), and two right ones ------------


def _pairs(fields: dict[Any, Any], entry_id: str, reason: str) -> dict[Any, Any]:
    return {**fields, "original_id": entry_id, "reason": reason}


def _check_then_move(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    """Checks, then moves in one transaction, but without WATCH: another worker can move it in between."""
    if not client.xpending_range(stream, group, entry_id, entry_id, 1):
        return
    if client.type(f"{stream}:dead") not in ("none", "stream"):
        raise TypeError("not a stream")
    with client.pipeline() as pipe:
        pipe.xadd(f"{stream}:dead", _pairs(fields, entry_id, reason))
        pipe.xack(stream, group, entry_id)
        pipe.execute()


def _script_then_ack(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    """Two steps, the first hidden in a script."""
    if client.xpending_range(stream, group, entry_id, entry_id, 1):
        pairs = [item for pair in _pairs(fields, entry_id, reason).items() for item in pair]
        client.eval("return redis.call('XADD', KEYS[1], '*', unpack(ARGV))", 1, f"{stream}:dead", *pairs)
        client.xack(stream, group, entry_id)


def _add_then_pipe(client: Any, stream: str, group: str, entry_id: str, fields: Any, reason: str) -> None:
    """Two steps, the second in a pipeline."""
    if client.xpending_range(stream, group, entry_id, entry_id, 1):
        client.xadd(f"{stream}:dead", _pairs(fields, entry_id, reason))
        with client.pipeline() as pipe:
            pipe.xack(stream, group, entry_id)
            pipe.execute()


def test_check_dead_letter_sees_steps_of_every_kind_and_races(client: redis.Redis) -> None:
    check = helpers.check_dead_letter
    for mover, words in [
        (_check_then_move, "another worker moved the entry just before"),
        (_script_then_ack, "died between your two writes"),
        (_add_then_pipe, "died between your two writes"),
    ]:
        result = check(mover, client)
        assert not result.passed and words in result.message, (mover.__name__, result)
    assert check(_watch_mover, client).passed and check(_script_mover, client).passed


def _watch_and_validate(client: Any, message_id: str, fields: dict[str, str]) -> None:
    """Right too: under WATCH, check the marker and that the balance is a number, then MULTI."""
    done = f"course:check:done:{fields['payment_id']}"

    def apply(pipe: Any) -> None:
        if pipe.exists(done):
            return
        balance = pipe.get("course:check:balance")
        if balance is not None:
            int(balance)  # raises before anything is written if it is not a number
        pipe.multi()
        pipe.incrby("course:check:balance", int(fields["amount"]))
        pipe.set(done, 1, ex=604_800)

    client.transaction(apply, done, "course:check:balance")


def _three_calls(client: Any, message_id: str, fields: dict[str, str]) -> None:
    done = f"course:check:done:{fields['payment_id']}"
    if not client.exists(done):
        client.incrby("course:check:balance", int(fields["amount"]))
        client.set(done, 1, ex=604_800)


def _marker_first_undone_on_error(client: Any, message_id: str, fields: dict[str, str]) -> None:
    done = f"course:check:done:{fields['payment_id']}"
    if client.set(done, 1, nx=True, ex=604_800):
        try:
            client.incrby("course:check:balance", int(fields["amount"]))
        except redis.ResponseError:
            client.delete(done)
            raise


def _swallows_the_error(client: Any, message_id: str, fields: dict[str, str]) -> None:
    with contextlib.suppress(redis.ResponseError):
        _idempotent(client, message_id, fields)


def test_check_idempotent_handler_sees_crashes_and_swallowed_errors(client: redis.Redis) -> None:
    check = helpers.check_idempotent_handler
    assert check(_watch_and_validate, client).passed
    for handler, words in [
        (_three_calls, "credited 2 times instead of once"),
        (_marker_first_undone_on_error, "the marker was written anyway"),
        (_swallows_the_error, "handle returned normally"),
    ]:
        result = check(handler, client)
        assert not result.passed and words in result.message, (handler.__name__, result)


# 08: durability ---------------------------------------------------------------------------------------


def test_check_power_loss_setting() -> None:
    for right in ("always", " Always ", b"always"):
        assert helpers.check_power_loss_setting(right).passed
    for wrong, words in [
        ("everysec", "newest acknowledged writes"),
        ("no", "does not fsync while it runs"),
        ("rdb", "snapshot"),
        ("none", "nothing outlives"),
        (None, "still None"),
        ("fsync", "write one of"),
        (1, "write one of"),
    ]:
        result = helpers.check_power_loss_setting(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_process_crash_loss() -> None:
    assert helpers.check_process_crash_loss(0).passed and helpers.check_process_crash_loss("0").passed
    for wrong in (None, 1, "some", [0], -1):
        assert not helpers.check_process_crash_loss(wrong).passed


def _send_with_retry(client: Any, stream: str, fields: dict[str, str], deadline_s: float) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return client.xadd(stream, fields)
        except redis.exceptions.OutOfMemoryError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _retries_everything(client: Any, stream: str, fields: dict[str, str], deadline_s: float) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return client.xadd(stream, fields)
        except redis.RedisError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _no_retry(client: Any, stream: str, fields: dict[str, str], deadline_s: float) -> Any:
    return client.xadd(stream, fields)


def _swallows(client: Any, stream: str, fields: dict[str, str], deadline_s: float) -> Any:
    with contextlib.suppress(redis.RedisError):
        return _send_with_retry(client, stream, fields, deadline_s)
    return None


@pytest.mark.needs_server
def test_check_oom_producer() -> None:
    check = helpers.check_oom_producer
    assert check(_send_with_retry).passed
    for send, words in [
        (_no_retry, "the server had room 0.3 s into the call"),
        (_retries_everything, "a key of the wrong type"),
        (_swallows, "raise at the deadline"),
        (None, "must be a function"),
    ]:
        result = check(send)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (send, result)


# 09: retries, delays, priorities, back-pressure --------------------------------------------------------


def test_check_fourth_delivery() -> None:
    assert helpers.check_fourth_delivery(11_000).passed and helpers.check_fourth_delivery("11000").passed
    for wrong, words in [
        (6_000, "third delivery"),
        (16_000, "only three waits"),
        (7_000, "last delay serves every later retry"),
        (3_000, "milliseconds to wait"),
        (12_345, "add the waits"),
        (None, "still None"),
    ]:
        result = helpers.check_fourth_delivery(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def _next_run_at(now: datetime) -> datetime:
    at_nine = now.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return at_nine if at_nine > now else at_nine + timedelta(days=1)


def test_check_next_run() -> None:
    assert helpers.check_next_run(_next_run_at).passed

    def today_only(now: datetime) -> datetime:
        return now.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)

    def naive(now: datetime) -> datetime:
        return _next_run_at(now).replace(tzinfo=None)

    def local_nine(now: datetime) -> datetime:  # 09:00 in now's own zone, not UTC
        at_nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        return at_nine if at_nine > now else at_nine + timedelta(days=1)

    def at_or_after(now: datetime) -> datetime:  # 09:00 exactly counts as "next": it is not after now
        at_nine = now.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
        return at_nine if at_nine >= now else at_nine + timedelta(days=1)

    def breaks(now: datetime) -> datetime:
        raise RuntimeError("oops")

    for function, words in [
        (today_only, "the next run is tomorrow's"),
        (naive, "naive datetime"),
        (local_nine, "the next 09:00 UTC is"),
        (at_or_after, "not after now"),
        (breaks, "raised RuntimeError: oops"),
        (lambda now: "09:00", "not a datetime"),
        (None, "must be a function"),
    ]:
        result = helpers.check_next_run(function)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (function, result)


def test_check_which_bound() -> None:
    for right in ("pending", "max_pending", b"Pending "):
        assert helpers.check_which_bound(right).passed
    for wrong, words in [
        ("lag", "lag stays at 0"),
        ("max_length", "a day of history"),
        (None, "still None"),
        ("memory", "write one of"),
        (3, "write one of"),
    ]:
        result = helpers.check_which_bound(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_trimmed_before_read() -> None:
    assert helpers.check_trimmed_before_read(50).passed and helpers.check_trimmed_before_read("50").passed
    for wrong, words in [
        (450, "lag as Redis counts it"),
        (600, "had read 550 of them first"),
        (400, "still in the stream"),
        (7, "Count those in between"),
        (None, "still None"),
        ("fifty", "not a whole number"),
    ]:
        result = helpers.check_trimmed_before_read(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def _count_unread(client: Any, stream: str, group: str) -> int:
    (info,) = [g for g in client.xinfo_groups(stream) if g["name"] == group]
    return len(client.xrange(stream, "(" + info["last-delivered-id"], "+"))


def test_check_count_unread(client: redis.Redis) -> None:
    assert helpers.check_count_unread(client, _count_unread).passed

    def from_lag(client: Any, stream: str, group: str) -> Any:
        return client.xinfo_groups(stream)[0]["lag"]

    def added_minus_read(client: Any, stream: str, group: str) -> Any:
        info, group_info = client.xinfo_stream(stream), client.xinfo_groups(stream)[0]
        return info["entries-added"] - (group_info["entries-read"] or 0)

    def inclusive(client: Any, stream: str, group: str) -> int:
        (info,) = client.xinfo_groups(stream)
        return len(client.xrange(stream, info["last-delivered-id"], "+"))

    def lag_unless_null(client: Any, stream: str, group: str) -> Any:
        lag = from_lag(client, stream, group)
        return _count_unread(client, stream, group) if lag is None else lag

    for answer, words in [
        (from_lag, "returned None"),
        (lag_unless_null, "wrong ENTRIESREAD 2 (Redis trusts it), 4 entries are unread, not 8"),
        (added_minus_read, "unread, not"),
        (inclusive, "unread, not"),
        (lambda c, s, g: "seven", "not a whole number"),
        (lambda c, s, g: 1 / 0, "raised ZeroDivisionError"),
        (None, "must be a function"),
    ]:
        result = helpers.check_count_unread(client, answer)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (answer, result)
    assert not list(client.scan_iter(match="course:check:*"))


def test_check_silent_failure() -> None:
    for right in ("last_seen", "last_seen_ms", "max_last_seen_ms", b"Last Seen"):
        assert helpers.check_silent_failure(right).passed
    for wrong, words in [
        ("lag", "lag stays at 0"),
        ("max_pending", "nothing is pending"),
        ("oldest_pending_ms", "no oldest one"),
        ("dead_letters", "nothing runs"),
        (None, "still None"),
        ("memory", "write one of"),
        (3, "write one of"),
    ]:
        result = helpers.check_silent_failure(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_jobs_left() -> None:
    assert helpers.check_jobs_left(3).passed and helpers.check_jobs_left("3").passed
    for wrong, words in [(5, "removes a job"), (4, "each BRPOP"), (1, "five jobs"), (None, "still None")]:
        result = helpers.check_jobs_left(wrong)
        assert not result.passed and words in result.message, (wrong, result)


def test_check_queue_choices() -> None:
    right = {"replay": "kafka", "emails": "redis-streams", "cursors": "pubsub", "serverless": "sqs"}
    assert helpers.check_queue_choices(right).passed
    assert helpers.check_queue_choices({**right, "emails": "Redis Streams", "serverless": b"SQS"}).passed
    for answer, words in [
        ({**right, "replay": "redis-streams"}, "'replay': not redis-streams"),
        ({**right, "emails": "redis-list"}, "'emails': not redis-list"),
        ({**right, "cursors": "kafka"}, "'cursors': not kafka"),
        ({**right, "serverless": None}, "still None"),
        ({**right, "serverless": "rabbitmq"}, "is not one of"),
        ({"replay": "kafka"}, "missing: emails, cursors, serverless"),
        (["kafka"], "must be a dict"),
    ]:
        result = helpers.check_queue_choices(answer)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (answer, result)


def test_check_visibility_timeout() -> None:
    for right in ("claim_idle_ms", " Claim_Idle_MS", b"min-idle-time", "claim-idle-ms", "min idle time"):
        assert helpers.check_visibility_timeout(right).passed
    for wrong, words in [
        ("block_ms", "never gives a message back"),
        ("max_deliveries", "maxReceiveCount"),
        ("maxlen", "retention limit"),
        ("visibility", "write one of"),
        (None, "still None"),
    ]:
        result = helpers.check_visibility_timeout(wrong)
        assert not result.passed and words in result.message, (wrong, result)


RIGHT_DESIGN = {
    "short_retry": "pending list",
    "long_delay": "sorted set",
    "after_last_try": "dead-letter stream",
    "dead_letter_steps": "write then ack",
    "handler": "idempotent",
}


def test_check_job_queue_design() -> None:
    assert helpers.check_job_queue_design(RIGHT_DESIGN).passed
    assert helpers.check_job_queue_design({**RIGHT_DESIGN, "short_retry": "Sorted_Set"}).passed
    changes: list[tuple[dict[str, Any], str]] = [
        ({"short_retry": "worker memory"}, "lost when that process dies"),
        ({"long_delay": "pending list"}, "claim threshold"),
        ({"after_last_try": "retried forever"}, "neither vanish nor loop"),
        ({"dead_letter_steps": "MULTI"}, "does not roll back"),
        ({"handler": "exactly once by redis"}, "at least once"),
        ({"handler": "quick"}, "write one of"),
        ({"handler": None}, "write one of"),
    ]
    for change, words in changes:
        result = helpers.check_job_queue_design({**RIGHT_DESIGN, **change})
        assert not result.passed and words in result.message, (change, result)
    missing = {key: value for key, value in RIGHT_DESIGN.items() if key != "handler"}
    assert "has no 'handler'" in helpers.check_job_queue_design(missing).message
    assert "must be a dict" in helpers.check_job_queue_design(["pending list"]).message  # type: ignore[arg-type]


_BILL_SCRIPT = """
local customer, merchant = redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])
if (customer and not tonumber(customer)) or (merchant and not tonumber(merchant)) then
  return redis.error_reply('a balance is not a number')
end
if redis.call('SET', KEYS[3], 1, 'NX') == false then return 0 end
redis.call('DECRBY', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[1])
return 1
"""


def _bill_once(client: Any, message_id: str, fields: dict[str, str]) -> None:
    keys = [fields["customer"], fields["merchant"], f"{fields['merchant']}:billed:{fields['invoice']}"]
    client.eval(_BILL_SCRIPT, 3, *keys, fields["cents"])


def _bill_every_time(client: Any, message_id: str, fields: dict[str, str]) -> None:
    client.decrby(fields["customer"], int(fields["cents"]))
    client.incrby(fields["merchant"], int(fields["cents"]))


def _bill_by_entry(client: Any, message_id: str, fields: dict[str, str]) -> None:
    keys = [fields["customer"], fields["merchant"], f"{fields['merchant']}:billed:{message_id}"]
    client.eval(_BILL_SCRIPT, 3, *keys, fields["cents"])


def _bill_without_validation(client: Any, message_id: str, fields: dict[str, str]) -> None:
    script = _BILL_SCRIPT.replace("return redis.error_reply('a balance is not a number')", "")
    keys = [fields["customer"], fields["merchant"], f"{fields['merchant']}:billed:{fields['invoice']}"]
    client.eval(script, 3, *keys, fields["cents"])


def _bill_in_steps(client: Any, message_id: str, fields: dict[str, str]) -> None:
    marker = f"{fields['merchant']}:billed:{fields['invoice']}"
    if client.exists(marker):
        return
    client.eval(_BILL_SCRIPT.replace("if redis.call('SET', KEYS[3], 1, 'NX') == false then return 0 end", ""),
                3, fields["customer"], fields["merchant"], marker, fields["cents"])  # fmt: skip
    client.set(marker, 1)


def test_check_billing_handler(client: redis.Redis) -> None:
    assert helpers.check_billing_handler(_bill_once, client).passed
    for handle, words in [
        (_bill_every_time, "every delivery was billed"),
        (_bill_by_entry, "INV-2 was billed twice"),
        (_bill_without_validation, "the customer had already been debited"),
        (_bill_in_steps, "died between two of handle's writes"),
        (lambda c, m, f: None, "nothing moved"),
        (lambda c, m, f: 1 / 0, "raised ZeroDivisionError"),
        (None, "must be a function"),
    ]:
        result = helpers.check_billing_handler(handle, client)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (handle, result)
    assert not list(client.scan_iter(match="course:check:*"))


def _tenant_stream(tenant: str) -> dict[str, str]:
    return {
        "stream": f"{{{tenant}}}:jobs",
        "dead": f"{{{tenant}}}:jobs:dead",
        "delayed": f"{{{tenant}}}:jobs:delayed",
    }


def _tenant_partition(tenant: str) -> dict[str, str]:
    tag = f"{{jobs:{helpers.partition_of(tenant, 16)}}}"
    return {"stream": f"{tag}:stream", "dead": f"{tag}:dead", "delayed": f"{tag}:delayed"}


def test_check_tenant_layout() -> None:
    assert helpers.check_tenant_layout(_tenant_stream, 1).passed
    assert "partitions of up to" in helpers.check_tenant_layout(_tenant_partition, 1).message
    for tenant_keys, consumers, words in [
        (lambda t: {"stream": f"{t}:jobs", "dead": f"{t}:dead", "delayed": f"{t}:delayed"}, 1, "CROSSSLOT"),
        (
            lambda t: {"stream": f"{{all}}:{t}", "dead": f"{{all}}:{t}:d", "delayed": f"{{all}}:{t}:z"},
            1,
            "one shard",
        ),
        (_tenant_stream, 4, "out of order"),
        (_tenant_stream, "one", "whole number"),
        (lambda t: {"stream": "s"}, 1, "must return a dict"),
        (lambda t: {"stream": "s", "dead": "s", "delayed": "z"}, 1, "same key"),
        (None, 1, "must be a function"),
    ]:
        result = helpers.check_tenant_layout(tenant_keys, consumers)  # type: ignore[arg-type]
        assert not result.passed and words in result.message, (tenant_keys, consumers, result)
