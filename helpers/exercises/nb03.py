"""Exercise checkers of notebook 03, acknowledgements and the PEL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    check_number,
    checker,
    hint,
    passed,
)

__all__ = ["check_acked_consumer", "check_idempotent_handler", "check_xack_count"]


def _pending_by_consumer(client: redis.Redis, stream: str, group: str) -> dict[str, int]:
    summary = client.xpending(stream, group)
    return {as_text(item["name"]): int(item["pending"]) for item in summary.get("consumers") or []}


@checker("Exercise 3.1 (acknowledge one consumer's work)")
def check_acked_consumer(
    name: str,
    client: redis.Redis,
    stream: str,
    group: str,
    acked: str,
    untouched: str,
    untouched_pending: int,
) -> CheckResult:
    """Exercise 3.1: every entry pending for ``acked`` is acknowledged, none of ``untouched``'s."""
    try:
        pending = _pending_by_consumer(client, stream, group)
    except redis.ResponseError as exc:
        return hint(name, f"XPENDING failed ({exc}): run the setup lines of the exercise cell again.")
    left = pending.get(acked, 0)
    if pending.get(untouched, 0) != untouched_pending:
        return hint(
            name,
            f"{untouched} should still have {untouched_pending} pending entries, and has "
            f"{pending.get(untouched, 0)}: acknowledge only {acked}'s IDs "
            "(the extended XPENDING with a consumer tells which).",
        )
    if left:
        return hint(name, f"{acked} still has {left} pending: XACK takes several IDs at once.")
    return passed(name, f"{acked} has nothing pending and {untouched} still has {untouched_pending}.")


@checker("Exercise 3.2 (what XACK returns)")
def check_xack_count(name: str, answer: Any) -> CheckResult:
    """Exercise 3.2: XACK of 4-0, 4-0, 5-0, 99-0 with 4-0 and 5-0 pending returns 2."""
    return check_number(
        name,
        answer,
        2,
        "XACK counts the IDs it removed from the pending list: 4-0 once, and 5-0.",
        {
            4: "XACK does not count the IDs you pass, only those it found pending.",
            3: "the second 4-0 was no longer pending by the time XACK reached it.",
        },
        "which of the four IDs are pending when XACK reaches them?",
    )


@checker("Exercise 3.3 (an idempotent handler)")
def check_idempotent_handler(name: str, handle: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 3.3: ``handle(client, message_id, fields)`` adds each payment once, however often delivered.

    The check uses its own keys: it delivers five payments, three of them twice
    or more, and compares the balance with the sum of the distinct payments.
    """
    balance_key = "course:check:balance"
    helper_pattern = "course:check:*"
    for key in client.scan_iter(match=helper_pattern):
        client.delete(key)
    payments = {"1-0": 10, "2-0": 20, "3-0": 30, "4-0": 40, "5-0": 50}
    deliveries = ["1-0", "2-0", "2-0", "3-0", "1-0", "4-0", "5-0", "2-0"]
    try:
        for message_id in deliveries:
            handle(client, message_id, {"account": "balance", "amount": str(payments[message_id])})
        stored = client.get(balance_key)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        return hint(name, f"handle raised {type(exc).__name__}: {exc}")
    finally:
        for key in client.scan_iter(match=helper_pattern):
            client.delete(key)
    expected = sum(payments.values())
    naive = sum(payments[message_id] for message_id in deliveries)
    total = int(stored) if stored is not None else 0
    if total == expected:
        return passed(name, f"{len(deliveries)} deliveries of {len(payments)} payments, balance {expected}.")
    if total == naive:
        return hint(name, f"the balance is {naive}: every delivery was counted, duplicates included.")
    if stored is None:
        return hint(name, f"nothing was written to {balance_key}: add each amount there with INCRBY.")
    return hint(name, f"the balance is {total}, expected {expected}.")
