"""Helpers for the Redis Streams course.

Everything a notebook needs is importable from here::

    import helpers
    client = helpers.connect()           # a real server by default
    print("You are running on:", helpers.describe(client))
    helpers.entries_frame(client.xrange("orders"))

Importing this package starts nothing; the first :func:`connect` does.

The modules: :mod:`~helpers.connection` and :mod:`~helpers.servers` (which server,
private servers), :mod:`~helpers.cluster` (a local Redis Cluster), :mod:`~helpers.producer`,
:mod:`~helpers.worker`, :mod:`~helpers.delays`, :mod:`~helpers.backpressure`,
:mod:`~helpers.partitions` and :mod:`~helpers.retry` (the queue itself),
:mod:`~helpers.durability` and :mod:`~helpers.powerloss` (what an OK survives),
:mod:`~helpers.health` (is it healthy?), :mod:`~helpers.views` (pandas tables),
:mod:`~helpers.exercises` (one module of checkers per notebook), :mod:`~helpers.notebook`
(what lessons need around a queue), :mod:`~helpers.errors` (every error), and
:mod:`helpers.tools` (programs run with ``python -m``: the worker process, benchmarks,
the crash demo).
"""

from .backpressure import BoundedProducer
from .cluster import LocalCluster
from .common import AnyClient, hash_slot
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
from .delays import DelayQueue
from .durability import PERSISTENCE, Trial, crash_trial, what_an_ok_survives
from .errors import (
    CourseSetupError,
    DeadlineExceeded,
    MessageError,
    OldServerWarning,
    PortTakenError,
    QueueFullError,
    ServerBinaryError,
    ServerStartError,
    ServerUnreachableError,
    UnknownBackendError,
    WrongKeyTypeError,
)
from .exercises import (
    CheckResult,
    nb00,
    nb01,
    nb02,
    nb03,
    nb04,
    nb05,
    nb06,
    nb07,
    nb08,
    nb09,
    nb10,
    nb11,
    nb12,
)
from .exercises.nb00 import *  # noqa: F403
from .exercises.nb01 import *  # noqa: F403
from .exercises.nb02 import *  # noqa: F403
from .exercises.nb03 import *  # noqa: F403
from .exercises.nb04 import *  # noqa: F403
from .exercises.nb05 import *  # noqa: F403
from .exercises.nb06 import *  # noqa: F403
from .exercises.nb07 import *  # noqa: F403
from .exercises.nb08 import *  # noqa: F403
from .exercises.nb09 import *  # noqa: F403
from .exercises.nb10 import *  # noqa: F403
from .exercises.nb11 import *  # noqa: F403
from .exercises.nb12 import *  # noqa: F403
from .health import GroupHealth, HealthCollector, HealthHistory, group_health, queue_health
from .notebook import skip_cells_using, start_worker_process, wait_for
from .partitions import PartitionedProducer, partition_of, partition_streams, write_and_wait
from .powerloss import PowerLossDisk
from .producer import DEFAULT_MAX_PAYLOAD_BYTES, Producer
from .questions import Drill, check_question, questionnaire_markdown
from .retry import call_with_deadline, is_failover_error
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
from .worker import Worker, WorkerStats

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "FAKEREDIS_NOTICE",
    "PERSISTENCE",
    "AnyClient",
    "BoundedProducer",
    "CheckResult",
    "CourseSetupError",
    "DeadlineExceeded",
    "DelayQueue",
    "Drill",
    "GroupHealth",
    "HealthCollector",
    "HealthHistory",
    "LocalCluster",
    "LocalServer",
    "MessageError",
    "OldServerWarning",
    "PartitionedProducer",
    "PortTakenError",
    "PowerLossDisk",
    "Producer",
    "QueueFullError",
    "ServerBinary",
    "ServerBinaryError",
    "ServerStartError",
    "ServerUnreachableError",
    "Trial",
    "UnknownBackendError",
    "Worker",
    "WorkerStats",
    "WrongKeyTypeError",
    "call_with_deadline",
    "check_question",
    "connect",
    "consumers_frame",
    "crash_trial",
    "delete_keys",
    "describe",
    "entries_frame",
    "find_server_binary",
    "free_port",
    "group_health",
    "groups_frame",
    "hash_slot",
    "idle_bound",
    "is_failover_error",
    "partition_of",
    "partition_streams",
    "pending_frame",
    "pending_summary_frame",
    "probe_server_binary",
    "questionnaire_markdown",
    "queue_health",
    "resolve_backend",
    "server_url",
    "server_version",
    "skip_cells_using",
    "split_id",
    "start_worker_process",
    "stream_info_frame",
    "wait_for",
    "what_an_ok_survives",
    "write_and_wait",
]
# The exercise checkers, one module per notebook; each module's __all__ is their one list.
__all__ += nb00.__all__
__all__ += nb01.__all__
__all__ += nb02.__all__
__all__ += nb03.__all__
__all__ += nb04.__all__
__all__ += nb05.__all__
__all__ += nb06.__all__
__all__ += nb07.__all__
__all__ += nb08.__all__
__all__ += nb09.__all__
__all__ += nb10.__all__
__all__ += nb11.__all__
__all__ += nb12.__all__
