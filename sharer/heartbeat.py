"""Worker liveness in Redis, so ``/healthz`` answers in a millisecond instead of a 1 s Celery ping.

Each ``celery -A tasks worker`` main process refreshes its entry in a sorted set per queue it consumes
(``<prefix>:workers:<queue>``: member = worker name, score = last beat) every ``INTERVAL`` seconds from a
daemon thread; a worker is alive while its beat is younger than ``FRESH``. A worker that dies without
saying goodbye simply stops beating and drops out after ``FRESH`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("sharer.heartbeat")
INTERVAL = 5.0
FRESH = 3 * INTERVAL


def key(prefix: str, queue: str) -> str:
    return f"{prefix}:workers:{queue}"


def alive(redis: Redis, prefix: str, queue: str, now: float | None = None) -> list[str]:
    """Names of the workers consuming ``queue`` that beat within ``FRESH`` seconds (one Redis call)."""
    now = time.time() if now is None else now
    names = redis.zrangebyscore(key(prefix, queue), now - FRESH, "+inf")
    return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)


class Heartbeat:
    """A daemon thread beating for one worker until ``stop``."""

    def __init__(self, redis: Redis, prefix: str, name: str, queues: list[str], interval: float = INTERVAL):
        self.redis, self.prefix, self.name, self.queues, self.interval = redis, prefix, name, queues, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sharer-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for q in self.queues:
            pipe.zadd(key(self.prefix, q), {self.name: now})
            pipe.zremrangebyscore(key(self.prefix, q), "-inf", now - 10 * FRESH)  # long-dead names
            pipe.expire(key(self.prefix, q), int(10 * FRESH))
        pipe.execute()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except RedisError as e:  # Redis away for a moment: /healthz says so; keep trying
                log.warning("heartbeat: %s", e)

    def stop(self) -> None:
        self._stop.set()
        try:
            pipe = self.redis.pipeline(transaction=False)
            for q in self.queues:
                pipe.zrem(key(self.prefix, q), self.name)
            pipe.execute()
        except RedisError:
            pass
