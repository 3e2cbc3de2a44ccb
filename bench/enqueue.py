"""Enqueueing one share's deliveries: one broker round trip (kombu producer batch) vs one per message.

Measures ``Queue.enqueue_many`` against a loop of ``Queue.enqueue`` for shares of N deliveries, on the
Redis broker (127.0.0.1:6379, db 13, a throwaway queue) and, when it answers, RabbitMQ
(127.0.0.1:5672, quorum queue, publisher confirms). Nothing consumes the queue; it is deleted after.
Usage: python bench/enqueue.py [-n 10] [--shares 200]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer.config import parse_settings  # noqa: E402
from sharer.queue import Queue  # noqa: E402


def rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


def measure(q: Queue, n: int, shares: int) -> dict[str, float]:
    batch = [(f"dl_bench{i}", None) for i in range(n)]
    q.enqueue_many(batch)  # connect, declare
    out = {}
    for mode in ("one by one", "one batch"):
        times = []
        for _ in range(shares):
            t = time.perf_counter()
            if mode == "one batch":
                q.enqueue_many(batch)
            else:
                for did, account in batch:
                    q.enqueue(did, account=account)
            times.append(time.perf_counter() - t)
        out[mode] = statistics.median(times) * 1000
    return out


def purge(q: Queue) -> None:
    with q.app.connection_for_write() as conn:
        channel = conn.default_channel
        try:
            channel.queue_delete(q.settings.queue)
            channel.queue_delete(q.settings.queue + ".control")
        except Exception:
            pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10, help="deliveries per share")
    ap.add_argument("--shares", type=int, default=200)
    args = ap.parse_args()
    brokers = {"redis": "redis://127.0.0.1:6379/13"}
    if rabbit_up():
        brokers["rabbitmq (quorum, confirms)"] = "amqp://guest:guest@127.0.0.1:5672//"
    print(f"| broker | {args.n} deliveries one by one (ms) | one batch (ms) | speed-up |")
    print("|---|---|---|---|")
    for name, url in brokers.items():
        tag = secrets.token_hex(3)
        raw = {"redis": {"url": "redis://127.0.0.1:6379/13", "prefix": f"bench-enq-{tag}"},
               "celery": {"broker_url": url, "queue": f"bench-enq-{tag}"}}
        q = Queue(parse_settings(raw, Path("bench.toml"), {}))
        try:
            r = measure(q, args.n, args.shares)
        finally:
            purge(q)
            q.close()
        print(f"| {name} | {r['one by one']:.2f} | {r['one batch']:.2f} | {r['one by one'] / r['one batch']:.1f}x |")


if __name__ == "__main__":
    main()
