"""Every exercise checker, with a right and a wrong answer."""

from __future__ import annotations

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
    assert helpers.check_next_id("5-4").passed
    assert helpers.check_next_id(b"5-4").passed
    for wrong, words in [
        ("5-3", "equal"),
        ("4-9", "smaller"),
        ("6-0", "smaller ID would do"),
        ("five", "not an ID"),
        (None, "still None"),
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
    assert helpers.check_fan_out_deliveries(24).passed
    for wrong in (None, 12, 60, 5):
        assert not helpers.check_fan_out_deliveries(wrong).passed


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


def _idempotent(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    if client.set(f"course:check:done:{message_id}", 1, nx=True):
        client.incrby("course:check:balance", int(fields["amount"]))


def _naive(client: redis.Redis, message_id: str, fields: dict[str, str]) -> None:
    client.incrby("course:check:balance", int(fields["amount"]))


def test_check_idempotent_handler(client: redis.Redis) -> None:
    assert helpers.check_idempotent_handler(_idempotent, client).passed
    naive = helpers.check_idempotent_handler(_naive, client)
    assert not naive.passed and "duplicates included" in naive.message
    assert "nothing was written" in helpers.check_idempotent_handler(lambda c, i, f: None, client).message
    assert "raised KeyError" in helpers.check_idempotent_handler(lambda c, i, f: f["nope"], client).message
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
    assert "not a list" in helpers.check_orphans(["x"], client, "ex:orphans", "g", "ghost").message


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


def _atomic_mover(
    client: redis.Redis, stream: str, group: str, entry_id: str, fields: dict[Any, Any], reason: str
) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})
        pipe.xack(stream, group, entry_id)
        pipe.execute()


def test_check_dead_letter(client: redis.Redis) -> None:
    assert helpers.check_dead_letter(_atomic_mover, client).passed

    def no_ack(
        c: redis.Redis, stream: str, group: str, entry_id: str, fields: dict[Any, Any], reason: str
    ) -> None:
        c.xadd(f"{stream}:dead", {**fields, "original_id": entry_id, "reason": reason})

    def no_fields(
        c: redis.Redis, stream: str, group: str, entry_id: str, fields: dict[Any, Any], reason: str
    ) -> None:
        c.xadd(f"{stream}:dead", {"original_id": entry_id, "reason": reason})
        c.xack(stream, group, entry_id)

    assert "still pending" in helpers.check_dead_letter(no_ack, client).message
    assert "lacks" in helpers.check_dead_letter(no_fields, client).message
    assert "holds 0 entries" in helpers.check_dead_letter(lambda *args: None, client).message
    assert "raised" in helpers.check_dead_letter(lambda *args: 1 / 0, client).message
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


def test_check_safe_minid(client: redis.Redis) -> None:
    assert helpers.check_safe_minid(_right_safe_minid, client).passed
    unsafe = helpers.check_safe_minid(_pending_only, client)
    assert not unsafe.passed and "would trim work that is not done" in unsafe.message
    assert "keeps more than needed" in helpers.check_safe_minid(lambda c, s: "0-0", client).message
    assert "returned None" in helpers.check_safe_minid(lambda c, s: None, client).message
    assert "not a stream ID" in helpers.check_safe_minid(lambda c, s: "soon", client).message
    assert "raised" in helpers.check_safe_minid(lambda c, s: 1 / 0, client).message
    assert not list(client.scan_iter(match="course:check:*"))


def test_check_trimmed_safely(client: redis.Redis) -> None:
    for n in range(1, 21):
        client.xadd("ex:orders", {"n": n}, id=f"{n}-0")
    client.xgroup_create("ex:orders", "billing", id="0")
    client.xreadgroup("billing", "a", {"ex:orders": ">"}, count=12)
    client.xack("ex:orders", "billing", *[f"{n}-0" for n in range(1, 10)])
    client.xgroup_create("ex:orders", "audit", id="0")
    client.xreadgroup("audit", "b", {"ex:orders": ">"}, count=15)
    client.xack("ex:orders", "audit", *[f"{n}-0" for n in range(1, 16)])
    check = helpers.check_trimmed_safely
    assert "could still go" in check(client, "ex:orders", 20).message
    client.xtrim("ex:orders", minid="10-0", approximate=False)
    assert check(client, "ex:orders", 20).passed
    client.xtrim("ex:orders", minid="11-0", approximate=False)
    assert "were trimmed" in check(client, "ex:orders", 20).message


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
    assert helpers.check_claim_idle(30_000).passed
    for wrong, words in [
        (None, "still None"),
        ("soon", "not a number"),
        (20_000, "go higher"),
        (3_600_000, "go lower"),
    ]:
        assert words in helpers.check_claim_idle(wrong).message


def test_check_same_slot() -> None:
    assert helpers.check_same_slot("{jobs:0}", "{jobs:0}:dead").passed
    assert "hash tag makes it certain" not in helpers.check_same_slot("{jobs:0}", "{jobs:0}:dead").message
    for stream, dead_letter, words in [
        (None, "x", "still None"),
        ("jobs", 3, "non-empty key name"),
        ("{jobs}", "{jobs}", "another key"),
        ("jobs:0", "jobs:0:dead", "same hash tag"),
        ("{jobs:0}", "{jobs:1}:dead", "same hash tag"),
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
    cluster.heal()
