"""helpers.durability and helpers.powerloss: crashes measured on real servers, and a reading of settings."""

from __future__ import annotations

import os
from typing import Any

import pytest

import helpers
from helpers.durability import PERSISTENCE, crash_trial, persistence_settings, what_an_ok_survives
from helpers.powerloss import PowerLossDisk, unavailable_reason

NO_DISK = unavailable_reason()
needs_fuse = pytest.mark.skipif(NO_DISK is not None, reason=f"no power-loss disk here: {NO_DISK}")


def test_persistence_settings_refuse_an_unknown_name() -> None:
    assert persistence_settings("always") == {"appendonly": True, "appendfsync": "always"}
    assert persistence_settings("none") == {}
    with pytest.raises(ValueError, match="setting must be one of always, everysec, no, rdb, none"):
        persistence_settings("sometimes")
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        crash_trial("always", seconds=0)
    for odd in (-1, 61, "1", True, None):
        with pytest.raises(ValueError, match="fsync_seconds must be a number from 0 to 60"):
            PowerLossDisk(fsync_seconds=odd)  # type: ignore[arg-type]


@needs_fuse
def test_the_disk_keeps_only_what_was_fsynced(tmp_path: object) -> None:
    with PowerLossDisk() as disk:
        folder = disk.mount()
        with open(os.path.join(folder, "kept"), "wb") as handle:
            handle.write(b"synced")
            handle.flush()
            os.fsync(handle.fileno())
            handle.write(b" and more")
        with open(os.path.join(folder, "lost"), "wb") as handle:
            handle.write(b"never synced")
        os.rename(os.path.join(folder, "kept"), os.path.join(folder, "renamed"))
        with open(os.path.join(folder, "renamed"), "rb") as handle:
            assert handle.read() == b"synced and more"  # the page cache, read back
        disk.power_loss()
        assert not disk.mounted
        with open(os.path.join(disk.backing, "renamed"), "rb") as handle:
            assert handle.read() == b"synced"
        with open(os.path.join(disk.backing, "lost"), "rb") as handle:
            assert handle.read() == b""  # the name survives, its contents do not


@needs_fuse
def test_a_clean_unmount_writes_everything(tmp_path: object) -> None:
    with PowerLossDisk() as disk:
        with open(os.path.join(disk.mount(), "file"), "wb") as handle:
            handle.write(b"written, never fsynced")
        disk.unmount()
        with open(os.path.join(disk.backing, "file"), "rb") as handle:
            assert handle.read() == b"written, never fsynced"


@needs_fuse
@pytest.mark.needs_server
@pytest.mark.parametrize("setting", PERSISTENCE)
def test_what_each_setting_keeps(setting: str, server_binary: helpers.ServerBinary) -> None:
    # disk_keeps_up: a crash that came while the (busy) machine's disk was behind is run again.
    process, power = crash_trial(setting, seconds=0.4, binary=server_binary, disk_keeps_up=True)
    for trial in (process, power):
        assert trial.acknowledged > 0 and trial.present <= trial.attempted
        assert trial.present_unacknowledged <= 1  # at most the XADD whose reply was cut off
        assert trial.newest_lost, "a crash loses the newest writes, never older ones"
    if setting in ("always", "no"):
        assert process.lost == 0, "a SIGKILLed server keeps what its AOF handed to the kernel"
        assert process.held_back_bytes == 0, "only everysec holds writes back"
    if setting == "everysec":
        # Unless the disk fell behind five times running, the server had handed everything over.
        assert process.lost == 0 or process.held_back_bytes > 0, (
            "a SIGKILLed server keeps what it handed over"
        )
    if setting == "everysec":
        # On this disk an fsync is quick, so the write is never postponed for long; on a slow one it is:
        # The first background fsync starts with the first write and lasts 2 s; Redis holds writes
        # back for at least 1 s meanwhile (whole seconds of its clock): the crash at 0.6 s comes inside.
        slow_process, _ = crash_trial(setting, seconds=0.6, fsync_seconds=2, binary=server_binary)
        assert slow_process.lost > 0, "everysec holds writes in memory while a slow fsync runs"
        assert slow_process.held_back_bytes > 0, "INFO persistence showed them held back"
        assert slow_process.newest_lost
    if setting == "always":
        assert power.lost == 0, "appendfsync always fsyncs before it replies"
    if setting in ("no", "none"):
        assert power.present == 0, "nothing was fsynced, and this disk never writes on its own"
    if setting == "none":
        assert process.present == 0


@needs_fuse
@pytest.mark.needs_server
def test_waitaof_confirms_an_fsync(server_binary: helpers.ServerBinary) -> None:
    """Notebook 08: on Redis 7.2+ an entry WAITAOF confirmed survives a power loss; Valkey 9.1
    answers before the fsync (the bug redis/redis#13793 fixed in Redis). If this fails on
    Valkey, it was fixed there too: update notebook 08's WAITAOF section."""
    if server_binary.product == "Redis" and helpers.servers.version_tuple(server_binary.version) < (7, 2):
        pytest.skip("WAITAOF is new in Redis 7.2")
    confirmed_and_lost = 0
    for _ in range(3):  # a background fsync may land between the reply and the crash: rare, not never
        with PowerLossDisk() as disk:
            server = helpers.LocalServer(
                server_binary, directory=disk.mount(), appendonly=True, appendfsync="everysec"
            ).start()
            producer = server.client()
            producer.xadd("jobs", {"n": 1}, id="1-0")
            assert producer.execute_command("WAITAOF", 1, 0, 5000) == [1, 0]
            server.kill()
            disk.power_loss()
            after = helpers.LocalServer(server_binary, directory=disk.backing, appendonly=True).start()
            kept = after.client().xlen("jobs")
            after.stop()
        confirmed_and_lost += kept == 0
        if server_binary.product == "Redis":
            assert kept == 1, "WAITAOF 1 0 confirmed an fsync of the entry"
    if server_binary.product == "Valkey":
        assert confirmed_and_lost > 0, "Valkey's WAITAOF now waits for the fsync: update notebook 08"


@pytest.mark.needs_server
def test_what_an_ok_survives_reads_the_settings(server_binary: helpers.ServerBinary) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"appendonly": True, "appendfsync": "always"}, "the machine loses power", "survives"),
        ({"appendonly": True, "appendfsync": "everysec"}, "the machine loses power", "last second"),
        (
            {"appendonly": True, "appendfsync": "everysec"},
            "the server process is killed and restarts",
            "slow disk",
        ),
        ({"appendonly": True, "appendfsync": "no"}, "the server process is killed and restarts", "survives"),
        ({"config": {"save": "60 1"}}, "the server process is killed and restarts", "last snapshot"),
        ({}, "the server process is killed and restarts", "is lost"),
        ({"config": {"maxmemory": "100mb", "maxmemory-policy": "allkeys-lru"}}, "memory runs out", "evicted"),
        ({"config": {"maxmemory": "100mb"}}, "memory runs out", "fail with OOM"),
    ]
    for settings, failure, words in cases:
        with helpers.LocalServer(server_binary, **settings) as server:
            frame = what_an_ok_survives(server.client()).set_index("failure")
            assert words in frame.loc[failure, "an acknowledged XADD"], (settings, frame)
            assert frame.loc["the master fails and a replica takes over", "because"] == "no replica connected"


def test_what_an_ok_survives_on_fakeredis_and_without_config_get() -> None:
    frame = what_an_ok_survives(helpers.connect(backend="fake"))
    assert "this Python process" in frame.iloc[0]["an acknowledged XADD"]


@pytest.mark.needs_server
def test_what_an_ok_survives_when_config_get_is_refused(server_binary: helpers.ServerBinary) -> None:
    users = ["default on nopass ~* &* +@all", "app on >secret ~* -@all +xadd +info +ping"]
    with helpers.LocalServer(server_binary, users=users) as server:
        frame = what_an_ok_survives(server.client(username="app", password="secret"))
        assert "refused CONFIG GET" in frame.iloc[0]["because"]


def test_ci_can_lose_power() -> None:
    """In CI (.ci/run installs fuse3 and runs as root) the power-loss cells and tests must run."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI must have FUSE")
    assert NO_DISK is None, NO_DISK
