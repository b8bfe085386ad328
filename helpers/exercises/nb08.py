"""Exercise checkers of notebook 08, durability."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ..servers import LocalServer, find_server_binary
from ._common import CheckResult, check_number, checker, hint, passed

__all__ = ["check_oom_producer", "check_power_loss_setting", "check_process_crash_loss"]

POWER_LOSS_HINTS = {
    "everysec": "everysec fsyncs about once a second: a power loss takes the newest acknowledged writes "
    "with it (the picture above).",
    "no": "with no, Redis does not fsync while it runs: a power loss takes whatever the kernel had "
    "not yet written back.",
    "rdb": "a snapshot keeps nothing written after it: a power loss (or any crash) takes all of that.",
    "none": "without persistence nothing outlives the process, let alone the machine.",
}


@checker("Exercise 8.1 (a setting for payments)")
def check_power_loss_setting(name: str, answer: Any) -> CheckResult:
    """Exercise 8.1: the setting under which no acknowledged XADD is lost when the power goes: always."""
    if answer is None:
        return hint(name, "answer is still None: write one of 'always', 'everysec', 'no', 'rdb', 'none'.")
    choice = as_text(answer).strip().lower() if isinstance(answer, (str, bytes)) else None
    if choice == "always":
        return passed(
            name, "appendfsync always fsyncs before it replies: an acknowledged XADD is on the disk."
        )
    if choice in POWER_LOSS_HINTS:
        return hint(name, POWER_LOSS_HINTS[choice])
    return hint(name, f"{answer!r:.60}: write one of 'always', 'everysec', 'no', 'rdb', 'none'.")


@checker("Exercise 8.2 (a process crash)")
def check_process_crash_loss(name: str, answer: Any) -> CheckResult:
    """Exercise 8.2: AOF with appendfsync no, the server process SIGKILLed: 0 acknowledged entries lost."""
    return check_number(
        name,
        answer,
        0,
        "the AOF's writes reach the kernel before the reply, and a process crash leaves the kernel "
        "running: it writes them to disk later. fsync matters when the machine itself goes down.",
        {},
        "the machine did not lose power: only the server process died. Where were the AOF's writes?",
    )


def _full(client: redis.Redis) -> None:
    """Make the server refuse writes as a full one does: a maxmemory below what it already uses
    (its policy is noeviction), a way to be full at once, whatever its size."""
    client.config_set("maxmemory", 1)


def _room(client: redis.Redis) -> None:
    client.config_set("maxmemory", 0)


def _call(send: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None, float]:
    started = time.monotonic()
    try:
        return send(*args), None, time.monotonic() - started
    except Exception as exc:  # the learner's code: its error is part of the answer
        return None, exc, time.monotonic() - started


@checker("Exercise 8.3 (a producer that waits out OOM)")
def check_oom_producer(name: str, send: Callable[..., Any]) -> CheckResult:
    """Exercise 8.3: ``send(client, stream, fields, deadline_s)`` appends a message, retrying while the
    server answers OOM, until ``deadline_s`` seconds have passed; then it raises. Any other error
    is raised at once.

    The check starts its own server with ``noeviction`` and makes it full (a ``maxmemory``
    below what it uses), then calls ``send`` three times: room is made 0.3 s into the call (it
    must succeed); room is never made (it must raise, close to the deadline); the stream's key
    holds a string (it must raise at once).
    """
    if not callable(send):
        return hint(
            name, "send_with_retry must be a function: send_with_retry(client, stream, fields, deadline_s)."
        )
    binary = find_server_binary()
    if binary is None:
        return hint(name, "this check starts a server of its own, and no server binary was found here.")
    with LocalServer(binary) as server:
        client = server.client()
        _full(client)

        def make_room() -> None:
            time.sleep(0.3)
            _room(client)

        freer = threading.Thread(target=make_room, daemon=True)
        freer.start()
        entry_id, error, took = _call(send, client, "course:check:jobs", {"n": "1"}, 5.0)
        freer.join(timeout=30)
        if error is not None:
            return hint(
                name,
                f"the server had room 0.3 s into the call, yet send raised {type(error).__name__}: {error}. "
                "Retry an OutOfMemoryError with a short pause until the deadline.",
            )
        if client.xlen("course:check:jobs") != 1:
            return hint(name, "send returned, but the stream does not hold exactly one new entry.")

        _full(client)
        entry_id, error, took = _call(send, client, "course:check:jobs", {"n": "2"}, 0.5)
        if error is None:
            return hint(
                name, f"the server never had room, yet send returned {entry_id!r}: raise at the deadline."
            )
        if took < 0.4:
            return hint(
                name, f"send gave up after {took:.2f} s, before its 0.5 s deadline: retry until then."
            )
        if took > 3.0:
            return hint(
                name, f"send took {took:.1f} s with a deadline of 0.5 s: stop retrying at the deadline."
            )

        _room(client)
        client.set("course:check:wrong", "a string")
        entry_id, error, took = _call(send, client, "course:check:wrong", {"n": "3"}, 5.0)
        if error is None or took > 1.0:
            return hint(
                name,
                "a key of the wrong type is not a lack of memory: retrying cannot fix it. Retry only "
                "redis.exceptions.OutOfMemoryError, and raise any other error at once.",
            )
    return passed(
        name,
        "it waited out a full server, gave up at its deadline, and did not retry an error that "
        "waiting cannot fix.",
    )
