"""A Redis Cluster of private servers on loopback: 3 masters, 3 replicas, formed with redis-py alone.

::

    with LocalCluster() as cluster:
        client = cluster.client()          # a redis.cluster.RedisCluster
        client.xadd("{orders}:0", {"n": 1})
        cluster.kill(cluster.master_of("{orders}:0"))   # SIGKILL a master: its replica takes over

Formation (no redis-cli: the Valkey wheel has none): CLUSTER MYID on each node,
a distinct CLUSTER SET-CONFIG-EPOCH per node, ADDSLOTSRANGE in thirds, MEET, wait
until every node sees all six, CLUSTER REPLICATE, then wait for ``cluster_state:ok``,
one view, and replicas in sync. Every wait is bounded: formation gives up after
``timeout`` seconds with an error that names what did not come up.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis
from redis.cluster import RedisCluster

from .common import hash_slot
from .errors import PortTakenError, ServerStartError
from .servers import LOOPBACK, LocalServer, ServerBinary, require_server_binary

__all__ = ["LocalCluster"]

SLOTS = 16384
BUS_OFFSET = 10000  # the cluster bus listens on port + 10000
_PORT_ATTEMPTS = 5


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _cluster_ports(count: int, low: int = 20000, high: int = 22700) -> list[int]:
    """``count`` ports whose cluster-bus ports are free too.

    Ports stay below 22768, so that bus ports stay below 32768, where Linux's
    ephemeral range starts: client connections can then never take a bus port.
    """
    found: list[int] = []
    start = low + (time.monotonic_ns() // 1000) % (high - low)  # spread concurrent users apart
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if _port_is_free(port) and _port_is_free(port + BUS_OFFSET):
            found.append(port)
            if len(found) == count:
                return found
    raise ServerStartError(
        f"could not find {count} free port pairs (port and port + {BUS_OFFSET}) in {low}-{high}"
    )


class LocalCluster:
    """Three masters and three replicas on loopback, each a :class:`LocalServer`.

    Args:
        binary: the server binary (default: as :func:`helpers.connect` finds it).
        node_timeout_ms: ``cluster-node-timeout``: how long a silent master is
            given before its replica is promoted.
        timeout: seconds that formation may take before it gives up.
    """

    def __init__(
        self, binary: ServerBinary | None = None, *, node_timeout_ms: int = 1500, timeout: float = 30.0
    ) -> None:
        self.binary = binary or require_server_binary()
        self.node_timeout_ms = node_timeout_ms
        self.timeout = timeout
        self.nodes: list[LocalServer] = []

    # Life cycle -------------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        config = {
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": self.node_timeout_ms,
            "cluster-announce-ip": LOOPBACK,
            # The default 5 s delay leaves replicas unsynced, and an unsynced replica cannot be promoted.
            "repl-diskless-sync-delay": 0,
        }
        # Ports found free can be taken by another process before a node binds them:
        # then start again on fresh ports, a few times.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                for port in _cluster_ports(6):
                    self.nodes.append(LocalServer(self.binary, port=port, config=config).start())
                self._form()
                return self
            except PortTakenError:
                self.close()
                if attempt == _PORT_ATTEMPTS:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for node in self.nodes:
            if node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)  # a paused node would not act on SIGTERM
            node.close()
        self.nodes = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def kill(self, node: LocalServer) -> None:
        """SIGKILL one node, as a crash would."""
        node.kill()

    def restart(self, node: LocalServer) -> None:
        """Start a stopped node again, on its port and with its nodes.conf: it rejoins."""
        node.start()

    def pause(self, node: LocalServer) -> None:
        """SIGSTOP one node: it keeps its connections but answers nothing, like a stalled host."""
        if node.pid is None:
            raise ValueError(f"{node.describe()} is not running")
        os.kill(node.pid, signal.SIGSTOP)

    def resume(self, node: LocalServer) -> None:
        """SIGCONT a paused node."""
        if node.pid is None:
            raise ValueError(f"{node.describe()} is not running")
        os.kill(node.pid, signal.SIGCONT)

    def heal(self) -> None:
        """Resume paused nodes, restart stopped ones, and wait until the cluster is whole again:
        ``cluster_state:ok`` everywhere, three masters, and every replica in sync.

        A restarted old master rejoins as a replica of the node that took over from it.
        """
        for node in self.nodes:
            if node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)
            else:
                node.start()
        clients = [self.node_client(node) for node in self.nodes]

        def whole() -> bool:
            if not all(self._state(client) == "ok" for client in clients):
                return False
            roles = [client.info("replication") for client in clients]
            masters = [info for info in roles if info["role"] == "master"]
            replicas = [info for info in roles if info["role"] == "slave"]
            return (
                len(masters) == 3
                and all(int(info["connected_slaves"]) == 1 for info in masters)
                and all(info.get("master_link_status") == "up" for info in replicas)
            )

        self._wait(whole, "the cluster to heal (three masters, each with a replica in sync)")

    def wait_for_new_master(self, key: str, old: LocalServer, timeout: float = 30.0) -> LocalServer:
        """Wait until a node other than ``old`` serves ``key``'s slot and answers as its master.

        Raises:
            TimeoutError: no node took over within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                candidate = self.master_of(key)
                if candidate is not old:
                    return candidate
            except (LookupError, redis.RedisError):
                pass  # nodes still voting: ask again
            time.sleep(0.02)
        raise TimeoutError(f"no replica took over the slot of {key!r} within {timeout:g} s")

    # Clients and views -----------------------------------------------------------------------

    def client(self, **kwargs: Any) -> RedisCluster:
        """A cluster client that knows every node; keyword arguments go to RedisCluster."""
        kwargs.setdefault("decode_responses", True)
        live = next(node for node in self.nodes if node.is_running)
        return RedisCluster(host=live.host, port=live.port, **kwargs)

    def node_client(self, node: LocalServer) -> redis.Redis:
        return node.client(socket_timeout=5)

    def replica_of(self, master: LocalServer) -> LocalServer:
        """The running replica of ``master``."""
        for node in self.nodes:
            if node is master or not node.is_running:
                continue
            info = self.node_client(node).info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", -1)) == master.port:
                return node
        raise LookupError(f"{master.describe()} has no running replica")

    def masters(self) -> list[LocalServer]:
        """The running nodes that are masters now (after a failover, that includes promoted replicas)."""
        return [node for node in self.nodes if node.is_running and self.role(node) == "master"]

    def master_of(self, key: str) -> LocalServer:
        """The node that serves ``key``'s hash slot now."""
        slot = hash_slot(key)  # computed here as the server does (CRC16), no round trip
        for node in self.masters():
            for start, end in self.slots_of(node):
                if start <= slot <= end:
                    return node
        raise LookupError(f"no running master serves slot {slot}")

    # Formation -------------------------------------------------------------------------------

    def _form(self) -> None:
        clients = [self.node_client(node) for node in self.nodes]
        ids = [str(client.execute_command("CLUSTER MYID")) for client in clients]  # type: ignore[no-untyped-call]
        for epoch, client in enumerate(clients, start=1):
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", epoch)  # type: ignore[no-untyped-call]
        masters, replicas = clients[:3], clients[3:]
        bounds = [0, SLOTS // 3, 2 * SLOTS // 3, SLOTS]
        for index, client in enumerate(masters):
            client.execute_command("CLUSTER ADDSLOTSRANGE", bounds[index], bounds[index + 1] - 1)  # type: ignore[no-untyped-call]
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", LOOPBACK, self.nodes[0].port)  # type: ignore[no-untyped-call]
        self._wait(
            lambda: all(len(self._known(client)) == 6 for client in clients), "every node to see all six"
        )
        for replica, master_id in zip(replicas, ids[:3], strict=True):
            replica.execute_command("CLUSTER REPLICATE", master_id)  # type: ignore[no-untyped-call]
        self._wait(lambda: all(self._state(client) == "ok" for client in clients), "cluster_state:ok")
        self._wait(
            lambda: all(client.info("replication").get("master_link_status") == "up" for client in replicas),
            "the replicas to sync with their masters",
        )

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass  # a node still busy forming: ask again
            time.sleep(0.05)
        raise ServerStartError(
            f"the cluster did not come up: gave up after {self.timeout:g} s waiting for {what} "
            f"({self.binary.describe()}, ports {[node.port for node in self.nodes]})"
        )

    @staticmethod
    def _state(client: redis.Redis) -> str:
        info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        if not isinstance(info, dict):  # redis-py parses it into a dict; be ready for text too
            info = dict(line.split(":", 1) for line in str(info).splitlines() if ":" in line)
        return str(info.get("cluster_state", "")).strip()

    @staticmethod
    def _known(client: redis.Redis) -> list[str]:
        text = client.execute_command("CLUSTER NODES")  # type: ignore[no-untyped-call]
        if isinstance(text, dict):  # redis-py may parse it into a dict keyed by address
            return list(text)
        return [line for line in str(text).splitlines() if line.strip()]

    def role(self, node: LocalServer) -> str:
        """ "master" or "slave", as the node reports it now."""
        return str(self.node_client(node).info("replication")["role"])

    def slots_of(self, node: LocalServer) -> list[tuple[int, int]]:
        """The ranges of hash slots that ``node`` serves as a master, as (first, last) pairs."""
        ranges = []
        for entry in self.node_client(node).execute_command("CLUSTER SLOTS"):  # type: ignore[no-untyped-call]
            start, end, master = int(entry[0]), int(entry[1]), entry[2]
            if int(master[1]) == node.port:
                ranges.append((start, end))
        return ranges
