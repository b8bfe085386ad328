"""Exercise checkers of notebook 00, start here."""

from __future__ import annotations

from typing import Any

from ._common import (
    CheckResult,
    checker,
    hint,
    passed,
)

__all__ = ["check_ping"]


@checker("Exercise 0.1 (ping)")
def check_ping(name: str, answer: Any) -> CheckResult:
    """Exercise 0.1: store the reply of ``client.ping()`` in ``answer``."""
    if answer is None:
        return hint(name, "answer is still None: set answer = client.ping() and run the cell again.")
    if answer is True:
        return passed(name, "the server answered PING, and redis-py turned its PONG into True.")
    return hint(name, f"expected the reply of client.ping(), which is True; got {answer!r}.")
