"""Exercise checkers of notebook 10, observability."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import redis

from ..common import as_text
from ._common import CheckResult, as_whole_number, check_number, checker, hint, passed

__all__ = ["check_count_unread", "check_silent_failure", "check_trimmed_before_read"]


@checker("Exercise 10.1 (trimmed before they were read)")
def check_trimmed_before_read(name: str, answer: Any) -> CheckResult:
    """Exercise 10.1: entries-added 1000, length 400, the group's entries-read 550: the group read
    entries 1-550, the stream keeps 601-1000, so 551-600 (50 entries) were trimmed unread."""
    return check_number(
        name,
        answer,
        50,
        "1000 added - 400 still there - 550 read = 50: entries 551 to 600 went before the group got to them.",
        {
            450: "450 is the lag as Redis counts it (added minus read), and it counts the trimmed ones: "
            "how many of those 450 are still in the stream?",
            600: "600 entries were trimmed in all, but the group had read 550 of them first.",
            400: "400 entries are still in the stream, all of them after the group's position: that is what "
            "it can still read, not what it lost.",
            150: "the group has read 550 entries, and the stream keeps the newest 400: "
            "which entries are in neither?",
        },
        "the group read the first 550 entries; the stream keeps the newest 400 of the 1000. "
        "Count those in between.",
    )


def _unread_scenarios(client: redis.Redis, key: str) -> Iterator[tuple[str, str, int]]:
    """(stream, what happened, the entries after the group's position), each built on the server."""
    stream = f"{key}:plain"
    for n in range(1, 11):
        client.xadd(stream, {"n": n}, id=f"{n}-0")
    client.xgroup_create(stream, "workers", id="0")
    client.xreadgroup("workers", "w1", {stream: ">"}, count=3)
    yield stream, "the group has read 3 of 10 entries", 7
    client.xdel(stream, "5-0")
    yield stream, "an unread entry was deleted with XDEL (Redis's lag is NULL)", 6
    client.xgroup_setid(stream, "workers", "8-0")
    yield stream, "the group was moved with XGROUP SETID, without ENTRIESREAD (lag NULL again)", 2
    client.xgroup_setid(stream, "workers", "6-0", entries_read=2)
    yield stream, "the group was moved with SETID 6-0 and a wrong ENTRIESREAD 2 (Redis trusts it)", 4
    client.xreadgroup("workers", "w1", {stream: ">"}, count=10)
    yield stream, "the group has read everything", 0
    trimmed = f"{key}:trimmed"
    for n in range(1, 11):
        client.xadd(trimmed, {"n": n}, id=f"{n}-0")
    client.xgroup_create(trimmed, "workers", id="0")
    client.xreadgroup("workers", "w1", {trimmed: ">"}, count=3)
    client.xtrim(trimmed, maxlen=3, approximate=False)
    yield trimmed, "the stream was trimmed to its newest 3 entries before the group read them", 3


@checker("Exercise 10.2 (count what is unread)")
def check_count_unread(name: str, client: redis.Redis, count_unread: Callable[..., Any]) -> CheckResult:
    """Exercise 10.2: ``count_unread(client, stream, group)`` counts the entries after the group's
    last-delivered ID, whatever Redis's lag says (NULL after XDEL or SETID, wrong after a SETID
    with a wrong ENTRIESREAD, and on some servers after a trim)."""
    if not callable(count_unread):
        return hint(name, "count_unread must be a function: count_unread(client, stream, group).")
    key = "course:check:unread"
    for stale in client.scan_iter(match=f"{key}:*"):
        client.delete(stale)
    try:
        for stream, what, expected in _unread_scenarios(client, key):
            try:
                answer = count_unread(client, stream, "workers")
            except Exception as exc:  # the learner's code: report, don't crash the notebook
                return hint(name, f"when {what}, count_unread raised {type(exc).__name__}: {exc}")
            if answer is None:
                return hint(
                    name,
                    f"when {what}, count_unread returned None. Redis's lag can be None; count the "
                    "entries after the group's last-delivered-id yourself (XRANGE with an exclusive "
                    "start, '(' + ID).",
                )
            number = as_whole_number(answer)
            if number is None:
                return hint(name, f"when {what}, count_unread returned {answer!r:.60}, not a whole number.")
            if number != expected:
                return hint(name, f"when {what}, {expected} entries are unread, not {number}.")
    finally:
        for stale in client.scan_iter(match=f"{key}:*"):
            client.delete(stale)
    return passed(
        name, "right every time, including where Redis's own lag is NULL or counts trimmed entries."
    )


_FIGURE_HINTS = {
    "lag": "no job has arrived since the workers died, so there is nothing unread: the lag stays at 0.",
    "pending": "nobody read anything, so nothing is pending: the count stays where it was.",
    "oldest_pending": "no entry is pending, so there is no oldest one to age.",
    "most_deliveries": "nothing is delivered at all, so no delivery count grows.",
    "dead_letters": "nothing fails, because nothing runs: the dead letters stay as they were.",
    "trimmed_unread": "nothing is trimmed: the stream is quiet.",
}
_FIGURES = "'lag', 'pending', 'oldest_pending', 'most_deliveries', 'dead_letters', 'last_seen'"


@checker("Exercise 10.3 (the quiet failure)")
def check_silent_failure(name: str, answer: Any) -> CheckResult:
    """Exercise 10.3: every worker died and no job has arrived since: only ``last_seen_ms`` (the
    smallest consumer idle time) grows; every other figure looks healthy until work arrives."""
    if answer is None:
        return hint(name, f"answer is still None: write one of {_FIGURES}.")
    choice = as_text(answer).strip().lower() if isinstance(answer, (str, bytes)) else None
    if choice is not None:
        choice = choice.removeprefix("max_").removesuffix("_ms").replace(" ", "_")
    if choice == "last_seen":
        return passed(
            name,
            "only the time since a consumer last read grows: with no work arriving, every other figure "
            "looks healthy. (On Redis 7.0 it also grows for a live worker on an empty queue: there, "
            "pair it with a heartbeat of your own.)",
        )
    if choice in _FIGURE_HINTS:
        return hint(name, _FIGURE_HINTS[choice])
    return hint(name, f"{answer!r:.60}: write one of {_FIGURES}.")
