"""Exercise checkers of notebook 01, your first stream."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    checker,
    field_names,
    hint,
    passed,
)

__all__ = ["check_blocking_client", "check_explicit_ids", "check_next_id", "check_page_reader"]

EXPLICIT_IDS = ("1000-0", "1000-1", "1001-0")


@checker("Exercise 1.1 (explicit IDs)")
def check_explicit_ids(name: str, client: redis.Redis, key: str) -> CheckResult:
    """Exercise 1.1: the stream ``key`` holds exactly IDs 1000-0, 1000-1, 1001-0, each with ``celsius``."""
    if not client.exists(key):
        return hint(name, f"{key} does not exist yet: XADD creates the stream with its first entry.")
    if client.type(key) not in ("stream", b"stream"):
        return hint(name, f"{key} holds a {client.type(key)!r}, not a stream: delete it and use XADD.")
    entries = client.xrange(key) or []
    found = [as_text(entry_id) for entry_id, _ in entries]
    if found != list(EXPLICIT_IDS):
        return hint(
            name,
            f"the stream holds IDs {found}, expected {list(EXPLICIT_IDS)}. "
            "Pass id=... to xadd; delete the key to start over.",
        )
    missing = [as_text(entry_id) for entry_id, fields in entries if "celsius" not in field_names(fields)]
    if missing:
        return hint(name, f"entries {missing} have no 'celsius' field.")
    return passed(name, "three entries with the IDs you chose, in order.")


@checker("Exercise 1.2 (the next ID)")
def check_next_id(name: str, answer: Any) -> CheckResult:
    """Exercise 1.2: after the last ID ``5-3``, the smallest ID XADD accepts is ``5-4``."""
    if answer is None:
        return hint(name, "answer is still None: write the ID as a string, such as '7-0'.")
    text = as_text(answer).strip() if isinstance(answer, (str, bytes)) else None
    parts = text.split("-") if text is not None else []
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return hint(
            name, f"{answer!r:.60} is not an ID of the form <milliseconds>-<sequence>, such as '7-0'."
        )
    ms, seq = int(parts[0]), int(parts[1])  # as XADD reads it: '05-4' is 5-4
    if (ms, seq) == (5, 4):
        return passed(name, "same millisecond, next sequence number: 5-4 (5-* would produce it too).")
    if (ms, seq) == (5, 3):
        return hint(name, "5-3 is equal to the last ID, and XADD needs a strictly greater one.")
    if (ms, seq) < (5, 3):
        return hint(name, f"{ms}-{seq} is smaller than the last ID 5-3, so XADD refuses it.")
    if ms == 5:
        return hint(name, f"XADD accepts 5-{seq}, but a smaller sequence number would do: the next after 3.")
    return hint(name, f"XADD accepts {ms}-{seq}, but a smaller ID would do: stay in millisecond 5.")


@checker("Exercise 1.3 (paging with XRANGE)")
def check_page_reader(name: str, read_all: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 1.3: ``read_all(client, key, page_size)`` pages through a stream with XRANGE.

    The check builds its own stream of 23 entries (several share a millisecond),
    calls ``read_all`` with pages of 5, and looks at both the result and the
    XRANGE calls it made.
    """
    if not callable(read_all):
        return hint(name, "read_all must be a function: read_all(client, key, page_size).")
    key = "course:check:paging"
    page_size = 5
    client.delete(key)
    expected = []
    for n in range(23):
        entry_id = f"{100 + n // 3}-{n % 3}"
        client.xadd(key, {"n": n}, id=entry_id)
        expected.append(entry_id)
    spy = _XrangeSpy(client)
    try:
        result = read_all(spy, key, page_size)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return hint(name, f"read_all raised {type(exc).__name__}: {exc}")
    finally:
        client.delete(key)
    got = [as_text(item[0] if isinstance(item, (tuple, list)) else item) for item in (result or [])]
    if not spy.calls:
        return hint(name, "read_all never called client.xrange: page with xrange(key, min, max, count=...).")
    if any(count is None or count > page_size for count in spy.calls):
        return hint(name, f"pass count={page_size} (page_size) to every xrange call, so no page is larger.")
    if len(got) > len(set(got)):
        return hint(
            name, "some IDs came back twice: start each page after the last ID with an exclusive '(' bound."
        )
    if got != expected:
        return hint(name, f"expected {len(expected)} IDs in order, got {len(got)}: {got[:8]}...")
    if len(spy.calls) < math.ceil(len(expected) / page_size):
        return hint(name, "the result is right but the pages were not: use count=page_size.")
    pages = len(spy.calls)
    return passed(name, f"all {len(expected)} IDs, in order, in {pages} pages of at most {page_size}.")


@checker("Exercise 1.4 (blocking reads and socket_timeout)")
def check_blocking_client(name: str, client: redis.Redis, block_ms: int) -> CheckResult:
    """Exercise 1.4: a client whose socket timeout cannot cut a BLOCK of ``block_ms`` short."""
    timeout = _effective_socket_timeout(client)
    if timeout is None:
        return passed(name, "socket_timeout=None: the socket waits as long as the server blocks.")
    if timeout * 1000 > block_ms:
        return passed(name, f"socket_timeout={timeout} s outlasts BLOCK {block_ms} ms.")
    return hint(
        name,
        f"this client's socket_timeout is {timeout} s, which ends before BLOCK {block_ms} ms does, so the "
        "read raises TimeoutError. Pass a socket_timeout longer than the block time, or None.",
    )


def _effective_socket_timeout(client: redis.Redis) -> float | None:
    """The socket timeout the client's connections get, defaults included.

    A pool built by ``from_url`` leaves defaults out of ``connection_kwargs``, so
    ask the connection class, without connecting.
    """
    pool = client.connection_pool
    connection = pool.connection_class(**pool.connection_kwargs)
    timeout: float | None = connection.socket_timeout
    return timeout


class _XrangeSpy:
    """Wraps a client and records the ``count`` of every ``xrange`` call."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.calls: list[int | None] = []

    def xrange(self, name: str, min: str = "-", max: str = "+", count: int | None = None) -> Any:
        self.calls.append(count)
        return self._client.xrange(name, min=min, max=max, count=count)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._client, attribute)
