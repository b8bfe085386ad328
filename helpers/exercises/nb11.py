"""Exercise checkers of notebook 11, streams against the alternatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common import as_text
from ._common import CheckResult, check_number, checker, hint, passed

__all__ = ["check_jobs_left", "check_queue_choices", "check_visibility_timeout"]


@checker("Exercise 11.1 (what is left?)")
def check_jobs_left(name: str, answer: Any) -> CheckResult:
    """Exercise 11.1: five jobs in a list, a consumer BRPOPs two and dies: three are left."""
    return check_number(
        name,
        answer,
        3,
        "BRPOP removed the two jobs as it handed them over; they died with the consumer. Three are left.",
        {
            5: "BRPOP removes a job from the list as it hands it over: the two the consumer took are in no "
            "Redis key any more.",
            4: "the consumer took two jobs, one after the other, and each BRPOP removed its job at once.",
            2: "count the jobs that were never taken: they are still in the list.",
            0: "the jobs nobody took are still in the list: only the taken ones are gone.",
        },
        "five jobs, two taken by BRPOP (and removed at once), none finished.",
    )


_OPTIONS = ("redis-streams", "redis-list", "pubsub", "kafka", "sqs")
_RIGHT = {"replay": "kafka", "emails": "redis-streams", "cursors": "pubsub", "serverless": "sqs"}
_WHY = {
    "replay": "30 days of 50,000 events per second is far more than memory should hold, and new services "
    "must replay it from the start: a log kept on disk by time, which is Kafka's retention model.",
    "emails": "Redis is already there, handled jobs are trimmed so the backlog is all that stays in memory, "
    "and a consumer group gives retries (claims) and dead letters (delivery counts); a list would lose a "
    "job on a crash, and SQS would be new infrastructure.",
    "cursors": "only the latest position matters and a missed one is harmless: nothing needs storing, which "
    "is Pub/Sub; a queue would deliver stale positions late.",
    "serverless": "no servers to run, and SQS delays each message by up to 15 minutes (DelaySeconds).",
}

_HINTS = {
    "replay": "How much is 30 days at 50,000 events per second, and where should it live? Which "
    "product keeps its log on disk by time, whether or not it was read?",
    "emails": "The team wants nothing new, and Redis is already there. Which Redis structure keeps a job "
    "through a consumer crash, and counts its retries?",
    "cursors": "Does a position need to be stored at all, or delivered late?",
    "serverless": "Which of the five runs without servers of your own, and can hold a message back "
    "for minutes?",
}


@checker("Exercise 11.2 (choose the queue)")
def check_queue_choices(name: str, choices: Mapping[str, Any]) -> CheckResult:
    """Exercise 11.2: one of five queues for each of four workloads."""
    if not isinstance(choices, Mapping):
        return hint(
            name, "choices must be a dict: {'replay': ..., 'emails': ..., 'cursors': ..., 'serverless': ...}."
        )
    missing = [workload for workload in _RIGHT if workload not in choices]
    if missing:
        return hint(name, f"choose for every workload; missing: {', '.join(missing)}.")
    for workload, right in _RIGHT.items():
        answer = choices[workload]
        if answer is None:
            return hint(name, f"{workload!r} is still None: write one of {', '.join(_OPTIONS)}.")
        choice = (
            as_text(answer).strip().lower().replace("_", "-").replace(" ", "-")
            if isinstance(answer, (str, bytes))
            else None
        )
        if choice not in _OPTIONS:
            return hint(name, f"{workload!r}: {answer!r:.40} is not one of {', '.join(_OPTIONS)}.")
        if choice != right:
            return hint(name, f"{workload!r}: not {choice}. {_HINTS[workload]}")
    return passed(name, "all four: " + " ".join(f"{workload}: {why}" for workload, why in _WHY.items()))


_SETTING_HINTS = {
    "block_ms": "BLOCK only bounds how long a read waits for new entries; it never gives a message back.",
    "max_deliveries": "that is the redrive policy's maxReceiveCount: how many tries before the dead letters.",
    "maxlen": "MAXLEN bounds the stream's length, like a retention limit; it does not redeliver anything.",
}


@checker("Exercise 11.3 (same job, other name)")
def check_visibility_timeout(name: str, answer: Any) -> CheckResult:
    """Exercise 11.3: SQS's visibility timeout plays the part of the claim threshold, ``claim_idle_ms``."""
    if answer is None:
        return hint(
            name,
            "answer is still None: write one of 'block_ms', 'claim_idle_ms', 'max_deliveries', 'maxlen'.",
        )
    text = as_text(answer) if isinstance(answer, (str, bytes)) else None
    choice = "_".join(text.strip().lower().replace("-", " ").replace("_", " ").split()) if text else None
    if choice in ("claim_idle_ms", "min_idle_time", "claim_threshold"):
        return passed(
            name,
            "a message nobody acknowledged becomes available again after the claim threshold, as an SQS "
            "message becomes visible again when its visibility timeout ends.",
        )
    if choice in _SETTING_HINTS:
        return hint(name, _SETTING_HINTS[choice])
    return hint(
        name, f"{answer!r:.60}: write one of 'block_ms', 'claim_idle_ms', 'max_deliveries', 'maxlen'."
    )
