"""What every exercise checker shares: the result type, the never-raising decorator, small readers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec

import redis

from ..common import as_text

__all__ = ["CheckResult"]

P = ParamSpec("P")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "NOT YET"
        return f"[{mark}] {self.exercise}: {self.message}"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.passed


def passed(exercise: str, message: str) -> CheckResult:
    return CheckResult(exercise, True, message)


def hint(exercise: str, message: str) -> CheckResult:
    return CheckResult(exercise, False, message)


def checker(
    exercise: str,
) -> Callable[[Callable[Concatenate[str, P], CheckResult]], Callable[P, CheckResult]]:
    """Make ``function(exercise, ...)`` the check of ``exercise``, called without the name.

    Whatever the learner passes, the check returns a :class:`CheckResult` and never raises:
    an answer of a type the check did not foresee (or a learner's function that breaks the
    client it was given) becomes a hint, not a traceback in the notebook.
    """

    def decorate(function: Callable[Concatenate[str, P], CheckResult]) -> Callable[P, CheckResult]:
        @functools.wraps(function)
        def check(*args: P.args, **kwargs: P.kwargs) -> CheckResult:
            try:
                return function(exercise, *args, **kwargs)
            except Exception as exc:  # an odd answer is a hint, never a crash
                return hint(
                    exercise,
                    f"the check could not use what it was given ({type(exc).__name__}: {exc}). "
                    "Read the exercise again for what to pass, or run its cell again from the top.",
                )

        # help() shows the learner's arguments, not the name the decorator fills in.
        signature = inspect.signature(function)
        check.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:]
        )
        return check

    return decorate


def as_whole_number(answer: Any) -> int | None:
    """``answer`` as an int if it is one (``24``, ``24.0``, ``"24"``), else None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, float) and answer.is_integer():
        return int(answer)
    if isinstance(answer, (str, bytes)):
        text = as_text(answer).strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def check_number(
    exercise: str, answer: Any, right: int, praise: str, hints: dict[int, str], otherwise: str
) -> CheckResult:
    """A quiz with one whole-number answer: praise, a hint for a known wrong answer, or ``otherwise``."""
    if answer is None:
        return hint(exercise, "answer is still None: write a whole number.")
    number = as_whole_number(answer)
    if number is None:
        return hint(exercise, f"{answer!r:.60} is not a whole number: write one, such as 3.")
    if number == right:
        return passed(exercise, praise)
    if number in hints:
        return hint(exercise, hints[number])
    return hint(exercise, f"{number}: {otherwise}")


def id_key(entry_id: Any) -> tuple[int, int]:
    """``"5-3"`` -> ``(5, 3)``, ``"5"`` -> ``(5, 0)``, as XRANGE and XTRIM read an ID.

    Raises:
        ValueError: not a stream ID.
    """
    text = as_text(entry_id)
    if not isinstance(text, str):
        raise ValueError(f"{entry_id!r} is not a stream ID")
    ms, sep, seq = text.strip().partition("-")
    if not ms.isdigit() or (sep and not seq.isdigit()):
        raise ValueError(f"{entry_id!r} is not a stream ID")
    return int(ms), int(seq or 0)


def group_info(client: redis.Redis, stream: str, group: str) -> dict[str, Any] | None:
    """XINFO GROUPS of ``stream`` for ``group`` with str keys, or None if either is missing."""
    if not client.exists(stream):
        return None
    for info in client.xinfo_groups(stream):
        decoded = {as_text(key): as_text(value) for key, value in info.items()}
        if decoded["name"] == group:
            return decoded
    return None


def pending_ids(client: redis.Redis, stream: str, group: str, consumer: str | None = None) -> list[str]:
    entries = client.xpending_range(stream, group, "-", "+", 10_000, consumername=consumer)
    return [as_text(entry["message_id"]) for entry in entries]


def field_names(fields: Any) -> set[str]:
    return {as_text(key) for key in (fields or {})}
