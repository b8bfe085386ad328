"""helpers.cluster.LocalCluster: formation, routing by hash tag, and a failover, on real servers."""

from __future__ import annotations

import time

import pytest
import redis

from helpers.cluster import LocalCluster

pytestmark = pytest.mark.needs_server


def test_three_masters_share_the_slots(cluster: LocalCluster) -> None:
    assert len(cluster.masters()) == 3
    client = cluster.client()
    # Hash tags put each partition stream in one slot; different tags spread over the masters.
    owners = {cluster.master_of(f"{{jobs-{n}}}").port for n in range(12)}
    assert len(owners) == 3
    for n in range(12):
        client.xadd(f"{{jobs-{n}}}", {"n": n}, id="1-1")
    assert all(client.xlen(f"{{jobs-{n}}}") == 1 for n in range(12))


def test_a_multi_key_read_across_slots_is_refused(cluster: LocalCluster) -> None:
    first, second = "{jobs-0}", "{jobs-1}"
    node = cluster.node_client(cluster.master_of(first))
    assert node.cluster("keyslot", first) != node.cluster("keyslot", second)
    # The server answers CROSSSLOT; redis-py raises it as ClusterCrossSlotError.
    with pytest.raises(redis.exceptions.ClusterCrossSlotError, match="same slot"):
        node.execute_command("XREAD", "STREAMS", first, second, "0", "0")


def test_failover_promotes_the_replica_and_keeps_written_entries(cluster: LocalCluster) -> None:
    client = cluster.client()
    key = "{failover}"
    old_master = cluster.master_of(key)
    direct = cluster.node_client(old_master)
    for n in range(5):
        direct.xadd(key, {"n": n}, id=f"{n + 1}-0")
    direct.xgroup_create(key, "workers", id="0")
    direct.xreadgroup("workers", "w1", {key: ">"}, count=2)
    assert direct.execute_command("WAIT", 1, 5000) == 1  # the replica has all of it
    cluster.kill(old_master)
    new_master = cluster.wait_for_new_master(key, old_master, timeout=30)
    promoted = cluster.node_client(new_master)
    assert [entry_id for entry_id, _ in promoted.xrange(key)] == [f"{n}-0" for n in range(1, 6)]
    assert promoted.xpending(key, "workers")["pending"] == 2
    cluster.restart(old_master)  # it rejoins as a replica of the promoted node
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.role(old_master) != "slave":
        time.sleep(0.1)
    assert cluster.role(old_master) == "slave"
    client.close()
    cluster.heal()
