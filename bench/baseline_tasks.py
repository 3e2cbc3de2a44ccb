"""The baseline for bench/throughput.py: a bare Celery task doing one HTTP POST and one Redis write,
with exactly the worker settings sharer uses."""

from __future__ import annotations

import os

import redis
import requests
from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

from sharer.config import load_settings
from sharer.platforms.webhook import sign
from sharer.queue import celery_settings
from sharer.sandbox.webhook import SANDBOX_SECRET

app = Celery("bench-baseline")
_settings = load_settings(os.environ["SHARER_CONFIG"])
app.conf.update(celery_settings(_settings))
_bare = _settings.queue + "-bare"
app.conf.task_default_queue = _bare
app.conf.task_queues = [KombuQueue(_bare, Exchange(_bare, type="direct"), routing_key=_bare)]
app.conf.task_routes = {}
_session = requests.Session()
_redis: redis.Redis | None = None


@app.task(name="bench.bare", ignore_result=True)
def bare(url: str, key: str, body: str) -> None:
    """Sign and POST the body (the receiver checks signatures), then count it in Redis."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(_settings.redis_url)
    data = body.encode()
    headers = {"Content-Type": "application/json", "X-Sharer-Signature": sign(SANDBOX_SECRET, data)}
    resp = _session.post(url, data=data, headers=headers, timeout=10)
    resp.raise_for_status()
    _redis.incr(key)
