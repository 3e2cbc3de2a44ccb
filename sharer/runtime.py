"""Per-process resources (settings, Redis pool, HTTP session), made on first use, never at import.

Worker processes fork; a pool inherited across fork is unsafe, so the cache is keyed by pid.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import redis
import requests
from requests.adapters import HTTPAdapter

from .config import Settings, load_settings
from .connections import is_cluster, redis_client
from .store.deliveries import DeliveryStore
from .store.keys import Keys

if TYPE_CHECKING:
    from .queue import Queue
    from .store.audit import AuditLog
    from .store.schedule import ScheduleStore

log = logging.getLogger("sharer.runtime")
REPLICA_RECHECK = 5.0  # seconds: after a WAIT fell short, don't wait again for this long


@dataclass
class Runtime:
    settings: Settings
    pid: int = field(default_factory=os.getpid)
    _replica_short_until: float = 0.0

    def replicated(self) -> bool:
        """Wait until ``[redis] min_replica_acks`` replicas hold this connection's writes (Redis WAIT).

        Called after a share is written and after a claim, before anything is posted: a failover then
        cannot roll either back. If the replicas don't answer in time (one is down), go on — a missing
        replica must not stop publishing — and skip waiting for a few seconds. False: not confirmed.
        """
        want = self.settings.min_replica_acks
        if want <= 0:
            return True
        if time.monotonic() < self._replica_short_until:
            return False
        got = self.redis.wait(want, self.settings.replica_ack_timeout_ms)
        if got < want:
            self._replica_short_until = time.monotonic() + REPLICA_RECHECK
            log.warning("only %d of %d Redis replicas confirmed within %d ms; not waiting for %.0f s",
                        got, want, self.settings.replica_ack_timeout_ms, REPLICA_RECHECK)
            return False
        return True

    @cached_property
    def redis(self) -> redis.Redis:
        # redis:// or the current primary of a Sentinel group (sharer.connections)
        return redis_client(self.settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                            health_check_interval=30)

    @cached_property
    def keys(self) -> Keys:
        # on a Redis Cluster every key carries the prefix as one hash tag: one deployment, one slot
        return Keys(self.settings.prefix, cluster=is_cluster(self.settings.redis_url))

    @cached_property
    def store(self) -> DeliveryStore:
        return DeliveryStore(self.redis, self.keys, self.settings.retention_days * 86400)

    @cached_property
    def schedule(self) -> ScheduleStore:
        from .store.schedule import ScheduleStore

        return ScheduleStore(self.redis, self.keys)

    @cached_property
    def audit(self) -> AuditLog:
        from .store.audit import AuditLog

        return AuditLog(self.redis, self.keys, self.settings.retention_days * 86400)

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per process; platform clients add their own headers per call."""
        s = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = "sharer/0.1 (+https://github.com/sharer)"
        # requests re-reads proxy variables (and ~/.netrc) on every call: ~0.4 ms each. Skip that when
        # no proxy is configured; with HTTP(S)_PROXY set it stays on, so proxies keep working.
        if not any(k.lower().endswith("_proxy") for k in os.environ):
            s.trust_env = False
        return s

    @cached_property
    def queue(self) -> Queue:
        from .queue import Queue

        return Queue(self.settings)


_cache: dict[tuple[int, str | None], Runtime] = {}


def get_runtime(config: str | None = None) -> Runtime:
    key = (os.getpid(), config or os.environ.get("SHARER_CONFIG"))
    rt = _cache.get(key)
    if rt is None:
        _cache.clear()  # entries from a parent process must not be reused after fork
        rt = _cache[key] = Runtime(load_settings(config))
    return rt
