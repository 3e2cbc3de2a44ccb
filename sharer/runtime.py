"""Per-process resources (settings, Redis pool, HTTP session), made on first use, never at import.

Worker processes fork; a pool inherited across fork is unsafe, so the cache is keyed by pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import redis
import requests
from requests.adapters import HTTPAdapter

from .config import Settings, load_settings
from .store.deliveries import DeliveryStore
from .store.keys import Keys

if TYPE_CHECKING:
    from .queue import Queue
    from .store.schedule import ScheduleStore


@dataclass
class Runtime:
    settings: Settings
    pid: int = field(default_factory=os.getpid)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                                    health_check_interval=30)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.prefix)

    @cached_property
    def store(self) -> DeliveryStore:
        return DeliveryStore(self.redis, self.keys, self.settings.retention_days * 86400)

    @cached_property
    def schedule(self) -> ScheduleStore:
        from .store.schedule import ScheduleStore

        return ScheduleStore(self.redis, self.keys)

    @cached_property
    def audit(self):
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
