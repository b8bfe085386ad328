"""Every error and warning the helpers raise, in one place.

Each message says what went wrong and what to do about it, so that a learner
who sees one in a notebook knows the next step without reading any code.
"""

from __future__ import annotations

__all__ = [
    "CourseSetupError",
    "DeadlineExceeded",
    "MessageError",
    "OldServerWarning",
    "PortTakenError",
    "QueueFullError",
    "ServerBinaryError",
    "ServerStartError",
    "ServerUnreachableError",
    "UnknownBackendError",
    "WrongKeyTypeError",
]


class CourseSetupError(RuntimeError):
    """Base class: the course could not get a working Redis connection."""


class UnknownBackendError(CourseSetupError, ValueError):
    """A backend name that is not one of ``auto``, ``server`` or ``fake``."""


class ServerBinaryError(CourseSetupError):
    """No usable redis-server or valkey-server binary was found."""


class ServerStartError(CourseSetupError):
    """A server binary was found but the server did not come up."""


class PortTakenError(ServerStartError):
    """The server could not listen on its port: another process holds it."""


class ServerUnreachableError(CourseSetupError, ConnectionError):
    """A server named by URL (argument or ``REDIS_URL``) did not answer."""


class OldServerWarning(UserWarning):
    """The server is older than the oldest the course supports: some lessons will fail on it."""


class MessageError(ValueError):
    """A message the producer refuses: empty, badly typed, or too large. Nothing was written."""


class WrongKeyTypeError(CourseSetupError, TypeError):
    """The stream's key holds another type of value."""


class DeadlineExceeded(TimeoutError):
    """A call kept failing until its deadline; the last error is its ``__cause__``."""


class QueueFullError(RuntimeError):
    """A bounded producer found the queue at one of its bounds; nothing was written."""
