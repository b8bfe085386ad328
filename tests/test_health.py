"""helpers.queue_health and HealthCollector on every backend: healthy and unhealthy queues built
on purpose, each figure and its alert, and a real /metrics endpoint scraped over HTTP."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

import helpers
from helpers.health import HealthCollector, HealthHistory, group_health, queue_health

BOUNDS: dict[str, Any] = {
    "max_lag": 5,
    "max_pending": 5,
    "max_oldest_pending_ms": 60_000,
    "max_deliveries": 3,
    "max_dead_letters": 1,
}


def _stream(client: redis.Redis, count: int = 10) -> None:
    for n in range(1, count + 1):
        client.xadd("jobs", {"n": n}, id=f"{n}-0")
    client.xgroup_create("jobs", "workers", id="0")


def test_a_healthy_queue_is_ok(client: redis.Redis) -> None:
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=8)
    client.xack("jobs", "workers", *[f"{n}-0" for n in range(1, 7)])
    (health,) = group_health(client, "jobs", **BOUNDS)
    assert (health.lag, health.pending, health.most_deliveries, health.trimmed_unread) == (2, 2, 1, 0)
    assert health.oldest_pending_ms is not None and 0 <= health.oldest_pending_ms < 60_000
    assert health.verdict == "ok" and health.consumers == 1 and health.length == 10


def test_each_unhealthy_figure_raises_its_alert(client: redis.Redis) -> None:
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)  # lag 8
    assert "lag 8 >= 5" in group_health(client, "jobs", **BOUNDS)[0].verdict
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=8)  # pending 10
    # An entry delivered long ago, and one delivered four times.
    client.xclaim("jobs", "workers", "w1", 0, ["1-0"], idle=120_000)
    client.xclaim("jobs", "workers", "w1", 0, ["2-0"], retrycount=4, idle=0)
    client.xadd("jobs:dead", {"n": "0"})
    (health,) = group_health(client, "jobs", **BOUNDS)
    assert health.oldest_pending_ms is not None and health.oldest_pending_ms >= 120_000
    assert health.most_deliveries == 4
    for words in (
        "pending 10 >= 5",
        "oldest pending >= 60000 ms",
        "most deliveries 4 >= 3",
        "dead letters 1 >= 1",
    ):
        assert words in health.verdict, health.verdict
    assert "lag" not in health.verdict


def test_trimmed_before_delivery_and_unknown_lag(client: redis.Redis) -> None:
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=3)
    client.xtrim("jobs", maxlen=5, approximate=False)  # 4-0 and 5-0 go unread
    (health,) = group_health(client, "jobs")
    assert health.trimmed_unread == 2 and "2 trimmed or deleted before this group read them" in health.verdict
    client.xdel("jobs", "8-0")  # an unread entry deleted: Redis can no longer tell the lag
    (health,) = group_health(client, "jobs", max_lag=100)
    assert health.lag is None and "lag unknown" in health.verdict
    assert health.trimmed_unread == 3  # the deleted one counts too


def test_the_table_has_a_row_per_group_of_each_stream(client: redis.Redis, backend: str) -> None:
    _stream(client)
    client.xgroup_create("jobs", "audit", id="$")
    client.xadd("other", {"n": 1})
    client.xgroup_create("other", "workers", id="0")
    frame = queue_health(client, ["jobs", "other"])
    assert list(frame[["stream", "group"]].itertuples(index=False, name=None)) == [
        ("jobs", "audit"),
        ("jobs", "workers"),
        ("other", "workers"),
    ]
    assert list(frame["verdict"]) == ["ok"] * 3
    memory = frame["memory_bytes"].tolist()
    assert all(value is None for value in memory) if backend == "fake" else all(value > 0 for value in memory)


def test_bad_bounds_and_missing_streams(client: redis.Redis) -> None:
    _stream(client)
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_lag must be None or a whole number"):
            group_health(client, "jobs", max_lag=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream must be a non-empty string"):
        group_health(client, "")
    with pytest.raises(redis.ResponseError):
        group_health(client, "no-such-stream")
    with pytest.raises(ValueError, match="streams must be a list of stream names"):
        HealthCollector(client, [])
    for bad_prefix in ("", "redis-stream", "1st", None):
        with pytest.raises(ValueError, match="prefix must be a Prometheus metric name"):
            HealthCollector(client, ["jobs"], prefix=bad_prefix)  # type: ignore[arg-type]


def test_a_real_metrics_endpoint_serves_the_figures(client: redis.Redis) -> None:
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=4)
    registry = CollectorRegistry()
    registry.register(HealthCollector(client, ["jobs"]))
    port = helpers.free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    values = {
        (sample.name, sample.labels["group"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values[("redis_stream_lag", "workers")] == 6
    assert values[("redis_stream_pending", "workers")] == 4
    assert values[("redis_stream_length", "workers")] == 10
    assert "# HELP redis_stream_lag Entries the group has not read yet" in text


def _server(client: redis.Redis, backend: str) -> str:
    """ "fake", "redis-7.0", "redis-7.2+" or "valkey": the servers whose facts notebook 10 tables."""
    if backend == "fake":
        return "fake"
    if helpers.describe(client).startswith("Valkey"):
        return "valkey"
    return "redis-7.0" if helpers.server_version(client) < (7, 2) else "redis-7.2+"


def test_lag_after_a_trim_as_notebook_10_tables_it(client: redis.Redis, backend: str) -> None:
    """Notebook 10's table of lags after a trim of unread entries, per server, and the health check's view."""
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=3)
    client.xtrim("jobs", maxlen=5, approximate=False)
    server = _server(client, backend)
    after_trim = client.xinfo_groups("jobs")[0]["lag"]
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=10)
    after_reading_all = client.xinfo_groups("jobs")[0]
    # Redis 7.2+ reports only what is left after the trim (redis/redis#13473, measured on 8.2);
    # 7.0 keeps a lag that never goes away once the group reads on (redis/redis#13957).
    expected = {"fake": (7, 10, 0), "valkey": (7, 10, 0), "redis-7.2+": (5, 10, 0), "redis-7.0": (7, 8, 2)}
    assert (after_trim, after_reading_all["entries-read"], after_reading_all["lag"]) == expected[server]
    (health,) = group_health(client, "jobs", max_lag=1)
    assert health.lag == 0 and health.verdict == "ok", "a group at the stream's end has nothing to read"


def test_idle_and_inactive_as_notebook_10_tables_them(client: redis.Redis, backend: str) -> None:
    """Notebook 10's consumers cell, step by step, and its table of what each server shows.

    Only lower bounds and comparisons between consumers: a busy machine makes every time longer.
    """
    _stream(client, 6)
    for consumer in ("reader", "poller"):
        client.xreadgroup("workers", consumer, {"jobs": ">"}, count=3)
    time.sleep(0.6)
    client.xack("jobs", "workers", "1-0")  # XACK counts for neither figure
    client.xreadgroup("workers", "poller", {"jobs": ">"}, count=3)  # nothing new: an empty read
    client.xreadgroup("workers", "newcomer", {"jobs": ">"}, count=3)
    seen = {str(c["name"]): c for c in client.xinfo_consumers("jobs", "workers")}
    idle = {name: int(c["idle"]) for name, c in seen.items()}
    inactive = {name: c.get("inactive") for name, c in seen.items()}
    server = _server(client, backend)
    assert idle["reader"] >= 600
    if server == "redis-7.0":  # no inactive; an empty read neither counts nor creates a consumer
        assert set(seen) == {"reader", "poller"} and idle["poller"] >= 600
        assert inactive == {"reader": None, "poller": None}
    elif server == "fake":  # an empty read resets inactive too; a consumer never served is not -1
        assert idle["poller"] < idle["reader"] and inactive["poller"] < inactive["reader"]
        assert inactive["newcomer"] is not None and inactive["newcomer"] >= 0
    else:
        assert idle["poller"] < idle["reader"] and idle["newcomer"] < idle["reader"]
        assert inactive["reader"] >= 600 and inactive["poller"] >= 600 and inactive["newcomer"] == -1
    (health,) = group_health(client, "jobs", max_last_seen_ms=0)
    assert health.last_seen_ms is not None and "last seen >= 0 ms" in health.verdict


def test_last_seen_is_none_without_consumers(client: redis.Redis) -> None:
    _stream(client)
    (health,) = group_health(client, "jobs", max_last_seen_ms=1000)
    assert health.last_seen_ms is None and health.verdict == "ok"


def test_health_history_samples_and_draws(client: redis.Redis) -> None:
    _stream(client)
    history = HealthHistory(client, "jobs", "workers")
    reads = iter(range(3))

    def read_some() -> bool:
        client.xreadgroup("workers", "w1", {"jobs": ">"}, count=2)
        return next(reads, None) is None

    frame = history.watch(30, every_s=0.01, until=read_some, show=False)
    assert list(frame.columns) == list(HealthHistory.COLUMNS)
    assert list(frame["lag"]) == [10, 8, 6, 4] and list(frame["pending"]) == [0, 2, 4, 6]
    assert frame["seconds"].is_monotonic_increasing
    assert len(history.figure().axes) == 3
    with pytest.raises(LookupError, match="no group 'nobody'"):
        HealthHistory(client, "jobs", "nobody").sample()
    for bad in (0, -1, True, "1"):
        with pytest.raises(ValueError, match="must be a positive number of seconds"):
            history.watch(bad, show=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty strings"):
        HealthHistory(client, "", "workers")


def test_removed_unread_counts_deletions_and_groups_that_read_nothing(client: redis.Redis) -> None:
    _stream(client)
    client.xgroup_create("jobs", "idle", id="0")  # reads nothing
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=3)
    client.xdel("jobs", "2-0")  # read by workers, not by "idle"
    assert [h.trimmed_unread for h in group_health(client, "jobs")] == [1, 0]
    client.xdel("jobs", "5-0")  # unread by both groups
    assert [h.trimmed_unread for h in group_health(client, "jobs")] == [2, 1]  # "idle" also lost 2-0
    client.xtrim("jobs", maxlen=4, approximate=False)  # keeps 7-0 .. 10-0
    idle, workers = group_health(client, "jobs")
    assert (idle.group, idle.trimmed_unread, workers.trimmed_unread) == ("idle", 6, 3)  # 4-0, 5-0, 6-0


def test_pending_figures_look_past_the_first_thousand(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 1501):
        client.xadd("jobs", {"n": n}, id=f"{n}-0")
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=1500)
    client.xclaim("jobs", "workers", "w1", 0, ["1400-0"], idle=3_600_000, justid=True)
    client.xclaim("jobs", "workers", "w1", 0, ["1450-0"], retrycount=6, justid=True)
    (health,) = group_health(client, "jobs", max_oldest_pending_ms=60_000, max_deliveries=5)
    assert health.oldest_pending_ms is not None and health.oldest_pending_ms >= 3_600_000
    assert health.most_deliveries == 6 and "oldest pending >= 60000 ms" in health.verdict
    # Past the scan limit the figures cover the first entries only, but the age alert stays exact.
    monkeypatch.setattr("helpers.health.SCAN_LIMIT", 1000)
    (health,) = group_health(client, "jobs", max_oldest_pending_ms=60_000)
    assert health.oldest_pending_ms is not None and health.oldest_pending_ms >= 3_600_000
    assert "oldest pending >= 60000 ms" in health.verdict


def test_a_wrong_entriesread_gives_a_wrong_lag(client: redis.Redis) -> None:
    """Redis takes ENTRIESREAD on trust (notebook 10, Exercise 10.2's checker relies on it)."""
    _stream(client)
    client.xgroup_setid("jobs", "workers", "5-0", entries_read=2)  # five were read, not two
    assert client.xinfo_groups("jobs")[0]["lag"] == 8
    assert len(client.xrange("jobs", "(5-0", "+") or []) == 5


def test_the_metrics_say_when_the_lag_is_unknown_and_use_seconds(client: redis.Redis) -> None:
    _stream(client)
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=3)
    client.xclaim("jobs", "workers", "w1", 0, ["1-0"], idle=90_000, justid=True)
    client.xdel("jobs", "5-0")  # an unread entry deleted: the lag is NULL
    registry = CollectorRegistry()
    registry.register(HealthCollector(client, ["jobs"]))
    samples = {sample.name: sample.value for family in registry.collect() for sample in family.samples}
    assert samples["redis_stream_lag_known"] == 0 and "redis_stream_lag" not in samples
    assert samples["redis_stream_oldest_pending_seconds"] >= 90
    assert "redis_stream_last_seen_seconds" in samples
