"""Throughput of the helpers' Producer and Worker against raw redis-py loops, measured in one run.

    python -m helpers.tools.bench              # a private server from the usual binary
    python -m helpers.tools.bench --url URL    # a server of your own (it writes bench:* keys)

Every number is a median of ``--rounds`` rounds on the same server in the same
run, and the report gives ratios, because the machine is shared and noisy:
absolute numbers mean little, ratios measured side by side do.

The comparisons run twice: as they come, and with this process and the server
pinned to one core (Linux, private server only). Pinned, the ratio is a ratio of
CPU per message; unpinned on a machine with two or more cores, the server's work
runs beside the client's and hides part of the helpers' cost. Targets (pinned):
Worker >= 0.95 of the raw batched loop, Producer.send_many >= 0.95 of raw
pipelined XADD, Producer.send >= 0.95 of raw XADD; and 1, 2, 4 worker processes
with a 1 ms handler >= 0.90 of the ideal; DelayQueue.move_due >= 0.95 of a client
loop that reads due members and pipelines their XADDs and ZREMs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from ..delays import DelayQueue
from ..notebook import start_worker_process
from ..producer import Producer
from ..servers import LocalServer
from ..worker import Worker

__all__ = ["bench_delays", "bench_processes", "main", "sleep_1ms"]

PAYLOAD = {"task": "x" * 90, "n": "1"}  # about 100 bytes, as in the course's baselines

# (raw name, helper name, raw rate, helper rate, median ratio, target ratio)
Comparison = tuple[str, str, float, float, float, float]


def sleep_1ms(message_id: str, fields: dict[str, str]) -> None:
    """A handler that waits 1 ms, like a small I/O call (used by the process-scaling runs)."""
    time.sleep(0.001)


def _paired_rates(
    rounds: int, count: int, setup: Callable[[], None], raw: Callable[[], None], helper: Callable[[], None]
) -> tuple[float, float, float]:
    """Median rates of ``raw`` and ``helper``, and the median of their per-round ratios.

    The two alternate within each round, so that both see the same machine.
    """
    raw_rates, helper_rates, ratios = [], [], []
    for _ in range(rounds):
        pair = []
        for run in (raw, helper):
            setup()
            started = time.perf_counter()
            run()
            pair.append(count / (time.perf_counter() - started))
        raw_rates.append(pair[0])
        helper_rates.append(pair[1])
        ratios.append(pair[1] / pair[0])
    return statistics.median(raw_rates), statistics.median(helper_rates), statistics.median(ratios)


def _fill(client: redis.Redis, stream: str, count: int) -> None:
    client.delete(stream)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(stream, PAYLOAD)  # type: ignore[arg-type]
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.xgroup_create(stream, "g", id="0")


def bench_producer(client: redis.Redis, rounds: int, count: int) -> list[Comparison]:
    stream = "bench:produce"

    def reset() -> None:
        client.delete(stream)

    def raw_single() -> None:
        for _ in range(count):
            client.xadd(stream, PAYLOAD)  # type: ignore[arg-type]

    producer = Producer(client, stream)

    def helper_single() -> None:
        for _ in range(count):
            producer.send(PAYLOAD)

    def raw_pipelined() -> None:
        for start in range(0, count, 100):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(100, count - start)):
                pipe.xadd(stream, PAYLOAD)  # type: ignore[arg-type]
            pipe.execute()

    def helper_batched() -> None:
        for start in range(0, count, 100):
            producer.send_many([PAYLOAD] * min(100, count - start))

    single = _paired_rates(rounds, count, reset, raw_single, helper_single)
    batched = _paired_rates(rounds, count, reset, raw_pipelined, helper_batched)
    return [
        ("raw XADD, one at a time", "Producer.send", *single, 0.95),
        ("raw XADD, pipelined by 100", "Producer.send_many by 100", *batched, 0.95),
    ]


def bench_delays(client: redis.Redis, rounds: int, count: int) -> list[Comparison]:
    """DelayQueue.move_due by 100 against the obvious client loop: ZRANGEBYSCORE, then one
    pipeline of XADDs and ZREMs (which, unlike the script, can lose or repeat a message if
    it dies half-way, or if two movers run at once)."""
    stream, key = "bench:delayed-into", "bench:delayed"
    queue = DelayQueue(client, stream, key=key)
    members = [queue._member(PAYLOAD) for _ in range(count)]

    def fill() -> None:
        client.delete(stream, key)
        for start in range(0, count, 1000):
            client.zadd(key, {member: 0 for member in members[start : start + 1000]})

    def raw_loop() -> None:
        while True:
            due: Any = client.zrangebyscore(key, "-inf", int(time.time() * 1000), start=0, num=100)
            if not due:
                return
            pipe = client.pipeline(transaction=False)
            for member in due:
                fields = json.loads(member)["fields"]
                pipe.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True)))
                pipe.zrem(key, member)
            pipe.execute()

    def helper_mover() -> None:
        while queue.move_due(limit=100):
            pass

    moves = _paired_rates(rounds, count, fill, raw_loop, helper_mover)
    return [("raw ZRANGEBYSCORE + pipelined XADD/ZREM by 100", "DelayQueue.move_due by 100", *moves, 0.95)]


def bench_consumer(url: str, rounds: int, count: int) -> list[Comparison]:
    stream = "bench:consume"
    text_client = redis.Redis.from_url(url, decode_responses=True)

    def reset() -> None:
        _fill(text_client, stream, count)

    def raw_batched() -> None:
        handled = 0
        while handled < count:
            reply: Any = text_client.xreadgroup("g", "raw", {stream: ">"}, count=100)
            entries = reply[0][1]
            for _entry_id, _fields in entries:
                pass  # a no-op handler
            text_client.xack(stream, "g", *[entry_id for entry_id, _ in entries])
            handled += len(entries)

    # One worker for all rounds, as a deployed worker lives: its connections are open and its
    # scripts loaded before the clock starts, as the raw loop's are. Each run still reads the
    # consumer's own history first.
    worker = Worker(text_client, stream, group="g", consumer="helper", handler=lambda i, f: None, batch=100)

    def helper_worker() -> None:
        worker.run(max_messages=count)

    try:
        rates = _paired_rates(rounds, count, reset, raw_batched, helper_worker)
    finally:
        worker.close()
    return [("raw XREADGROUP 100 + XACK (str replies)", "Worker, batch 100, no-op handler", *rates, 0.95)]


def bench_processes(url: str, processes: int, count: int, stream: str = "bench:scale") -> float:
    """Messages per second for ``processes`` CLI workers with a 1 ms handler.

    The workers start first and wait on an empty stream; the clock runs from the
    moment the messages are in the stream to the last acknowledgement.
    """
    client = redis.Redis.from_url(url, decode_responses=True)
    client.delete(stream)
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    options = {"batch": 10, "block_ms": 100, "log_level": "WARNING"}
    workers = [
        start_worker_process(url, stream, "g", f"w{n}", "helpers.tools.bench:sleep_1ms", options=options)
        for n in range(processes)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(client.xinfo_consumers(stream, "g")) < processes and time.monotonic() < deadline:
            time.sleep(0.01)  # a consumer appears at its first read: the worker is ready
        pipe = client.pipeline(transaction=False)
        for _ in range(count):
            pipe.xadd(stream, PAYLOAD)  # type: ignore[arg-type]
        pipe.execute()
        started = time.perf_counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            group = client.xinfo_groups(stream)[0]
            if group["lag"] == 0 and group["pending"] == 0:
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    return count / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tools.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url", help="a server of your own (default: a private one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per producer/consumer round")
    parser.add_argument("--scale-messages", type=int, default=2_000, help="messages per process-scaling run")
    args = parser.parse_args(argv)

    server = None if args.url else LocalServer().start()
    url = args.url or (server.url if server else "")
    try:
        client = redis.Redis.from_url(url)
        print(f"server: {url}; {args.rounds} rounds, raw and helper alternating; medians")
        modes: list[tuple[str, int | None]] = [("as they come", None)]
        if server is not None and server.pid is not None and hasattr(os, "sched_setaffinity"):
            modes.append(("client and server pinned to one core", max(os.sched_getaffinity(0))))
        else:
            print("(no pinned run: it needs Linux and the private server)")
        everywhere = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        for label, cpu in modes:
            print(f"\n{label}:")
            if cpu is not None and server is not None and server.pid is not None:
                os.sched_setaffinity(0, {cpu})
                os.sched_setaffinity(server.pid, {cpu})
            try:
                comparisons = bench_producer(client, args.rounds, args.messages)
                comparisons += bench_consumer(url, args.rounds, args.messages)
                comparisons += bench_delays(client, args.rounds, args.messages)
            finally:
                if cpu is not None and server is not None and server.pid is not None:
                    os.sched_setaffinity(0, everywhere)
                    os.sched_setaffinity(server.pid, everywhere)
            for raw_name, helper_name, raw_rate, helper_rate, ratio, target in comparisons:
                print(f"{raw_name:45} {raw_rate:10,.0f} messages/s")
                print(f"{helper_name:45} {helper_rate:10,.0f} messages/s")
                print(f"{'  ratio, median of rounds':45} {ratio:10.2f}   (target >= {target:.2f}, pinned)")
        print()
        # The ideal: each process handles one message per handler call, and a 1 ms
        # sleep really takes a little longer; measure how long, here and now.
        started = time.perf_counter()
        for _ in range(500):
            sleep_1ms("", {})
        per_process_ideal = 500 / (time.perf_counter() - started)
        print(f"ideal per process (1 / measured handler time) {per_process_ideal:10,.0f} messages/s")
        one = None
        for processes in (1, 2, 4):
            rate = bench_processes(url, processes, args.scale_messages)
            one = one or rate
            print(
                f"{processes} worker process(es), 1 ms handler {rate:10,.0f} messages/s"
                f"   {rate / (processes * per_process_ideal):.2f} of ideal, {rate / one:.2f}x one process"
            )
        return 0
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    sys.exit(main())
