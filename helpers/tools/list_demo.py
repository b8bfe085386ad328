"""A list consumer that takes one job and never finishes it, for notebook 11.

Run as a separate process::

    python -m helpers.tools.list_demo --url redis://127.0.0.1:6379 --queue jobs
    python -m helpers.tools.list_demo --url redis://127.0.0.1:6379 --queue jobs --processing jobs:processing

It takes one job from the right end of the list ``--queue``: with ``BRPOP`` (the job leaves
Redis the moment it is handed over), or with ``--processing``, with ``BLMOVE`` into that
list (the "reliable list" pattern: the job stays in Redis until the consumer removes it).
It prints the job as one JSON line on stdout, then "works" on it (sleeps) without ever
finishing, until it is killed. It exits on its own after ``--max-seconds``.
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
    parser.add_argument("--queue", required=True, help="the list to take a job from")
    parser.add_argument("--processing", help="move the job into this list (BLMOVE) instead of popping it")
    parser.add_argument("--wait-seconds", type=float, default=10.0, help="how long to wait for a job")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="exit after this long anyway")
    args = parser.parse_args(argv)
    if args.processing == args.queue:
        parser.error("--processing must be another list than --queue")

    client = redis.Redis.from_url(args.url, decode_responses=True, socket_timeout=args.wait_seconds + 5)
    job: Any
    if args.processing:
        job = client.blmove(args.queue, args.processing, args.wait_seconds, "RIGHT", "LEFT")
    else:
        popped: Any = client.brpop([args.queue], timeout=args.wait_seconds)
        job = popped[1] if popped else None
    print(json.dumps(job), flush=True)
    time.sleep(args.max_seconds)  # "working", never finishing
    return 0


if __name__ == "__main__":
    sys.exit(main())
