"""The worker under faults, on a real server on loopback (reliability notes, scenarios 1 to 12).

Each test is bounded by a deadline and asserts outcomes, never timings.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis

import helpers
from tests.conftest import Background

pytestmark = pytest.mark.needs_server


def _start_cli_worker(
    url: str, consumer: str, handler: str, *, quiet: bool = True, options: Mapping[str, object] | None = None
) -> subprocess.Popen[str]:
    return helpers.start_worker_process(
        url,
        "jobs",
        "workers",
        consumer,
        handler,
        options={"block_ms": 200, **(options or {})},
        env={"RECORD_URL": url},
        quiet=quiet,
    )


@pytest.fixture()
def server(server_binary: helpers.ServerBinary) -> Iterator[helpers.LocalServer]:
    with helpers.LocalServer(server_binary) as private:
        yield private


def _kill_and_replace(
    workers: dict[str, subprocess.Popen[str]],
    names: list[str],
    kills: int,
    pause_s: float,
    rng: random.Random,
    url: str,
    handler: str,
    options: dict[str, Any],
) -> None:
    """SIGKILL a random worker every ``pause_s``, ``kills`` times, and start one in its place.

    Half the time the same name comes back (it reads its own history first); otherwise a new
    name, and the dead one's entries wait for a sweep.
    """
    for kill in range(1, kills + 1):
        time.sleep(pause_s)
        victim = rng.choice(names)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=10)
        name = victim if rng.random() < 0.5 else f"{victim}-{kill}"
        names[names.index(victim)] = name
        workers[name] = _start_cli_worker(url, name, handler, options=options)


def test_sigkilled_workers_lose_nothing(server: helpers.LocalServer, background: Background) -> None:
    """Workers SIGKILLed again and again while messages flow: lost = 0; duplicates are counted."""
    client = server.client()
    total, kills_planned = 600, 12
    producer = helpers.Producer(client, "jobs")

    def produce() -> None:  # a steady flow, about 3 seconds long
        for start in range(0, total, 20):
            producer.send_many([{"seq": n} for n in range(start, start + 20)])
            time.sleep(0.1)

    flow = background.call(produce)
    names = ["w1", "w2", "w3"]
    # claim_idle_ms well above a stall of a loaded machine: only kills may cause duplicates here.
    batch, extra = 10, {"batch": 10, "claim_idle_ms": 1000}
    record = "helpers.tools.demo_handlers:record"
    workers = {name: _start_cli_worker(server.url, name, record, options=extra) for name in names}
    rng = random.Random(7)
    try:
        _kill_and_replace(workers, names, kills_planned, 0.25, rng, server.url, record, extra)
        flow.join(timeout=60)

        def finished() -> bool:
            group = next((g for g in client.xinfo_groups("jobs") if g["name"] == "workers"), None)
            if group is None:  # not created yet
                return False
            return client.xlen("jobs") == total and group["lag"] == 0 and group["pending"] == 0

        helpers.wait_for(finished, 120, "the surviving workers to finish every message")
    finally:
        for process in workers.values():
            process.kill()
            process.wait(timeout=10)
    handled = [int(seq) for seq in client.lrange("handled", 0, -1)]
    lost = set(range(total)) - set(handled)
    duplicates = len(handled) - len(set(handled))
    print(f"\n{kills_planned} workers SIGKILLed, {total} messages: lost {len(lost)}, duplicates {duplicates}")
    assert not lost
    assert not set(handled) - set(range(total)), "handled something that was never sent"
    # Each kill repeats at most the batch the worker had handled but not yet acknowledged.
    assert duplicates <= kills_planned * batch


def test_retry_delays_lose_nothing_when_workers_are_sigkilled(
    server: helpers.LocalServer, background: Background
) -> None:
    """Flaky messages fail twice and wait their retry delays while workers are SIGKILLed:
    every message is handled, every flaky one after at least three attempts, none dead-lettered."""
    client = server.client()
    total, kills = 200, 6
    helpers.Producer(client, "jobs").send_many(
        [{"seq": n, **({"flaky": "yes"} if n % 10 == 0 else {})} for n in range(total)]
    )
    handler = "helpers.tools.demo_handlers:fail_twice_then_record"
    # max_deliveries leaves room for the deliveries that kills add to the two failures.
    options = {"claim_idle_ms": 1000, "retry_delays_ms": "100,300", "max_deliveries": 10}
    names = ["w1", "w2"]
    workers = {name: _start_cli_worker(server.url, name, handler, options=options) for name in names}
    rng = random.Random(11)
    try:
        _kill_and_replace(workers, names, kills, 0.3, rng, server.url, handler, options)

        def finished() -> bool:
            groups = client.xinfo_groups("jobs")
            return bool(groups) and groups[0]["lag"] == 0 and groups[0]["pending"] == 0

        helpers.wait_for(finished, 120, "the surviving workers to finish every message")
    finally:
        for process in workers.values():
            process.kill()
            process.wait(timeout=10)
    handled = {int(seq) for seq in client.lrange("handled", 0, -1)}
    assert handled == set(range(total)), f"lost: {sorted(set(range(total)) - handled)}"
    attempts = {int(seq): int(count) for seq, count in client.hgetall("attempts").items()}
    assert set(attempts) == set(range(0, total, 10))
    assert all(count >= 3 for count in attempts.values()), attempts
    assert client.xlen("jobs:dead") == 0


def test_sigterm_finishes_the_batch_and_exits_zero(server: helpers.LocalServer) -> None:
    client = server.client()
    process = _start_cli_worker(server.url, "w1", "helpers.tools.demo_handlers:record", quiet=False)
    assert process.stderr is not None
    helpers.wait_for(lambda: client.exists("jobs") == 1, 30, "the worker to create its group")
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(50)])
    helpers.wait_for(lambda: client.llen("handled") > 0, 30, "the worker to start handling")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    log = process.stderr.read()
    assert "stopped: handled" in log
    assert client.xpending("jobs", "workers")["pending"] == 0


def test_cli_refuses_a_bad_handler(server: helpers.LocalServer) -> None:
    process = _start_cli_worker(server.url, "w1", "no_such_module:nope", quiet=False)
    assert process.wait(timeout=30) == 2
    assert process.stderr is not None and "cannot import 'no_such_module'" in process.stderr.read()


def _counting_worker(client: redis.Redis, seen: list[str], **kwargs: Any) -> helpers.Worker:
    settings: dict[str, Any] = {"group": "workers", "consumer": "w1", "block_ms": 100, "claim_idle_ms": 200}
    settings.update(kwargs)
    return helpers.Worker(
        client, "jobs", handler=lambda message_id, fields: seen.append(fields["seq"]), **settings
    )


def test_server_crash_with_aof_always_keeps_acknowledged_work(server_binary: helpers.ServerBinary) -> None:
    with helpers.LocalServer(server_binary, appendonly=True, appendfsync="always") as server:
        client = server.client()
        ids = helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(50)])
        seen: list[str] = []
        _counting_worker(client, seen).run(max_messages=20)
        client.xreadgroup("workers", "w2", {"jobs": ">"}, count=5)  # taken, not acknowledged
        server.kill()
        server.restart()
        client = server.client()
        assert [entry_id for entry_id, _ in client.xrange("jobs")] == ids
        pending = client.xpending_range("jobs", "workers", "-", "+", 100)
        assert [(entry["message_id"], entry["consumer"]) for entry in pending] == [
            (i, "w2") for i in ids[20:25]
        ]
        group = client.xinfo_groups("jobs")[0]
        assert group["last-delivered-id"] == ids[24]
        # And a worker carries on from there: the 25 never delivered, then w2's 5 once they are idle.
        _counting_worker(client, seen, consumer="w3").run(max_messages=30)
        assert sorted(map(int, seen)) == list(range(50))


def test_server_crash_without_persistence_loses_everything(server: helpers.LocalServer) -> None:
    client = server.client()
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(10)])
    _counting_worker(client, []).run(max_messages=5)
    server.kill()
    server.restart()
    client = server.client()
    assert client.exists("jobs") == 0  # stream, group and PEL: all gone


def test_worker_survives_its_connection_being_killed(
    server: helpers.LocalServer, background: Background
) -> None:
    client = server.client()
    seen: list[str] = []
    worker = _counting_worker(client, seen)
    background.run(worker)
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(5)])
    helpers.wait_for(lambda: len(seen) == 5, 20, "the first five messages")
    for _ in range(3):
        client.client_kill_filter(_type="normal", skipme=True)
        time.sleep(0.1)
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(5, 10)])
    helpers.wait_for(lambda: len(seen) >= 10, 30, "the worker to reconnect and handle the rest")
    background.stop()
    assert sorted(set(map(int, seen))) == list(range(10))


def test_entries_trimmed_while_pending_are_reported_not_crashed_on(server: helpers.LocalServer) -> None:
    client = server.client()
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(6)])
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)  # w1's own history
    client.xreadgroup("workers", "ghost", {"jobs": ">"}, count=2)  # someone else's, for a sweep
    client.xtrim("jobs", maxlen=2, approximate=False)  # both pairs trimmed away
    time.sleep(0.3)
    seen: list[str] = []
    worker = _counting_worker(client, seen)
    stats = worker.run(max_messages=2)
    assert seen == ["4", "5"]
    helpers.wait_for(lambda: client.xpending("jobs", "workers")["pending"] == 0, 10, "the PEL to empty")
    assert stats.deleted == 4


def test_group_destroyed_or_key_deleted_while_running(
    server: helpers.LocalServer, background: Background
) -> None:
    """Documented outcome: the worker recreates the group at 0 (and the stream), so whatever is
    still in the stream is delivered again: at-least-once, as always."""
    client = server.client()
    seen: list[str] = []
    worker = _counting_worker(client, seen)
    background.run(worker)
    helpers.Producer(client, "jobs").send_many([{"seq": n} for n in range(3)])
    helpers.wait_for(lambda: len(seen) == 3, 20, "the first messages")
    client.xgroup_destroy("jobs", "workers")
    helpers.Producer(client, "jobs").send({"seq": 3})
    helpers.wait_for(lambda: "3" in seen, 30, "the worker to recreate its group")
    client.delete("jobs")
    helpers.wait_for(lambda: client.exists("jobs") == 1, 30, "the worker to recreate the stream")
    helpers.Producer(client, "jobs").send({"seq": 4})
    helpers.wait_for(lambda: "4" in seen, 30, "a message on the recreated stream")
    background.stop()
    assert worker.stats.errors >= 1
    assert any("NOGROUP" in error for error in worker.stats.recent_errors)


def test_wrong_key_type_backs_off_and_recovers(server: helpers.LocalServer, background: Background) -> None:
    client = server.client()
    client.set("jobs", "oops")
    seen: list[str] = []
    worker = _counting_worker(client, seen)
    thread = background.run(worker)
    helpers.wait_for(lambda: worker.stats.errors >= 2, 20, "WRONGTYPE errors")
    assert thread.is_alive()
    assert all("WRONGTYPE" in error for error in worker.stats.recent_errors)
    errors_then = worker.stats.errors
    time.sleep(1)
    assert worker.stats.errors - errors_then < 20, "the worker must back off, not spin"
    client.delete("jobs")
    helpers.Producer(client, "jobs").send({"seq": 1})
    helpers.wait_for(lambda: seen == ["1"], 30, "the worker to recover once the key is fixed")
    background.stop()


ACL_USERS = [
    "default off",
    "producer on >producer-secret resetkeys resetchannels ~jobs:* -@all +xadd",
    # The worker's own commands on the queue, and XADD only on dead-letter keys (a selector).
    "worker on >worker-secret resetkeys resetchannels ~jobs:* -@all +xreadgroup +xack +xautoclaim "
    "+xclaim +xpending +xgroup|create +evalsha +script|load (~jobs:*:dead +xadd)",
]


def test_least_privilege_users(server_binary: helpers.ServerBinary) -> None:
    admin = "admin on >admin-secret ~* &* +@all"
    with helpers.LocalServer(server_binary, users=[*ACL_USERS, admin]) as server:
        producer_client = server.client(username="producer", password="producer-secret")
        worker_client = server.client(username="worker", password="worker-secret")
        helpers.Producer(producer_client, "jobs:email").send_many([{"seq": 0}, {"seq": 1, "poison": "y"}])
        with pytest.raises(redis.exceptions.NoPermissionError):
            producer_client.xreadgroup("workers", "p", {"jobs:email": ">"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker_client.xadd("jobs:email", {"forged": "1"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker_client.flushall()

        seen: list[str] = []

        def handler(message_id: str, fields: dict[str, str]) -> None:
            if fields.get("poison"):
                raise ValueError("poison")
            seen.append(fields["seq"])

        worker = helpers.Worker(
            worker_client,
            "jobs:email",
            group="workers",
            consumer="w1",
            handler=handler,
            block_ms=100,
            claim_idle_ms=50,
            max_deliveries=2,
        )
        stats = worker.run(max_messages=2)
        assert seen == ["0"] and stats.dead_lettered == 1 and stats.errors == 0
        assert producer_client.xadd("jobs:email:dead", {"x": 1})  # the producer may write any jobs:* key
        server.client(username="admin", password="admin-secret").set("jobs:wrong", "a string")
        # The producer's user may not run TYPE: the error still says what is wrong.
        with pytest.raises(helpers.WrongKeyTypeError, match="jobs:wrong holds another type of value"):
            helpers.Producer(producer_client, "jobs:wrong").send({"n": 1})


def _always_fails(message_id: str, fields: dict[str, str]) -> None:
    raise ValueError("poison")


def _poison_worker(
    server: helpers.LocalServer, background: Background
) -> tuple[redis.Redis, str, helpers.Worker]:
    """One poison message on "jobs", and a worker running as the ACL user "worker" that
    dead-letters it at its first failure. Returns (an admin client, the message ID, the worker)."""
    admin = server.client()
    [entry_id] = helpers.Producer(admin, "jobs").send_many([{"seq": 0}])
    worker_client = server.client(username="worker", password="worker-secret")
    worker = _counting_worker(worker_client, [], claim_idle_ms=50, max_deliveries=1)
    worker.handler = _always_fails
    background.run(worker)
    return admin, entry_id, worker


def test_dead_letter_forbidden_by_acl_waits_until_allowed(
    server_binary: helpers.ServerBinary, background: Background
) -> None:
    """A worker whose user may not XADD the dead-letter stream loses nothing; once an admin
    grants it, the entry is moved exactly once."""
    worker_rule = ACL_USERS[2].replace(" (~jobs:*:dead +xadd)", "")  # no XADD anywhere
    users = ["default on nopass ~* &* +@all", worker_rule.replace("~jobs:*", "~jobs*")]
    with helpers.LocalServer(server_binary, users=users) as server:
        admin, entry_id, worker = _poison_worker(server, background)
        try:
            helpers.wait_for(lambda: worker.stats.dead_letter_failures >= 2, 20, "refused dead-letter writes")
            # Redis says "can't run this command", Valkey "has no permissions to run the 'xadd' command".
            refused = ("can't run this command", "no permissions to run")
            assert any(words in error for error in worker.stats.recent_errors for words in refused)
            pending = admin.xpending_range("jobs", "workers", "-", "+", 10)
            assert [entry["message_id"] for entry in pending] == [entry_id], "the message left the PEL"
            assert admin.exists("jobs:dead") == 0
            admin.acl_setuser("worker", selectors=[("+xadd", "~jobs:dead")])  # repaired
            helpers.wait_for(lambda: admin.xpending("jobs", "workers")["pending"] == 0, 20, "the move")
            time.sleep(0.2)  # room for a wrong second move to show
        finally:
            background.stop()
        assert [fields["original_id"] for _, fields in admin.xrange("jobs:dead")] == [entry_id]


def test_dead_letter_script_checks_the_xack_permission_before_writing(
    server_binary: helpers.ServerBinary, background: Background
) -> None:
    """A user that may write dead letters but not XACK: nothing is written, the entry stays pending
    (written first and acknowledged never, it would be dead-lettered again on every attempt)."""
    users = [
        "default on nopass ~* &* +@all",
        "worker on >worker-secret resetkeys ~jobs* -@all +xreadgroup +xautoclaim +xclaim +xpending "
        "+xgroup|create +evalsha +script|load +xadd",
    ]
    with helpers.LocalServer(server_binary, users=users) as server:
        admin, entry_id, worker = _poison_worker(server, background)
        try:
            helpers.wait_for(lambda: worker.stats.dead_letter_failures >= 2, 20, "refused dead-letter moves")
        finally:
            background.stop()
        assert admin.exists("jobs:dead") == 0
        assert [entry["message_id"] for entry in admin.xpending_range("jobs", "workers", "-", "+", 10)] == [
            entry_id
        ]
