"""Exercise checkers of notebook 09, retries, delays, priorities and back-pressure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ..common import as_text
from ._common import CheckResult, check_number, checker, hint, passed

__all__ = ["check_fourth_delivery", "check_next_run", "check_which_bound"]


@checker("Exercise 9.1 (when is the fourth delivery?)")
def check_fourth_delivery(name: str, answer: Any) -> CheckResult:
    """Exercise 9.1: ``retry_delays_ms=[1000, 5000]``, a message that always fails at once: its
    fourth delivery comes no sooner than 1000 + 5000 + 5000 = 11000 ms after the first."""
    return check_number(
        name,
        answer,
        11_000,
        "1000 ms after the first failure, 5000 after the second, and the last delay again after "
        "the third: 11000 ms at the soonest (a sweep may come a little later).",
        {
            6_000: "that is when the third delivery comes. The fourth waits once more: which delay "
            "serves the retries after the list runs out?",
            16_000: "there are only three waits before the fourth delivery: after the first, second "
            "and third failures.",
            7_000: "after the list runs out, the last delay serves every later retry, not the first.",
            3_000: "the delays are milliseconds to wait, not delivery counts.",
        },
        "add the waits between deliveries 1 and 2, 2 and 3, 3 and 4; the list has two delays, and "
        "the last one serves every later retry.",
    )


_NOWS = [
    datetime(2026, 11, 30, 8, 15, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2026, 11, 30, 10, 30, tzinfo=timezone(timedelta(hours=2))),  # 08:30 UTC
]


def _expected(now: datetime) -> datetime:
    at_nine = now.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return at_nine if at_nine > now else at_nine + timedelta(days=1)


@checker("Exercise 9.2 (the next 09:00 UTC)")
def check_next_run(name: str, next_run_at: Callable[[datetime], Any]) -> CheckResult:
    """Exercise 9.2: ``next_run_at(now)`` returns the first 09:00 UTC strictly after ``now`` (an
    aware datetime), as an aware datetime: what ``DelayQueue.schedule(at=...)`` needs."""
    if not callable(next_run_at):
        return hint(name, "next_run_at must be a function: next_run_at(now) -> datetime.")
    for now in _NOWS:
        try:
            got = next_run_at(now)
        except Exception as exc:  # the learner's code: its error is part of the answer
            return hint(name, f"next_run_at({now.isoformat()}) raised {type(exc).__name__}: {exc}")
        if not isinstance(got, datetime):
            return hint(name, f"next_run_at({now.isoformat()}) returned {got!r:.60}, not a datetime.")
        if got.tzinfo is None or got.utcoffset() is None:
            return hint(
                name,
                f"next_run_at({now.isoformat()}) returned a naive datetime: DelayQueue refuses those, "
                "because the same clock time means different instants in different zones. Keep tzinfo=UTC.",
            )
        want = _expected(now)
        if got != want:
            if got == now.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0):
                return hint(
                    name,
                    f"at {now.isoformat()}, today's 09:00 UTC is not after now: the next run is tomorrow's.",
                )
            return hint(
                name, f"at {now.isoformat()} the next 09:00 UTC is {want.isoformat()}, not {got.isoformat()}."
            )
    return passed(
        name, "the first 09:00 UTC after now, as an aware datetime, in any zone and across a year's end."
    )


_BOUND_HINTS = {
    "lag": "the workers read everything at once, so nothing is left unread: the lag stays at 0.",
    "length": "the stream keeps a day of history, so its length is large even when every entry was "
    "handled: it cannot tell stuck work from history.",
}


@checker("Exercise 9.3 (which bound?)")
def check_which_bound(name: str, answer: Any) -> CheckResult:
    """Exercise 9.3: workers read every new entry at once, then hang before acknowledging: the
    pending count grows while the lag stays at 0, so the bound that stops producers is ``pending``."""
    if answer is None:
        return hint(name, "answer is still None: write one of 'length', 'lag', 'pending'.")
    choice = as_text(answer).strip().lower() if isinstance(answer, (str, bytes)) else None
    if choice in ("pending", "max_pending"):
        return passed(
            name,
            "read but never acknowledged: the PEL grows while the lag stays at 0, so max_pending is the "
            "bound that notices.",
        )
    if choice is not None and choice.removeprefix("max_") in _BOUND_HINTS:
        return hint(name, _BOUND_HINTS[choice.removeprefix("max_")])
    return hint(name, f"{answer!r:.60}: write one of 'length', 'lag', 'pending'.")
