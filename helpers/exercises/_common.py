"""What every exercise checker shares: the result type, the never-raising decorator, small readers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec

import redis
from redis.commands.core import Script

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


class Crash(BaseException):
    """The process died here. A BaseException, so that a learner's ``except Exception`` cannot catch it."""


# Commands that only read: the rest of a client's methods count as steps that may write.
_READ_METHODS = frozenset(
    {
        "get", "mget", "exists", "type", "ttl", "pttl", "strlen", "hget", "hgetall", "hexists", "hmget",
        "smembers", "sismember", "xpending", "xpending_range", "xrange", "xrevrange", "xlen",
        "xinfo_stream", "xinfo_groups", "xinfo_consumers", "ping", "keys", "scan", "scan_iter",
    }
)  # fmt: skip
_READ_COMMANDS = frozenset(
    {"GET", "EXISTS", "TYPE", "XPENDING", "XRANGE", "XREVRANGE", "XINFO", "XLEN", "PING"}
)


class StepClient:
    """A client that calls ``before_step(steps_done)`` before every step that may write, and
    forwards everything to ``client``.

    A step is one round trip that may change data: a command (any method but a known read),
    a script (``eval``, ``evalsha``, ``register_script``), or a transaction or pipeline (its
    ``execute``). A transaction or a script is done whole or not started; two separate steps
    are not. So a ``before_step`` that raises :class:`Crash` from the second step on shows
    what a process that dies between two steps leaves behind, and one that lets another
    worker act before the first step shows a race.
    """

    def __init__(self, client: redis.Redis, before_step: Callable[[int], None]) -> None:
        self._client = client
        self._before_step = before_step
        self.steps = 0

    def step(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._before_step(self.steps)
        self.steps += 1
        return function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name == "pipeline":
            return lambda *args, **kwargs: _StepPipeline(target(*args, **kwargs), self)
        if name == "transaction":
            return lambda func, *watches, **kwargs: redis.Redis.transaction(self, func, *watches, **kwargs)  # type: ignore[arg-type]
        if name == "register_script":
            return lambda script: Script(self, script)  # type: ignore[arg-type]
        if not callable(target) or name in _READ_METHODS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "execute_command" and args and str(as_text(args[0])).upper() in _READ_COMMANDS:
                return target(*args, **kwargs)
            return self.step(target, *args, **kwargs)

        return call


class _StepPipeline:
    """A pipeline whose ``execute`` is one step of its :class:`StepClient`."""

    def __init__(self, pipeline: Any, owner: StepClient) -> None:
        self._pipeline = pipeline
        self._owner = owner

    def __enter__(self) -> _StepPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pipeline.reset()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._pipeline, name)
        if name == "execute":
            return lambda *args, **kwargs: self._owner.step(target, *args, **kwargs)
        return target


def crash_after_first_step(client: redis.Redis) -> StepClient:
    """A client of a process that dies just before its second step."""

    def before(steps: int) -> None:
        if steps >= 1:
            raise Crash

    return StepClient(client, before)


def race_before_first_step(client: redis.Redis, competitor: Callable[[], object]) -> StepClient:
    """A client whose first step comes just after ``competitor()`` (another worker) ran."""

    def before(steps: int) -> None:
        if steps == 0:
            competitor()

    return StepClient(client, before)
