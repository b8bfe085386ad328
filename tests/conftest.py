"""Shared fixtures. The backend under test comes from STREAMS_BACKEND, as in the notebooks.

``COURSE_TESTS`` splits a run the way ``./course.sh test`` needs it: ``once`` keeps the tests
that do not depend on the backend (run once per test run), ``per-backend`` keeps those that
do and the notebooks (run once per backend); unset or ``all`` keeps everything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import helpers
from helpers import connection
from helpers.cluster import LocalCluster

# A test that uses one of these, or is marked needs_server, depends on the backend.
BACKEND_FIXTURES = frozenset({"client", "backend", "server_binary", "cluster"})
TEST_PARTS = ("all", "once", "per-backend")

# Notebooks the browser test opens on purpose (one fails by design): not course notebooks for nbval.
collect_ignore_glob = ["browser/*.ipynb"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("REDIS_URL"):
        # The tests flush their database; never do that to somebody's own server.
        raise pytest.UsageError("unset REDIS_URL before running the tests: they flush the database they use")
    if os.environ.get("COURSE_TESTS", "all") not in TEST_PARTS:
        raise pytest.UsageError(f"COURSE_TESTS must be one of {', '.join(TEST_PARTS)}")
    config.addinivalue_line(
        "markers", "needs_server: needs a real server binary (skipped on the fake backend)"
    )


def depends_on_backend(item: pytest.Item) -> bool:
    if item.path.suffix == ".ipynb" or item.get_closest_marker("needs_server"):
        return True
    return bool(BACKEND_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = os.environ.get("COURSE_TESTS", "all")
    if part == "all":
        return
    wanted = part == "per-backend"
    kept = [item for item in items if depends_on_backend(item) == wanted]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def backend() -> str:
    return helpers.resolve_backend()


@pytest.fixture(autouse=True)
def _skip_server_tests_on_fake(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("needs_server") and helpers.resolve_backend() != "server":
        pytest.skip("needs a real server; this run is on the fake backend")


@pytest.fixture()
def client() -> Iterator[redis.Redis]:
    """A client of this run's backend, on an empty database."""
    conn = helpers.connect()
    conn.flushall()
    yield conn
    conn.close()


@pytest.fixture()
def fresh_kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[connection._KernelBackends]:
    """A new set of per-kernel backends, so a test can start from nothing."""
    kernel = connection._KernelBackends()
    monkeypatch.setattr(connection, "_KERNEL", kernel)
    yield kernel
    kernel.close()


@pytest.fixture()
def server_binary(backend: str) -> helpers.ServerBinary:
    binary = helpers.find_server_binary()
    if binary is None:
        pytest.skip("no server binary on this machine")
    return binary


@pytest.fixture(scope="session")
def _session_cluster(backend: str) -> Iterator[LocalCluster]:
    if backend != "server":
        pytest.skip("needs a real server; this run is on the fake backend")
    binary = helpers.find_server_binary()
    if binary is None:
        pytest.skip("no server binary on this machine")
    with LocalCluster(binary) as running:
        nodes = list(running.nodes)
        yield running
    assert all(node.pid is None for node in nodes), "a cluster node outlived the test run"


@pytest.fixture()
def cluster(_session_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """One Redis Cluster (3 masters, 3 replicas) for the whole run, on real servers only.

    After each test it is healed (paused nodes resumed, killed ones restarted, three masters
    with a synced replica each), so that a test that failed halfway through a failover cannot
    break the tests after it.
    """
    yield _session_cluster
    _session_cluster.heal()


class Background:
    """Runs workers (and other functions) in daemon threads for one test, and stops them all."""

    def __init__(self) -> None:
        self.workers: list[helpers.Worker] = []
        self.threads: list[threading.Thread] = []

    def run(self, worker: helpers.Worker, **run_kwargs: Any) -> threading.Thread:
        """``worker.run(**run_kwargs)`` in a daemon thread; stopped, joined and closed after the test."""
        self.workers.append(worker)
        return self.call(lambda: worker.run(**run_kwargs))

    def call(self, function: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=function, daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        for worker in self.workers:
            worker.close()
        alive = [thread for thread in self.threads if thread.is_alive()]
        assert not alive, f"{len(alive)} test threads did not stop"


@pytest.fixture()
def background() -> Iterator[Background]:
    runner = Background()
    yield runner
    runner.stop()
