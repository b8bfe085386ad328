"""Exercise checkers of notebook 03, acknowledgements and the PEL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import redis

from ..common import as_text
from ._common import (
    CheckResult,
    Crash,
    check_number,
    checker,
    crash_after_first_step,
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


# Exercise 3.3's deliveries: (entry ID, payment ID, amount). Entries 1-0 and 2-0 are delivered
# more than once; 6-0 is the producer's retry of payment p-2 (its first XADD timed out after
# reaching the server), a new entry ID for the same payment.
PAYMENT_DELIVERIES = (
    ("1-0", "p-1", 10),
    ("2-0", "p-2", 20),
    ("2-0", "p-2", 20),
    ("3-0", "p-3", 30),
    ("1-0", "p-1", 10),
    ("4-0", "p-4", 40),
    ("6-0", "p-2", 20),
    ("5-0", "p-5", 50),
)


def _deliver(handle: Callable[..., Any], client: Any, entry_id: str, payment: str, amount: int) -> None:
    handle(client, entry_id, {"payment_id": payment, "account": "balance", "amount": str(amount)})


@checker("Exercise 3.3 (an idempotent handler)")
def check_idempotent_handler(name: str, handle: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Exercise 3.3: ``handle(client, message_id, fields)`` credits each payment once, however often
    it is delivered, and loses none when a credit fails.

    The check uses its own keys (``course:check:*``): it delivers five payments, two of them twice or
    more and one also as a second entry (a producer's retry), and compares the balance with the sum
    of the distinct payments. Then it makes one credit fail (the balance is not a number): handle
    must raise, and once the balance is repaired, the payment must be credited. Last, a process
    dies just before its second step that may write, and the payment is delivered twice more: it
    must be credited once.
    """
    if not callable(handle):
        return hint(name, "handle must be a function: handle(client, message_id, fields).")
    balance_key = "course:check:balance"
    pattern = "course:check:*"
    for key in client.scan_iter(match=pattern):
        client.delete(key)
    try:
        try:
            for entry_id, payment, amount in PAYMENT_DELIVERIES:
                _deliver(handle, client, entry_id, payment, amount)
        except Exception as exc:  # the learner's code: report, don't crash the notebook
            return hint(name, f"handle raised {type(exc).__name__}: {exc}")
        stored = client.get(balance_key)
        expected = sum({payment: amount for _, payment, amount in PAYMENT_DELIVERIES}.values())
        by_entry = sum({entry_id: amount for entry_id, _, amount in PAYMENT_DELIVERIES}.values())
        naive = sum(amount for _, _, amount in PAYMENT_DELIVERIES)
        total = int(stored) if stored is not None else 0
        if stored is None:
            return hint(name, f"nothing was written to {balance_key}: add each amount there with INCRBY.")
        if total == naive:
            return hint(name, f"the balance is {naive}: every delivery was counted, duplicates included.")
        if total == by_entry:
            return hint(
                name,
                f"the balance is {by_entry}: payment p-2 was credited twice, once for entry 2-0 and once for "
                "6-0, the producer's retry. Entry IDs change when a producer sends again: key the marker on "
                "the ID the producer gave the payment, fields['payment_id'].",
            )
        if total != expected:
            return hint(name, f"the balance is {total}, expected {expected}.")

        client.set(balance_key, "not a number")  # the next credit fails at run time
        try:  # ... in a process that dies if it tries a second write step after the failure
            _deliver(handle, crash_after_first_step(client), "7-0", "p-7", 70)
        except (Exception, Crash):  # expected: the credit failed, so the entry must stay pending
            pass
        else:
            return hint(
                name,
                "when the credit failed (the balance held text), handle returned normally: a worker would "
                "acknowledge the entry, and the payment would be lost. Let the error propagate.",
            )
        client.set(balance_key, 0)  # repaired; the entry is delivered again
        try:
            _deliver(handle, client, "7-0", "p-7", 70)
        except Exception as exc:
            return hint(name, f"after the balance was repaired, handle raised {type(exc).__name__}: {exc}")
        if int(client.get(balance_key) or 0) != 70:
            return hint(
                name,
                "when the credit failed (the balance held text), the marker was written anyway, so the retry "
                "skipped the payment: it is lost. MULTI/EXEC does not undo the other commands when one fails "
                "while EXEC runs it. Credit first and write the marker last, in one Lua script: an error "
                "stops the script.",
            )

        client.set(balance_key, 0)
        with contextlib.suppress(Exception, Crash):  # the process dies before its second step
            _deliver(handle, crash_after_first_step(client), "8-0", "p-8", 80)
        for _ in range(2):  # delivered again after the crash, then once more
            _deliver(handle, client, "8-0", "p-8", 80)
        credited = int(client.get(balance_key) or 0)
        if credited != 80:
            return hint(
                name,
                f"a process that died between two of handle's writes left the payment credited "
                f"{credited // 80} times instead of once: the check, the credit and the marker must be one "
                "step (one Lua script), with the credit before the marker.",
            )
    finally:
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    return passed(
        name,
        f"{len(PAYMENT_DELIVERIES)} deliveries of 5 payments credited once each ({expected}); a failed "
        "credit was not lost, and a crash did not credit twice.",
    )
