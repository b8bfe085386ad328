"""helpers.Producer: checked messages, pipelined sends, nothing written on bad input."""

from __future__ import annotations

import pytest
import redis

import helpers


def test_send_and_send_many(client: redis.Redis) -> None:
    producer = helpers.Producer(client, "jobs")
    first = producer.send({"task": "resize", "size": 3, "ratio": 0.5, "raw": b"\x00\x01"})
    more = producer.send_many([{"n": n} for n in range(5)])
    assert len(more) == 5 and all(isinstance(entry_id, str) for entry_id in [first, *more])
    entries = client.xrange("jobs")
    assert [entry_id for entry_id, _ in entries] == [first, *more]
    raw = helpers.connect(decode_responses=False).xrange("jobs", count=1)[0][1]
    assert raw == {b"task": b"resize", b"size": b"3", b"ratio": b"0.5", b"raw": b"\x00\x01"}
    assert producer.send_many([]) == []


def test_maxlen_caps_the_stream(client: redis.Redis) -> None:
    producer = helpers.Producer(client, "jobs", maxlen=10, approximate=False)
    producer.send_many([{"n": n} for n in range(25)])
    assert client.xlen("jobs") == 10


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({}, "at least one field"),
        ([("n", 1)], "a mapping"),
        ({"n": None}, "must be str, bytes, int or float, not NoneType"),
        ({"n": [1, 2]}, "not list"),
        ({"n": True}, "not bool"),
        ({3: "x"}, "field names must be str or bytes"),
        ({"": "x"}, "must not be empty"),
        ({"blob": "x" * 70_000}, "over the limit of 65,536"),
    ],
)
def test_bad_messages_are_refused_before_writing(client: redis.Redis, message: object, words: str) -> None:
    producer = helpers.Producer(client, "jobs")
    with pytest.raises(helpers.MessageError, match=words):
        producer.send(message)  # type: ignore[arg-type]
    assert client.exists("jobs") == 0


def test_one_bad_message_stops_the_whole_batch(client: redis.Redis) -> None:
    producer = helpers.Producer(client, "jobs", max_payload_bytes=100)
    with pytest.raises(helpers.MessageError, match=r"message 2: .*over the limit of 100"):
        producer.send_many([{"n": 1}, {"n": 2}, {"blob": "x" * 200}, {"n": 4}])
    assert client.exists("jobs") == 0


def test_send_many_wants_a_list(client: redis.Redis) -> None:
    with pytest.raises(helpers.MessageError, match="use send"):
        helpers.Producer(client, "jobs").send_many({"n": 1})  # type: ignore[arg-type]


def test_wrong_key_type_is_a_clear_error(client: redis.Redis) -> None:
    client.set("jobs", "not a stream")
    with pytest.raises(helpers.WrongKeyTypeError, match="jobs holds a string, not a stream"):
        helpers.Producer(client, "jobs").send_many([{"n": 1}, {"n": 2}])
    assert client.get("jobs") == "not a stream"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"maxlen": -1}, "maxlen"), ({"max_payload_bytes": 0}, "max_payload_bytes")],
)
def test_bad_settings(client: redis.Redis, kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        helpers.Producer(client, "jobs", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream"):
        helpers.Producer(client, "")
