"""What several modules of the helpers share: the client type, hash slots, reply decoding."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

__all__ = ["AnyClient", "as_text", "hash_slot"]

# A single server's client or a cluster's: the producer and the worker use only
# commands that name their key, which a cluster client routes to the key's node.
AnyClient = redis.Redis | RedisCluster


def hash_slot(key: str) -> int:
    """The hash slot (0-16383) of ``key``: CRC16 of the key, or of its ``{hash tag}`` if it has one."""
    return int(key_slot(key.encode("utf-8")))


def as_text(value: Any) -> Any:
    """``bytes`` decoded as UTF-8 (invalid bytes as ``\\x..`` escapes); anything else as it is.

    Replies hold ``str`` with ``decode_responses=True`` and ``bytes`` without; code that
    reads replies from either kind of client passes each value through this.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value
