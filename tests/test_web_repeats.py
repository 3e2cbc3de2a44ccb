"""Repeat protection through the HTTP API: Idempotency-Key per user (409 on a different request naming the
first share), per-account duplicates with ``duplicate_of``, and the no-dispatcher warning."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import EXAMPLES, sandbox_posts, wait_settled
from web_support import article_json, bearer, client

from sharer import service
from sharer.config import load_settings
from sharer.web.app import create_app


@pytest.fixture(scope="module")
def dup_app(web_config, tmp_path_factory, runtime):
    path = tmp_path_factory.mktemp("dupweb") / "sharer-web.toml"
    path.write_text(web_config.read_text().replace("duplicate_window_hours = 0", "duplicate_window_hours = 1"))
    return create_app(load_settings(path))


def _article(**extra) -> dict:
    return article_json(EXAMPLES / "baic-catl.json") | {"url": f"https://news.example.com/en/api-{time.time_ns()}"} \
        | extra


def test_idempotency_keys_belong_to_a_user_and_a_different_request_is_409(dup_app, runtime, worker):
    c = client(dup_app)
    editor, other = bearer(dup_app, "editor"), bearer(dup_app, "locky")
    key = f"cms-{time.time_ns()}"
    body = {"article": _article(), "accounts": ["hook-a"]}
    first = c.post("/api/shares", json=body, headers={**editor, "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    sid = first.json()["share_id"]
    again = c.post("/api/shares", json=body, headers={**editor, "Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["share_id"] == sid and again.json()["duplicate"] is True

    changed = c.post("/api/shares", json={**body, "article": _article()}, headers={**editor, "Idempotency-Key": key})
    assert changed.status_code == 409
    assert changed.json()["detail"] == (f"already used for share {sid} with a different request (article, "
                                        "accounts, texts or time differ); use a new key")
    more = c.post("/api/shares", json={**body, "accounts": ["hook-a", "hook-b"]},
                  headers={**editor, "Idempotency-Key": key})
    assert more.status_code == 409 and sid in more.json()["detail"]

    # Another user's identical key is theirs: a new share (here: hook-b, as hook-a already had the article).
    theirs = c.post("/api/shares", json={**body, "accounts": ["hook-b"]}, headers={**other, "Idempotency-Key": key})
    assert theirs.status_code == 201 and theirs.json()["share_id"] != sid
    for s in (sid, theirs.json()["share_id"]):
        wait_settled(runtime, s)


def test_an_account_that_already_had_the_article_is_reported_with_duplicate_of(dup_app, runtime, worker,
                                                                              emulators):
    c = client(dup_app)
    editor = bearer(dup_app, "editor")
    art = _article()
    first = c.post("/api/shares", json={"article": art, "accounts": ["hook-a"]}, headers=editor).json()
    [d1] = wait_settled(runtime, first["share_id"])
    r = c.post("/api/shares", json={"article": art, "accounts": ["hook-a", "hook-b"]}, headers=editor)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["duplicate"] is False and out["warnings"] == []
    a, b = out["deliveries"]
    assert a["account"] == "hook-a" and a["id"] == d1.id
    assert a["duplicate_of"] == {"share_id": first["share_id"], "delivery_id": d1.id, "status": "delivered",
                                 "post_url": d1.post_url, "created_at": d1.created_at}
    assert b["account"] == "hook-b" and b["duplicate_of"] is None and b["share_id"] == out["share_id"]
    wait_settled(runtime, out["share_id"])
    assert [p["path"] for p in sandbox_posts(emulators["webhook"])].count("/hooks/a") == 1

    # A corrected summary is a new article; everything a duplicate: 200, nothing new written.
    same = c.post("/api/shares", json={"article": art, "accounts": ["hook-a", "hook-b"]}, headers=editor)
    assert same.status_code == 200 and same.json()["duplicate"] is True
    assert all(d["duplicate_of"] for d in same.json()["deliveries"])
    fixed = c.post("/api/shares", json={"article": art | {"summary": "Corrected."}, "accounts": ["hook-a"]},
                   headers=editor)
    assert fixed.status_code == 201 and fixed.json()["deliveries"][0]["duplicate_of"] is None
    wait_settled(runtime, fixed.json()["share_id"])


def test_scheduling_without_a_dispatcher_says_so_in_the_api(dup_app, runtime):
    runtime.redis.delete(runtime.keys.dispatcher_heartbeat)
    c = client(dup_app)
    at = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    r = c.post("/api/shares", json={"article": _article(), "accounts": ["hook-a"], "at": at},
               headers=bearer(dup_app, "editor"))
    assert r.status_code == 201, r.text
    [warning] = r.json()["warnings"]
    assert warning.startswith("no dispatcher has run yet: scheduled posts go out only while `celery -A tasks beat`")
    service.cancel(runtime, r.json()["share_id"])


def test_the_reason_for_a_status_reads_the_same_in_the_cli_the_api_and_the_dashboard(dup_app, runtime, base_env):
    import json
    import re

    from conftest import run_cli
    from web_support import sign_in

    from sharer.loaders import load_article
    from sharer.scheduler import dispatch_due

    art = load_article(str(EXAMPLES / "baic-catl.json"))
    due = datetime.now(UTC) + timedelta(minutes=10)
    r = service.share(runtime, art, ["hook-b"], at=due.isoformat(), force=True)
    dispatch_due(runtime, at=due.timestamp() + 20 * 60)  # released 20 min late
    did = r.deliveries[0].id
    cli = json.loads(run_cli(["status", did, "--json"], base_env).stdout)["deliveries"][0]
    assert cli["status"] == "needs_review" and "slot by 20 min" in cli["note"]
    api = client(dup_app).get(f"/api/shares/{r.share_id}", headers=bearer(dup_app, "viewer")).json()
    assert api["deliveries"][0]["note"] == cli["note"] and api["deliveries"][0]["status"] == "needs_review"
    page = sign_in(dup_app, "viewer").get(f"/shares/{r.share_id}").text
    shown = re.sub(r"\s+", " ", page.replace("&#39;", "'").replace("&amp;", "&"))
    assert cli["note"] in shown and "needs_review" in shown


def test_a_cli_key_and_an_api_key_never_collide(dup_app, runtime, base_env, tmp_path, worker):
    import json

    from conftest import run_cli

    art = _article()
    path = tmp_path / "a.json"
    path.write_text(json.dumps(art))
    key = f"cron-{time.time_ns()}"
    cli = run_cli(["share", str(path), "--to", "hook-a", "--idempotency-key", key, "--json"], base_env)
    assert cli.returncode == 0, cli.stderr
    api = client(dup_app).post("/api/shares", json={"article": art, "accounts": ["hook-b"]},
                               headers={**bearer(dup_app, "editor"), "Idempotency-Key": key})
    assert api.status_code == 201, api.text  # the OS user's key is not the dashboard user's
    assert api.json()["share_id"] != json.loads(cli.stdout)["share_id"]
    for sid in (api.json()["share_id"], json.loads(cli.stdout)["share_id"]):
        wait_settled(runtime, sid)
