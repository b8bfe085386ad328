"""helpers.LocalServer: private servers with chosen config, crash and restart, clear failures."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import pytest
import redis

import helpers
from helpers import servers

pytestmark = pytest.mark.needs_server


def test_start_stop_and_port_released(server_binary: helpers.ServerBinary) -> None:
    server = helpers.LocalServer(server_binary).start()
    try:
        assert server.is_running and server.pid
        assert server.url == f"redis://127.0.0.1:{server.port}"
        assert server.client().ping() is True
        assert server.client().config_get("save") == {"save": ""}
        assert server.client().config_get("appendonly") == {"appendonly": "no"}
    finally:
        server.close()
    assert not server.is_running
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


def test_several_servers_are_independent(server_binary: helpers.ServerBinary) -> None:
    with helpers.LocalServer(server_binary) as first, helpers.LocalServer(server_binary) as second:
        assert first.port != second.port
        first.client().xadd("s", {"n": 1}, id="1-1")
        assert second.client().exists("s") == 0


def test_sigkill_and_restart_with_aof_keeps_stream_group_and_pel(server_binary: helpers.ServerBinary) -> None:
    with helpers.LocalServer(server_binary, appendonly=True, appendfsync="always") as server:
        client = server.client()
        client.xadd("jobs", {"n": 1}, id="1-1")
        client.xgroup_create("jobs", "workers", id="0")
        client.xreadgroup("workers", "alice", {"jobs": ">"})
        pid = server.pid
        server.kill()
        assert not server.is_running
        server.restart()
        assert server.pid != pid
        client = server.client()
        assert client.xrange("jobs") == [("1-1", {"n": "1"})]
        assert client.xpending("jobs", "workers")["pending"] == 1


def test_kill_with_children_also_kills_a_snapshot_being_written(server_binary: helpers.ServerBinary) -> None:
    # rdb-key-save-delay (microseconds per key) keeps the snapshot's child busy for a while.
    for with_children in (False, True):
        with helpers.LocalServer(server_binary, config={"rdb-key-save-delay": "1000000"}) as server:
            client = server.client()
            client.set("key", "value")
            client.bgsave()
            helpers.wait_for(
                lambda probe=client: probe.info("persistence")["rdb_bgsave_in_progress"] == 1,
                seconds=10,
                what="the snapshot",
            )
            pgid = server.pid
            assert pgid is not None
            server.kill(with_children=with_children)
            try:
                # Without it, the child outlives its parent, as after a real crash of the server alone.
                assert servers.process_group_alive(pgid) is not with_children
            finally:
                if servers.process_group_alive(pgid):
                    os.killpg(pgid, signal.SIGKILL)


def test_sigkill_without_persistence_loses_everything(server_binary: helpers.ServerBinary) -> None:
    with helpers.LocalServer(server_binary) as server:
        server.client().xadd("jobs", {"n": 1}, id="1-1")
        server.kill()
        server.restart()
        assert server.client().exists("jobs") == 0


def test_acl_users_from_config(server_binary: helpers.ServerBinary) -> None:
    users = [
        "default off",
        "producer on >producer-secret resetkeys resetchannels ~jobs:* -@all +xadd",
    ]
    with helpers.LocalServer(server_binary, users=users) as server:
        producer = server.client(username="producer", password="producer-secret")
        assert producer.xadd("jobs:email", {"to": "a@example.com"}, id="1-1") == "1-1"
        with pytest.raises(redis.exceptions.NoPermissionError, match=r"(?i)no permissions"):
            producer.xrange("jobs:email")
        with pytest.raises(redis.exceptions.NoPermissionError, match=r"(?i)no permissions"):
            producer.xadd("other", {"x": 1})
        with pytest.raises(redis.exceptions.AuthenticationError):
            server.client().ping()


def test_extra_config_is_applied(server_binary: helpers.ServerBinary) -> None:
    with helpers.LocalServer(server_binary, config={"stream-node-max-entries": 7}) as server:
        assert server.client().config_get("stream-node-max-entries") == {"stream-node-max-entries": "7"}


def test_taken_port_is_a_clear_error(server_binary: helpers.ServerBinary) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(helpers.ServerStartError, match=rf"127\.0\.0\.1:{port}: the port is taken"):
            helpers.LocalServer(server_binary, port=port).start()


class _PongSquatter:
    """Another "server" on a port: it answers every PING with PONG, as a real one would."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.port: int = self.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return  # closed
            with conn:
                while conn.recv(1024):
                    conn.sendall(b"+PONG\r\n")

    def close(self) -> None:
        self.socket.close()


def test_a_port_held_by_another_server_is_not_mistaken_for_ours(server_binary: helpers.ServerBinary) -> None:
    squatter = _PongSquatter()
    try:
        server = helpers.LocalServer(server_binary, port=squatter.port)
        with pytest.raises(helpers.PortTakenError, match="the port is taken"):
            server.start()
        assert not server.is_running
        server.close()
    finally:
        squatter.close()


def test_a_free_port_taken_before_the_server_binds_it_is_replaced(
    server_binary: helpers.ServerBinary, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = _PongSquatter()
    ports = iter([squatter.port])
    monkeypatch.setattr(servers, "free_port", lambda host: next(ports, 0) or _really_free_port())
    try:
        with helpers.LocalServer(server_binary) as server:
            assert server.port != squatter.port
            assert server.client().info("server")["process_id"] == server.pid
    finally:
        squatter.close()


def _really_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_directives_the_server_relies_on_cannot_be_overridden(server_binary: helpers.ServerBinary) -> None:
    with pytest.raises(ValueError, match="sets logfile, port itself"):
        helpers.LocalServer(server_binary, config={"port": 1, "logfile": "x.log"})


def test_bad_config_quotes_the_server_log(server_binary: helpers.ServerBinary) -> None:
    server = helpers.LocalServer(server_binary, config={"no-such-directive": "yes"})
    with pytest.raises(helpers.ServerStartError, match=r"exited with code 1(.|\n)*no-such-directive"):
        server.start()
    server.close()


def test_binary_that_never_answers_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    impostor = tmp_path / "redis-server"
    impostor.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "Redis server v=7.0.0"; exit 0; fi\nexec sleep 60\n'
    )
    impostor.chmod(0o755)
    server = helpers.LocalServer(str(impostor), startup_timeout=1)
    with pytest.raises(helpers.ServerStartError, match=r"did not answer .* within 1 s"):
        server.start()
    assert not server.is_running
    server.close()


def test_binary_that_exits_at_once(tmp_path: Path) -> None:
    quitter = tmp_path / "redis-server"
    quitter.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "Valkey server v=8.0.0"; exit 0; fi\n'
        "echo bye; exit 4\n"
    )
    quitter.chmod(0o755)
    with pytest.raises(helpers.ServerStartError, match=r"exited with code 4(.|\n)*bye"):
        helpers.LocalServer(str(quitter)).start()


def test_unstarted_server_has_no_url(server_binary: helpers.ServerBinary) -> None:
    with pytest.raises(RuntimeError, match="has not been started"):
        _ = helpers.LocalServer(server_binary).url


def test_bad_appendfsync_is_refused(server_binary: helpers.ServerBinary) -> None:
    with pytest.raises(ValueError, match="appendfsync"):
        helpers.LocalServer(server_binary, appendfsync="sometimes")
