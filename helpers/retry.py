"""Retrying through a failover: which errors mean "the cluster is changing masters", and a retry
with a deadline.

A failover takes about the node timeout plus a second or two; redis-py's own retries are over
in tens of milliseconds. :func:`call_with_deadline` says how long the caller can wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.exceptions import ClusterDownError, RedisClusterException, SlotNotCoveredError, TryAgainError

from .errors import DeadlineExceeded

__all__ = ["call_with_deadline", "is_failover_error"]

T = TypeVar("T")


def is_failover_error(exc: BaseException) -> bool:
    """True for the errors a cluster client raises while a failover is under way: the old
    master refuses connections or times out, the cluster answers CLUSTERDOWN or TRYAGAIN,
    the client's slot map has a hole, or no node the client knows answers at all.

    A programming error, such as a command across slots, is not one of them.
    """
    if isinstance(
        exc, (redis.ConnectionError, redis.TimeoutError, ClusterDownError, TryAgainError, SlotNotCoveredError)
    ):
        return True
    # With every node it knows unreachable, RedisCluster raises a bare RedisClusterException.
    return type(exc) is RedisClusterException and "cannot be connected" in str(exc)


def call_with_deadline(
    call: Callable[[], T],
    deadline_s: float,
    *,
    retry_if: Callable[[BaseException], bool] = is_failover_error,
    first_backoff_s: float = 0.05,
    max_backoff_s: float = 1.0,
    on_error: Callable[[Exception], None] | None = None,
) -> T:
    """Call ``call()`` until it succeeds, retrying the errors of a failover (those for
    which ``retry_if`` is true) with backoff, for at most ``deadline_s`` seconds in all.
    Any other error is raised at once.

    redis-py's cluster client retries on its own, up to 10 times without a pause
    (tens of milliseconds in all), and then raises; a failover takes about the node
    timeout plus a second or two. A deadline says how long your caller can wait; past it,
    :class:`DeadlineExceeded` is raised with the last error as its cause.

    Retrying a write can duplicate it (the first attempt may have reached the
    server before the error): carry an idempotency key in the message.
    """
    if deadline_s <= 0:
        raise ValueError(f"deadline_s must be positive, not {deadline_s!r}")
    deadline = time.monotonic() + deadline_s
    backoff = first_backoff_s
    while True:
        try:
            return call()
        except Exception as exc:
            if not retry_if(exc):
                raise
            if on_error is not None:
                on_error(exc)
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"still failing after {deadline_s:g} s: {exc}") from exc
            time.sleep(min(backoff * random.uniform(0.5, 1.0), left))
            backoff = min(backoff * 2, max_backoff_s)
