"""Handlers for worker processes in lessons and tests (``--handler helpers.tools.demo_handlers:record``).

They record what they handled in Redis, in the list named by ``RECORD_KEY``
(default ``handled``) on the server at ``RECORD_URL`` (both environment variables),
so that whoever started the workers can count lost and duplicated messages after
killing some of them.
"""

from __future__ import annotations

import os
import time

import redis

__all__ = ["fail_on_poison", "fail_twice_then_record", "record"]

_recorder_client: redis.Redis | None = None


def _recorder() -> redis.Redis:
    # One connection per worker process, made on first use (this module is imported by workers only).
    global _recorder_client
    if _recorder_client is None:
        _recorder_client = redis.Redis.from_url(os.environ["RECORD_URL"], decode_responses=True)
    return _recorder_client


def record(message_id: str, fields: dict[str, str]) -> None:
    """Append the message's ``seq`` field to the list ``RECORD_KEY``, after 2 ms of "work"."""
    time.sleep(0.002)
    _recorder().rpush(os.environ.get("RECORD_KEY", "handled"), fields["seq"])


def fail_on_poison(message_id: str, fields: dict[str, str]) -> None:
    """Like :func:`record`, but raise for a message with a ``poison`` field."""
    if fields.get("poison"):
        raise ValueError("this message can never be handled")
    record(message_id, fields)


def fail_twice_then_record(message_id: str, fields: dict[str, str]) -> None:
    """For a message with a ``flaky`` field: raise on its first two attempts, then :func:`record`.

    Attempts are counted in Redis (the hash ``attempts``, by ``seq``), so they survive the
    worker process; each attempt's time is appended to the list ``attempts:<seq>``, in
    milliseconds of the recording server's clock (``TIME``).
    """
    if fields.get("flaky"):
        recorder = _recorder()
        seconds, microseconds = recorder.time()
        recorder.rpush(f"attempts:{fields['seq']}", seconds * 1000 + microseconds // 1000)
        if recorder.hincrby("attempts", fields["seq"], 1) <= 2:
            raise RuntimeError("a flaky failure: try again later")
    record(message_id, fields)
