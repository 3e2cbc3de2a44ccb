"""A broker that is down: the share is stored as queued, the CLI and API say so, and the sweeper sends
each delivery exactly once when the broker is back. Real CLI, real worker, a closed port as the broker.
"""

from __future__ import annotations

import json
import time

from conftest import EXAMPLES, run_cli, sandbox_posts, wait_settled
from web_support import article_json

from sharer import service
from sharer.sweeper import STALE_QUEUED, sweep
from sharer.web.app import create_app


def test_cli_share_with_the_broker_down_is_sent_once_by_the_sweeper(base_env, runtime, worker, emulators,
                                                                    closed_port):
    env = {**base_env, "SHARER_BROKER_URL": f"redis://127.0.0.1:{closed_port}/0"}
    started = time.monotonic()
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a,hook-b", "--json"], env)
    assert time.monotonic() - started < 20
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "queued; the broker is down, the sweeper will send it" in proc.stderr
    share_id = json.loads(proc.stdout)["share_id"]
    ds = service.status(runtime, share_id)
    assert [d.status for d in ds] == ["queued", "queued"]
    assert all("cannot reach the Celery broker" in d.events[-1]["message"] for d in ds)
    ours = {d.id for d in ds}
    time.sleep(1)
    # nothing of this share went out meanwhile (the sweeps below, run as if a minute later, may also
    # send records other tests in this process left queued: those posts are theirs, not counted here)
    assert [p for p in sandbox_posts(emulators["webhook"]) if p["delivery"] in ours] == []

    # the broker is back (the worker's own); the sweeper finds the stale queued records, twice over
    for _ in range(2):
        sweep(runtime, now=time.time() + STALE_QUEUED + 1)
    ds = wait_settled(runtime, share_id)
    assert [d.status for d in ds] == ["delivered", "delivered"]
    time.sleep(0.5)
    sweep(runtime, now=time.time() + STALE_QUEUED + 1)
    posts = [p for p in sandbox_posts(emulators["webhook"]) if p["delivery"] in ours]
    assert sorted(p["delivery"] for p in posts) == sorted(d.id for d in ds)  # one post each, no more


def test_api_share_with_the_broker_down_says_so(web_config, runtime, base_env, tmp_path, closed_port):
    from web_support import bearer, client

    from sharer.config import load_settings

    cfg = tmp_path / "nobroker.toml"
    cfg.write_text(web_config.read_text())
    settings = load_settings(cfg, env={**base_env, "SHARER_BROKER_URL": f"redis://127.0.0.1:{closed_port}/0"})
    app = create_app(settings)
    body = {"article": article_json(EXAMPLES / "baic-catl.json"), "accounts": ["hook-a"], "force": True}
    r = client(app).post("/api/shares", json=body, headers=bearer(app, "editor"))
    assert r.status_code == 201, r.text
    assert any("the sweeper will send it" in w for w in r.json()["warnings"])
    assert [d["status"] for d in r.json()["deliveries"]] == ["queued"]
    service.cancel(runtime, r.json()["share_id"])  # leave nothing for the shared worker to send
