"""helpers.Worker on every backend: the happy path, restarts, reclaims, poison, bad payloads, bad settings."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import helpers
from tests.conftest import Background


def _send(client: redis.Redis, count: int, stream: str = "jobs", **extra: Any) -> list[str]:
    return helpers.Producer(client, stream).send_many([{"seq": n, **extra} for n in range(count)])


def _worker(
    client: redis.Redis, handler: Callable[[str, dict[str, str]], Any], **kwargs: Any
) -> helpers.Worker:
    settings: dict[str, Any] = {"group": "workers", "consumer": "w1", "block_ms": 100, "claim_idle_ms": 200}
    settings.update(kwargs)
    return helpers.Worker(client, "jobs", handler=handler, **settings)


def test_handles_everything_and_acknowledges(client: redis.Redis) -> None:
    ids = _send(client, 25)
    seen: list[tuple[str, dict[str, str]]] = []
    stats = _worker(client, lambda message_id, fields: seen.append((message_id, fields))).run(max_messages=25)
    assert [message_id for message_id, _ in seen] == ids
    assert seen[3][1] == {"seq": "3"}
    assert (stats.handled, stats.failed, stats.dead_lettered, stats.ack_mismatches) == (25, 0, 0, 0)
    assert client.xpending("jobs", "workers")["pending"] == 0
    assert "handled 25" in stats.report()


def test_a_fresh_worker_picks_up_where_the_last_left_off(client: redis.Redis) -> None:
    _send(client, 10)
    seen: list[str] = []
    _worker(client, lambda message_id, fields: seen.append(fields["seq"]), batch=3).run(max_messages=4)
    _worker(client, lambda message_id, fields: seen.append(fields["seq"]), consumer="w2").run(max_messages=6)
    assert seen == [str(n) for n in range(10)]


def test_creates_group_and_stream_when_missing(client: redis.Redis, background: Background) -> None:
    seen: list[str] = []
    worker = _worker(client, lambda message_id, fields: seen.append(fields["seq"]))
    thread = background.run(worker, max_messages=3)
    helpers.wait_for(lambda: client.exists("jobs"), 10, "the worker to create the stream")
    _send(client, 3)
    thread.join(timeout=20)
    assert not thread.is_alive() and seen == ["0", "1", "2"]


def test_own_pending_entries_come_first(client: redis.Redis) -> None:
    ids = _send(client, 6)
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)  # w1 took two, then crashed
    client.xreadgroup("workers", "other", {"jobs": ">"}, count=1)  # someone else has one
    seen: list[str] = []
    _worker(client, lambda message_id, fields: seen.append(message_id), claim_idle_ms=60_000).run(
        max_messages=5
    )
    assert seen == [ids[0], ids[1], ids[3], ids[4], ids[5]]
    assert [entry["message_id"] for entry in client.xpending_range("jobs", "workers", "-", "+", 10)] == [
        ids[2]
    ]


def test_reclaims_entries_of_a_dead_consumer(client: redis.Redis) -> None:
    ids = _send(client, 4)
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "ghost", {"jobs": ">"}, count=3)
    time.sleep(0.3)
    seen: list[str] = []
    stats = _worker(client, lambda message_id, fields: seen.append(message_id)).run(max_messages=4)
    assert sorted(seen) == sorted(ids) and stats.reclaimed == 3
    assert client.xpending("jobs", "workers")["pending"] == 0


def _dead_letters(client: redis.Redis) -> Any:
    return client.xrange("jobs:dead")


def test_poison_is_dead_lettered_once_and_the_rest_handled(client: redis.Redis) -> None:
    helpers.Producer(client, "jobs").send_many([{"seq": 0}, {"seq": 1, "poison": "yes"}, {"seq": 2}])
    seen: list[str] = []

    def handler(message_id: str, fields: dict[str, str]) -> None:
        if fields.get("poison"):
            raise ValueError("cannot handle this")
        seen.append(fields["seq"])

    stats = _worker(client, handler, claim_idle_ms=50, max_deliveries=3).run(max_messages=3)
    assert seen == ["0", "2"]
    assert (stats.handled, stats.failed, stats.dead_lettered) == (2, 3, 1)
    dead = _dead_letters(client)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields["seq"] == "1" and fields["poison"] == "yes"
    assert fields["deliveries"] == "3" and fields["reason"] == "ValueError: cannot handle this"
    assert fields["original_id"] == client.xrange("jobs")[1][0]
    assert client.xpending("jobs", "workers")["pending"] == 0


def test_retry_delays_space_the_deliveries_of_a_failing_message(client: redis.Redis) -> None:
    helpers.Producer(client, "jobs").send_many([{"seq": 0, "poison": "yes"}, {"seq": 1}])
    attempts: list[float] = []
    seen: list[str] = []

    def handler(message_id: str, fields: dict[str, str]) -> None:
        if fields.get("poison"):
            attempts.append(time.monotonic())
            raise ValueError("cannot handle this")
        seen.append(fields["seq"])

    worker = _worker(client, handler, claim_idle_ms=600, max_deliveries=4, retry_delays_ms=[150, 400])
    stats = worker.run(max_messages=2)
    assert seen == ["1"] and len(attempts) == 4
    gaps_ms = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(attempts)]
    # No sooner than its delay; the last delay serves every later retry. (1 ms: the server
    # counts idle time in whole milliseconds.)
    assert all(gap >= delay - 1 for gap, delay in zip(gaps_ms, [150, 400, 400], strict=True)), gaps_ms
    assert (stats.retries_delayed, stats.failed, stats.dead_lettered) == (3, 4, 1)
    assert _dead_letters(client)[0][1]["deliveries"] == "4"
    assert client.xpending("jobs", "workers")["pending"] == 0


def test_a_read_blocks_no_longer_than_the_shortest_retry_delay(client: redis.Redis) -> None:
    # Sweeps run between reads: a 2 s BLOCK would hold back a retry due in 300 ms.
    assert _worker(client, print, block_ms=2000, claim_idle_ms=1000, retry_delays_ms=[300])._block_ms == 300
    assert _worker(client, print, block_ms=2000, claim_idle_ms=1000)._block_ms == 2000


def test_a_message_with_thousands_of_fields_is_dead_lettered_as_json(client: redis.Redis) -> None:
    wide: dict[Any, Any] = {f"f{n}": str(n) for n in range(5000)}  # more values than a script can unpack
    client.xadd("jobs", wide)

    def fail(message_id: str, fields: dict[str, str]) -> None:
        raise ValueError("too wide")

    stats = _worker(client, fail, max_deliveries=1).run(max_messages=1)
    assert (stats.dead_lettered, stats.dead_letter_failures) == (1, 0)
    dead = client.xrange("jobs:dead")[0][1]
    assert json.loads(dead["fields_json"]) == wide and dead["reason"] == "ValueError: too wide"
    assert client.xpending("jobs", "workers")["pending"] == 0


def test_a_waiting_retry_is_held_by_the_placeholder_and_a_restart_does_not_take_it_early(
    client: redis.Redis, background: Background
) -> None:
    (entry_id,) = _send(client, 1)

    def fail(message_id: str, fields: dict[str, str]) -> None:
        raise ValueError("not now")

    first = _worker(client, fail, claim_idle_ms=60_000, retry_delays_ms=[30_000])
    thread = background.run(first)
    helpers.wait_for(lambda: first.stats.retries_delayed == 1, 20, "the first failure")
    first.stop()
    thread.join(timeout=20)
    (waiting,) = client.xpending_range("jobs", "workers", "-", "+", 10)
    assert waiting["message_id"] == entry_id and waiting["consumer"] == "waiting-to-retry"
    assert waiting["times_delivered"] == 1
    # Claimable after 30 s: its idle time was set to claim_idle_ms - 30 s.
    assert 30_000 <= waiting["time_since_delivered"] < 60_000
    # The same consumer name, restarted: its own history is empty, so nothing is retried early.
    seen: list[str] = []
    again = _worker(client, lambda message_id, fields: seen.append(message_id), claim_idle_ms=60_000)
    thread = background.run(again)
    helpers.wait_for(
        lambda: again.stats.errors == 0 and again._history_cursor is None, 20, "the history read"
    )
    time.sleep(0.3)
    again.stop()
    thread.join(timeout=20)
    assert seen == []
    assert client.xpending_range("jobs", "workers", "-", "+", 10)[0]["consumer"] == "waiting-to-retry"


def test_two_workers_racing_dead_letter_once(client: redis.Redis, background: Background) -> None:
    helpers.Producer(client, "jobs").send_many([{"seq": n, "poison": "yes"} for n in range(3)])

    def always_fails(message_id: str, fields: dict[str, str]) -> None:
        raise RuntimeError("no")

    workers = [
        _worker(client, always_fails, consumer=f"w{n}", claim_idle_ms=20, max_deliveries=2) for n in range(2)
    ]
    for worker in workers:
        background.run(worker)
    helpers.wait_for(lambda: client.xlen("jobs:dead") >= 3, 20, "three dead letters")
    time.sleep(0.2)  # give a racing duplicate the chance to appear
    background.stop()
    originals = sorted(fields["original_id"] for _, fields in _dead_letters(client))
    assert originals == sorted(entry_id for entry_id, _ in client.xrange("jobs"))
    assert sum(worker.stats.dead_lettered for worker in workers) == 3


def test_payload_that_is_not_utf8_is_dead_lettered_with_its_bytes(client: redis.Redis) -> None:
    helpers.Producer(client, "jobs").send_many([{"seq": 0}, {"seq": 1, "blob": b"\xff\xfe"}, {"seq": 2}])
    seen: list[str] = []
    stats = _worker(client, lambda message_id, fields: seen.append(fields["seq"])).run(max_messages=3)
    assert seen == ["0", "2"] and stats.dead_lettered == 1
    raw: Any = helpers.connect(decode_responses=False).xrange("jobs:dead")
    assert raw[0][1][b"blob"] == b"\xff\xfe"
    assert raw[0][1][b"reason"].startswith(b"payload is not UTF-8")


def test_dead_letter_never_hides_a_field_of_the_message(client: redis.Redis) -> None:
    helpers.Producer(client, "jobs").send({"reason": "customer asked", "seq": 1})

    def fails(message_id: str, fields: dict[str, str]) -> None:
        raise KeyError("x")

    _worker(client, fails, max_deliveries=1).run(max_messages=1)
    fields = _dead_letters(client)[0][1]
    assert fields["reason"] == "customer asked" and fields["_reason"] == "KeyError: 'x'"


def test_custom_dead_letter_key(client: redis.Redis) -> None:
    helpers.Producer(client, "jobs").send({"seq": 1})

    def fails(message_id: str, fields: dict[str, str]) -> None:
        raise ValueError("x")

    _worker(client, fails, max_deliveries=1, dead_letter="graveyard").run(max_messages=1)
    assert client.xlen("graveyard") == 1 and client.exists("jobs:dead") == 0


def test_stop_from_another_thread(client: redis.Redis, background: Background) -> None:
    worker = _worker(client, lambda message_id, fields: None)
    thread = background.run(worker)
    time.sleep(0.3)
    worker.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_long_handler_keeps_its_lease(client: redis.Redis) -> None:
    _send(client, 1)
    stolen: list[Any] = []
    claim_idle_ms = 3000

    def idle_ms(message_id: str) -> int:
        entry = client.xpending_range("jobs", "workers", message_id, message_id, 1)[0]
        return int(entry["time_since_delivered"])

    def slow(message_id: str, fields: dict[str, str]) -> None:
        # As if this handler had run for ten minutes: the entry looks abandoned, still w1's.
        client.xclaim("jobs", "workers", "w1", 0, [message_id], idle=600_000, justid=True)
        assert idle_ms(message_id) >= claim_idle_ms
        # The lease keeper (every claim_idle_ms / 3) resets the idle time while the handler runs,
        # so a rival sweeping for entries idle longer than claim_idle_ms finds nothing. Waiting
        # for it, not for a set time, keeps this true on a busy machine.
        helpers.wait_for(lambda: idle_ms(message_id) < claim_idle_ms, 20, "the lease to be renewed")
        # With JUSTID, redis-py returns the claimed IDs alone.
        stolen.extend(client.xautoclaim("jobs", "workers", "rival", claim_idle_ms, "0-0", justid=True))
        finished.append(message_id)

    finished: list[str] = []
    stats = _worker(client, slow, claim_idle_ms=claim_idle_ms).run(max_messages=1)
    assert stolen == []
    assert len(finished) == 1 and stats.handled == 1 and stats.leases_lost == 0  # ran once, to the end
    assert client.xpending("jobs", "workers")["pending"] == 0 and client.exists("jobs:dead") == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"group": ""}, ValueError, "group must be a non-empty string"),
        ({"consumer": None}, ValueError, "consumer"),
        ({"batch": 0}, ValueError, "batch must be a whole number of at least 1"),
        ({"block_ms": 1.5}, ValueError, "block_ms"),
        ({"max_deliveries": True}, ValueError, "max_deliveries"),
        ({"dead_letter": "jobs"}, ValueError, "must not be the stream itself"),
        ({"handler": "not callable"}, TypeError, "handler must be callable"),
        ({"retry_delays_ms": [100, 100]}, ValueError, "must increase"),
        ({"retry_delays_ms": [0]}, ValueError, "at least 1 ms"),
        ({"retry_delays_ms": [1.5]}, ValueError, "at least 1 ms"),
        ({"retry_delays_ms": [40_000]}, ValueError, "longer than claim_idle_ms"),
        ({"retry_delays_ms": "100"}, ValueError, "a list of whole numbers"),
        ({"retry_delays_ms": 100}, ValueError, "a list of whole numbers"),
        ({"retry_delays_ms": [1, 2, 3, 4, 5]}, ValueError, "allows only 4 retries"),
        ({"retry_consumer": "c"}, ValueError, "must not be this worker's consumer name"),
        ({"retry_consumer": ""}, ValueError, "retry_consumer must be a non-empty string"),
    ],
)
def test_bad_settings_are_refused(
    client: redis.Redis, kwargs: dict[str, Any], error: type, words: str
) -> None:
    settings: dict[str, Any] = {"group": "g", "consumer": "c", "handler": lambda message_id, fields: None}
    settings.update(kwargs)
    with pytest.raises(error, match=words):
        helpers.Worker(client, "jobs", **settings)
    with pytest.raises(ValueError, match="max_messages"):
        helpers.Worker(client, "jobs", group="g", consumer="c", handler=print).run(max_messages=-1)


def test_sigterm_stops_a_worker_running_in_the_main_thread(client: redis.Redis) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    seen: list[str] = []

    def handler(message_id: str, fields: dict[str, str]) -> None:
        seen.append(fields["seq"])
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the batch is being handled

    _send(client, 30)
    stats = _worker(client, handler, batch=10).run()
    assert stats.handled == 10  # the batch in hand was finished and acknowledged, then it stopped
    assert client.xpending("jobs", "workers")["pending"] == 0
    assert signal.getsignal(signal.SIGTERM) is previous


# Lifecycle ------------------------------------------------------------------------------------


def test_stop_before_run_makes_that_run_return_at_once(client: redis.Redis, background: Background) -> None:
    _send(client, 3)
    worker = _worker(client, lambda message_id, fields: None)
    worker.stop()
    thread = background.run(worker)
    thread.join(timeout=10)
    assert not thread.is_alive(), "a stop() asked for before run() was lost"
    # The request was consumed: the worker runs again.
    assert worker.run(max_messages=3).handled == 3


def test_max_messages_holds_when_a_redis_error_cuts_a_batch_short(client: redis.Redis) -> None:
    _send(client, 20)
    seen: list[str] = []

    def handler(message_id: str, fields: dict[str, str]) -> None:
        if fields["seq"] == "3" and "3" not in seen:
            seen.append("3")
            raise ValueError("fails once")
        seen.append(fields["seq"])

    worker = _worker(client, handler, batch=10)
    real_xpending_range = worker.redis.xpending_range
    calls = 0

    def flaky_xpending_range(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # the failure's delivery count cannot be read: the batch breaks off
            raise redis.ConnectionError("connection lost")
        return real_xpending_range(*args, **kwargs)

    worker.redis.xpending_range = flaky_xpending_range  # type: ignore[method-assign]
    stats = worker.run(max_messages=10)
    assert stats.handled == 10, stats.report()
    assert stats.errors == 1


def test_a_second_run_starts_with_the_consumers_own_pending_entries(client: redis.Redis) -> None:
    ids = _send(client, 4)
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)  # w1 took two before a restart
    fail_once = {ids[0]}
    seen: list[str] = []

    def handler(message_id: str, fields: dict[str, str]) -> None:
        if message_id in fail_once:
            fail_once.discard(message_id)
            raise ValueError("fails the first time")
        seen.append(message_id)

    worker = _worker(client, handler, claim_idle_ms=60_000)  # no sweep would find it in this test
    worker.run(max_messages=1)  # ids[0] failed and stays pending for w1; ids[1] handled
    assert seen == [ids[1]]
    worker.run(max_messages=1)
    assert seen == [ids[1], ids[0]], "the second run skipped its own pending entry"


def test_close_releases_the_workers_connections(client: redis.Redis, backend: str) -> None:
    if backend != "server":
        pytest.skip("looks for the connections in CLIENT LIST, which fakeredis does not keep")
    _send(client, 3)
    with _worker(client, lambda message_id, fields: None) as worker:
        worker.run(max_messages=3)
        pool: Any = worker.redis.connection_pool
        connections = [*pool._available_connections, *pool._in_use_connections]
        addresses = {"{}:{}".format(*conn._sock.getsockname()) for conn in connections if conn._sock}
        assert addresses and addresses <= {entry["addr"] for entry in client.client_list()}

    def still_connected() -> set[str]:
        return addresses & {entry["addr"] for entry in client.client_list()}

    deadline = time.monotonic() + 10
    while still_connected() and time.monotonic() < deadline:
        time.sleep(0.02)  # the server notices a closed socket a moment later
    assert not still_connected()


# Leases -----------------------------------------------------------------------------------------


def test_lease_never_takes_back_an_entry_another_consumer_took_over(client: redis.Redis) -> None:
    [entry_id] = _send(client, 1)
    owners: list[str] = []

    def owner() -> str:
        return str(client.xpending_range("jobs", "workers", "-", "+", 1)[0]["consumer"])

    def slow(message_id: str, fields: dict[str, str]) -> None:
        # This worker stalled past claim_idle_ms and a rival took the entry over, as it should.
        client.xclaim("jobs", "workers", "rival", 0, [message_id], justid=True)

        def noticed() -> bool:
            owners.append(owner())
            return worker.stats.leases_lost >= 1

        # Until the lease keeper has tried to renew (however long a busy machine makes that),
        # and once more after it did: the entry stays the rival's throughout.
        helpers.wait_for(noticed, 20, "the lease keeper to find the entry taken over")
        owners.append(owner())

    worker = _worker(client, slow, claim_idle_ms=150)
    stats = worker.run(max_messages=1)
    assert set(owners) == {"rival"}, f"the lease took the entry back: owners seen {owners}"
    assert stats.leases_lost == 1
    assert entry_id


# Dead letters whose destination fails -------------------------------------------------------------


def _always_fails(message_id: str, fields: dict[str, str]) -> None:
    raise ValueError("poison")


def test_a_failing_dead_letter_write_leaves_the_entry_pending(
    client: redis.Redis, background: Background
) -> None:
    [entry_id] = _send(client, 1)
    client.set("jobs:dead", "not a stream")  # the dead-letter write fails with WRONGTYPE
    worker = _worker(client, _always_fails, claim_idle_ms=50, max_deliveries=1)
    background.run(worker)
    helpers.wait_for(lambda: worker.stats.dead_letter_failures >= 2, 20, "refused dead-letter writes")
    pending = client.xpending_range("jobs", "workers", "-", "+", 10)
    assert [entry["message_id"] for entry in pending] == [entry_id], "the message left the PEL"
    assert any("WRONGTYPE" in error for error in worker.stats.recent_errors)
    client.delete("jobs:dead")  # repaired: the next attempt moves it, once
    helpers.wait_for(lambda: client.xpending("jobs", "workers")["pending"] == 0, 20, "the move")
    time.sleep(0.2)  # room for a wrong second move to show
    background.stop()
    dead = client.xrange("jobs:dead")
    assert [fields["original_id"] for _, fields in dead] == [entry_id]
    assert client.xpending("jobs", "workers")["pending"] == 0
    assert worker.stats.dead_lettered == 1


def test_a_worker_does_not_dead_letter_an_entry_another_consumer_took(
    client: redis.Redis, background: Background
) -> None:
    [entry_id] = _send(client, 1)

    def stalls_then_fails(message_id: str, fields: dict[str, str]) -> None:
        client.xclaim("jobs", "workers", "rival", 0, [message_id], justid=True)  # taken over meanwhile
        raise ValueError("poison")

    worker = _worker(client, stalls_then_fails, claim_idle_ms=60_000, max_deliveries=1)
    background.run(worker)
    helpers.wait_for(lambda: worker.stats.failed, 10, "the handler's failure")
    time.sleep(0.2)  # room for a wrong move to show
    background.stop()
    assert client.exists("jobs:dead") == 0
    pending = client.xpending_range("jobs", "workers", "-", "+", 10)
    assert [(entry["message_id"], entry["consumer"]) for entry in pending] == [(entry_id, "rival")]
    assert worker.stats.dead_lettered == 0
