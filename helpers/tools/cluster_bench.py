"""Throughput of a partitioned queue on one shard and on three, measured in one run.

    python -m helpers.tools.cluster_bench                 # a private 6-node cluster from the usual binary
    python -m helpers.tools.cluster_bench --rounds 5 --messages 20000

Producer processes (one per partition) write pipelined batches to their partition
streams through a cluster client. In the *one-shard* layout all partitions hash
to slots of the same master; in the *three-shard* layout they spread over the
three masters (:func:`helpers.partitions.partition_streams`). The two layouts
alternate within each round on the same cluster, and the report gives the median
of the per-round ratios, because on a shared machine only side-by-side numbers
mean something.

It also measures where the CPU goes: the producers' CPU time per message
(``time.process_time`` in each process) and the servers' (``used_cpu_user`` +
``used_cpu_sys`` from ``INFO cpu``), summed over the masters and, separately,
over their replicas, which apply every write too and share the machine. When
the clients spend several times more CPU per message than the servers, and the
machine has few cores, more shards cannot make the queue faster: the clients
are the bottleneck, not Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.cluster import RedisCluster

from ..cluster import LocalCluster
from ..common import hash_slot
from ..partitions import partition_streams
from ..producer import Producer

__all__ = ["ShardBench", "bench_shards", "main", "one_shard_streams"]

PAYLOAD = {"task": "x" * 90, "n": "1"}  # about 100 bytes, as in helpers.tools.bench


def one_shard_streams(cluster: LocalCluster, name: str, count: int) -> list[str]:
    """``count`` hash-tagged stream names whose slots all belong to one master (the first one's)."""
    owner = cluster.masters()[0]
    streams: list[str] = []
    suffix = 0
    while len(streams) < count:
        candidate = f"{{{name}:{len(streams)}.{suffix}}}"
        if cluster.master_of(candidate) is owner:
            streams.append(candidate)
        suffix += 1
    return streams


@dataclass
class ShardBench:
    """What :func:`bench_shards` measured; rates in messages per second."""

    producers: int
    messages_per_producer: int
    one_shard: list[float] = field(default_factory=list)
    three_shards: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # three shards / one shard, per round
    client_cpu_us: list[float] = field(default_factory=list)  # producers' CPU per message
    server_cpu_us: list[float] = field(default_factory=list)  # the masters' CPU per message
    replica_cpu_us: list[float] = field(default_factory=list)  # their replicas' CPU per message
    busiest_server: dict[str, list[float]] = field(default_factory=dict)  # its busy share of wall time

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def report(self) -> str:
        median = statistics.median
        servers = median(self.server_cpu_us) + median(self.replica_cpu_us)
        lines = [
            f"{self.producers} producer processes x {self.messages_per_producer:,} messages, "
            f"pipelined batches of 100; {len(self.ratios)} rounds, layouts alternating; medians",
            f"  one shard     {median(self.one_shard):10,.0f} messages/s   busiest master busy "
            f"{median(self.busiest_server['one']):.0%} of the time",
            f"  three shards  {median(self.three_shards):10,.0f} messages/s   busiest master busy "
            f"{median(self.busiest_server['three']):.0%} of the time",
            f"  ratio three / one, median of rounds: {self.ratio:.2f}",
            f"  CPU per message: producers {median(self.client_cpu_us):.1f} us, "
            f"masters {median(self.server_cpu_us):.1f} us, replicas {median(self.replica_cpu_us):.1f} us "
            f"({median(self.client_cpu_us) / servers:.1f}x more in the clients than in all the servers)",
            f"  cores on this machine: {os.cpu_count()}",
        ]
        return "\n".join(lines)


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _caught_up(masters: list[redis.Redis], replicas: list[redis.Redis], timeout: float = 5.0) -> None:
    """Wait (up to ``timeout``) until each replica has applied everything its master sent, so
    that the replicas' CPU is measured over the same writes as the masters'."""
    targets = [int(master.info("replication")["master_repl_offset"]) for master in masters]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offsets = [int(replica.info("replication").get("slave_repl_offset", -1)) for replica in replicas]
        if all(offset >= target for offset, target in zip(offsets, targets, strict=True)):
            return
        time.sleep(0.01)


def bench_shards(
    cluster: LocalCluster, *, messages: int = 5000, rounds: int = 3, producers: int = 3
) -> ShardBench:
    """Throughput of ``producers`` producer processes on one shard and on three; see the module doc."""
    if messages < 100 or messages % 100:
        raise ValueError(f"messages must be a positive multiple of 100 (the batch size), not {messages}")
    result = ShardBench(producers, messages, busiest_server={"one": [], "three": []})
    layouts = {
        "one": one_shard_streams(cluster, "bench-one", producers),
        "three": partition_streams("bench-three", producers),
    }
    masters = cluster.masters()
    master_clients = [cluster.node_client(node) for node in masters]
    replica_clients = [cluster.node_client(cluster.replica_of(node)) for node in masters]
    client = cluster.client()
    seed = masters[0]
    command = [sys.executable, "-m", "helpers.tools.cluster_bench", "--produce", f"{seed.host}:{seed.port}"]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(producers)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a producer process did not start")
        for _ in range(rounds):
            rates = {}
            for layout, streams in layouts.items():
                cpu_before = [_server_cpu(node) for node in master_clients]
                replica_cpu_before = [_server_cpu(node) for node in replica_clients]
                for child, stream in zip(children, streams, strict=True):
                    assert child.stdin is not None
                    child.stdin.write(f"{stream} {messages}\n")
                    child.stdin.flush()
                reports = []
                for child in children:
                    assert child.stdout is not None
                    reports.append(json.loads(child.stdout.readline()))
                cpu_used = [
                    _server_cpu(node) - before
                    for node, before in zip(master_clients, cpu_before, strict=True)
                ]
                _caught_up(master_clients, replica_clients)
                replica_cpu_used = [
                    _server_cpu(node) - before
                    for node, before in zip(replica_clients, replica_cpu_before, strict=True)
                ]
                wall = max(report["end"] for report in reports) - min(report["start"] for report in reports)
                total = messages * producers
                rates[layout] = total / wall
                result.busiest_server[layout].append(max(cpu_used) / wall)
                result.client_cpu_us.append(sum(report["cpu"] for report in reports) / total * 1e6)
                result.server_cpu_us.append(sum(cpu_used) / total * 1e6)
                result.replica_cpu_us.append(sum(replica_cpu_used) / total * 1e6)
                for stream in streams:
                    client.delete(stream)
            result.one_shard.append(rates["one"])
            result.three_shards.append(rates["three"])
            result.ratios.append(rates["three"] / rates["one"])
    finally:
        client.close()
        for node_client in master_clients + replica_clients:
            node_client.close()
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
    return result


def _produce(seed: str) -> int:
    """A producer process: for each ``STREAM COUNT`` line on stdin, write COUNT messages
    in pipelined batches of 100, and print when it started and ended and the CPU it used."""
    host, port = seed.rsplit(":", 1)
    client = RedisCluster(host=host, port=int(port))
    print("ready", flush=True)
    for line in sys.stdin:
        stream, count = line.split()
        producer = Producer(client, stream)
        batch: list[dict[str, Any]] = [PAYLOAD] * 100
        started, cpu_started = time.time(), time.process_time()
        for _ in range(int(count) // 100):
            producer.send_many(batch)
        report = {"start": started, "end": time.time(), "cpu": time.process_time() - cpu_started}
        print(json.dumps(report), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tools.cluster_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per producer per run")
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--produce", metavar="HOST:PORT", help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args(argv)
    if args.produce:
        return _produce(args.produce)
    started = time.monotonic()
    with LocalCluster() as cluster:
        print(f"cluster of 3 masters and 3 replicas formed in {time.monotonic() - started:.1f} s")
        print(
            f"slot of each three-shard stream: {[hash_slot(s) for s in partition_streams('bench-three', 3)]}"
        )
        print(
            bench_shards(
                cluster, messages=args.messages, rounds=args.rounds, producers=args.producers
            ).report()
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
