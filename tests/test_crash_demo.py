"""helpers.tools.crash_demo: a real process that takes work and, once SIGKILLed, leaves it pending."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import pytest
import redis

import helpers
from helpers.tools import crash_demo, list_demo


def _take_and_kill(command: list[str]) -> tuple[subprocess.Popen[str], Any]:
    """Start a demo consumer, read the JSON line that says what it took, then SIGKILL it."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        taken = json.loads(process.stdout.readline())
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    return process, taken


def test_sigkilled_consumer_leaves_its_entries_pending(client: redis.Redis) -> None:
    for n in range(1, 6):
        client.xadd("jobs", {"n": n}, id=f"{n}-0")
    client.xgroup_create("jobs", "workers", id="0")
    command = [sys.executable, "-m", "helpers.tools.crash_demo", "--url", helpers.server_url()]
    command += ["--stream", "jobs", "--group", "workers", "--consumer", "doomed", "--count", "3"]
    process, taken = _take_and_kill(command)
    assert process.returncode == -signal.SIGKILL
    assert taken == ["1-0", "2-0", "3-0"]
    pending = client.xpending_range("jobs", "workers", "-", "+", 10)
    assert [(entry["message_id"], entry["consumer"]) for entry in pending] == [
        ("1-0", "doomed"),
        ("2-0", "doomed"),
        ("3-0", "doomed"),
    ]


def test_count_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        crash_demo.main(
            [
                "--url",
                "redis://127.0.0.1:1",
                "--stream",
                "s",
                "--group",
                "g",
                "--consumer",
                "c",
                "--count",
                "0",
            ]
        )
    assert "--count must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("reliable", [False, True])
def test_a_sigkilled_list_consumer_loses_the_job_unless_it_moved_it(
    client: redis.Redis, reliable: bool
) -> None:
    client.lpush("jobs", "job-1", "job-2", "job-3")  # job-1 is at the right end: taken first
    command = [
        sys.executable,
        "-m",
        "helpers.tools.list_demo",
        "--url",
        helpers.server_url(),
        "--queue",
        "jobs",
    ]
    if reliable:
        command += ["--processing", "jobs:processing"]
    _, taken = _take_and_kill(command)
    assert taken == "job-1"
    assert client.lrange("jobs", 0, -1) == ["job-3", "job-2"]
    assert client.lrange("jobs:processing", 0, -1) == (["job-1"] if reliable else [])


def test_the_processing_list_must_be_another_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        list_demo.main(["--url", "redis://127.0.0.1:1", "--queue", "jobs", "--processing", "jobs"])
    assert "--processing must be another list" in capsys.readouterr().err
