"""A producer that stops when the queue is too far behind: back-pressure, checked atomically.

A stream grows as fast as producers write, whatever its consumers manage: memory is the
only limit, and at the limit the server refuses every write (OOM) or evicts keys.
:class:`BoundedProducer` looks at the queue before each write and refuses (or waits)
while it is over a bound you choose:

- ``max_length``: entries in the stream (``XLEN``), read or not;
- ``max_lag``: entries the group has not read yet (``XINFO GROUPS``' ``lag``);
- ``max_pending``: entries read but not acknowledged (the group's PEL).

The check and the XADD run in one script, so no other client writes in between and
several producers never overshoot the length or the lag together. The pending count is a
softer bound: consumers raise it after the check, by reading entries that were unread, so
it can pass its bound by what they read at once; and alone it does nothing while the
consumers are down (nothing is read, nothing is pending). Bound the lag and the pending
count together. A group that does not exist bounds the lag by the length and the pending
count not at all: check the group's name. ``MAXLEN`` is not back-pressure: it
makes room by trimming the oldest entries, read or not.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

import redis

from .common import AnyClient, as_text, optional_bound
from .errors import QueueFullError, WrongKeyTypeError
from .producer import DEFAULT_MAX_PAYLOAD_BYTES, SCRIPT_MAX_FIELDS, _type_name, encode_message

__all__ = ["BoundedProducer"]

# KEYS: stream. ARGV: group, max length, max lag, max pending ("" where unbounded), then the
# message's field/value pairs. Returns {1, id} when it added the entry, else {0, bound, value}.
# Lag is NULL when Redis cannot tell (an unread entry was deleted, or SETID came without
# ENTRIESREAD): then the entries after the group's last-delivered ID are counted, up to the
# bound. While the group does not exist, nothing has been read: the length stands in for it.
_BOUNDED_XADD_SCRIPT = """
local length = redis.call('XLEN', KEYS[1])
if ARGV[2] ~= '' and length >= tonumber(ARGV[2]) then
  return {0, 'length', length}
end
local lag, pending = length, 0
if (ARGV[3] ~= '' or ARGV[4] ~= '') and length > 0 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == ARGV[1] then
      pending = info['pending']
      lag = info['lag']
      if not lag and ARGV[3] ~= '' then
        -- Redis cannot tell this group's lag: count the entries after its position, up to the bound.
        local after = '(' .. info['last-delivered-id']
        lag = #redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', tonumber(ARGV[3]))
      end
    end
  end
end
if ARGV[3] ~= '' and lag >= tonumber(ARGV[3]) then
  return {0, 'lag', lag}
end
if ARGV[4] ~= '' and pending >= tonumber(ARGV[4]) then
  return {0, 'pending', pending}
end
return {1, redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))}
"""


class BoundedProducer:
    """Appends messages to ``stream`` only while the queue is within its bounds.

    Args:
        client: a redis-py client (a ``RedisCluster`` works too: the script touches one key).
        stream: the stream's key.
        group: the consumer group whose lag and pending count are bounded.
        max_length, max_lag, max_pending: the bounds (None: unbounded); at least one.
            A write is refused while the value has reached its bound.
        wait_s: 0 (the default) refuses at once; otherwise :meth:`send` waits up to this
            many seconds for room, checking again with growing pauses (up to ``poll_s``).
        poll_s: the longest pause between two checks while waiting.
        max_payload_bytes: the largest message accepted, as for :class:`helpers.Producer`.
    """

    def __init__(
        self,
        client: AnyClient,
        stream: str,
        *,
        group: str,
        max_length: int | None = None,
        max_lag: int | None = None,
        max_pending: int | None = None,
        wait_s: float = 0.0,
        poll_s: float = 0.2,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        for name, text in (("stream", stream), ("group", group)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"{name} must be a non-empty string, not {text!r}")
        self.bounds = {
            "length": optional_bound("max_length", max_length, 1),
            "lag": optional_bound("max_lag", max_lag, 1),
            "pending": optional_bound("max_pending", max_pending, 1),
        }
        if all(bound is None for bound in self.bounds.values()):
            raise ValueError("give at least one bound: max_length, max_lag or max_pending")
        for name, seconds in (("wait_s", wait_s), ("poll_s", poll_s)):
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
                raise ValueError(f"{name} must be a number of seconds from 0 to 3600, not {seconds!r}")
        if poll_s <= 0:
            raise ValueError(f"poll_s must be above 0, not {poll_s!r}")
        if (
            not isinstance(max_payload_bytes, int)
            or isinstance(max_payload_bytes, bool)
            or max_payload_bytes < 1
        ):
            raise ValueError(
                f"max_payload_bytes must be a whole number of at least 1, not {max_payload_bytes!r}"
            )
        self.client = client
        self.stream = stream
        self.group = group
        self.wait_s = float(wait_s)
        self.poll_s = float(poll_s)
        self.max_payload_bytes = max_payload_bytes
        self.refused = 0  # writes refused (each check that found the queue full)
        self._last_full = ("length", 0)  # the bound met by the last refused write, and its value
        self._script = client.register_script(_BOUNDED_XADD_SCRIPT)
        self._args = [group, *("" if bound is None else bound for bound in self.bounds.values())]

    def try_send(self, fields: Mapping[Any, Any]) -> str | None:
        """Append one message if the queue is within its bounds: its ID, or None (nothing written).

        Raises:
            MessageError: the message was refused; nothing was written.
            WrongKeyTypeError: the key holds something other than a stream.
        """
        encoded = encode_message(fields, self.max_payload_bytes, max_fields=SCRIPT_MAX_FIELDS)
        try:
            reply: Any = self._script(keys=[self.stream], args=[*self._args, *encoded])
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise WrongKeyTypeError(
                    f"{self.stream} holds {_type_name(self.client, self.stream)}, not a stream: "
                    "use another key, or delete this one if it is stale"
                ) from exc
            raise
        if int(reply[0]) == 1:
            return str(as_text(reply[1]))
        self.refused += 1
        self._last_full = (str(as_text(reply[1])), int(reply[2]))
        return None

    def send(self, fields: Mapping[Any, Any]) -> str:
        """Append one message once the queue has room; return its ID.

        Raises:
            QueueFullError: the queue was at a bound and stayed there for ``wait_s``
                (at once when ``wait_s`` is 0); nothing was written.
            MessageError, WrongKeyTypeError: as :meth:`try_send`.
        """
        deadline = time.monotonic() + self.wait_s
        pause = min(0.01, self.poll_s)
        while True:
            entry_id = self.try_send(fields)
            if entry_id is not None:
                return entry_id
            left = deadline - time.monotonic()
            if left <= 0:
                what, value = self._last_full
                waited = f" after waiting {self.wait_s:g} s" if self.wait_s else ""
                raise QueueFullError(
                    f"{self.stream} is full{waited}: its {what} is {value}, at the bound of "
                    f"{self.bounds[what]}; the consumers of group {self.group!r} are behind. "
                    "Nothing was written: slow down, or send again later."
                )
            time.sleep(min(left, pause * random.uniform(0.5, 1.0)))
            pause = min(pause * 2, self.poll_s)
