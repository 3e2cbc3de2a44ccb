"""Worker liveness in Redis, so ``/healthz`` answers in a millisecond instead of a 1 s Celery ping.

Each ``celery -A tasks worker`` main process refreshes its entry in a sorted set per queue it consumes
(``<prefix>:workers:<queue>``: member = worker name, score = last beat) and in the set of all workers
(``<prefix>:workers``, whatever their queues) every ``INTERVAL`` seconds from a daemon thread; a worker
is alive while its beat is younger than ``FRESH``. A worker that dies without saying goodbye simply
stops beating and drops out after ``FRESH`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("sharer.heartbeat")
INTERVAL = 5.0
FRESH = 3 * INTERVAL


def key(prefix: str, queue: str) -> str:
    return f"{prefix}:workers:{queue}"


def all_key(prefix: str) -> str:
    """Every worker, whatever queues it consumes (a worker pinned to one platform's queue included)."""
    return f"{prefix}:workers"


def names(raw: Iterable[Any]) -> list[str]:
    return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in raw)


@dataclass(frozen=True)
class Liveness:
    """What ``/healthz`` reports: the live workers, and per watched queue the live workers consuming it."""

    workers: list[str]
    queues: dict[str, list[str]]

    @property
    def unconsumed(self) -> list[str]:
        """Watched queues no live worker consumes: what waits there is not sent (an outage)."""
        return [q for q, consumers in self.queues.items() if not consumers]

    @classmethod
    def of(cls, everyone: Iterable[bytes | str], per_queue: dict[str, Iterable[bytes | str]]) -> Liveness:
        queues = {q: names(raw) for q, raw in per_queue.items()}
        # workers started before the all-workers set existed beat only per queue: count them too
        workers = sorted(set(names(everyone)).union(*queues.values()))
        return cls(workers, queues)


def alive(redis: Redis, prefix: str, queue: str, now: float | None = None) -> list[str]:
    """Names of the workers consuming ``queue`` that beat within ``FRESH`` seconds (one Redis call)."""
    now = time.time() if now is None else now
    return names(redis.zrangebyscore(key(prefix, queue), now - FRESH, "+inf"))


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
        for k in [all_key(self.prefix)] + [key(self.prefix, q) for q in self.queues]:
            pipe.zadd(k, {self.name: now})
            pipe.zremrangebyscore(k, "-inf", now - 10 * FRESH)  # long-dead names
            pipe.expire(k, int(10 * FRESH))
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
            for k in [all_key(self.prefix)] + [key(self.prefix, q) for q in self.queues]:
                pipe.zrem(k, self.name)
            pipe.execute()
        except RedisError:
            pass
