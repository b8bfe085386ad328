"""Handlers for worker processes started by the tests (python -m helpers.worker --handler ...).

They record what they handled in Redis, at RECORD_URL, so that a test can count
lost and duplicated messages after killing workers.
"""

from __future__ import annotations

import os
import time

import redis

_client: redis.Redis | None = None


def _recorder() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["RECORD_URL"], decode_responses=True)
    return _client


def record(message_id: str, fields: dict[str, str]) -> None:
    """Append the message's sequence number to the list `handled`, after a little work."""
    time.sleep(0.002)
    _recorder().rpush("handled", fields["seq"])


def fail_on_poison(message_id: str, fields: dict[str, str]) -> None:
    if fields.get("poison"):
        raise ValueError("this message can never be handled")
    record(message_id, fields)
