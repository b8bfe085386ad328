"""Run one :class:`helpers.Worker` from the command line, until SIGTERM or Ctrl-C.

    python -m helpers.tools.worker --url redis://127.0.0.1:6379 --stream jobs \\
        --group workers --consumer w1 --handler mypackage.handlers:handle

The handler is ``module:function``, imported in the worker process; it is called as
``handler(message_id, fields)``. Give a restarted worker the same ``--consumer`` name,
so that it finishes its own pending entries first. Under a process manager (systemd,
Kubernetes, supervisord), SIGTERM stops it after the batch in hand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from types import FrameType

import redis
from redis.cluster import RedisCluster

from ..common import AnyClient
from ..worker import LOG, Handler, Worker

__all__ = ["main"]


def _load_handler(spec: str) -> Handler:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise argparse.ArgumentTypeError(f"--handler must look like module:function, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise argparse.ArgumentTypeError(f"cannot import {module_name!r}: {exc}") from exc
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise argparse.ArgumentTypeError(f"{module_name} has no function {attribute!r}")
    return handler  # type: ignore[no-any-return]


def _delays(text: str) -> tuple[int, ...]:
    """``"100,500,2000"`` -> ``(100, 500, 2000)``; the Worker checks the values."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of milliseconds: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tools.worker", description="Run one stream worker until SIGTERM or Ctrl-C."
    )
    parser.add_argument("--url", required=True, help="redis://[user:password@]host:port/db")
    parser.add_argument("--cluster", action="store_true", help="the URL names a node of a Redis Cluster")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True, help="this worker's name; reuse it after a restart")
    parser.add_argument("--handler", required=True, type=_load_handler, help="module:function")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--block-ms", type=int, default=2000)
    parser.add_argument("--claim-idle-ms", type=int, default=30_000)
    parser.add_argument("--max-deliveries", type=int, default=5)
    parser.add_argument("--dead-letter", default=None, help="dead-letter stream (default: <stream>:dead)")
    parser.add_argument(
        "--retry-delays-ms",
        type=_delays,
        default=(),
        help="comma-separated growing delays before the 2nd, 3rd ... delivery of a failed message",
    )
    parser.add_argument("--retry-consumer", default="waiting-to-retry", help="holds entries waiting to retry")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        client: AnyClient = (
            RedisCluster.from_url(args.url) if args.cluster else redis.Redis.from_url(args.url)
        )
        worker = Worker(
            client,
            args.stream,
            group=args.group,
            consumer=args.consumer,
            handler=args.handler,
            batch=args.batch,
            block_ms=args.block_ms,
            claim_idle_ms=args.claim_idle_ms,
            max_deliveries=args.max_deliveries,
            dead_letter=args.dead_letter,
            retry_delays_ms=args.retry_delays_ms,
            retry_consumer=args.retry_consumer,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))

    def request_stop(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d: finishing the current batch, then stopping", signum)
        worker.stop()

    # Worker.run handles SIGTERM itself; Ctrl-C should stop as gently.
    signal.signal(signal.SIGINT, request_stop)
    LOG.info("worker %s of group %s on %s started", args.consumer, args.group, args.stream)
    with worker:
        stats = worker.run()
    LOG.info("stopped: %s", stats.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
