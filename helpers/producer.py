"""A producer that checks messages before it writes them.

Redis accepts almost anything: a 500 MB value, an empty field name, a float
written in any precision. The producer refuses what a worker could not handle,
before anything reaches the stream, so that one bad call never leaves half a
batch behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from .common import AnyClient
from .errors import MessageError, WrongKeyTypeError

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "FieldValue", "Producer", "encode_message"]

FieldValue = str | bytes | int | float

# A script hands a message's fields to XADD with Lua's unpack, which takes about 8000 values:
# DelayQueue and BoundedProducer refuse messages with more fields than this.
SCRIPT_MAX_FIELDS = 1000

# 64 KiB: far above a task description, far below what would hurt a server.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024


def _encoded(value: Any, what: str) -> str | bytes:
    """A field name or value as XADD sends it: ASCII text as it is, other text as UTF-8 bytes."""
    if type(value) is str:
        return value if value.isascii() else value.encode("utf-8")
    if type(value) is bytes:
        return value
    # bool is an int, but True would be written as "True": almost always a mistake.
    if isinstance(value, bool) or not isinstance(value, (str, bytes, int, float)):
        raise MessageError(f"{what} must be str, bytes, int or float, not {type(value).__name__}")
    return _encoded(value if isinstance(value, (str, bytes)) else str(value), what)


def encode_message(
    fields: Mapping[Any, Any], max_payload_bytes: int, *, max_fields: int | None = None
) -> list[str | bytes]:
    """Check one message and return it as XADD's arguments: name, value, name, value ...

    ASCII text is passed on as ``str`` (redis-py sends it as it is), anything else as the
    bytes it is sent as, so that the size counted is the size sent.

    Raises:
        MessageError: no fields, a field name or value of the wrong type, an
            empty field name, more than ``max_payload_bytes`` of names and values, or
            more than ``max_fields`` fields.
    """
    if type(fields) is not dict and not isinstance(fields, Mapping):  # a dict skips the ABC check
        raise MessageError(f"a message is a mapping of field names to values, not {type(fields).__name__}")
    if not fields:
        raise MessageError("a message needs at least one field")
    if max_fields is not None and len(fields) > max_fields:
        raise MessageError(
            f"the message has {len(fields):,} fields, over the limit of {max_fields:,} for a message "
            "written by a script: send fewer, larger fields (a JSON document in one field)"
        )
    encoded: list[str | bytes] = []
    size = 0
    for name, value in fields.items():
        # The common case first, in as few steps as possible: it runs for every field of every message.
        if type(name) is str and type(value) is str and name and name.isascii() and value.isascii():
            encoded += (name, value)
            size += len(name) + len(value)
            continue
        if not isinstance(name, (str, bytes)):
            raise MessageError(f"field names must be str or bytes, not {type(name).__name__}")
        key = _encoded(name, "a field name")
        if not key:
            raise MessageError("field names must not be empty")
        data = _encoded(value, "the value of a field")
        encoded += (key, data)
        size += len(key) + len(data)
    if size > max_payload_bytes:
        raise MessageError(
            f"the message has {size:,} bytes of field names and values, over the limit of "
            f"{max_payload_bytes:,}: store large data elsewhere and send a reference"
        )
    return encoded


class Producer:
    """Appends checked messages to one stream.

    Args:
        client: a redis-py client, or a ``RedisCluster``.
        stream: the stream's key.
        maxlen: cap the stream's length on every add (None: no cap). A cap trims
            entries whether or not consumers have read them: see notebook 05.
        approximate: trim with ``~`` (whole nodes, cheaper) rather than exactly.
        max_payload_bytes: the largest message accepted, counting field names and values.
    """

    def __init__(
        self,
        client: AnyClient,
        stream: str,
        *,
        maxlen: int | None = None,
        approximate: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if not stream:
            raise ValueError("stream must be a non-empty key name")
        if maxlen is not None and maxlen < 0:
            raise ValueError(f"maxlen must be None or at least 0, not {maxlen}")
        if max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be positive, not {max_payload_bytes}")
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.approximate = approximate
        self.max_payload_bytes = max_payload_bytes
        # XADD's arguments up to the ID; built once, since every send repeats them.
        trim = [] if maxlen is None else ["MAXLEN", "~" if approximate else "=", maxlen]
        self._xadd_prefix: list[Any] = ["XADD", stream, *trim, "*"]

    def send(self, fields: Mapping[Any, Any]) -> str:
        """Append one message; return its ID.

        Raises:
            MessageError: the message was refused; nothing was written.
            WrongKeyTypeError: the key holds something other than a stream.
        """
        encoded = encode_message(fields, self.max_payload_bytes)
        try:
            reply = self.client.execute_command(*self._xadd_prefix, *encoded)  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            raise self._wrong_type(exc) from exc
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def send_many(self, messages: Sequence[Mapping[Any, Any]]) -> list[str]:
        """Append several messages in one round trip; return their IDs, in order.

        Every message is checked first: if any is refused, none is written.

        Raises:
            MessageError: a message was refused (its position is in the message).
            WrongKeyTypeError: the key holds something other than a stream.
        """
        if isinstance(messages, Mapping):
            raise MessageError("send_many takes a list of messages; use send for a single message")
        encoded = []
        for position, fields in enumerate(messages):
            try:
                encoded.append(encode_message(fields, self.max_payload_bytes))
            except MessageError as exc:
                raise MessageError(f"message {position}: {exc}") from None
        if not encoded:
            return []
        pipe = self.client.pipeline(transaction=False)
        for pairs in encoded:
            pipe.execute_command(*self._xadd_prefix, *pairs)
        try:
            replies = pipe.execute()
        except redis.ResponseError as exc:
            raise self._wrong_type(exc) from exc
        return [reply.decode() if isinstance(reply, bytes) else str(reply) for reply in replies]

    def _wrong_type(self, exc: redis.ResponseError) -> Exception:
        """A clear error for WRONGTYPE; any other error as it was."""
        # A pipeline's error names the command first: "Command # 1 (XADD ...) ... WRONGTYPE ...".
        if "WRONGTYPE" not in str(exc):
            return exc
        return WrongKeyTypeError(
            f"{self.stream} holds {_type_name(self.client, self.stream)}, not a stream: "
            "use another key, or delete this one if it is stale"
        )


def _type_name(client: AnyClient, key: str) -> str:
    """``a string``, ``a hash``...; ``another type of value`` when TYPE is not allowed (a producer's
    least-privilege user may run XADD and nothing else)."""
    try:
        kind = client.type(key)
    except redis.ResponseError:
        return "another type of value"
    return "a " + (kind.decode() if isinstance(kind, bytes) else str(kind))
