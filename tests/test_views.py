"""helpers.views: the same tables on every backend, for str and bytes replies."""

from __future__ import annotations

import pandas as pd
import pytest
import redis

import helpers


@pytest.fixture()
def stream(client: redis.Redis) -> redis.Redis:
    client.xadd("orders", {"item": "tea", "qty": 2}, id="1700000000000-0")
    client.xadd("orders", {"item": "cake"}, id="1700000000000-1")
    client.xadd("orders", {"note": "late"}, id="1700000000005-0")
    client.xgroup_create("orders", "billing", id="0")
    client.xgroup_create("orders", "audit", id="$")
    # Creation order bob, alice, so a view that does not sort shows it.
    client.xreadgroup("billing", "bob", {"orders": ">"}, count=2)
    client.xreadgroup("billing", "alice", {"orders": ">"}, count=1)
    return client


def test_entries_frame_splits_ids_and_spreads_fields(stream: redis.Redis) -> None:
    frame = helpers.entries_frame(stream.xrange("orders"))
    assert list(frame.columns) == ["id", "id_ms", "id_seq", "item", "qty", "note"]
    assert frame["id"].tolist() == ["1700000000000-0", "1700000000000-1", "1700000000005-0"]
    assert frame["id_ms"].tolist() == [1700000000000, 1700000000000, 1700000000005]
    assert frame["id_seq"].tolist() == [0, 1, 0]
    assert frame["item"].tolist()[:2] == ["tea", "cake"]
    assert frame["item"].isna().tolist() == [False, False, True] and frame.loc[2, "note"] == "late"


def test_entries_frame_keeps_xrevrange_order(stream: redis.Redis) -> None:
    frame = helpers.entries_frame(stream.xrevrange("orders", count=2))
    assert frame["id"].tolist() == ["1700000000005-0", "1700000000000-1"]


def test_entries_frame_of_xread_names_the_stream(stream: redis.Redis) -> None:
    stream.xadd("returns", {"item": "tea"}, id="1-1")
    frame = helpers.entries_frame(stream.xread({"orders": "1700000000000-1", "returns": "0"}))
    assert list(frame.columns[:2]) == ["stream", "id"]
    assert frame[["stream", "id"]].values.tolist() == [["orders", "1700000000005-0"], ["returns", "1-1"]]


def test_entries_frame_of_nothing_is_empty_with_columns() -> None:
    assert list(helpers.entries_frame([]).columns) == ["id", "id_ms", "id_seq"]
    assert helpers.entries_frame(None).empty


def test_entries_frame_of_deleted_pending_entry(client: redis.Redis) -> None:
    # Real servers return the ID with no fields when a pending entry was deleted.
    frame = helpers.entries_frame([("5-1", None), ("5-2", {"a": "1"})])
    assert frame["id"].tolist() == ["5-1", "5-2"] and frame["a"].isna().tolist() == [True, False]


def test_stream_info_frame_has_a_fixed_order(stream: redis.Redis) -> None:
    frame = helpers.stream_info_frame(stream.xinfo_stream("orders"))
    assert frame["field"].tolist() == [
        "length",
        "first-entry",
        "last-entry",
        "last-generated-id",
        "max-deleted-entry-id",
        "entries-added",
        "recorded-first-entry-id",
        "groups",
    ]
    values = dict(zip(frame["field"], frame["value"], strict=True))
    assert values["length"] == 3 and values["groups"] == 2
    assert values["first-entry"] == "1700000000000-0" and values["last-entry"] == "1700000000005-0"
    internals = helpers.stream_info_frame(stream.xinfo_stream("orders"), internals=True)
    assert internals["field"].tolist()[-2:] == ["radix-tree-keys", "radix-tree-nodes"]


def test_groups_frame_sorted_with_lag(stream: redis.Redis) -> None:
    frame = helpers.groups_frame(stream.xinfo_groups("orders"))
    assert list(frame.columns) == ["name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"]
    assert frame.values.tolist() == [
        ["audit", 0, 0, "1700000000005-0", pd.NA, 0],
        ["billing", 2, 3, "1700000000005-0", 3, 0],
    ]


def test_consumers_frame_sorted_by_name_with_bounds(stream: redis.Redis) -> None:
    frame = helpers.consumers_frame(stream.xinfo_consumers("orders", "billing"), idle_bounds=[60_000])
    assert frame.values.tolist() == [["alice", 1, "< 60000 ms"], ["bob", 2, "< 60000 ms"]]
    raw = helpers.consumers_frame(stream.xinfo_consumers("orders", "billing"))
    assert raw["idle"].dtype.kind == "i"


def test_pending_summary_frame(stream: redis.Redis) -> None:
    frame = helpers.pending_summary_frame(stream.xpending("orders", "billing"))
    assert frame.values.tolist() == [["alice", 1], ["bob", 2]]
    assert frame.attrs == {"pending": 3, "min": "1700000000000-0", "max": "1700000000005-0"}
    empty = helpers.pending_summary_frame(stream.xpending("orders", "audit"))
    assert empty.empty and empty.attrs["pending"] == 0


def test_pending_frame_sorted_by_id(stream: redis.Redis) -> None:
    reply = stream.xpending_range("orders", "billing", "-", "+", 10)
    frame = helpers.pending_frame(list(reversed(reply)), idle_bounds=[60_000])
    assert frame.values.tolist() == [
        ["1700000000000-0", "bob", "< 60000 ms", 1],
        ["1700000000000-1", "bob", "< 60000 ms", 1],
        ["1700000000005-0", "alice", "< 60000 ms", 1],
    ]


def test_views_accept_bytes_replies(stream: redis.Redis) -> None:
    raw = helpers.connect(decode_responses=False)
    assert helpers.entries_frame(raw.xrange("orders"))["item"].tolist()[0] == "tea"
    assert helpers.groups_frame(raw.xinfo_groups("orders"))["name"].tolist() == ["audit", "billing"]
    assert helpers.consumers_frame(raw.xinfo_consumers("orders", "billing"))["name"].tolist() == [
        "alice",
        "bob",
    ]
    assert helpers.pending_summary_frame(raw.xpending("orders", "billing")).attrs["min"] == "1700000000000-0"
    assert (
        helpers.pending_frame(raw.xpending_range("orders", "billing", "-", "+", 10))["consumer"].tolist()[0]
        == "bob"
    )
    assert helpers.stream_info_frame(raw.xinfo_stream("orders"))["value"].tolist()[1] == "1700000000000-0"


def test_invalid_bytes_are_escaped_not_fatal(client: redis.Redis) -> None:
    raw = helpers.connect(decode_responses=False)
    raw.xadd("blobs", {"data": b"\xff\xfe"}, id="1-1")
    assert helpers.entries_frame(raw.xrange("blobs"))["data"].tolist() == ["\\xff\\xfe"]


@pytest.mark.parametrize("bad", ["", "12", "a-1", "1-b", "1-2-3", "-1"])
def test_split_id_rejects_non_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not a stream ID"):
        helpers.split_id(bad)


def test_split_id() -> None:
    assert helpers.split_id("1700000000000-12") == (1700000000000, 12)
    assert helpers.split_id(b"0-1") == (0, 1)


@pytest.mark.parametrize(
    ("idle", "label"),
    [(0, "< 100 ms"), (99, "< 100 ms"), (100, "100-999 ms"), (999, "100-999 ms"), (1000, ">= 1000 ms")],
)
def test_idle_bound_edges(idle: int, label: str) -> None:
    assert helpers.idle_bound(idle, [1000, 100]) == label


def test_idle_bound_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="at least one bound"):
        helpers.idle_bound(5, [])


def test_entries_frame_keeps_fields_named_like_id_columns(client: redis.Redis) -> None:
    client.xadd("s", {"id": "order-7", "id_seq": "3", "seq": "9"}, id="5-1")
    frame = helpers.entries_frame(client.xrange("s"))
    assert list(frame.columns) == ["id", "id_ms", "id_seq", "id (field)", "id_seq (field)", "seq"]
    assert frame.iloc[0].tolist() == ["5-1", 5, 1, "order-7", "3", "9"]
