"""A consumer-group worker you could deploy: at-least-once, no lost message, dead letters.

What it does, in order (notebooks 02 to 05 explain each step):

1. Creates the group at ``0`` with MKSTREAM when it is missing, so a new
   group works through the backlog.
2. Handles its own pending entries first (``XREADGROUP ... 0``): what this
   consumer name took before a crash or restart.
3. Then loops: reads new entries (``>``) in batches with a bounded BLOCK, and
   at least every ``claim_idle_ms`` sweeps the group's PEL with XAUTOCLAIM,
   following the cursor to ``0-0``, to take over entries that other consumers
   left idle for that long.
4. Acknowledges each batch's successes with one XACK and checks the count.
5. A handler that raises leaves its entry pending; a sweep delivers it again,
   once it has been idle ``claim_idle_ms``. With ``retry_delays_ms`` the wait
   grows per delivery instead: the failed entry is handed to a placeholder
   consumer (``retry_consumer``) with its idle time set so that a sweep takes
   it again after that delivery's delay (``XCLAIM ... IDLE ... JUSTID``, in a
   script that moves only an entry still pending for this consumer). It never
   leaves the pending list, keeps its ID and its delivery count, and a
   restarted worker does not retry it early: it is no longer its own.
   Once an entry has been delivered ``max_deliveries`` times and fails again
   (or cannot be decoded as UTF-8 at all), it is moved to the dead-letter
   stream by one server-side script that checks the entry is still pending
   for this consumer (two workers racing cannot both move it, and a stalled
   worker cannot move an entry someone else took), writes the dead letter, and
   only then acknowledges. A dead-letter write that fails leaves the entry
   pending, to be tried again: no message leaves the pending list before its
   destination write succeeded.
6. While a handler runs, a lease keeper resets the idle time of the batch's
   entries every third of ``claim_idle_ms`` (``XCLAIM ... JUSTID``, in a
   script that extends only the entries this consumer still owns), so that a
   slow job is not taken over while it is still running.
7. Connection errors, a lost group or stream, and a key of the wrong type are
   logged and retried with backoff; the worker never exits on its own.

Messages reach the handler as ``handler(message_id, fields)`` with ``fields``
a ``dict[str, str]``. Run a worker from the command line with
``python -m helpers.tools.worker --help``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from .common import AnyClient, lua_still_mine_and_ackable
from .retry import is_failover_error

__all__ = ["DEAD_LETTER_FIELDS", "Handler", "Worker", "WorkerStats"]

Handler = Callable[[str, dict[str, str]], Any]

LOG = logging.getLogger("helpers.worker")

# KEYS: stream, dead-letter stream. ARGV: group, consumer, entry ID, then field/value pairs.
# Returns 1 if it moved the entry, 0 if the entry was no longer pending for this consumer
# (another worker finished or took it: a racing or stalled worker moves nothing).
# MULTI/EXEC and scripts do not roll back a command that fails at run time, so the order is
# what keeps the message: the dead letter is written first, and a failing XADD (WRONGTYPE,
# NOPERM, OOM) aborts the script before the XACK; the XACK comes last, and the one way it
# could still fail after the XADD, an ACL rule, is checked before anything is written.
_DEAD_LETTER_SCRIPT = (
    lua_still_mine_and_ackable("KEYS[1]", "ARGV[1]", "ARGV[2]", "ARGV[3]")
    + """
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
)

# KEYS: stream. ARGV: group, consumer, then entry IDs. Resets the idle time of the entries that
# are still pending for this consumer, and only those: an entry that another consumer took over
# while this one stalled stays theirs. Returns the IDs whose lease was extended.
_LEASE_SCRIPT = """
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
local kept = {}
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) == 1 then
    kept[#kept + 1] = ARGV[i]
    claim[#claim + 1] = ARGV[i]
  end
end
if #kept > 0 then
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
return kept
"""

# KEYS: stream. ARGV: group, consumer, placeholder consumer, entry ID, idle time to set (ms).
# Hands a failed entry to the placeholder consumer that holds entries waiting for their retry,
# with the idle time that makes it claimable after its delay; only if it is still pending for
# this consumer. JUSTID: the delivery count stays as it is. Returns 1 if it moved the entry.
_RETRY_LATER_SCRIPT = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1, ARGV[2]) == 0 then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[4], 'IDLE', ARGV[5], 'JUSTID')
return 1
"""

# A script passes a message's fields to XADD with Lua's unpack, which takes at most about 8000
# values: a dead letter with more fields than this is written as one JSON field.
_MAX_SCRIPT_FIELDS = 3000

# Metadata written beside a dead letter's own fields.
DEAD_LETTER_FIELDS = ("original_id", "deliveries", "reason")


@dataclass
class WorkerStats:
    """What a worker has done since it was created."""

    handled: int = 0  # handler returned, entry acknowledged
    failed: int = 0  # handler raised (each delivery counts)
    retries_delayed: int = 0  # failed entries set to wait for their retry delay
    reclaimed: int = 0  # entries taken over from idle consumers by a sweep
    dead_lettered: int = 0  # entries moved to the dead-letter stream by this worker
    deleted: int = 0  # pending entries whose message was gone from the stream
    ack_mismatches: int = 0  # XACK removed fewer entries than it was given
    dead_letter_failures: int = 0  # a dead-letter write failed; the entry stayed pending
    leases_lost: int = 0  # entries another consumer had taken over when the lease was renewed
    lease_errors: int = 0  # lease renewals that failed with a Redis error
    errors: int = 0  # connection losses and other Redis errors survived
    recent_errors: list[str] = field(default_factory=list)

    def report(self) -> str:
        return (
            f"handled {self.handled}, failed {self.failed}, retries delayed {self.retries_delayed}, "
            f"reclaimed {self.reclaimed}, "
            f"dead-lettered {self.dead_lettered}, deleted {self.deleted}, "
            f"ack mismatches {self.ack_mismatches}, dead-letter failures {self.dead_letter_failures}, "
            f"leases lost {self.leases_lost}, lease errors {self.lease_errors}, errors {self.errors}"
        )

    def note_error(self, message: str) -> None:
        """Keep the last ten error messages."""
        self.recent_errors = [*self.recent_errors[-9:], message]


def _is_utf8(fields: dict[str, str]) -> bool:
    """False if a name or value held bytes that were not UTF-8 (they arrive as surrogates)."""
    try:
        for name, value in fields.items():
            # Most payloads are ASCII, which isascii() settles in C without a copy.
            if not (name.isascii() and value.isascii()):
                name.encode("utf-8")
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _original_bytes(text: str) -> bytes:
    """The bytes a field arrived as, bad ones included."""
    return text.encode("utf-8", "surrogateescape")


# Keyword arguments that RedisCluster adds to its nodes' connections itself.
_CLUSTER_OWN_KWARGS = ("redis_connect_func", "oss_cluster_maint_notifications_handler")


def _reading_client(client: AnyClient, socket_timeout: float, *, lenient: bool) -> AnyClient:
    """A client for the same server (or cluster) that waits ``socket_timeout`` for
    replies and decodes them as UTF-8.

    ``lenient`` decodes with ``surrogateescape``: a payload that is not UTF-8 arrives with
    its bad bytes kept as surrogates, so that it can fail alone (and be dead-lettered byte
    for byte) instead of failing the whole batch. Otherwise a reply with bytes that are not
    UTF-8 raises ``UnicodeDecodeError`` (and redis-py drops that connection).
    """
    errors = "surrogateescape" if lenient else "strict"
    if isinstance(client, RedisCluster):
        cluster_kwargs = {
            name: value
            for name, value in client.nodes_manager.connection_kwargs.items()
            if name not in _CLUSTER_OWN_KWARGS
        }
        cluster_kwargs.update(
            decode_responses=True,
            encoding="utf-8",
            encoding_errors=errors,
            socket_timeout=socket_timeout,
        )
        nodes = [ClusterNode(node.host, node.port) for node in client.get_nodes()]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, **cluster_kwargs)
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["decode_responses"] = True
    kwargs["encoding"] = "utf-8"
    kwargs["encoding_errors"] = errors
    if "server" not in kwargs:  # fakeredis has no socket to time out
        kwargs["socket_timeout"] = socket_timeout
    new_pool = pool.__class__(connection_class=pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=new_pool)


class _Lease:
    """Keeps the entries a handler is working on claimed, from a background thread."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        # The batch in hand, as read (no copy: this is set for every batch), and the IDs
        # of it that are finished early (failed or dead-lettered).
        self._entries: list[tuple[str, Any]] = []
        self._released: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-lease", daemon=True)
        self._thread.start()

    def hold(self, entries: list[tuple[str, Any]]) -> None:
        with self._lock:
            self._entries = entries
            self._released = set()

    def release(self, entry_id: str | None = None) -> None:
        with self._lock:
            if entry_id is None:
                self._entries = []
            else:
                self._released.add(entry_id)

    def _held(self) -> list[str]:
        with self._lock:
            return [entry_id for entry_id, _ in self._entries if entry_id not in self._released]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = max(self._worker.claim_idle_ms / 3000, 0.01)
        while not self._stop.wait(interval):
            ids = self._held()
            if ids:
                self._renew(ids)

    def _renew(self, ids: list[str]) -> None:
        worker = self._worker
        try:
            kept = worker._lease_script(keys=[worker.stream], args=[worker.group, worker.consumer, *ids])
        except (redis.RedisError, RedisClusterException) as exc:
            worker.stats.lease_errors += 1
            worker.stats.note_error(f"lease: {type(exc).__name__}: {exc}")
            LOG.warning("could not extend the lease on %d entries: %s", len(ids), exc)
            return
        lost = set(ids) - set(kept or [])
        if lost:
            worker.stats.leases_lost += len(lost)
            with self._lock:
                self._released |= lost
            LOG.warning(
                "%d entries in hand were taken over by another consumer (this worker stalled longer "
                "than claim_idle_ms?); their lease is not renewed: %s",
                len(lost),
                ", ".join(sorted(lost)[:10]),
            )


def _checked_delays(delays: Sequence[int], claim_idle_ms: int, max_deliveries: int) -> tuple[int, ...]:
    """``retry_delays_ms`` as a tuple, or a ValueError that says what to fix."""
    if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
        raise ValueError(f"retry_delays_ms must be a list of whole numbers of milliseconds, not {delays!r}")
    checked = tuple(delays)
    for delay in checked:
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 1:
            raise ValueError(f"retry_delays_ms must hold whole numbers of at least 1 ms, not {delay!r}")
        if delay > claim_idle_ms:
            raise ValueError(
                f"a retry delay of {delay} ms is longer than claim_idle_ms ({claim_idle_ms} ms): a waiting "
                "entry becomes claimable once it has been idle claim_idle_ms, so raise claim_idle_ms, "
                "or schedule longer waits with helpers.DelayQueue"
            )
    if any(later <= earlier for earlier, later in itertools.pairwise(checked)):
        raise ValueError(f"retry_delays_ms must increase, each longer than the one before: {list(checked)}")
    if len(checked) > max_deliveries - 1:
        raise ValueError(
            f"{len(checked)} retry delays, but max_deliveries={max_deliveries} allows only "
            f"{max_deliveries - 1} retries: drop delays or raise max_deliveries"
        )
    return checked


class Worker:
    """Handles the messages of one stream as one consumer of a group.

    Args:
        client: a redis-py client for the server, or a ``RedisCluster`` (the worker
            opens its own connections, with a socket timeout above BLOCK).
        stream: the stream's key. On a cluster, the stream and its dead-letter
            stream must share a hash slot (the default ``"<stream>:dead"`` does when
            the stream's name is a hash tag, such as ``{orders:0}``): the dead-letter
            script touches both.
        group: the consumer group; created at ``0`` with MKSTREAM when missing.
        consumer: this worker's consumer name. Give a restarted worker the same
            name, so that it finishes its own pending entries first.
        handler: ``handler(message_id, fields)``; raising means failure.
        batch: entries per read, and per XACK.
        block_ms: how long one read waits for new entries; also bounds how long
            ``stop()`` takes.
        claim_idle_ms: entries idle this long are taken over from other consumers,
            and failed entries are retried after this long. Keep it above your
            slowest handler (the lease keeper covers long handlers).
        max_deliveries: after this many deliveries, a failure sends the entry to
            the dead-letter stream.
        dead_letter: the dead-letter stream's key; ``"<stream>:dead"`` by default.
        retry_delays_ms: how long a failed entry waits before its next delivery: the
            first delay after a failed first delivery, the second after the second,
            and the last for every later one. Increasing, each at least 1 and at most
            ``claim_idle_ms`` (a waiting entry is claimable once it has been idle that
            long), and at most ``max_deliveries - 1`` of them. Empty (the default):
            failed entries are retried after ``claim_idle_ms``. For longer waits, or a
            job due at a given time, see :class:`helpers.DelayQueue`.
            Every worker of the group must use the same ``claim_idle_ms``: a worker
            with a shorter one claims a waiting entry before its delay has passed.
            While delays are set, a read blocks at most the shortest delay, so that the
            sweeps that retry come on time.
        retry_consumer: the placeholder consumer that holds the entries waiting for
            their retry (it shows in XPENDING and XINFO CONSUMERS); not a worker's name.
    """

    def __init__(
        self,
        client: AnyClient,
        stream: str,
        *,
        group: str,
        consumer: str,
        handler: Handler,
        batch: int = 10,
        block_ms: int = 2000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        dead_letter: str | None = None,
        retry_delays_ms: Sequence[int] = (),
        retry_consumer: str = "waiting-to-retry",
    ) -> None:
        for name, value in (
            ("stream", stream),
            ("group", group),
            ("consumer", consumer),
            ("retry_consumer", retry_consumer),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        for name, number, low in (
            ("batch", batch, 1),
            ("block_ms", block_ms, 1),
            ("claim_idle_ms", claim_idle_ms, 1),
            ("max_deliveries", max_deliveries, 1),
        ):
            if not isinstance(number, int) or isinstance(number, bool) or number < low:
                raise ValueError(f"{name} must be a whole number of at least {low}, not {number!r}")
        if retry_consumer == consumer:
            raise ValueError(
                "retry_consumer holds waiting entries: it must not be this worker's consumer name"
            )
        self.retry_delays_ms = _checked_delays(retry_delays_ms, claim_idle_ms, max_deliveries)
        self.retry_consumer = retry_consumer
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter = dead_letter or f"{stream}:dead"
        if self.dead_letter == stream:
            raise ValueError("the dead-letter stream must not be the stream itself")
        same_slot = key_slot(stream.encode()) == key_slot(self.dead_letter.encode())
        if isinstance(client, RedisCluster) and not same_slot:
            raise ValueError(
                f"on a cluster the dead-letter stream must be in the stream's hash slot, and "
                f"{self.dead_letter!r} is not in the slot of {stream!r}: name the stream with a hash tag "
                f"(such as '{{{stream}}}', whose default dead-letter stream is '{{{stream}}}:dead')"
            )
        # The socket must outlast the BLOCK, or a quiet stream looks like a dead server.
        socket_timeout = block_ms / 1000 + 10
        self.redis = _reading_client(client, socket_timeout, lenient=True)
        # New entries are read with strict decoding, so that the handler's path needs no
        # per-message UTF-8 check: a batch with bytes that are not UTF-8 fails to decode
        # as a whole, and is then read again through self.redis, entry by entry.
        self._new_reader = _reading_client(client, socket_timeout, lenient=False)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._dead_letter_script = self.redis.register_script(_DEAD_LETTER_SCRIPT)
        self._lease_script = self.redis.register_script(_LEASE_SCRIPT)
        self._retry_later_script = self.redis.register_script(_RETRY_LATER_SCRIPT)
        # Sweeps come often enough for the shortest retry delay to be kept.
        self._sweep_every_s = min([claim_idle_ms, *self.retry_delays_ms]) / 1000
        # Sweeps run between reads: a read may not block longer than the shortest delay either.
        self._block_ms = min([block_ms, *self.retry_delays_ms])
        self._last_sweep = float("-inf")
        self._sweep_cursor = "0-0"
        self._history_cursor: str | None = "0"  # None: this consumer's history has been read
        self._last_new_id = "0-0"  # the last entry that '>' gave this worker
        self._backoff = 0.0

    # Public --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop after the current batch (it acknowledges that batch first).

        A stop asked for before :meth:`run` starts makes that run return at once. The run
        that stops consumes the request, so the worker can be run again afterwards.
        """
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Close the worker's own connections (call it after :meth:`run` has returned).

        The worker opens a client of its own (see ``client`` above); ``with Worker(...) as
        worker:`` closes it on the way out.
        """
        for own in (self.redis, self._new_reader):
            own.close()
            if isinstance(own, redis.Redis):
                # A client built on a pool of its own does not close that pool itself.
                own.connection_pool.disconnect()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, max_messages: int | None = None) -> WorkerStats:
        """Handle messages until ``stop()`` is called, SIGTERM arrives (when run in the main
        thread) or, with ``max_messages``, until exactly that many have been handled and
        acknowledged or dead-lettered, never more.

        Every run starts with this consumer's own pending entries, so a worker run again
        (or restarted under the same name) finishes what it took before.

        Returns the worker's stats.
        """
        if max_messages is not None and (
            not isinstance(max_messages, int) or isinstance(max_messages, bool) or max_messages < 0
        ):
            raise ValueError(f"max_messages must be None or a whole number >= 0, not {max_messages!r}")
        # SIGTERM (what process managers send) stops the worker after its current batch.
        # Signal handlers can only be set from the main thread; elsewhere call stop().
        previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            previous_sigterm = signal.signal(signal.SIGTERM, lambda signum, frame: self.stop())
        lease = _Lease(self)
        self._history_cursor = "0"
        finished_before = self.stats.handled + self.stats.dead_lettered
        try:
            while not self._stop.is_set():
                # Counted from the stats, so that a batch cut short by an error still counts.
                done = self.stats.handled + self.stats.dead_lettered - finished_before
                if max_messages is not None and done >= max_messages:
                    break
                room = self.batch if max_messages is None else min(self.batch, max_messages - done)
                try:
                    if self._history_cursor is not None:
                        self._handle_batch(self._read_history(room), lease, checked=False)
                    elif time.monotonic() - self._last_sweep >= self._sweep_every_s:
                        self._handle_batch(self._sweep(room), lease, checked=False)
                    else:
                        self._handle_batch(self._read_new(room), lease, checked=True)
                    self._backoff = 0.0
                except (redis.RedisError, RedisClusterException) as exc:
                    # RedisClusterException (a hole in the slot map during a failover) is not a RedisError.
                    self._survive(exc)
            return self.stats
        finally:
            self._stop.clear()
            lease.close()
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)

    # Reading -----------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            LOG.info("created group %s on %s", self.group, self.stream)
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    def _read_history(self, count: int) -> list[tuple[str, Any]]:
        """This consumer's own pending entries after the history cursor, a page at a time;
        when there are no more, the cursor becomes None."""
        assert self._history_cursor is not None
        self._ensure_group()
        reply: Any = self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: self._history_cursor}, count=count
        )
        entries: list[tuple[str, Any]] = reply[0][1] if reply else []
        self._history_cursor = entries[-1][0] if entries else None
        return entries

    def _read_new(self, count: int) -> list[tuple[str, Any]]:
        try:
            reply: Any = self._new_reader.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=self._block_ms
            )
        except UnicodeDecodeError:
            # The entries were delivered to this consumer, then a payload failed to decode.
            # They are pending here, after the last entry '>' gave us: read them again
            # through the lenient client, where each entry is checked on its own.
            LOG.warning(
                "a batch of %s holds bytes that are not UTF-8: reading it again entry by entry", self.stream
            )
            self._history_cursor = self._last_new_id
            return []
        entries: list[tuple[str, Any]] = reply[0][1] if reply else []
        if entries:
            self._last_new_id = entries[-1][0]
        return entries

    def _sweep(self, count: int) -> list[tuple[str, Any]]:
        """XAUTOCLAIM what has been idle for claim_idle_ms, following the cursor to 0-0.

        Returns at most ``count`` entries; when there are more, the next call continues
        from the cursor, and the sweep is over only when the cursor is back at 0-0.
        """
        claimed: list[tuple[str, Any]] = []
        cursor = self._sweep_cursor
        while len(claimed) < count:
            reply: Any = self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, count=count - len(claimed)
            )
            cursor, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                self.stats.deleted += len(deleted)
                LOG.warning(
                    "%d pending entries of %s were deleted from the stream before anyone handled them: %s",
                    len(deleted),
                    self.stream,
                    ", ".join(deleted[:10]),
                )
            claimed.extend(entries)
            if cursor == "0-0":
                self._last_sweep = time.monotonic()
                break
        # Not at the end yet: the next call goes on from here.
        self._sweep_cursor = cursor
        self.stats.reclaimed += len(claimed)
        return claimed

    # Handling ------------------------------------------------------------------------------

    def _handle_batch(self, entries: list[tuple[str, Any]], lease: _Lease, *, checked: bool) -> None:
        """Handle a batch and acknowledge its successes together, even if a Redis error
        interrupts the batch.

        ``checked`` entries came from a '>' read through the strict client: each exists
        and is valid UTF-8. Others (history, sweeps) may be deleted, or hold bytes that are
        not UTF-8, which must be dead-lettered, not handled. The loop over ``checked``
        entries runs for every message of a busy queue: it does nothing else.
        """
        if not entries:
            return
        lease.hold(entries)
        handler = self.handler
        to_ack: list[str] = []
        ack_later = to_ack.append
        deleted = 0
        try:
            if checked:
                for entry_id, fields in entries:
                    try:
                        handler(entry_id, fields)
                    except Exception as exc:  # the handler's failure is data, not a crash of the worker
                        self._after_failure(entry_id, fields, exc, lease)
                        continue
                    ack_later(entry_id)
            else:
                for entry_id, fields in entries:
                    if not fields:
                        # A pending entry whose message was trimmed or deleted: nothing to handle.
                        deleted += 1
                        LOG.warning("entry %s of %s was deleted before it was handled", entry_id, self.stream)
                        ack_later(entry_id)
                        continue
                    if not _is_utf8(fields):
                        self._dead_letter(entry_id, fields, "payload is not UTF-8")
                        lease.release(entry_id)
                        continue
                    try:
                        handler(entry_id, fields)
                    except Exception as exc:  # the handler's failure is data, not a crash of the worker
                        self._after_failure(entry_id, fields, exc, lease)
                        continue
                    ack_later(entry_id)
        finally:
            try:
                if to_ack:
                    acked = self.redis.xack(self.stream, self.group, *to_ack)
                    if acked != len(to_ack):
                        self.stats.ack_mismatches += 1
                        LOG.warning(
                            "XACK removed %d of %d entries: some were claimed by another consumer, "
                            "or the group was lost",
                            acked,
                            len(to_ack),
                        )
                    self.stats.deleted += deleted
                    self.stats.handled += len(to_ack) - deleted
            finally:
                lease.release()

    def _after_failure(self, entry_id: str, fields: dict[str, str], exc: Exception, lease: _Lease) -> None:
        """Leave a failed entry for a retry, or dead-letter it when it has had its deliveries."""
        self.stats.failed += 1
        lease.release(entry_id)
        reason = f"{type(exc).__name__}: {exc}"
        pending = self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        deliveries = int(pending[0]["times_delivered"]) if pending else 0
        if pending and deliveries >= self.max_deliveries:
            self._dead_letter(entry_id, fields, reason, deliveries)
            return
        if pending and self.retry_delays_ms:
            self._retry_later(entry_id, deliveries, reason)
            return
        LOG.warning(
            "entry %s failed (delivery %d of %d), it will be retried: %s",
            entry_id,
            deliveries,
            self.max_deliveries,
            reason,
        )

    def _retry_later(self, entry_id: str, deliveries: int, reason: str) -> None:
        """Hand a failed entry to the retry placeholder, claimable after this delivery's delay."""
        delay = self.retry_delays_ms[min(deliveries, len(self.retry_delays_ms)) - 1]
        try:
            moved = self._retry_later_script(
                keys=[self.stream],
                args=[self.group, self.consumer, self.retry_consumer, entry_id, self.claim_idle_ms - delay],
            )
        except redis.ResponseError as exc:
            # Nothing changed: the entry stays pending here, and a sweep retries it after
            # claim_idle_ms, which is never sooner than its delay.
            self.stats.note_error(f"retry delay: {exc}")
            LOG.error(
                "could not delay the retry of entry %s, it waits claim_idle_ms instead: %s", entry_id, exc
            )
            return
        if moved:
            self.stats.retries_delayed += 1
            LOG.warning(
                "entry %s failed (delivery %d of %d), retried in %d ms: %s",
                entry_id,
                deliveries,
                self.max_deliveries,
                delay,
                reason,
            )

    def _dead_letter(
        self, entry_id: str, fields: dict[str, str], reason: str, deliveries: int | None = None
    ) -> int:
        if deliveries is None:
            pending = self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 0
        metadata = {"original_id": entry_id, "deliveries": str(deliveries), "reason": reason}
        pairs: list[bytes] = []
        if len(fields) <= _MAX_SCRIPT_FIELDS:
            for name, value in fields.items():
                pairs += [_original_bytes(name), _original_bytes(value)]  # byte for byte, as sent
            taken = set(fields)
        else:
            # A script can pass only about 8000 values to one command (Lua's unpack): a
            # message with more fields goes to the dead letters as one JSON field instead.
            pairs += [
                b"fields_json",
                json.dumps(fields, ensure_ascii=False).encode("utf-8", "backslashreplace"),
            ]
            taken = {"fields_json"}
        for name, value in metadata.items():
            while name in taken:  # never hide one of the message's own fields
                name = "_" + name
            taken.add(name)
            pairs += [name.encode(), value.encode("utf-8", "backslashreplace")]
        try:
            moved = self._dead_letter_script(
                keys=[self.stream, self.dead_letter], args=[self.group, self.consumer, entry_id, *pairs]
            )
        except redis.ResponseError as exc:
            # The dead-letter write failed (the key holds another type, an ACL rule forbids it,
            # the server is out of memory): nothing was written or acknowledged, so the entry
            # stays pending and a later sweep tries again. The rest of the batch goes on.
            self.stats.dead_letter_failures += 1
            self.stats.note_error(f"dead letter: {exc}")
            LOG.error(
                "could not move entry %s to %s, it stays pending and will be tried again: %s",
                entry_id,
                self.dead_letter,
                exc,
            )
            return 0
        if moved:
            self.stats.dead_lettered += 1
            LOG.error(
                "entry %s moved to %s (delivered %d times): %s",
                entry_id,
                self.dead_letter,
                deliveries,
                reason,
            )
            return 1
        LOG.info("entry %s was no longer pending for %s: another worker took it", entry_id, self.consumer)
        return 0

    # Errors -----------------------------------------------------------------------------------

    def _survive(self, exc: redis.RedisError | RedisClusterException) -> None:
        """Log a Redis error, wait (with backoff), and repair what can be repaired."""
        self.stats.errors += 1
        message = f"{type(exc).__name__}: {exc}"
        self.stats.note_error(message)
        text = str(exc)
        if text.startswith("NOGROUP"):
            LOG.error("the group or the stream is gone (%s); creating them again", text)
            history_reset = True
        elif text.startswith("WRONGTYPE"):
            LOG.error("%s holds another type of value, not a stream: waiting for it to be fixed", self.stream)
            history_reset = False
        else:
            LOG.error("Redis error, retrying: %s", message)
            history_reset = False
        self._backoff = min(max(self._backoff * 2, 0.1), 5.0)
        self._stop.wait(self._backoff * random.uniform(0.5, 1.0))
        if isinstance(self.redis, RedisCluster) and is_failover_error(exc):
            self._refresh_cluster_view()
        if history_reset:
            with contextlib.suppress(redis.RedisError, RedisClusterException):
                self._ensure_group()

    def _refresh_cluster_view(self) -> None:
        """After a node failed: ask the cluster for its slot map again, and move the client's
        default node to another master.

        redis-py's cluster client asks its default node where each XREADGROUP goes
        (``COMMAND GETKEYS``: XREADGROUP's keys come after STREAMS). If that node died,
        every read fails, even on a healthy partition, and the client does not replace the
        node by itself.
        """
        for own in (self.redis, self._new_reader):
            assert isinstance(own, RedisCluster)
            with contextlib.suppress(redis.RedisError, RedisClusterException):
                own.nodes_manager.initialize()
            own.replace_default_node()
