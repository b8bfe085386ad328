"""Errors raised by the helpers when the course cannot be set up.

Each message says what went wrong and what to do about it, so that a learner
who sees one in a notebook knows the next step without reading any code.
"""

from __future__ import annotations

__all__ = [
    "CourseSetupError",
    "OldServerWarning",
    "PortTakenError",
    "ServerBinaryError",
    "ServerStartError",
    "ServerUnreachableError",
    "UnknownBackendError",
]


class CourseSetupError(RuntimeError):
    """Base class: the course could not get a working Redis connection."""


class UnknownBackendError(CourseSetupError, ValueError):
    """A backend name that is not one of ``auto``, ``server`` or ``fake``."""


class ServerBinaryError(CourseSetupError):
    """No usable redis-server or valkey-server binary was found."""


class ServerStartError(CourseSetupError):
    """A server binary was found but the server did not come up."""


class ServerUnreachableError(CourseSetupError, ConnectionError):
    """A server named by URL (argument or ``REDIS_URL``) did not answer."""


class PortTakenError(ServerStartError):
    """The server could not listen on its port: another process holds it."""


class OldServerWarning(UserWarning):
    """The server is older than the oldest the course supports: some lessons will fail on it."""
