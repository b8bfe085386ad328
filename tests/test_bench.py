"""The benchmark still runs (it asserts no speed: the machine is shared; ratios are for people)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.needs_server


def test_bench_runs_end_to_end() -> None:
    command = [sys.executable, "-m", "helpers.bench", "--rounds", "1", "--messages", "300"]
    command += ["--scale-messages", "60"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ratio, median of rounds") == 3
    for line in ("Worker, batch 100", "Producer.send_many by 100", "4 worker process(es)"):
        assert line in out.stdout
