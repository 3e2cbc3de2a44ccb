"""``/metrics`` on the web app and on a real worker, and JSON logs: what an operator scrapes and reads.

One config for the module: its own Redis prefix and queue, ``[metrics] worker_port`` (a reserved port),
``[metrics] token`` for the web endpoint, ``[log] format = "json"``. The worker is a real prefork
``celery -A tasks worker`` (multiprocess metrics); traffic is real: deliveries, a 503, a platform
429, the per-account limiter, a scheduled post released by a ``sharer.dispatch`` task on the worker,
and a WeChat access token cached through the platform client.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest
import requests
from conftest import REDIS_URL, Worker, account_tables, inject
from port_support import release_port, reserve_port
from test_chaos import article, cleanup, env_for, settle, wait_for
from web_support import client

from sharer import service
from sharer.config import load_settings
from sharer.metrics import NAMES
from sharer.platforms import get_platform
from sharer.platforms.base import DeliveryContext
from sharer.runtime import Runtime

TOKEN = "metrics-token-" + secrets.token_hex(6)


def _toml(tag: str, port: int, emulators) -> str:
    return (
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-metrics-{tag}"\n\n[celery]\nqueue = "sharer-metrics-{tag}"\n\n'
        f'[metrics]\nworker_port = {port}\ntoken = "env:SHARER_TEST_METRICS_TOKEN"\n\n[log]\nformat = "json"\n\n'
        '[delivery]\nlease_seconds = 30\nhttp_timeout = 5\nretry = { base = 0.1, cap = 0.3, max_attempts = 4 }\n'
        'duplicate_window_hours = 0\n\n[web]\nsecret_key = "env:SHARER_TEST_WEB_SECRET_M"\n\n'
        f'[accounts.m-limited]\nplatform = "webhook"\napi_base = "{emulators["webhook"].url}/hooks/m-limited"\n'
        'credentials = { secret = "sandbox:" }\nrate_limit = { count = 1, per_seconds = 1 }\n\n'
        + account_tables(emulators))


@pytest.fixture(scope="module")
def metered(tmp_path_factory, emulators):
    tmp = tmp_path_factory.mktemp("metrics")
    tag = secrets.token_hex(4)
    os.environ["SHARER_TEST_METRICS_TOKEN"] = TOKEN
    os.environ.setdefault("SHARER_TEST_WRONG_SECRET", "x")
    os.environ["SHARER_TEST_WEB_SECRET_M"] = "web-secret-" + secrets.token_hex(8)
    config = tmp / "sharer-metrics.toml"
    env = env_for(config, tmp)
    env["SHARER_TEST_WRONG_SECRET"] = "x"
    for attempt in range(5):
        port = reserve_port()  # outside the ephemeral range, locked for this process (port_support)
        config.write_text(_toml(tag, port, emulators))
        worker = Worker(env, concurrency=2)  # ready: worker_ready has run, the endpoint is up or has failed
        if f"metrics on http://127.0.0.1:{port}/metrics" in worker.output():
            break
        worker.stop()  # something outside the tests held the port: another one
        release_port(port)
        assert attempt < 4 and "Address already in use" in worker.output(), worker.output()[-3000:]
    rt = Runtime(load_settings(config))
    yield rt, worker, port, config
    worker.stop()
    cleanup(rt)


def _traffic(rt: Runtime, emulators) -> list[str]:
    run = secrets.token_hex(3)
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=503, count=1, match=run)
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=429, count=1, match=run,
           headers={"Retry-After": "1"})
    ids = [d.id for d in service.share(rt, article(f"{run}a"), ["hook-a", "hook-b"]).deliveries]
    ids += [d.id for d in service.share(rt, article(f"{run}b"), ["m-limited"]).deliveries]
    ids += [d.id for d in service.share(rt, article(f"{run}c"), ["m-limited"]).deliveries]
    due = service.share(rt, article(f"{run}s"), ["hook-a"], at=time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                             time.localtime(time.time() + 2)))
    ids += [d.id for d in due.deliveries]
    time.sleep(2.2)
    from sharer.queue import control_queue

    rt.queue.app.send_task("sharer.dispatch", queue=control_queue(rt.settings))  # what beat sends every second
    settle(rt, ids, timeout=40)
    acc = rt.settings.account("wechat-main")  # a real cached token, through the platform client
    ctx = DeliveryContext(delivery_id="metrics-check", account=acc, session=rt.session, timeout=5, redis=rt.redis,
                          keys=rt.keys, media_rewrite={})
    get_platform("wechat")(acc).access_token(ctx)
    return ids


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(got.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in:\n{text}")


def test_worker_and_web_metrics_show_every_metric_and_the_real_numbers(metered, emulators):
    rt, worker, port, config = metered
    ids = _traffic(rt, emulators)

    scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    for name in NAMES:
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')} counter" in text, name
    # counted in the pool children, added up by the worker's endpoint
    assert _value(text, "sharer_deliveries_total", platform="webhook", status="delivered") == len(ids)
    assert _value(text, "sharer_delivery_errors_total", platform="webhook", kind="transient") >= 1
    assert _value(text, "sharer_delivery_errors_total", platform="webhook", kind="rate_limited") >= 1
    assert _value(text, "sharer_platform_rate_limited_total", platform="webhook") >= 1
    assert _value(text, "sharer_limiter_deferred_total", platform="webhook") >= 1
    assert _value(text, "sharer_delivery_attempts_total", platform="webhook") >= len(ids) + 2
    assert _value(text, "sharer_dispatch_lag_seconds_count") == 1
    # read from Redis / the broker on scrape
    assert _value(text, "sharer_deliveries_in_status", status="delivered") == len(ids)
    assert _value(text, "sharer_records_watched", status="needs_review") == 0
    assert _value(text, "sharer_records_watched", status="awaiting_approval") == 0
    assert _value(text, "sharer_queue_depth", queue=rt.settings.queue) == 0
    assert 3000 < _value(text, "sharer_token_expiry_seconds", account="wechat-main") <= 7200

    from sharer.web.app import create_app

    app = create_app(load_settings(config))
    web = client(app)
    assert web.get("/metrics").status_code == 401  # [metrics] token set
    assert web.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    for name in NAMES:
        assert f"# TYPE {name}" in page.text or f"# TYPE {name.removesuffix('_total')} counter" in page.text, name
    assert _value(page.text, "sharer_deliveries_in_status", status="delivered") == len(ids)
    assert TOKEN not in page.text and TOKEN not in text


def test_json_logs_carry_the_delivery_share_and_actor_ids(metered, emulators):
    rt, worker, _, _ = metered
    [d] = service.share(rt, article(f"{secrets.token_hex(3)}j"), ["m-limited", ]).deliveries
    settle(rt, [d.id], timeout=20)
    wait_for(lambda: d.id in worker.output(), 10, "the worker to log the delivery")
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    mine = [x for x in lines if x.get("delivery") == d.id]
    assert mine, worker.output()[-2000:]
    assert all(x["share"] == d.share_id and x["actor"] == "worker" for x in mine if "share" in x)
    assert any(x.get("share") == d.share_id for x in mine)
    assert {"ts", "level", "logger", "message"} <= set(mine[0])


def test_the_grafana_dashboard_uses_only_metrics_we_export_and_every_one_of_them():
    from pathlib import Path

    from conftest import ROOT

    dash = json.loads((Path(ROOT) / "docs" / "grafana-sharer.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    used = set(re.findall(r"sharer_[a-z_]+", exprs))
    base = {u.removesuffix("_bucket") for u in used}
    assert base <= set(NAMES), base - set(NAMES)
    assert set(NAMES) <= base, set(NAMES) - base
