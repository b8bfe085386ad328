"""Exercise checkers of notebook 06, a worker you can deploy."""

from __future__ import annotations

from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    check_number,
    checker,
    group_info,
    hint,
    passed,
)

__all__ = ["check_billing_run", "check_claim_idle", "check_duplicates_bound", "setup_billing_exercise"]


@checker("Exercise 6.1 (how many duplicates?)")
def check_duplicates_bound(name: str, answer: Any) -> CheckResult:
    """Exercise 6.1: one worker with batch 10 is SIGKILLed once: at most 10 messages run twice."""
    return check_number(
        name,
        answer,
        10,
        "at most one batch: what the killed worker handled but had not yet acknowledged.",
        {
            0: "the worker acknowledges after handling, so work done just before the kill is done again.",
            1: "the worker acknowledges a whole batch at once, not each message.",
        },
        "think of what was handled but not yet acknowledged when the process died.",
    )


ORDER_AMOUNTS = (12, 7, -3, 25, 4, -10, 8, 15, 3, -1, 6, 9)


def setup_billing_exercise(client: redis.Redis, stream: str) -> None:
    """Exercise 6.2's starting point: 12 orders on ``stream``, three with a negative amount."""
    for key in (stream, f"{stream}:dead", f"{stream}:total"):
        client.delete(key)
    pipe = client.pipeline(transaction=False)
    for number, amount in enumerate(ORDER_AMOUNTS, start=1):
        pipe.xadd(stream, {"order": number, "amount": amount})
    pipe.execute()


@checker("Exercise 6.2 (run a worker)")
def check_billing_run(name: str, client: redis.Redis, stream: str) -> CheckResult:
    """Exercise 6.2: billing handled every order, negative ones became dead letters, the total is right."""
    info = group_info(client, stream, "billing")
    if info is None:
        return hint(
            name, "there is no group 'billing' yet: create a helpers.Worker with group='billing' and run it."
        )
    if info["pending"] or info["lag"]:
        return hint(
            name,
            f"{info['pending']} orders are still pending and {info['lag']} not delivered: "
            "run(max_messages=12) handles them all (use max_deliveries=1 so a failure is final).",
        )
    dead = client.xrange(f"{stream}:dead") or []
    dead_orders = sorted(int(as_text((fields or {}).get("order", 0))) for _, fields in dead)
    negative = sorted(n for n, amount in enumerate(ORDER_AMOUNTS, start=1) if amount < 0)
    if dead_orders != negative:
        return hint(
            name,
            f"the dead letters hold orders {dead_orders}, expected {negative}: raise for negative amounts.",
        )
    total = client.get(f"{stream}:total")
    expected = sum(amount for amount in ORDER_AMOUNTS if amount > 0)
    if total is None or int(total) != expected:
        return hint(
            name,
            f"{stream}:total is {as_text(total)}, expected {expected}: INCRBY each positive amount once.",
        )
    return passed(name, f"9 orders billed ({expected} in total), 3 refused into {stream}:dead.")


@checker("Exercise 6.3 (choosing claim_idle_ms)")
def check_claim_idle(name: str, answer: Any) -> CheckResult:
    """Exercise 6.3: handlers take up to 20 s and nothing extends leases: claim_idle_ms must exceed
    20000 with a margin (at least a quarter more), and not leave a crashed worker's work for ages."""
    if answer is None:
        return hint(name, "answer is still None: write a number of milliseconds.")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or answer != answer:
        return hint(name, f"{answer!r:.60} is not a number of milliseconds: write one, such as 5000.")
    if answer <= 20_000:
        return hint(
            name, "a message could be claimed by another worker while its handler still runs: go higher."
        )
    if answer < 25_000:
        return hint(
            name,
            f"{answer:g} ms outlasts the slowest handler by only {answer - 20_000:g} ms: one run a little "
            "slower than usual (a pause, a slow network call) and its message is taken over while it runs. "
            "Leave a margin of a quarter or more.",
        )
    if answer > 10 * 60_000:
        return hint(name, "safe, but a crashed worker's messages would wait more than ten minutes: go lower.")
    return passed(name, f"{answer:g} ms outlasts the slowest handler, with a margin, and recovers in time.")
