"""What several modules of the helpers share: the client type, hash slots, reply decoding."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

__all__ = ["AnyClient", "as_text", "hash_slot", "lua_still_mine_and_ackable", "optional_bound"]

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


def optional_bound(name: str, value: Any, low: int) -> int | None:
    """A bound that may be None (no bound), else a whole number of at least ``low``.

    Raises:
        ValueError: saying what ``name`` must be.
    """
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be None or a whole number of at least {low}, not {value!r}")
    return value


def lua_still_mine_and_ackable(stream: str, group: str, consumer: str, entry_id: str) -> str:
    """The guard every script that moves a pending entry elsewhere starts with (Lua).

    The arguments are Lua expressions (``"KEYS[1]"``, ``"ARGV[3]"``). The script returns 0 if
    the entry is no longer pending for ``consumer`` (another worker finished or took it), and
    fails before anything is written if this user may not ``XACK`` it: scripts do not roll
    back, so the one way the final XACK could fail after the destination write is ruled out
    first.
    """
    return f"""
if #redis.call('XPENDING', {stream}, {group}, {entry_id}, {entry_id}, 1, {consumer}) == 0 then
  return 0
end
if redis.acl_check_cmd and not redis.acl_check_cmd('XACK', {stream}, {group}, {entry_id}) then
  return redis.error_reply('NOPERM this user may not XACK ' .. {stream} .. ': nothing was moved')
end
"""
