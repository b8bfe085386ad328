"""Helpers for the Redis Streams course.

Everything a notebook needs is importable from here::

    import helpers
    client = helpers.connect()           # a real server by default
    print("You are running on:", helpers.describe(client))
    helpers.entries_frame(client.xrange("orders"))

Importing this package starts nothing; the first :func:`connect` does.
"""

from .cluster import LocalCluster, skip_cells_using
from .connection import (
    BACKENDS,
    FAKEREDIS_NOTICE,
    connect,
    delete_keys,
    describe,
    resolve_backend,
    server_url,
    server_version,
)
from .errors import (
    CourseSetupError,
    OldServerWarning,
    PortTakenError,
    ServerBinaryError,
    ServerStartError,
    ServerUnreachableError,
    UnknownBackendError,
)
from .exercises import (
    CheckResult,
    check_acked_consumer,
    check_all_claimed,
    check_billing_run,
    check_blocking_client,
    check_claim_idle,
    check_confirmed_writer,
    check_dead_letter,
    check_duplicates_bound,
    check_explicit_ids,
    check_fan_out_deliveries,
    check_group_from_start,
    check_group_rewound,
    check_idempotent_handler,
    check_next_id,
    check_orphans,
    check_page_reader,
    check_partition_design,
    check_ping,
    check_retention_window,
    check_safe_minid,
    check_same_slot,
    check_trimmed_safely,
    check_xack_count,
    check_zombie_ack,
    setup_billing_exercise,
)
from .partitions import (
    DeadlineExceeded,
    PartitionedProducer,
    call_with_deadline,
    hash_slot,
    partition_of,
    partition_streams,
    write_and_wait,
)
from .producer import DEFAULT_MAX_PAYLOAD_BYTES, MessageError, Producer, WrongKeyTypeError
from .servers import LocalServer, ServerBinary, find_server_binary, free_port, probe_server_binary
from .views import (
    consumers_frame,
    entries_frame,
    groups_frame,
    idle_bound,
    pending_frame,
    pending_summary_frame,
    split_id,
    stream_info_frame,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "FAKEREDIS_NOTICE",
    "CheckResult",
    "CourseSetupError",
    "DeadlineExceeded",
    "LocalCluster",
    "LocalServer",
    "MessageError",
    "OldServerWarning",
    "PartitionedProducer",
    "PortTakenError",
    "Producer",
    "ServerBinary",
    "ServerBinaryError",
    "ServerStartError",
    "ServerUnreachableError",
    "UnknownBackendError",
    "Worker",
    "WorkerStats",
    "WrongKeyTypeError",
    "call_with_deadline",
    "check_acked_consumer",
    "check_all_claimed",
    "check_billing_run",
    "check_blocking_client",
    "check_claim_idle",
    "check_confirmed_writer",
    "check_dead_letter",
    "check_duplicates_bound",
    "check_explicit_ids",
    "check_fan_out_deliveries",
    "check_group_from_start",
    "check_group_rewound",
    "check_idempotent_handler",
    "check_next_id",
    "check_orphans",
    "check_page_reader",
    "check_partition_design",
    "check_ping",
    "check_retention_window",
    "check_safe_minid",
    "check_same_slot",
    "check_trimmed_safely",
    "check_xack_count",
    "check_zombie_ack",
    "connect",
    "consumers_frame",
    "delete_keys",
    "describe",
    "entries_frame",
    "find_server_binary",
    "free_port",
    "groups_frame",
    "hash_slot",
    "idle_bound",
    "partition_of",
    "partition_streams",
    "pending_frame",
    "pending_summary_frame",
    "probe_server_binary",
    "resolve_backend",
    "server_url",
    "server_version",
    "setup_billing_exercise",
    "skip_cells_using",
    "split_id",
    "stream_info_frame",
    "write_and_wait",
]


def __getattr__(name: str) -> object:
    # The worker is imported on first use, not with the package, so that
    # `python -m helpers.worker` runs it as a fresh module.
    if name in ("Worker", "WorkerStats"):
        from . import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
