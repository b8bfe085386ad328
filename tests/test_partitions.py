"""helpers.partitions: routing by key, partition names, the partitioned producer, WAIT on the
writing connection, retries with a deadline; on a single server of every backend and on a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ClusterDownError, RedisClusterException, SlotNotCoveredError

import helpers
from helpers import (
    DeadlineExceeded,
    PartitionedProducer,
    call_with_deadline,
    hash_slot,
    is_failover_error,
    partition_of,
    partition_streams,
    write_and_wait,
)
from helpers.cluster import LocalCluster
from tests.conftest import Background

# Pure functions -------------------------------------------------------------------------------


def test_partition_of_is_stable_and_spreads() -> None:
    keys = [f"customer-{n}" for n in range(3000)]
    first = [partition_of(key, 3) for key in keys]
    assert first == [partition_of(key, 3) for key in keys]
    counts = [first.count(p) for p in range(3)]
    assert min(counts) > 800, counts  # about 1000 each
    # Not Python's hash(): another process with another hash seed routes every key the same way.
    for seed in ("1", "2"):
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from helpers import partition_of; print([partition_of(k, 3) for k in {keys[:50]!r}])",
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert other.stdout.strip() == str(first[:50])


def test_partition_streams_are_hash_tags_in_equal_shares_of_the_slots() -> None:
    for count in (1, 2, 3, 4, 7, 16):
        streams = partition_streams("orders", count)
        assert len(set(streams)) == count
        for index, stream in enumerate(streams):
            assert stream.startswith(f"{{orders:{index}") and stream.endswith("}")
            assert index * 16384 // count <= hash_slot(stream) < (index + 1) * 16384 / count
            # The whole name is the tag: suffixed keys (the dead-letter stream) share the slot.
            assert hash_slot(stream + ":dead") == hash_slot(stream)
    assert partition_streams("orders", 3) == partition_streams("orders", 3)


@pytest.mark.parametrize("name", ["", "a{b", "a}b", 3])
def test_partition_streams_refuse_bad_names(name: object) -> None:
    with pytest.raises(ValueError, match="name"):
        partition_streams(name, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, -1, 1025, 2.5, True])
def test_partition_counts_must_be_whole_and_positive(count: object) -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_streams("orders", count)  # type: ignore[arg-type]
    if count != 1025:
        with pytest.raises(ValueError, match="partitions"):
            partition_of("key", count)  # type: ignore[arg-type]


def test_partition_keys_must_be_text() -> None:
    with pytest.raises(TypeError, match="str"):
        partition_of(42, 3)  # type: ignore[arg-type]


def test_call_with_deadline_retries_then_succeeds() -> None:
    attempts: list[Exception] = []
    results: Iterator[object] = iter(
        [redis.ConnectionError("refused"), redis.ConnectionError("refused"), "done"]
    )

    def flaky() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return str(result)

    assert call_with_deadline(flaky, 5, first_backoff_s=0.001, on_error=attempts.append) == "done"
    assert [str(error) for error in attempts] == ["refused", "refused"]


def test_call_with_deadline_gives_up_with_the_last_error() -> None:
    calls = 0

    def always_down() -> None:
        nonlocal calls
        calls += 1
        raise redis.ConnectionError(f"refused {calls}")

    with pytest.raises(DeadlineExceeded) as caught:
        call_with_deadline(always_down, 0.2, first_backoff_s=0.01)
    assert calls >= 2
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert str(caught.value.__cause__) == f"refused {calls}"


def test_call_with_deadline_does_not_retry_other_errors() -> None:
    calls = 0

    def wrong() -> None:
        nonlocal calls
        calls += 1
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(redis.ResponseError):
        call_with_deadline(wrong, 5)
    assert calls == 1
    with pytest.raises(ValueError, match="deadline"):
        call_with_deadline(lambda: None, 0)


# On a single server (every backend) ---------------------------------------------------------


def test_partitioned_producer_keeps_each_keys_order(client: redis.Redis) -> None:
    producer = PartitionedProducer(client, "course-test", 3)
    messages = [(f"customer-{n % 7}", {"customer": f"customer-{n % 7}", "seq": n}) for n in range(70)]
    sent = producer.send_many(messages)
    assert [stream for stream, _ in sent] == [producer.stream_for(key) for key, _ in messages]
    by_customer: dict[str, list[int]] = defaultdict(list)
    for stream in producer.streams:
        for _, fields in client.xrange(stream):
            customer = str(fields["customer"])
            assert producer.stream_for(customer) == stream
            by_customer[customer].append(int(fields["seq"]))
    assert sum(map(len, by_customer.values())) == 70
    for seqs in by_customer.values():
        assert seqs == sorted(seqs)
    stream, message_id = producer.send("customer-3", {"seq": 70})
    assert stream == producer.stream_for("customer-3")
    assert client.xrange(stream, "-", "+")[-1][0] == message_id


def test_partitioned_producer_writes_nothing_when_one_message_is_bad(client: redis.Redis) -> None:
    producer = PartitionedProducer(client, "course-test", 3)
    with pytest.raises(helpers.MessageError, match="message 2"):
        producer.send_many([("a", {"n": 1}), ("b", {"n": 2}), ("c", {})])
    with pytest.raises(helpers.MessageError, match="message 0"):
        producer.send_many([("not a pair",)])  # type: ignore[list-item]
    with pytest.raises(helpers.MessageError, match="message 0"):
        producer.send_many([(42, {"n": 1})])  # type: ignore[list-item]
    assert all(client.exists(stream) == 0 for stream in producer.streams)
    assert producer.send_many([]) == []


def test_write_and_wait_on_a_single_server_without_replicas(client: redis.Redis, backend: str) -> None:
    if backend == "fake":
        pytest.skip("fakeredis has no WAIT")
    ids, replicas = write_and_wait(client, "course-test:wait", [{"n": 1}, {"n": 2}], timeout_ms=10)
    assert replicas == 0  # no replica to confirm anything
    assert [entry_id for entry_id, _ in client.xrange("course-test:wait")] == ids
    assert write_and_wait(client, "course-test:wait", []) == ([], 0)


# On a cluster (real servers) ----------------------------------------------------------------


@pytest.mark.needs_server
def test_partitions_spread_over_the_masters(cluster: LocalCluster) -> None:
    streams = partition_streams("spread", 3)
    assert len({cluster.master_of(stream).port for stream in streams}) == 3
    six = partition_streams("spread", 6)
    owners = [cluster.master_of(stream).port for stream in six]
    assert sorted(owners.count(port) for port in set(owners)) == [2, 2, 2]


@pytest.mark.needs_server
def test_partitioned_producer_on_a_cluster_keeps_each_keys_order(cluster: LocalCluster) -> None:
    client = cluster.client()
    producer = PartitionedProducer(client, "routed", 3)
    messages = [(f"account-{n % 11}", {"account": f"account-{n % 11}", "seq": n}) for n in range(330)]
    sent = producer.send_many(messages[:300])
    sent += [producer.send(key, fields) for key, fields in messages[300:]]
    assert len(sent) == 330
    by_account: dict[str, list[int]] = defaultdict(list)
    for stream in producer.streams:
        node = cluster.node_client(cluster.master_of(stream))  # each stream is on its own master
        for _, fields in node.xrange(stream):
            assert producer.stream_for(str(fields["account"])) == stream
            by_account[fields["account"]].append(int(fields["seq"]))
    assert sorted(by_account) == sorted({key for key, _ in messages})
    assert all(seqs == sorted(seqs) and len(seqs) == 30 for seqs in by_account.values())
    client.close()


@pytest.mark.needs_server
def test_a_read_across_partitions_is_crossslot_but_one_loop_per_partition_works(
    cluster: LocalCluster,
) -> None:
    client = cluster.client()
    producer = PartitionedProducer(client, "loops", 3)
    producer.send_many([(f"k{n}", {"n": n}) for n in range(30)])
    for stream in producer.streams:
        client.xgroup_create(stream, "g", id="0")
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        client.xreadgroup("g", "c", {stream: ">" for stream in producer.streams})
    seen = []
    for stream in producer.streams:
        reply = client.xreadgroup("g", "c", {stream: ">"}, count=100)
        seen += [int(fields["n"]) for _, fields in reply[0][1]]
    assert sorted(seen) == list(range(30))
    client.close()


@pytest.mark.needs_server
def test_wait_on_the_writing_connection_sees_a_paused_replica(cluster: LocalCluster) -> None:
    """WAIT on the connection that wrote reports the paused replica; RedisCluster.wait() does not."""
    client = cluster.client()
    stream = partition_streams("paused", 3)[0]
    master = cluster.master_of(stream)
    assert write_and_wait(client, stream, [{"n": 0}], timeout_ms=5000)[1] == 1
    replica = cluster.replica_of(master)
    other = next(node for node in cluster.masters() if node is not master)
    cluster.pause(replica)
    try:
        ids, confirmed = write_and_wait(client, stream, [{"n": 1}], timeout_ms=50)
        assert len(ids) == 1 and confirmed == 0
        # WAIT on another master's connection, which wrote nothing, "confirms" at once.
        assert cluster.node_client(other).execute_command("WAIT", 1, 50) == 1
    finally:
        cluster.resume(replica)
    assert write_and_wait(client, stream, [{"n": 2}], timeout_ms=5000)[1] == 1
    client.close()


@pytest.mark.needs_server
def test_worker_on_a_cluster_partition(cluster: LocalCluster) -> None:
    client = cluster.client()
    stream = partition_streams("work", 3)[1]
    helpers.Producer(client, stream).send_many([{"n": n, "poison": str(n == 3)} for n in range(20)])
    handled = []

    def handle(message_id: str, fields: dict[str, str]) -> None:
        if fields["poison"] == "True":
            raise ValueError("poison")
        handled.append(int(fields["n"]))

    worker = helpers.Worker(
        client, stream, group="g", consumer="w1", handler=handle, max_deliveries=1, block_ms=100
    )
    stats = worker.run(max_messages=20)
    assert sorted(handled) == [n for n in range(20) if n != 3]
    assert stats.dead_lettered == 1
    dead = client.xrange(stream + ":dead")
    assert [fields["n"] for _, fields in dead] == ["3"]
    assert client.xpending(stream, "g")["pending"] == 0
    client.close()


@pytest.mark.needs_server
def test_worker_on_a_cluster_refuses_a_dead_letter_stream_in_another_slot(cluster: LocalCluster) -> None:
    client = cluster.client()
    with pytest.raises(ValueError, match="hash slot"):
        helpers.Worker(client, "untagged", group="g", consumer="c", handler=print)
    with pytest.raises(ValueError, match="hash slot"):
        helpers.Worker(client, "{a}", group="g", consumer="c", handler=print, dead_letter="{b}:dead")
    helpers.Worker(client, "{untagged}", group="g", consumer="c", handler=print)  # {untagged}:dead is fine
    client.close()


@pytest.mark.needs_server
def test_worker_on_a_partition_survives_a_failover(cluster: LocalCluster, background: Background) -> None:
    """Kill the partition's master while a worker consumes it and a producer writes with WAIT:
    every message WAIT confirmed is handled, before or after the promotion."""
    client = cluster.client()
    stream = partition_streams("failover-work", 3)[2]
    old_master = cluster.master_of(stream)
    handled: list[int] = []
    worker = helpers.Worker(
        client,
        stream,
        group="g",
        consumer="w1",
        handler=lambda message_id, fields: handled.append(int(fields["n"])),
        block_ms=100,
        claim_idle_ms=500,
    )
    background.run(worker)
    confirmed: list[int] = []
    killed_at = None
    for batch in range(40):
        numbers = list(range(batch * 5, batch * 5 + 5))
        if batch == 10:
            cluster.kill(old_master)
            killed_at = time.monotonic()
        # The promoted master has no replica until the old one rejoins: do not wait long for one.
        wait_ms = 500 if batch < 10 else 10
        _, replicas = call_with_deadline(
            lambda numbers=numbers, wait_ms=wait_ms: write_and_wait(
                client, stream, [{"n": n} for n in numbers], timeout_ms=wait_ms
            ),
            30,
        )
        if replicas >= 1 or batch > 10:
            # After the failover the new master has no replica until the old one rejoins:
            # its writes are acknowledged by the master alone, and nobody kills it again.
            confirmed += numbers
    new_master = cluster.wait_for_new_master(stream, old_master)
    assert killed_at is not None and new_master is not old_master
    helpers.wait_for(lambda: set(confirmed) <= set(handled), 30, "every confirmed message to be handled")
    background.stop()
    assert len(confirmed) >= 150
    client.close()


@pytest.mark.needs_server
def test_a_lagging_replica_loses_acknowledged_writes_but_none_that_wait_confirmed(
    cluster: LocalCluster,
) -> None:
    """The loss window of asynchronous replication, made visible with a paused replica."""
    client = cluster.client()
    stream = partition_streams("loss", 3)[0]
    master = cluster.master_of(stream)
    replica = cluster.replica_of(master)
    acknowledged, confirmed = [], []
    ids, replicas = write_and_wait(client, stream, [{"n": n} for n in range(100)], timeout_ms=5000)
    assert replicas == 1
    acknowledged += ids
    confirmed += ids
    cluster.pause(replica)
    master_client = cluster.node_client(master)
    padding = "x" * 4000
    # Write until the master holds 4 MB it could not send: more than the kernel's socket
    # buffers take, so the resumed replica cannot catch up from them.
    deadline = time.monotonic() + 30
    while max(int(c["omem"]) for c in master_client.client_list(_type="replica")) < 4_000_000:
        assert time.monotonic() < deadline, "the master never buffered 4 MB for the paused replica"
        ids, replicas = write_and_wait(client, stream, [{"pad": padding}] * 200, timeout_ms=20)
        acknowledged += ids
        if replicas >= 1:
            confirmed += ids
    cluster.kill(master)
    cluster.resume(replica)
    promoted = cluster.wait_for_new_master(stream, master)
    assert promoted is replica
    present = {entry_id for entry_id, _ in cluster.node_client(promoted).xrange(stream)}
    assert set(confirmed) <= present  # nothing WAIT confirmed is lost
    assert len(acknowledged) - len(present & set(acknowledged)) > 0  # acknowledged, yet lost
    assert len(confirmed) < len(acknowledged)
    client.close()


def test_failover_errors_are_retried_and_mistakes_are_not() -> None:
    for transient in [
        redis.ConnectionError("Error 111 connecting to 127.0.0.1:20001. Connection refused."),
        redis.TimeoutError("Timeout reading from socket"),
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        SlotNotCoveredError("Command # 1 (XADD) has no node for slot 42"),
        RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node"
        ),
    ]:
        assert is_failover_error(transient), transient
    for mistake in [
        RedisClusterException("XREADGROUP - all keys must map to the same key slot"),
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ValueError("not Redis at all"),
    ]:
        assert not is_failover_error(mistake), mistake
    calls = 0

    def crossslot() -> None:
        nonlocal calls
        calls += 1
        raise RedisClusterException("XREADGROUP - all keys must map to the same key slot")

    with pytest.raises(RedisClusterException, match="same key slot"):
        call_with_deadline(crossslot, 5)
    assert calls == 1


@pytest.mark.needs_server
def test_worker_carries_on_when_its_clients_default_node_dies(
    cluster: LocalCluster, background: Background
) -> None:
    """redis-py's cluster client asks its default node where each XREADGROUP goes (COMMAND GETKEYS).
    When that node dies, a worker on a healthy partition must refresh its map of the cluster and go on."""
    client = cluster.client()
    worker_client = cluster.client()
    default = worker_client.get_default_node()
    default_node = next(node for node in cluster.nodes if node.port == default.port)
    stream = next(s for s in partition_streams("default-node", 3) if cluster.master_of(s) is not default_node)
    handled: list[int] = []
    worker = helpers.Worker(
        worker_client,
        stream,
        group="g",
        consumer="w1",
        handler=lambda message_id, fields: handled.append(int(fields["n"])),
        block_ms=100,
    )
    background.run(worker)
    helpers.Producer(client, stream).send_many([{"n": n} for n in range(5)])
    helpers.wait_for(lambda: len(handled) == 5, 30, "the first messages")
    cluster.kill(default_node)
    # The stream's own master is healthy: new messages must be handled within the deadline,
    # whether or not the dead node's slots have been taken over yet.
    second = [{"n": n} for n in range(5, 10)]
    call_with_deadline(lambda: helpers.Producer(client, stream).send_many(second), 30)
    helpers.wait_for(lambda: len(handled) >= 10, 30, "the worker to go on after its default node died")
    background.stop()
    client.close()
    assert sorted(set(handled)) == list(range(10))
