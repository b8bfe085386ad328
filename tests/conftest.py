"""Shared fixtures. The backend under test comes from STREAMS_BACKEND, as in the notebooks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

import helpers
from helpers import connection
from helpers.cluster import LocalCluster


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("REDIS_URL"):
        # The tests flush their database; never do that to somebody's own server.
        raise pytest.UsageError("unset REDIS_URL before running the tests: they flush the database they use")
    config.addinivalue_line(
        "markers", "needs_server: needs a real server binary (skipped on the fake backend)"
    )


@pytest.fixture(scope="session")
def backend() -> str:
    return helpers.resolve_backend()


@pytest.fixture(autouse=True)
def _skip_server_tests_on_fake(request: pytest.FixtureRequest, backend: str) -> None:
    if request.node.get_closest_marker("needs_server") and backend != "server":
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
def cluster(backend: str) -> Iterator[LocalCluster]:
    """One Redis Cluster (3 masters, 3 replicas) for the whole run, on real servers only.

    Tests that fail a node over call ``cluster.heal()`` when they are done, so the
    next test finds three masters with a replica each again.
    """
    if backend != "server":
        pytest.skip("needs a real server; this run is on the fake backend")
    binary = helpers.find_server_binary()
    if binary is None:
        pytest.skip("no server binary on this machine")
    with LocalCluster(binary) as running:
        nodes = list(running.nodes)
        yield running
    assert all(node.pid is None for node in nodes), "a cluster node outlived the test run"
