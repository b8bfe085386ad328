"""The benchmark still runs (it asserts no speed: the machine is shared; ratios are for people)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.cluster import LocalCluster
from helpers.tools.cluster_bench import bench_shards, one_shard_streams

pytestmark = pytest.mark.needs_server


def test_bench_runs_end_to_end() -> None:
    command = [sys.executable, "-m", "helpers.tools.bench", "--rounds", "1", "--messages", "300"]
    command += ["--scale-messages", "60"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ratio, median of rounds") == 8  # as they come, and pinned to one core
    assert "client and server pinned to one core:" in out.stdout
    for line in (
        "Worker, batch 100",
        "Producer.send_many by 100",
        "DelayQueue.move_due",
        "4 worker process(es)",
    ):
        assert line in out.stdout


def test_shard_bench_runs_and_places_its_layouts(cluster: LocalCluster) -> None:
    one = one_shard_streams(cluster, "bench-test", 3)
    assert len({cluster.master_of(stream).port for stream in one}) == 1
    result = bench_shards(cluster, messages=200, rounds=1)
    assert len(result.ratios) == 1 and result.one_shard[0] > 0 and result.three_shards[0] > 0
    assert result.client_cpu_us[0] > 0 and result.server_cpu_us[0] > 0
    # One value per layout; the replicas apply every write too (their share may round to 0 in a short run).
    assert len(result.replica_cpu_us) == 2 and min(result.replica_cpu_us) >= 0
    report = result.report()
    assert "ratio three / one" in report and "replicas" in report
    with pytest.raises(ValueError, match="multiple of 100"):
        bench_shards(cluster, messages=150)
