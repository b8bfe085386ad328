"""A consumer that takes work and never finishes it, for crash-and-recover lessons.

Run as a separate process::

    python -m helpers.tools.crash_demo --url redis://127.0.0.1:6379 --stream jobs \\
        --group workers --consumer worker-c --count 3

It reads up to ``--count`` new entries with ``XREADGROUP ... >``, prints their
IDs as one JSON line on stdout, then "works" on them (sleeps) without ever
acknowledging, until it is killed. So whoever kills it with SIGKILL leaves the
entries pending, exactly as a crash would. It exits on its own after
``--max-seconds`` so that a forgotten demo process cannot linger.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="redis:// URL of the server")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--count", type=int, default=1, help="how many entries to take")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="exit after this long anyway")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    client = redis.Redis.from_url(args.url, decode_responses=True)
    reply: Any = client.xreadgroup(args.group, args.consumer, {args.stream: ">"}, count=args.count)
    ids = [entry_id for entry_id, _ in reply[0][1]] if reply else []
    print(json.dumps(ids), flush=True)
    time.sleep(args.max_seconds)  # "working", never acknowledging
    return 0


if __name__ == "__main__":
    sys.exit(main())
