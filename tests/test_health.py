"""helpers.queue_health and HealthCollector on every backend: healthy and unhealthy queues built
on purpose, each figure and its alert, and a real /metrics endpoint scraped over HTTP."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

import helpers
from helpers.health import HealthCollector, group_health, queue_health

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
    for words in ("pending 10 >= 5", "oldest pending ms", "most deliveries 4 >= 3", "dead letters 1 >= 1"):
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
