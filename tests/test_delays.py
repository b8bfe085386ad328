"""helpers.DelayQueue on every backend: due order, the server's clock, moves that never lose or
repeat a message, defer out of the pending list, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

import helpers
from helpers.delays import DelayQueue


def test_messages_enter_the_stream_when_due_earliest_first(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    later = queue.schedule({"n": "later", "text": "héllo"}, delay_ms=300)
    now = queue.schedule({"n": "now"}, delay_ms=0)
    past = queue.schedule({"n": "past"}, at=datetime.now(UTC) - timedelta(seconds=5))
    assert past < now < later
    moved = queue.move_due()
    assert [fields["n"] for _, fields in client.xrange("jobs")] == ["past", "now"]
    assert [entry_id for entry_id, _ in client.xrange("jobs")] == moved
    assert queue.waiting() == 1 and queue.next_due_ms() == later
    helpers.wait_for(lambda: queue.move_due() != [], 10, "the delayed message to be due")
    assert client.xrange("jobs")[-1][1] == {"n": "later", "text": "héllo"}
    assert queue.waiting() == 0 and queue.next_due_ms() is None


def test_a_message_is_not_moved_before_its_due_time(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    due = queue.schedule({"n": 1}, delay_ms=250)
    while not queue.move_due():
        pass
    seconds, microseconds = client.time()
    assert seconds * 1000 + microseconds // 1000 >= due  # the server's clock had reached it
    assert int(str(client.xrange("jobs")[0][0]).split("-")[0]) >= due


def test_equal_messages_are_kept_apart_and_field_order_is_kept(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    for _ in range(3):
        queue.schedule({"b": 1, "a": 2}, delay_ms=0)
    assert len(queue.move_due()) == 3
    entries: Any = client.xrange("jobs")
    assert [list(fields) for _, fields in entries] == [["b", "a"]] * 3


def test_limit_moves_a_batch_and_a_failing_write_keeps_the_message(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    for n in range(5):
        queue.schedule({"n": n}, delay_ms=0)
    assert len(queue.move_due(limit=2)) == 2 and queue.waiting() == 3
    client.delete("jobs")
    client.set("jobs", "not a stream")  # the destination write will fail
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        queue.move_due()
    assert queue.waiting() == 3, "nothing leaves the set unless its XADD succeeded"
    client.delete("jobs")
    assert len(queue.move_due()) == 3 and queue.waiting() == 0
    assert [fields["n"] for _, fields in client.xrange("jobs")] == ["2", "3", "4"]


def test_defer_moves_a_pending_entry_into_the_set_and_only_its_owners(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    entry_id = str(client.xadd("jobs", {"n": 1}))
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"})
    assert queue.defer(entry_id, {"n": 1}, group="workers", consumer="w2", delay_ms=0) == 0
    assert queue.waiting() == 0 and client.xpending("jobs", "workers")["pending"] == 1
    assert queue.defer(entry_id, {"n": 1, "attempt": 2}, group="workers", consumer="w1", delay_ms=0) > 0
    assert queue.waiting() == 1 and client.xpending("jobs", "workers")["pending"] == 0
    (new_id,) = queue.move_due()
    assert new_id != entry_id and client.xrange("jobs", new_id, new_id)[0][1] == {"n": "1", "attempt": "2"}


def test_defer_whose_write_fails_leaves_the_entry_pending(client: redis.Redis) -> None:
    queue = DelayQueue(client, "jobs")
    entry_id = str(client.xadd("jobs", {"n": 1}))
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"})
    client.set("jobs:delayed", "not a sorted set")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        queue.defer(entry_id, {"n": 1}, group="workers", consumer="w1", delay_ms=0)
    assert client.xpending("jobs", "workers")["pending"] == 1, "not acknowledged: the write failed"


@pytest.mark.needs_server
def test_defer_by_a_user_who_may_not_xack_writes_nothing(server_binary: helpers.ServerBinary) -> None:
    users = [
        "default on nopass ~* &* +@all",
        "mover on >secret ~jobs* +@read +xadd +zadd +evalsha +eval +script|load +time",
    ]
    with helpers.LocalServer(server_binary, users=users) as server:
        admin = server.client()
        entry_id = str(admin.xadd("jobs", {"n": 1}))
        admin.xgroup_create("jobs", "workers", id="0")
        admin.xreadgroup("workers", "w1", {"jobs": ">"})
        queue = DelayQueue(server.client(username="mover", password="secret"), "jobs")
        with pytest.raises(redis.exceptions.NoPermissionError, match="may not XACK"):
            queue.defer(entry_id, {"n": 1}, group="workers", consumer="w1", delay_ms=0)
        assert admin.zcard("jobs:delayed") == 0 and admin.xpending("jobs", "workers")["pending"] == 1


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda q: q.schedule({"n": 1}), ValueError, "exactly one of delay_ms"),
        (lambda q: q.schedule({"n": 1}, delay_ms=1, at=datetime.now(UTC)), ValueError, "exactly one"),
        (lambda q: q.schedule({"n": 1}, delay_ms=-1), ValueError, "delay_ms must be a whole number"),
        (lambda q: q.schedule({"n": 1}, delay_ms=1.5), ValueError, "delay_ms must be a whole number"),
        (lambda q: q.schedule({"n": 1}, at=datetime.now()), ValueError, "timezone-aware"),
        (lambda q: q.schedule({"n": 1}, at="09:00"), ValueError, "timezone-aware"),
        (lambda q: q.schedule({}, delay_ms=0), helpers.MessageError, "at least one field"),
        (lambda q: q.schedule({"n": b"\xff"}, delay_ms=0), helpers.MessageError, "must be text"),
        (lambda q: q.move_due(limit=0), ValueError, "limit must be"),
        (lambda q: q.defer("1-0", {"n": 1}, group="", consumer="c", delay_ms=0), ValueError, "group"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    client: redis.Redis, call: Any, error: type, words: str
) -> None:
    queue = DelayQueue(client, "jobs")
    with pytest.raises(error, match=words):
        call(queue)
    assert queue.waiting() == 0 and not client.exists("jobs")


def test_bad_settings_are_refused(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="stream must be a non-empty string"):
        DelayQueue(client, "")
    with pytest.raises(ValueError, match="other than the stream"):
        DelayQueue(client, "jobs", key="jobs")
    with pytest.raises(ValueError, match="max_payload_bytes"):
        DelayQueue(client, "jobs", max_payload_bytes=0)


def test_on_a_cluster_the_set_must_share_the_streams_slot(cluster: helpers.LocalCluster) -> None:
    client = cluster.client()
    with pytest.raises(ValueError, match="hash tag"):
        DelayQueue(client, "jobs")
    queue = DelayQueue(client, "{jobs}")
    queue.schedule({"n": 1}, delay_ms=0)
    assert len(queue.move_due()) == 1
    client.delete("{jobs}", "{jobs}:delayed")
