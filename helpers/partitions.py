"""Partitioned streams: one queue as N streams, so that it can spread over a Redis Cluster.

A stream is one key, and a key lives in one hash slot on one node: a single stream
can never use more than one server, however many consumers read it. A queue scales
out by being split into partitions, each its own stream (with its own consumer
group), placed on different nodes by hash tags::

    streams = partition_streams("orders", 3)     # ['{orders:0.1}', '{orders:1.4}', '{orders:2.4}']
    producer = PartitionedProducer(cluster_client, "orders", 3)
    producer.send("customer-42", {"item": "book"})   # always the same partition for customer-42

A message's partition comes from a key (a customer, an account, an order), so all
messages of one key stay in order on one partition, while different keys spread.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import RedisClusterException

from .common import AnyClient, hash_slot
from .errors import MessageError
from .producer import DEFAULT_MAX_PAYLOAD_BYTES, Producer, encode_message

__all__ = ["PartitionedProducer", "partition_of", "partition_streams", "write_and_wait"]


def partition_of(key: str, partitions: int) -> int:
    """The partition (0 to ``partitions`` - 1) of a message with this partitioning key.

    A stable hash (CRC-32), not Python's ``hash()``, which differs from process to
    process: every producer must send one key to the same partition.
    """
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ValueError(f"partitions must be a whole number of at least 1, not {partitions!r}")
    if not isinstance(key, str):
        raise TypeError(f"a partitioning key is a str, not {type(key).__name__}")
    return zlib.crc32(key.encode("utf-8")) % partitions


def partition_streams(name: str, partitions: int) -> list[str]:
    """The stream keys of a queue split into ``partitions`` partitions.

    Partition ``i`` is ``{name:i}``, or ``{name:i.k}`` with the smallest ``k`` that
    puts its hash slot in the i-th of ``partitions`` equal shares of the 16384 slots.
    A cluster whose masters hold equal ranges of slots, as :class:`helpers.cluster.LocalCluster`
    makes them, then gets the partitions spread evenly over its masters (``redis-cli --cluster
    create`` draws the boundaries one slot differently, so a name whose slot sits on a
    boundary may land on the neighbouring master there). The whole name is a hash tag, so keys
    that add a suffix (the dead-letter stream ``{name:i}:dead``) share the slot.

    The names depend only on ``name`` and ``partitions``: producers and consumers
    agree without asking the cluster.
    """
    if not isinstance(name, str) or not name or "{" in name or "}" in name:
        raise ValueError(f"name must be a non-empty string without braces, not {name!r}")
    if not isinstance(partitions, int) or isinstance(partitions, bool) or not 1 <= partitions <= 1024:
        raise ValueError(f"partitions must be a whole number from 1 to 1024, not {partitions!r}")
    share = REDIS_CLUSTER_HASH_SLOTS / partitions
    streams = []
    for index in range(partitions):
        low, high = int(index * share), int((index + 1) * share)
        candidate, suffix = f"{{{name}:{index}}}", 0
        while not low <= hash_slot(candidate) < high:
            suffix += 1
            candidate = f"{{{name}:{index}.{suffix}}}"
        streams.append(candidate)
    return streams


class PartitionedProducer:
    """Sends each message to the partition of its key; checks every message first.

    Args:
        client: a ``RedisCluster`` (or, for a single server, a ``redis.Redis``).
        name: the queue's name; the streams are :func:`partition_streams` (name, partitions).
        partitions: how many partition streams.
        maxlen, approximate, max_payload_bytes: as for :class:`helpers.Producer`, per partition.
    """

    def __init__(
        self,
        client: AnyClient,
        name: str,
        partitions: int,
        *,
        maxlen: int | None = None,
        approximate: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.client = client
        self.name = name
        self.streams = partition_streams(name, partitions)
        self.producers = [
            Producer(
                client,
                stream,
                maxlen=maxlen,
                approximate=approximate,
                max_payload_bytes=max_payload_bytes,
            )
            for stream in self.streams
        ]
        self.max_payload_bytes = max_payload_bytes

    def stream_for(self, key: str) -> str:
        """The partition stream that messages with this key go to."""
        return self.streams[partition_of(key, len(self.streams))]

    def send(self, key: str, fields: Mapping[Any, Any]) -> tuple[str, str]:
        """Append one message to its key's partition; return ``(stream, message ID)``.

        Raises:
            MessageError: the message was refused; nothing was written.
        """
        producer = self.producers[partition_of(key, len(self.streams))]
        return producer.stream, producer.send(fields)

    def send_many(self, messages: Sequence[tuple[str, Mapping[Any, Any]]]) -> list[tuple[str, str]]:
        """Append ``(key, fields)`` messages; return ``(stream, ID)`` for each, in order.

        Every message is checked before anything is written. On a cluster the
        messages go out in one pipeline per node; within a partition they keep
        their order, so one key's messages are appended in the order given.

        Raises:
            MessageError: a message was refused (its position is in the message); nothing was written.
        """
        if isinstance(messages, Mapping):
            raise MessageError("send_many takes a list of (key, fields) pairs")
        commands: list[list[Any]] = []
        for position, item in enumerate(messages):
            if not isinstance(item, tuple) or len(item) != 2:
                raise MessageError(f"message {position}: expected a (key, fields) pair, not {item!r:.60}")
            key, fields = item
            try:
                producer = self.producers[partition_of(key, len(self.streams))]
                encoded = encode_message(fields, self.max_payload_bytes)
            except (MessageError, TypeError) as exc:
                raise MessageError(f"message {position}: {exc}") from None
            commands.append([*producer._xadd_prefix, *encoded])
        if not commands:
            return []
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies = pipe.execute()
        return [
            (str(command[1]), reply.decode() if isinstance(reply, bytes) else str(reply))
            for command, reply in zip(commands, replies, strict=True)
        ]


def write_and_wait(
    client: AnyClient,
    stream: str,
    messages: Sequence[Mapping[Any, Any]],
    *,
    replicas: int = 1,
    timeout_ms: int = 100,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> tuple[list[str], int]:
    """Append ``messages`` to ``stream`` and WAIT for replicas, on one connection to the
    stream's master. Returns ``(IDs, replicas that confirmed)``.

    WAIT counts the replicas that have received every write made *on the connection
    it is sent on*. So it must travel on the connection that carried the writes: a
    WAIT on any other connection (``RedisCluster.wait()`` sends it to a default
    node) confirms nothing about these entries. Here the XADDs and the WAIT go in
    one pipeline to the node that serves the stream's slot.

    On a cluster, a connection error or a MOVED reply (the slot has a new master)
    refreshes the client's map of slots and raises ``redis.ConnectionError``, so
    that :func:`call_with_deadline` retries on the new master.

    A result below ``replicas`` means the entries are on the master but not yet on
    enough replicas: a failover now could lose them. Treat them as not delivered
    (send them again later, with an idempotency key).
    """
    if not messages:
        return [], 0
    encoded = [encode_message(fields, max_payload_bytes) for fields in messages]
    cluster = client if isinstance(client, RedisCluster) else None
    if cluster is not None:
        node_client = cluster.get_redis_connection(cluster.get_node_from_key(stream))  # type: ignore[no-untyped-call]
    else:
        node_client = client  # type: ignore[assignment]
    pipe = node_client.pipeline(transaction=False)
    for pairs in encoded:
        pipe.execute_command("XADD", stream, "*", *pairs)  # type: ignore[no-untyped-call]
    pipe.execute_command("WAIT", replicas, timeout_ms)  # type: ignore[no-untyped-call]
    try:
        replies = pipe.execute()
    except redis.RedisError as exc:
        # This pipeline bypasses the cluster client's own routing, so the client never
        # learns that the slot moved. Ask the cluster again, so that a retry goes to the
        # node that serves the slot now; then let the caller decide whether to retry.
        moved = isinstance(exc, redis.ResponseError) and ("MOVED" in str(exc) or "CLUSTERDOWN" in str(exc))
        if cluster is not None and (isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) or moved):
            with contextlib.suppress(redis.RedisError, RedisClusterException):
                cluster.nodes_manager.initialize()
            if moved:
                raise redis.ConnectionError(f"the slot of {stream!r} moved: {exc}") from exc
        raise
    ids = [reply.decode() if isinstance(reply, bytes) else str(reply) for reply in replies[:-1]]
    return ids, int(replies[-1])
