"""Exercise checkers of notebook 02, consumer groups."""

from __future__ import annotations

from typing import Any

import redis

from ._common import (
    CheckResult,
    check_number,
    checker,
    group_info,
    hint,
    passed,
)

__all__ = ["check_fan_out_deliveries", "check_group_from_start", "check_group_rewound"]


@checker("Exercise 2.1 (a group that reads the backlog)")
def check_group_from_start(name: str, client: redis.Redis, stream: str, group: str) -> CheckResult:
    """Exercise 2.1: ``group`` exists on ``stream`` and will deliver the whole backlog."""
    info = group_info(client, stream, group)
    if info is None:
        return hint(name, f"there is no group {group!r} on {stream}: create it with xgroup_create.")
    if info["last-delivered-id"] == "0-0":
        return passed(
            name, f"{group} starts before the first entry, so '>' delivers all {client.xlen(stream)}."
        )
    if info["pending"]:
        return hint(
            name, "the group has already delivered entries: destroy it and create it again, without reading."
        )
    return hint(
        name,
        f"the group starts after {info['last-delivered-id']}, so it skips the entries already there. "
        "Create it with id='0' instead of '$' (destroy it first).",
    )


@checker("Exercise 2.2 (fan-out)")
def check_fan_out_deliveries(name: str, answer: Any) -> CheckResult:
    """Exercise 2.2: 12 entries, group A with 2 consumers and group B with 3: 24 deliveries."""
    return check_number(
        name,
        answer,
        24,
        "each group gets all 12 entries once, shared among its own consumers: 2 x 12 = 24.",
        {
            12: "12 would be right for one group. Each group has its own position in the stream.",
            60: "within one group an entry goes to one consumer, not to each of them.",
        },
        "count, group by group, how often each entry is delivered.",
    )


@checker("Exercise 2.3 (rewind a group)")
def check_group_rewound(name: str, client: redis.Redis, stream: str, group: str) -> CheckResult:
    """Exercise 2.3: ``group`` will deliver the entries after 3-0 again with '>'."""
    info = group_info(client, stream, group)
    if info is None:
        return hint(name, f"there is no group {group!r} on {stream}: the setup cell above creates it.")
    position = info["last-delivered-id"]
    if position == "3-0":
        return passed(name, "the group's last-delivered ID is 3-0, so '>' delivers 4-0 onwards again.")
    return hint(
        name,
        f"the group's last-delivered ID is {position}. '>' delivers entries after that ID: "
        "set it to 3-0 with xgroup_setid.",
    )
