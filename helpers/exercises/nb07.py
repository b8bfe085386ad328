"""Exercise checkers of notebook 07, scaling out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..common import hash_slot
from ._common import (
    CheckResult,
    checker,
    hint,
    passed,
)

if TYPE_CHECKING:
    from ..cluster import LocalCluster

__all__ = ["check_confirmed_writer", "check_partition_design", "check_same_slot"]


@checker("Exercise 7.1 (one slot for both)")
def check_same_slot(name: str, stream: Any, dead_letter: Any) -> CheckResult:
    """Exercise 7.1: a stream and its dead-letter stream that a worker can use on a cluster."""
    for what, value in (("stream", stream), ("dead_letter", dead_letter)):
        if value is None:
            return hint(name, f"{what} is still None: write a key name.")
        if not isinstance(value, str) or not value:
            return hint(name, f"{what} must be a non-empty key name (a str), not {value!r}.")
    if stream == dead_letter:
        return hint(name, "the dead-letter stream must be another key than the stream itself.")
    stream_slot, dead_slot = hash_slot(stream), hash_slot(dead_letter)
    if stream_slot != dead_slot:
        return hint(
            name,
            f"{stream!r} hashes to slot {stream_slot} and {dead_letter!r} to slot {dead_slot}: when a key "
            "has a hash tag (the text between its first '{' and the next '}', if not empty), only the tag "
            "is hashed; give both keys the same tag.",
        )
    if not _hash_tag(stream):
        return passed(name, f"both in slot {stream_slot}, by luck of CRC16: a hash tag makes it certain.")
    return passed(name, f"both hash to slot {stream_slot}, so the dead-letter script may touch both.")


def _hash_tag(key: str) -> str:
    """The part of ``key`` that Redis Cluster hashes when it has one: between the first '{' and
    the next '}', if that is not empty; else ''."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else ""


@checker("Exercise 7.2 (confirm on the right connection)")
def check_confirmed_writer(
    name: str,
    cluster: LocalCluster,
    writer: Callable[..., Any],
    timeout: float = 10.0,
) -> CheckResult:
    """Exercise 7.2: ``writer(client, stream, messages)`` appends the messages and returns True only
    when a replica has them. Checked twice: with the replica up, and with it paused (SIGSTOP)."""
    if not callable(writer):
        return hint(name, "writer must be a function writer(client, stream, messages).")
    client = cluster.client()
    try:
        # A stream on another master than the client's default node, where RedisCluster.wait() goes:
        # there, a WAIT on the wrong connection "confirms" at once, and the check can tell.
        default_port = client.get_default_node().port  # type: ignore[no-untyped-call]
        suffix = 0
        while cluster.master_of(f"{{course:07:exercise-7.2.{suffix}}}").port == default_port:
            suffix += 1
        stream = f"{{course:07:exercise-7.2.{suffix}}}"
        client.delete(stream)
        master = cluster.master_of(stream)
        replica = cluster.replica_of(master)

        def call(message: dict[str, Any]) -> tuple[bool, Any]:
            """Run the writer in a thread, so that a WAIT without a timeout cannot hang the check."""
            outcome: list[Any] = []
            thread = threading.Thread(
                target=lambda: outcome.append(_capture(writer, client, stream, [message])), daemon=True
            )
            thread.start()
            thread.join(timeout)
            return (not thread.is_alive()), (outcome[0] if outcome else None)

        finished, healthy = call({"n": 1})
        if not finished:
            return hint(name, f"the writer ran for more than {timeout:g} s with every node up.")
        if isinstance(healthy, Exception):
            return hint(name, f"the writer raised {type(healthy).__name__}: {healthy}")
        if healthy is not True:
            return hint(name, f"with the replica up, the writer should return True, not {healthy!r}.")
        if client.xlen(stream) != 1:
            entries = client.xlen(stream)
            return hint(name, f"after one message the stream holds {entries} entries: write the messages.")
        cluster.pause(replica)
        try:
            finished, lagging = call({"n": 2})
        finally:
            cluster.resume(replica)
        if not finished:
            return hint(
                name,
                f"with the replica paused, the writer waited more than {timeout:g} s: give WAIT a timeout "
                "(WAIT 1 0 waits forever).",
            )
        if isinstance(lagging, Exception):
            return hint(name, f"the writer raised {type(lagging).__name__}: {lagging}")
        if lagging is not False:
            return hint(
                name,
                f"the replica was paused, yet the writer returned {lagging!r}: WAIT confirms the writes made "
                "on the connection it is sent on (Redis 7.0 also counts whatever the master had written when "
                "that connection last ran a command). RedisCluster.wait() goes to the default node, another "
                "master; send the XADD and the WAIT together to the stream's master (a pipeline on one node "
                "connection).",
            )
        return passed(
            name,
            "True with the replica up, False while it lagged: it knows what a failover may lose.",
        )
    finally:
        client.close()


def _capture(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # the learner's error is the check's message
        return exc


PARTITION_DESIGNS = {
    "a": "one stream, and more consumers in its group",
    "b": "3 streams, one on each master, a message's stream chosen by a hash of its customer ID",
    "c": "3 streams, messages sent to them in turn (round robin)",
    "d": "3 streams named {orders}:0, {orders}:1 and {orders}:2, chosen by a hash of the customer ID",
}


@checker("Exercise 7.3 (choose a design)")
def check_partition_design(name: str, answer: Any) -> CheckResult:
    """Exercise 7.3: which design uses all three masters and keeps each customer's messages in order?"""
    hints = {
        "a": "one stream is one key in one slot on one master: more consumers share its reads, "
        "but every command still goes to that one server.",
        "c": "in turn, one customer's messages land on different partitions, whose consumers run "
        "side by side: their order is lost.",
        "d": "only the part in braces is hashed: {orders} puts all three streams in one slot, on one master.",
    }
    if answer is None:
        return hint(name, "answer is still None: write one letter, 'a' to 'd'.")
    if not isinstance(answer, str) or answer.strip().lower() not in PARTITION_DESIGNS:
        return hint(name, f"{answer!r}: write one letter, 'a' to 'd'.")
    letter = answer.strip().lower()
    if letter == "b":
        return passed(
            name,
            "hashing the customer keeps each customer on one partition, and a stream on each master uses "
            "them all. Different tags only give different slots; partition_streams picks tags whose slots "
            "lie on different masters.",
        )
    return hint(name, hints[letter])
