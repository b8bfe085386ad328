"""Exercise checkers of notebook 12, the drills: three whiteboard designs."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import redis

from ..common import as_text, hash_slot
from ._common import CheckResult, Crash, as_whole_number, checker, crash_after_first_step, hint, passed

__all__ = ["check_billing_handler", "check_job_queue_design", "check_tenant_layout"]

# decision -> (accepted answers, what an interviewer wants to hear when the answer is another option)
_DESIGN: dict[str, tuple[frozenset[str], tuple[str, ...], str]] = {
    "short_retry": (
        frozenset({"pending list", "sorted set"}),
        ("pending list", "sorted set", "list", "worker memory"),
        "a job that waits in a worker's memory or a plain list is lost when that process dies; it must wait "
        "where a crash cannot lose it: pending (with its idle time set) or in a sorted set, moved by "
        "a script.",
    ),
    "long_delay": (
        frozenset({"sorted set"}),
        ("pending list", "sorted set", "list", "worker memory"),
        "a job due in six hours cannot wait in the pending list: its delay would have to be under the claim "
        "threshold, and every worker's sweep would take it sooner. A sorted set scored by due time "
        "holds any delay.",
    ),
    "after_last_try": (
        frozenset({"dead-letter stream"}),
        ("dead-letter stream", "dropped", "back of the stream", "retried forever"),
        "after its last allowed delivery a poison job must neither vanish nor loop: it goes to a dead-letter "
        "stream, where someone looks at it and can replay it.",
    ),
    "dead_letter_steps": (
        frozenset({"write then ack"}),
        ("write then ack", "ack then write", "multi"),
        "the dead letter is written first and the entry acknowledged last, in one script that stops at the "
        "first error: acknowledging first, or a MULTI that does not roll back a failed write, can "
        "lose the job.",
    ),
    "handler": (
        frozenset({"idempotent"}),
        ("idempotent", "exactly once by redis", "fast"),
        "delivery is at least once (a crash after the work and before XACK delivers it again), so "
        "the handler "
        "must be idempotent; Redis gives no exactly-once delivery.",
    ),
}


def _choice(value: Any) -> str | None:
    if not isinstance(value, (str, bytes)):
        return None
    return " ".join(as_text(value).strip().lower().replace("_", " ").replace("-", " ").split())


@checker("Design 12.1 (a job queue with retries, delays and dead letters)")
def check_job_queue_design(name: str, design: Mapping[str, Any]) -> CheckResult:
    """Design 12.1: the five decisions of a job queue with retries, long delays and dead letters."""
    if not isinstance(design, Mapping):
        return hint(name, f"design must be a dict with the keys {', '.join(_DESIGN)}.")
    for decision, (accepted, options, why) in _DESIGN.items():
        if decision not in design:
            return hint(name, f"the design has no {decision!r}: answer all of {', '.join(_DESIGN)}.")
        answer = _choice(design[decision])
        known = {_choice(option) for option in options}
        if answer is None or answer not in known:
            return hint(name, f"{decision}: write one of {', '.join(repr(o) for o in options)}.")
        if answer not in {_choice(option) for option in accepted}:
            return hint(name, f"{decision}: not {design[decision]!r}. {why}")
    return passed(
        name,
        "the points an interviewer listens for: nothing waits where a crash loses it, long delays in "
        "a sorted "
        "set, a delivery limit that ends in a dead-letter stream, the destination written before the XACK in "
        "one script, and idempotent handlers.",
    )


# (entry ID, invoice, cents): INV-2 is delivered twice, and sent again by the producer as entry 6-0.
_INVOICES = [
    ("1-0", "INV-1", 1250),
    ("2-0", "INV-2", 700),
    ("2-0", "INV-2", 700),
    ("3-0", "INV-3", 99),
    ("4-0", "INV-4", 5000),
    ("6-0", "INV-2", 700),
    ("5-0", "INV-5", 1),
]
_CUSTOMER = "course:check:billing:customer"
_MERCHANT = "course:check:billing:merchant"


def _bill(handle: Callable[..., Any], client: Any, entry_id: str, invoice: str, cents: int) -> None:
    handle(
        client,
        entry_id,
        {"invoice": invoice, "customer": _CUSTOMER, "merchant": _MERCHANT, "cents": str(cents)},
    )


def _balances(client: redis.Redis) -> tuple[int, int]:
    def value(key: str) -> int:
        raw = client.get(key)
        return int(raw) if raw is not None and str(as_text(raw)).lstrip("-").isdigit() else 0

    return value(_CUSTOMER), value(_MERCHANT)


@checker("Design 12.2 (exactly-once billing on an at-least-once queue)")
def check_billing_handler(name: str, handle: Callable[..., Any], client: redis.Redis) -> CheckResult:
    """Design 12.2: ``handle(client, message_id, fields)`` moves ``cents`` from the customer's balance to
    the merchant's once per invoice, whatever is delivered twice, resent as a new entry, or cut short.

    The check uses its own keys (``course:check:billing:*``): duplicate deliveries and a producer's
    retry; a merchant balance that holds text (the move must fail whole: no debit without its credit,
    and the error must reach the worker); a process that dies between two writes.
    """
    if not callable(handle):
        return hint(name, "handle must be a function: handle(client, message_id, fields).")
    for key in client.scan_iter(match="course:check:billing:*"):
        client.delete(key)
    try:
        try:
            for entry_id, invoice, cents in _INVOICES:
                _bill(handle, client, entry_id, invoice, cents)
        except Exception as exc:  # the learner's code: report, don't crash the notebook
            return hint(name, f"handle raised {type(exc).__name__}: {exc}")
        total = sum({invoice: cents for _, invoice, cents in _INVOICES}.values())
        customer, merchant = _balances(client)
        if (customer, merchant) == (0, 0):
            return hint(
                name, f"nothing moved: DECRBY the customer's key and INCRBY the merchant's ({_CUSTOMER})."
            )
        if customer != -merchant:
            return hint(
                name,
                f"the customer paid {-customer} and the merchant got {merchant}: money was lost or made.",
            )
        if merchant == sum(cents for _, _, cents in _INVOICES):
            return hint(name, "every delivery was billed, duplicates included: remember each invoice billed.")
        if merchant == total + 700:
            return hint(
                name,
                "INV-2 was billed twice, once for entry 2-0 and once for 6-0, the producer's retry: key the "
                "marker on the invoice, not on the entry ID.",
            )
        if merchant != total:
            return hint(name, f"the merchant got {merchant}, expected {total}.")

        client.set(_MERCHANT, "not a number")  # the credit half will fail at run time
        try:
            _bill(handle, client, "7-0", "INV-7", 300)
        except Exception:  # expected: the move failed, so the entry must stay pending
            pass
        else:
            return hint(
                name,
                "when the credit failed (the merchant's balance held text), handle returned normally: the "
                "worker would acknowledge the entry and the invoice would never be billed. Let it raise.",
            )
        if _balances(client)[0] != customer:
            return hint(
                name,
                "when the credit failed, the customer had already been debited: a Lua script stops at the "
                "failing command but keeps the writes before it, and MULTI/EXEC runs the rest. Check that "
                "both balances are numbers before the first write.",
            )
        client.set(_MERCHANT, merchant)  # repaired; the entry is delivered again
        _bill(handle, client, "7-0", "INV-7", 300)
        if _balances(client) != (customer - 300, merchant + 300):
            return hint(name, "after the merchant's balance was repaired, INV-7 was not billed exactly once.")

        before = _balances(client)
        with contextlib.suppress(Exception, Crash):  # the process dies before its second write
            _bill(handle, crash_after_first_step(client), "8-0", "INV-8", 40)
        for _ in range(2):  # delivered again after the crash, then once more
            _bill(handle, client, "8-0", "INV-8", 40)
        after = _balances(client)
        if after != (before[0] - 40, before[1] + 40):
            return hint(
                name,
                f"a process that died between two of handle's writes left INV-8 billed "
                f"{(after[1] - before[1]) // 40} times: the check, both moves and the marker must be "
                "one step "
                "(one Lua script).",
            )
    finally:
        for key in client.scan_iter(match="course:check:billing:*"):
            client.delete(key)
    return passed(
        name,
        "each invoice billed once, through duplicates, a producer's retry, a failed credit and a crash: the "
        "check, the validation, both moves and the marker in one script keyed on the invoice.",
    )


_TENANTS = [f"tenant-{n}" for n in range(300)]


@checker("Design 12.3 (a multi-tenant queue on a cluster)")
def check_tenant_layout(
    name: str, tenant_keys: Callable[[str], Any], consumers_per_stream: Any
) -> CheckResult:
    """Design 12.3: ``tenant_keys(tenant)`` returns the tenant's ``stream``, ``dead`` and ``delayed``
    keys; each tenant's keys share a slot, tenants spread over the cluster, and one consumer reads a
    stream at a time so that a tenant's order holds."""
    if not callable(tenant_keys):
        return hint(
            name,
            "tenant_keys must be a function: tenant_keys(tenant) -> {'stream': ..., 'dead': ..., "
            "'delayed': ...}.",
        )
    layouts: dict[str, dict[str, str]] = {}
    for tenant in _TENANTS:
        try:
            keys = tenant_keys(tenant)
        except Exception as exc:  # the learner's code
            return hint(name, f"tenant_keys({tenant!r}) raised {type(exc).__name__}: {exc}")
        if not isinstance(keys, Mapping) or set(keys) != {"stream", "dead", "delayed"}:
            return hint(
                name,
                f"tenant_keys({tenant!r}) must return a dict with the keys 'stream', 'dead' and 'delayed'.",
            )
        if not all(isinstance(key, str) and key for key in keys.values()):
            return hint(
                name,
                f"tenant_keys({tenant!r}) returned {dict(keys)!r:.80}: every key must be a non-empty string.",
            )
        if len(set(keys.values())) != 3:
            return hint(name, f"tenant_keys({tenant!r}) gives two roles the same key: three keys are needed.")
        layouts[tenant] = dict(keys)
    if any(tenant_keys(tenant) != layouts[tenant] for tenant in _TENANTS[:20]):
        return hint(
            name, "tenant_keys gave a tenant different keys on a second call: the layout must not change."
        )
    for tenant, keys in layouts.items():
        tenant_slots = {hash_slot(key) for key in keys.values()}
        if len(tenant_slots) > 1:
            return hint(
                name,
                f"{tenant}'s keys are in {len(tenant_slots)} hash slots ({', '.join(keys.values())}): "
                "a script that moves "
                "a job between them fails with CROSSSLOT on a cluster. Give them one hash tag, e.g. "
                "{tenant-7}.",
            )
    streams = Counter(keys["stream"] for keys in layouts.values())
    slots = Counter(hash_slot(keys["stream"]) for keys in layouts.values())
    if len(slots) < 8 or max(slots.values()) > len(_TENANTS) // 4:
        return hint(
            name,
            f"300 tenants land in {len(slots)} slots, up to {max(slots.values())} in one: one shard "
            "would do most "
            "of the work. Put the tenant (or its partition number) in the hash tag, not a fixed word.",
        )
    count = as_whole_number(consumers_per_stream)
    if count is None:
        return hint(name, "consumers_per_stream must be a whole number.")
    if count != 1:
        return hint(
            name,
            f"with {count} consumers on one stream, two of a tenant's jobs can run at once and finish out of "
            "order: per-tenant order needs one active consumer per stream (a lease key makes it so).",
        )
    shared = max(streams.values())
    layout = "a stream per tenant" if shared == 1 else f"partitions of up to {shared} tenants"
    return passed(
        name,
        f"{layout}, each tenant's keys in one slot, {len(slots)} slots in use, one active consumer "
        "per stream. "
        "A stream per tenant also isolates a noisy tenant; partitions keep the number of streams bounded.",
    )
