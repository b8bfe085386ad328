"""Messages that enter a stream later: a delay queue in a sorted set, moved by one script.

A stream has no "deliver at": every entry is visible to the groups as soon as it is
added. :class:`DelayQueue` keeps messages that are not due yet in a sorted set, scored by
the time they are due (milliseconds, by the server's clock), and :meth:`DelayQueue.move_due`
appends every due message to the stream and removes it from the set, in one server-side
script. The script writes the stream entry first and removes the set member after it: a
failing XADD (a key of another type, no memory, an ACL rule) stops the script before the
message leaves the set, so a message is never lost on the way; and since the two happen in
one script, it is never moved twice.

:meth:`DelayQueue.defer` takes a failed message out of a group's pending entries into the
set, to be retried later (the sorted-set design of notebook 09), with the same order of
writes: the set member first, the XACK last, and only if the entry is still pending for
the consumer that defers it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from redis.cluster import RedisCluster
from redis.crc import key_slot

from .common import AnyClient, as_text, lua_still_mine_and_ackable
from .errors import MessageError
from .producer import DEFAULT_MAX_PAYLOAD_BYTES, SCRIPT_MAX_FIELDS, encode_message

__all__ = ["DelayQueue"]

# The server's clock, in milliseconds; scripts may read it (effects are replicated, not the script).
_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: set. ARGV: delay (ms, from the server's clock) or "" , due time (ms) or "", member.
_SCHEDULE_SCRIPT = (
    _NOW_MS
    + """
local due = tonumber(ARGV[2])
if ARGV[1] ~= '' then due = now + tonumber(ARGV[1]) end
redis.call('ZADD', KEYS[1], due, ARGV[3])
return due
"""
)

# KEYS: set, stream. ARGV: at most this many. Appends each due message, then removes it from
# the set; a failing XADD aborts the script before that message's ZREM. Returns the new IDs.
_MOVE_DUE_SCRIPT = (
    _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local added = {}
for _, member in ipairs(due) do
  local message = cjson.decode(member)
  added[#added + 1] = redis.call('XADD', KEYS[2], '*', unpack(message['fields']))
  redis.call('ZREM', KEYS[1], member)
end
return added
"""
)

# KEYS: set, stream. ARGV: group, consumer, entry ID, delay (ms), member. Moves a pending
# entry of this consumer into the set: the member first, the XACK last (checked for
# permission before anything is written). Returns the due time, or 0 if the entry was no
# longer pending for this consumer.
_DEFER_SCRIPT = (
    _NOW_MS
    + lua_still_mine_and_ackable("KEYS[2]", "ARGV[1]", "ARGV[2]", "ARGV[3]")
    + """
local due = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], due, ARGV[5])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[3])
return due
"""
)


def _whole_ms(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be a whole number of milliseconds, at least {low}, not {value!r}")
    return value


class DelayQueue:
    """Messages waiting in a sorted set until they are due, then appended to ``stream``.

    Args:
        client: a redis-py client (``decode_responses`` either way), or a ``RedisCluster``.
        stream: the stream that due messages are appended to.
        key: the sorted set; ``"<stream>:delayed"`` by default. On a cluster it must be in
            the stream's hash slot (name the stream with a hash tag, such as ``{jobs}``).
        max_payload_bytes: the largest message accepted, as for :class:`helpers.Producer`.

    Due times are the server's clock (``TIME``), in milliseconds since the Unix epoch.
    Nothing moves by itself: call :meth:`move_due` regularly (a worker's loop, a timer).
    """

    def __init__(
        self,
        client: AnyClient,
        stream: str,
        *,
        key: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"stream must be a non-empty string, not {stream!r}")
        self.key = f"{stream}:delayed" if key is None else key
        if not isinstance(self.key, str) or not self.key or self.key == stream:
            raise ValueError(f"key must be a non-empty string other than the stream, not {key!r}")
        if isinstance(client, RedisCluster) and key_slot(stream.encode()) != key_slot(self.key.encode()):
            raise ValueError(
                f"on a cluster the sorted set must be in the stream's hash slot, and {self.key!r} is not "
                f"in the slot of {stream!r}: name the stream with a hash tag, such as '{{{stream}}}'"
            )
        self.client = client
        self.stream = stream
        self.max_payload_bytes = _whole_ms("max_payload_bytes", max_payload_bytes, 1)
        self._schedule = client.register_script(_SCHEDULE_SCRIPT)
        self._move_due = client.register_script(_MOVE_DUE_SCRIPT)
        self._defer = client.register_script(_DEFER_SCRIPT)

    def _member(self, fields: Any) -> str:
        """The message as a set member: its fields in order, and a token that keeps two
        equal messages apart (a set holds each member once)."""
        pairs = encode_message(fields, self.max_payload_bytes, max_fields=SCRIPT_MAX_FIELDS)
        try:
            text = [part.decode("utf-8") if isinstance(part, bytes) else part for part in pairs]
        except UnicodeDecodeError:
            raise MessageError(
                "a delayed message must be text: a field holds bytes that are not UTF-8"
            ) from None
        # Members with equal due times are ordered by their bytes: the token starts with this
        # client's clock, so that one producer's messages due in the same millisecond keep
        # their order.
        token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        return json.dumps({"token": token, "fields": text}, ensure_ascii=False, separators=(",", ":"))

    def schedule(self, fields: Any, *, delay_ms: int | None = None, at: datetime | None = None) -> int:
        """Add a message that is due ``delay_ms`` from now (by the server's clock) or ``at`` a
        time (a timezone-aware datetime). Returns the due time in ms since the epoch.

        Raises:
            ValueError: neither or both of ``delay_ms`` and ``at``, a negative delay, or a
                naive datetime.
            MessageError: the message is not one a worker could handle (see Producer).
        """
        if (delay_ms is None) == (at is None):
            raise ValueError("give exactly one of delay_ms (from now) and at (a time)")
        if delay_ms is not None:
            _whole_ms("delay_ms", delay_ms, 0)
            args: list[Any] = [delay_ms, ""]
        else:
            if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(f"at must be a timezone-aware datetime (e.g. with tzinfo=UTC), not {at!r}")
            args = ["", int(at.timestamp() * 1000)]
        member = self._member(fields)
        return int(self._schedule(keys=[self.key], args=[*args, member]))

    def move_due(self, limit: int = 100) -> list[str]:
        """Append up to ``limit`` due messages to the stream, earliest first, and remove
        them from the set. Returns the new entries' IDs.

        If the stream's XADD fails (for example the key holds another type), the error is
        raised and the message that failed stays in the set, with those after it; the ones
        before it were moved.
        """
        _whole_ms("limit", limit, 1)
        added: Any = self._move_due(keys=[self.key, self.stream], args=[limit])
        return [str(as_text(entry_id)) for entry_id in added]

    def defer(self, entry_id: str, fields: Any, *, group: str, consumer: str, delay_ms: int) -> int:
        """Take a pending entry of ``consumer`` out of the group's pending list and into the
        set, due ``delay_ms`` from now, with ``fields`` (for example the message with an
        attempt counter added). The set member is written before the XACK; an entry that is
        no longer pending for ``consumer`` is left alone.

        Returns the due time in ms, or 0 if the entry was not pending for ``consumer``.

        Raises:
            redis.ResponseError: the write failed (nothing was acknowledged), or this user may
                not XACK (nothing was written).
        """
        _whole_ms("delay_ms", delay_ms, 0)
        for name, value in (("entry_id", entry_id), ("group", group), ("consumer", consumer)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        member = self._member(fields)
        return int(
            self._defer(keys=[self.key, self.stream], args=[group, consumer, entry_id, delay_ms, member])
        )

    def waiting(self) -> int:
        """How many messages wait in the set (due or not)."""
        return int(self.client.zcard(self.key))

    def next_due_ms(self) -> int | None:
        """The earliest due time in the set (ms since the epoch), or None when it is empty."""
        first: Any = self.client.zrange(self.key, 0, 0, withscores=True)
        return int(first[0][1]) if first else None
