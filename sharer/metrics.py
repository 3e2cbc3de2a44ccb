"""Prometheus metrics: what each process did (counters, a histogram) and what Redis holds (gauges).

Two kinds, because they answer different questions:

* **events** — status changes by platform, attempts, error kinds, rate limiting, dispatch lag — are
  counted in the process where they happen. Celery's prefork children are separate processes, so a
  worker runs prometheus_client in multiprocess mode (one mmap file per child in
  ``PROMETHEUS_MULTIPROC_DIR``, set by :func:`prepare_worker` before the pool forks) and its
  ``/metrics`` adds them up. Use ``rate()``/``sum()`` across workers as usual.
* **state** — deliveries per status, records in ``sending``/``unknown``/``needs_review``/
  ``awaiting_approval``, queue depth, token expiry per account — is read from Redis (and the broker)
  when scraped, so every endpoint shows the same cluster-wide truth; aggregate these with ``max()``,
  never ``sum()``.

prometheus_client is imported on first use only, never at import of this module: the multiprocess
switch must be made before it is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("sharer.metrics")
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WATCHED = ("sending", "unknown", "needs_review", "awaiting_approval")  # the ones an operator alerts on

# Every metric sharer exports (the dashboard in docs/grafana-sharer.json uses these names).
NAMES = (
    "sharer_deliveries_total", "sharer_delivery_attempts_total", "sharer_delivery_errors_total",
    "sharer_platform_rate_limited_total", "sharer_limiter_deferred_total", "sharer_dispatch_lag_seconds",
    "sharer_deliveries_in_status", "sharer_records_watched", "sharer_queue_depth", "sharer_token_expiry_seconds",
)


@cache
def _events() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram, disable_created_metrics

    disable_created_metrics()  # *_created samples only double the series count
    return {
        "status": Counter("sharer_deliveries", "Status changes made, by platform and new status",
                          ["platform", "status"]),
        "attempts": Counter("sharer_delivery_attempts", "Send attempts started (claims), by platform",
                            ["platform"]),
        "errors": Counter("sharer_delivery_errors", "Failed attempts by platform and error kind",
                          ["platform", "kind"]),
        "rate_limited": Counter("sharer_platform_rate_limited",
                                "Answers from the platform saying slow down (HTTP 429 and equivalents)",
                                ["platform"]),
        "deferred": Counter("sharer_limiter_deferred",
                            "Sends deferred by sharer's own per-account rate limiter", ["platform"]),
        "lag": Histogram("sharer_dispatch_lag_seconds", "How late the dispatcher released a scheduled post",
                         buckets=LAG_BUCKETS),
    }


def _safe(fn: Callable[..., None]) -> Callable[..., None]:
    """Metrics never break a delivery: an error here is logged, not raised."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # pragma: no cover - defensive
            log.exception("metrics: %s failed", fn.__name__)

    return wrapper


@_safe
def status_changed(platform: str, status: str, n: int = 1) -> None:
    _events()["status"].labels(platform, status).inc(n)


@_safe
def attempt_started(platform: str) -> None:
    _events()["attempts"].labels(platform).inc()
    _events()["status"].labels(platform, "sending").inc()


@_safe
def attempt_failed(platform: str, kind: str) -> None:
    _events()["errors"].labels(platform, kind).inc()
    if kind == "rate_limited":
        _events()["rate_limited"].labels(platform).inc()


@_safe
def limiter_deferred(platform: str) -> None:
    _events()["deferred"].labels(platform).inc()


@_safe
def dispatched(lag_seconds: float) -> None:
    _events()["lag"].observe(max(0.0, lag_seconds))


# --- state read from Redis on scrape ---------------------------------------------------------------

class StateCollector:
    """Gauges computed from Redis (and the broker) at scrape time: cluster-wide, O(statuses + accounts)."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._broker_redis: Any = None

    def describe(self) -> list[Any]:  # no describe-time Redis calls (registration must not need Redis)
        return []

    def collect(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from .store.deliveries import STATUSES

        rt = self.rt
        by_status = GaugeMetricFamily("sharer_deliveries_in_status", "Deliveries currently in each status (the log)",
                                      labels=["status"])
        watched = GaugeMetricFamily("sharer_records_watched",
                                    "Records in sending, unknown, needs_review, awaiting_approval", labels=["status"])
        depth = GaugeMetricFamily("sharer_queue_depth", "Messages waiting in each broker queue", labels=["queue"])
        expiry = GaugeMetricFamily("sharer_token_expiry_seconds",
                                   "Seconds until the cached platform access token of each account expires",
                                   labels=["account"])
        statuses = list(dict.fromkeys([*STATUSES, *WATCHED]))
        try:
            pipe = rt.redis.pipeline(transaction=False)
            for s in statuses:
                pipe.zcard(rt.keys.status_index(s))
            counts = dict(zip(statuses, pipe.execute()))
            for s in statuses:
                if s in STATUSES:
                    by_status.add_metric([s], counts[s])
                if s in WATCHED:
                    watched.add_metric([s], counts[s])
            for account, seconds in self._token_horizons().items():
                expiry.add_metric([account], seconds)
        except Exception as e:  # Redis down: scrape the rest, say so in the log
            log.warning("metrics: cannot read Redis: %s", type(e).__name__)
        try:
            for queue, n in self._queue_depths().items():
                depth.add_metric([queue], n)
        except Exception as e:
            log.warning("metrics: cannot read the broker's queue depths: %s", type(e).__name__)
        return [by_status, watched, depth, expiry]

    def _token_horizons(self) -> dict[str, float]:
        """Per account with a cached token: its TTL, or the ``expires_at`` stored in it (X's record)."""
        rt, now = self.rt, time.time()
        names = list(rt.settings.accounts)
        pipe = rt.redis.pipeline(transaction=False)
        for name in names:
            pipe.pttl(rt.keys.token(name))
            pipe.get(rt.keys.token(name))
        out = pipe.execute()
        horizons: dict[str, float] = {}
        for i, name in enumerate(names):
            pttl, raw = out[2 * i], out[2 * i + 1]
            if raw is None:
                continue
            if pttl and pttl > 0:
                horizons[name] = pttl / 1000.0
                continue
            try:
                rec = json.loads(raw)
                horizons[name] = float(rec["expires_at"]) - now
            except (ValueError, TypeError, KeyError):
                continue
        return horizons

    def _queue_depths(self) -> dict[str, int]:
        from .connections import is_amqp, redis_client
        from .queue import control_queue, delivery_queues

        settings = self.rt.settings
        names = delivery_queues(settings) + [control_queue(settings)]
        if is_amqp(settings.broker_url):
            return self._amqp_depths(names)
        if self._broker_redis is None:
            self._broker_redis = (self.rt.redis if settings.broker_url == settings.redis_url else
                                  redis_client(settings.broker_url, socket_timeout=5, socket_connect_timeout=3))
        pipe = self._broker_redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return dict(zip(names, pipe.execute()))

    def _amqp_depths(self, names: list[str]) -> dict[str, int]:
        from kombu import Connection

        out = {}
        with Connection(self.rt.settings.broker_url, connect_timeout=3) as conn:
            channel = conn.channel()
            try:
                for name in names:
                    try:
                        out[name] = channel.queue_declare(queue=name, passive=True).message_count
                    except Exception:  # not declared yet: no worker has started on it
                        channel = conn.channel()
            finally:
                channel.close()
        return out


def registry(rt: Runtime) -> Any:
    """This process's registry: its own counters (or, in a worker, every pool child's) + Redis state."""
    from prometheus_client import REGISTRY as default
    from prometheus_client import CollectorRegistry, multiprocess

    _events()  # register the event metrics, so their names show before anything happened
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
    else:
        reg = CollectorRegistry()
        reg.register(_Forward(default))
    reg.register(StateCollector(rt))
    return reg


class _Forward:
    """Expose the default registry's metrics (this process's counters) inside another registry."""

    def __init__(self, source: Any):
        self.source = source

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        return self.source.collect()


def render(reg: Any) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(reg)


# --- workers ---------------------------------------------------------------------------------------

def prepare_worker() -> Path:
    """Switch this worker (and the pool it is about to fork) to multiprocess metrics, in a fresh dir."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for f in path.glob("*.db"):  # files of a previous run would be added in again
            f.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="sharer-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    _made.append(path)
    return path


_made: list[Path] = []  # directories prepare_worker created (removed again at shutdown)


def worker_stopped() -> None:
    """The worker is exiting: remove the multiprocess files it created (not a dir the operator set)."""
    import shutil

    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def serve_worker(rt: Runtime, port: int, host: str = "127.0.0.1") -> Any:
    """``/metrics`` for a worker on ``[metrics] worker_port`` (a thread in the main process)."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry(rt))
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


def child_exited(pid: int) -> None:
    """A pool child is gone: fold its live gauges away (counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
