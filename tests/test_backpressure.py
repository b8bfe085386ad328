"""helpers.BoundedProducer on every backend: each bound, waiting for room, no overshoot with
several producers, bad settings and bad messages refused before anything is written."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

import helpers
from tests.conftest import Background


def test_each_bound_refuses_at_its_value(client: redis.Redis) -> None:
    by_length = helpers.BoundedProducer(client, "jobs", group="workers", max_length=3)
    assert [by_length.try_send({"n": n}) is not None for n in range(5)] == [True, True, True, False, False]
    assert client.xlen("jobs") == 3 and by_length.refused == 2

    client.delete("jobs")
    by_lag = helpers.BoundedProducer(client, "jobs", group="workers", max_lag=3)
    # No group yet: nothing has been read, so the length stands in for the lag.
    assert [by_lag.try_send({"n": n}) is not None for n in range(4)] == [True, True, True, False]
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)  # lag 1 now
    assert by_lag.try_send({"n": 3}) is not None and by_lag.try_send({"n": 4}) is not None
    assert by_lag.try_send({"n": 5}) is None

    client.delete("jobs")
    by_pending = helpers.BoundedProducer(client, "jobs", group="workers", max_pending=2)
    for n in range(4):
        assert by_pending.try_send({"n": n}) is not None  # nothing read, nothing pending
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)
    assert by_pending.try_send({"n": 4}) is None
    first = str(client.xrange("jobs", count=1)[0][0])
    client.xack("jobs", "workers", first)
    assert by_pending.try_send({"n": 5}) is not None


def test_send_refuses_with_a_clear_error_and_writes_nothing(client: redis.Redis) -> None:
    producer = helpers.BoundedProducer(client, "jobs", group="workers", max_length=1)
    producer.send({"n": 0})
    with pytest.raises(helpers.QueueFullError, match="its length is 1, at the bound of 1"):
        producer.send({"n": 1})
    waiting = helpers.BoundedProducer(client, "jobs", group="workers", max_length=1, wait_s=0.3)
    with pytest.raises(helpers.QueueFullError, match=r"after waiting 0\.3 s"):
        waiting.send({"n": 2})
    assert client.xlen("jobs") == 1


def test_send_waits_for_the_consumers_to_catch_up(client: redis.Redis, background: Background) -> None:
    producer = helpers.BoundedProducer(client, "jobs", group="workers", max_lag=5, wait_s=30, poll_s=0.05)
    for n in range(5):
        producer.send({"n": n})
    client.xgroup_create("jobs", "workers", id="0")
    progress: list[str] = []

    def consume_later() -> None:
        helpers.wait_for(lambda: producer.refused > 0, 20, "the producer to be refused once")
        client.xreadgroup("workers", "w1", {"jobs": ">"}, count=3)
        progress.append("read")

    reader = background.call(consume_later)
    entry_id = producer.send({"n": 5})  # waits until the reader has read 3
    reader.join(timeout=20)
    assert progress == ["read"] and entry_id == client.xrange("jobs")[-1][0]
    assert client.xinfo_groups("jobs")[0]["lag"] == 3


def test_several_producers_never_overshoot(client: redis.Redis) -> None:
    per_thread, bound = 60, 100
    added: list[int] = []
    lock = threading.Lock()

    def produce() -> None:
        producer = helpers.BoundedProducer(client, "jobs", group="workers", max_length=bound)
        count = sum(producer.try_send({"n": n}) is not None for n in range(per_thread))
        with lock:
            added.append(count)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(added) == bound and client.xlen("jobs") == bound


def test_a_key_of_another_type_is_a_clear_error(client: redis.Redis) -> None:
    client.set("jobs", "not a stream")
    with pytest.raises(helpers.WrongKeyTypeError, match="jobs holds a string, not a stream"):
        helpers.BoundedProducer(client, "jobs", group="workers", max_length=5).send({"n": 1})


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "give at least one bound"),
        ({"max_length": 0}, "max_length must be None or a whole number of at least 1"),
        ({"max_lag": True}, "max_lag must be None or a whole number"),
        ({"max_pending": 2.5}, "max_pending must be None or a whole number"),
        ({"max_pending": "10"}, "max_pending must be None or a whole number"),
        ({"max_length": 5, "wait_s": -1}, "wait_s must be a number of seconds"),
        ({"max_length": 5, "poll_s": 0}, "poll_s must be above 0"),
        ({"max_length": 5, "group": ""}, "group must be a non-empty string"),
        ({"max_length": 5, "max_payload_bytes": 0}, "max_payload_bytes"),
    ],
)
def test_bad_settings_are_refused(client: redis.Redis, kwargs: dict[str, Any], words: str) -> None:
    settings: dict[str, Any] = {"group": "workers", **kwargs}
    with pytest.raises(ValueError, match=words):
        helpers.BoundedProducer(client, "jobs", **settings)


def test_bad_messages_are_refused_before_anything_is_written(client: redis.Redis) -> None:
    producer = helpers.BoundedProducer(client, "jobs", group="workers", max_length=5)
    for bad in ({}, {"": "x"}, {"n": None}, ["n", 1]):
        with pytest.raises(helpers.MessageError):
            producer.send(bad)  # type: ignore[arg-type]
    assert not client.exists("jobs")


def test_an_unknown_lag_is_counted_from_the_groups_position(client: redis.Redis) -> None:
    for n in range(1, 2001):
        client.xadd("jobs", {"n": n}, id=f"{n}-0")
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2000)
    for n in range(2001, 2004):
        client.xadd("jobs", {"n": n}, id=f"{n}-0")
    client.xdel("jobs", "2002-0")  # an unread entry deleted: Redis no longer knows the lag
    assert client.xinfo_groups("jobs")[0]["lag"] is None
    producer = helpers.BoundedProducer(client, "jobs", group="workers", max_lag=3)
    # Two entries are unread (2001 and 2003), not the stream's 2002 entries: one more fits.
    assert producer.try_send({"n": "a"}) is not None and producer.try_send({"n": "b"}) is None


def test_a_message_too_wide_for_a_script_is_refused(client: redis.Redis) -> None:
    wide = {f"f{n}": "" for n in range(1001)}
    with pytest.raises(helpers.MessageError, match="over the limit of 1,000"):
        helpers.BoundedProducer(client, "jobs", group="workers", max_length=5).send(wide)
    with pytest.raises(helpers.MessageError, match="over the limit of 1,000"):
        helpers.DelayQueue(client, "jobs").schedule(wide, delay_ms=0)
    assert not client.exists("jobs") and not client.exists("jobs:delayed")
