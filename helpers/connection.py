"""Connect a notebook to Redis: a real server by default, fakeredis as the named fallback.

How :func:`connect` chooses, first match wins:

1. an explicit ``url`` argument, else the ``REDIS_URL`` environment variable:
   that server, checked with a PING;
2. ``backend=`` or the ``STREAMS_BACKEND`` environment variable:

   - ``server``: a private real server for this kernel (see :mod:`helpers.servers`),
     started on first use and stopped when the kernel exits;
   - ``fake``: fakeredis, one in-memory server shared by the whole kernel;
   - ``auto`` (the default): ``server`` when a binary can be found, else ``fake``
     with a one-line notice on stderr.

Every client of one kernel and backend talks to the same data.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings
from typing import Any

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import OldServerWarning, ServerUnreachableError, UnknownBackendError
from .servers import (
    LOOPBACK,
    OLDEST_SUPPORTED,
    LocalServer,
    ServerBinary,
    find_server_binary,
    require_server_binary,
    too_old_notice,
    version_tuple,
)

__all__ = [
    "BACKENDS",
    "FAKEREDIS_NOTICE",
    "FAKE_SERVER_VERSION",
    "connect",
    "delete_keys",
    "describe",
    "resolve_backend",
    "server_url",
    "server_version",
]

BACKENDS = ("auto", "server", "fake")

# How long connect() waits for a server named by URL to accept and answer a PING.
REACHABILITY_TIMEOUT = 5.0

# fakeredis emulates one version at a time; 7.0 matches the oldest real server
# in the course's test matrix (Debian's and Ubuntu's redis-server 7.0.15).
FAKE_SERVER_VERSION = (7, 0)

FAKEREDIS_NOTICE = (
    "No redis-server or valkey-server found, so this kernel uses fakeredis, an in-memory imitation. "
    "It differs from real Redis in crash-and-recover details (idle times after a re-read, "
    "pending entries of deleted messages, XCLAIM LASTID, error texts, blocking-read timeouts); "
    "notebook 00 lists them. Install the course requirements to get a real server."
)


class _KernelBackends:
    """The one private server and the one fake server of this process, started lazily."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.server: LocalServer | None = None
        self.fake_server: fakeredis.FakeServer | None = None
        self.fake_tcp: fakeredis.TcpFakeServer | None = None
        self.fake_notice_shown = False
        self.notes_shown: set[str] = set()
        self._exit_hook_registered = False

    def get_server(self) -> LocalServer:
        with self._lock:
            if self.server is None or not self.server.is_running:
                if self.server is None:
                    self.server = LocalServer(self.find_binary())
                self.server.start()
                self._register_exit_hook()
            return self.server

    def find_binary(self) -> ServerBinary:
        """The binary for the private server; says once why an old one on PATH was passed over,
        and warns when REDIS_SERVER_BIN names a server older than the course supports."""
        skipped: list[str] = []
        binary = find_server_binary(skipped)
        self.show_once(skipped)
        if binary is None:
            return require_server_binary()  # raises, saying what to install
        if not binary.supported:
            warnings.warn(too_old_notice(binary.describe(), binary.version), OldServerWarning, stacklevel=4)
        return binary

    def show_once(self, notes: list[str]) -> None:
        for note in notes:
            if note not in self.notes_shown:
                print(note, file=sys.stderr)
                self.notes_shown.add(note)

    def get_fake_server(self) -> fakeredis.FakeServer:
        with self._lock:
            if self.fake_server is None:
                self.fake_server = fakeredis.FakeServer(version=FAKE_SERVER_VERSION)
            return self.fake_server

    def get_fake_tcp(self) -> fakeredis.TcpFakeServer:
        fake_server = self.get_fake_server()
        with self._lock:
            if self.fake_tcp is None:
                tcp = fakeredis.TcpFakeServer((LOOPBACK, 0), server_version=FAKE_SERVER_VERSION)
                # Serve the kernel's own fake data, so in-process and TCP clients agree.
                tcp.fake_server = fake_server
                thread = threading.Thread(target=tcp.serve_forever, name="fakeredis-tcp", daemon=True)
                thread.start()
                self.fake_tcp = tcp
                self._register_exit_hook()
            return self.fake_tcp

    def close(self) -> None:
        with self._lock:
            if self.server is not None:
                self.server.close()
                self.server = None
            if self.fake_tcp is not None:
                self.fake_tcp.shutdown()
                self.fake_tcp.server_close()
                self.fake_tcp = None

    def _register_exit_hook(self) -> None:
        if not self._exit_hook_registered:
            atexit.register(self.close)
            self._exit_hook_registered = True


_KERNEL = _KernelBackends()


def _resolve(backend: str | None) -> tuple[str, bool]:
    """(``"server"`` or ``"fake"``, whether it was chosen automatically)."""
    source = "backend argument"
    if backend is None:
        backend = os.environ.get("STREAMS_BACKEND") or "auto"
        source = "STREAMS_BACKEND"
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise UnknownBackendError(
            f"Unknown backend {backend!r} (from {source}). Use one of: {', '.join(BACKENDS)}; "
            "or set REDIS_URL to use your own server."
        )
    if name == "auto":
        return ("server" if find_server_binary() is not None else "fake"), True
    return name, False


def resolve_backend(backend: str | None = None) -> str:
    """Return ``"server"`` or ``"fake"`` for ``backend`` (or ``STREAMS_BACKEND``).

    Raises:
        UnknownBackendError: the name is not one of ``auto``, ``server``, ``fake``.
        ServerBinaryError: ``REDIS_SERVER_BIN`` is set to something unusable.
    """
    return _resolve(backend)[0]


def _check_reachable(url: str, origin: str, client_kwargs: dict[str, Any]) -> None:
    """PING the server at ``url`` once, with the caller's credentials and options but no retries,
    within REACHABILITY_TIMEOUT seconds per step; warn if it is older than the course supports."""
    probe = redis.Redis.from_url(
        url,
        **{
            **client_kwargs,
            "socket_connect_timeout": REACHABILITY_TIMEOUT,
            "socket_timeout": REACHABILITY_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    unset = ", or unset REDIS_URL to use a private server" if origin == "REDIS_URL" else ""
    try:
        probe.ping()
        _warn_if_too_old(probe, f"the server at {url} ({origin})")
    except redis.AuthenticationError as exc:
        raise ServerUnreachableError(
            f"The server at {url} ({origin}) refused our credentials: {exc}. "
            "Put the user name and password in the URL (redis://user:password@host:port)."
        ) from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise ServerUnreachableError(
            f"Could not reach {url} ({origin}): {exc}. To fix: start that server or fix the URL{unset}."
        ) from exc
    except redis.RedisError as exc:
        raise ServerUnreachableError(
            f"Something answered at {url} ({origin}), but not as a Redis server would ({exc}). "
            f"To fix: check the host and port{unset}."
        ) from exc
    finally:
        probe.close()


def _warn_if_too_old(client: redis.Redis, where: str) -> None:
    try:
        info = client.info("server")
    except redis.ResponseError:
        return  # a least-privilege user may not run INFO: nothing to say
    if info.get("server_name") == "valkey" or "valkey_version" in info:
        return  # every Valkey release is 7.2 or newer
    version = str(info.get("redis_version", ""))
    if version_tuple(version) < OLDEST_SUPPORTED:
        warnings.warn(too_old_notice(f"{where}, Redis {version}", version), OldServerWarning, stacklevel=4)


def connect(
    url: str | None = None,
    *,
    backend: str | None = None,
    decode_responses: bool = True,
    **client_kwargs: Any,
) -> redis.Redis:
    """Return a redis-py client for this kernel's Redis.

    Args:
        url: a ``redis://`` URL of a server of your own; overrides everything.
        backend: ``auto``, ``server`` or ``fake``; defaults to ``STREAMS_BACKEND``
            or ``auto``.
        decode_responses: return ``str`` instead of ``bytes`` (the course default).
        **client_kwargs: passed to ``redis.Redis``, for example ``socket_timeout``.
            The fake backend accepts and ignores socket options, having no socket.

    Raises:
        ServerUnreachableError: a server named by URL did not answer.
        UnknownBackendError, ServerBinaryError, ServerStartError: see the message.
    """
    origin = "url argument"
    if url is None and os.environ.get("REDIS_URL"):
        url = os.environ["REDIS_URL"]
        origin = "REDIS_URL"
    if url is not None:
        client_kwargs.setdefault("socket_connect_timeout", 5)
        try:
            client = redis.Redis.from_url(url, decode_responses=decode_responses, **client_kwargs)
        except ValueError as exc:
            raise ServerUnreachableError(
                f"{url!r} ({origin}) is not a Redis URL: {exc}. Use redis://host:port/db."
            ) from exc
        _check_reachable(url, origin, {"decode_responses": decode_responses, **client_kwargs})
        return client

    name, automatic = _resolve(backend)
    if name == "server":
        return _KERNEL.get_server().client(decode_responses=decode_responses, **client_kwargs)
    if automatic and not _KERNEL.fake_notice_shown:
        skipped: list[str] = []
        find_server_binary(skipped)
        _KERNEL.show_once(skipped)
        print(FAKEREDIS_NOTICE, file=sys.stderr)
        _KERNEL.fake_notice_shown = True
    return fakeredis.FakeRedis(server=_KERNEL.get_fake_server(), decode_responses=decode_responses)


def server_url(backend: str | None = None) -> str:
    """A URL that other processes (and plain redis-py clients) can reach.

    For ``REDIS_URL`` that URL; for the ``server`` backend the private server;
    for the ``fake`` backend a fakeredis TCP server that serves the same data
    as :func:`connect`'s in-process clients.
    """
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if resolve_backend(backend) == "server":
        return _KERNEL.get_server().url
    host, port = _KERNEL.get_fake_tcp().server_address[:2]
    return f"redis://{host!s}:{port}"


def server_version(client: redis.Redis) -> tuple[int, ...]:
    """The Redis version the client's server reports, for feature checks.

    Valkey reports the Redis version it is compatible with (7.2.4 for Valkey 7
    and later) as ``redis_version``; that is the number that decides which
    Redis commands exist. For fakeredis it is the emulated version.
    """
    if isinstance(client, fakeredis.FakeRedis):
        return FAKE_SERVER_VERSION
    info = client.info("server")
    return tuple(int(part) for part in str(info["redis_version"]).split(".") if part.isdigit())


def describe(client: redis.Redis) -> str:
    """One line about what ``client`` talks to.

    For example ``Valkey 9.1.2, private server on 127.0.0.1:40123``,
    ``Redis 7.0.15 at 10.0.0.5:6379`` or ``fakeredis 2.41.0, in-memory fake
    of Redis 7.0 (some stream behaviours differ: see notebook 00)``.
    """
    if isinstance(client, fakeredis.FakeRedis):
        version = ".".join(str(part) for part in FAKE_SERVER_VERSION)
        return (
            f"fakeredis {fakeredis.__version__}, in-memory fake of Redis {version} "
            "(some stream behaviours differ: see notebook 00)"
        )
    info = client.info("server")
    if info.get("server_name") == "valkey" or "valkey_version" in info:
        product = f"Valkey {info.get('valkey_version', info['redis_version'])}"
    else:
        product = f"Redis {info['redis_version']}"
    kwargs = client.connection_pool.connection_kwargs
    host, port = kwargs.get("host", "?"), kwargs.get("port", "?")
    private = _KERNEL.server
    if private is not None and private.is_running and (host, port) == (private.host, private.port):
        return f"{product}, private server on {host}:{port}"
    if kwargs.get("path"):
        return f"{product} on unix socket {kwargs['path']}"
    return f"{product} at {host}:{port}"


def delete_keys(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching ``pattern`` (a SCAN MATCH pattern); return how many.

    Notebooks call it first with their own prefix, such as ``"course:02:*"``, so that
    a re-run starts clean without touching anything else on a shared server.
    """
    if pattern in ("", "*"):
        raise ValueError("refusing to delete every key: give a prefix pattern such as 'course:02:*'")
    deleted = 0
    for key in client.scan_iter(match=pattern, count=500):
        deleted += int(client.delete(key))
    return deleted
