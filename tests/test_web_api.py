"""The HTTP API: every endpoint, every role, against the real worker, Redis and platform emulators."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
from conftest import EXAMPLES, inject, run_cli, sandbox_posts, wait_settled
from web_support import all_secrets, article_json, bearer, client

from sharer import service
from sharer.loaders import load_article

ARTICLE = EXAMPLES / "baic-catl.json"

READS = [("GET", "/api/me"), ("GET", "/api/shares"), ("GET", "/api/shares/sh_nope"), ("GET", "/api/accounts"),
         ("GET", "/api/schedule"), ("GET", "/api/deliveries/dl_nope"), ("GET", "/api/events"),
         ("POST", "/api/previews")]
WRITES = [("POST", "/api/shares"), ("PATCH", "/api/shares/sh_nope"), ("POST", "/api/shares/sh_nope/cancel"),
          ("POST", "/api/deliveries/dl_nope/retry"), ("POST", "/api/deliveries/dl_nope/cancel"),
          ("POST", "/api/deliveries/dl_nope/posted")]


def share_body(accounts, **extra):
    return {"article": article_json(ARTICLE), "accounts": accounts, **extra}


def test_anonymous_gets_401_on_every_api_endpoint(web_app):
    c = client(web_app)
    for method, path in READS + WRITES:
        r = c.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/me", headers={"Authorization": "Bearer shr_abc_wrong"}).status_code == 401
    assert c.get("/api/me", headers={"Authorization": "Basic ZWRpdG9yOng="}).status_code == 401


def test_viewer_reads_but_gets_403_on_every_write(web_app, viewer_token, viewer):
    c = client(web_app)
    assert c.get("/api/me", headers=viewer_token).json() == {"user": "viewer", "role": "viewer"}
    assert c.get("/api/shares", headers=viewer_token).status_code == 200
    assert c.get("/api/accounts", headers=viewer_token).status_code == 200
    for method, path in WRITES:
        r = c.request(method, path, json=share_body(["hook-a"]) if path == "/api/shares" else {},
                      headers=viewer_token)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert "viewer" in r.json()["detail"]
    # the same through the browser session (with its CSRF header)
    r = viewer.post("/api/shares", json=share_body(["hook-a"]), headers={"X-CSRF-Token": viewer.csrf})
    assert r.status_code == 403


def test_cookie_session_writes_need_the_csrf_header(editor):
    body = {"article": article_json(ARTICLE), "accounts": ["hook-a"]}
    assert editor.post("/api/previews", json=body).status_code == 403
    assert editor.post("/api/previews", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert editor.post("/api/previews", json=body, headers={"X-CSRF-Token": editor.csrf}).status_code == 200
    assert editor.get("/api/me").json()["role"] == "editor"  # reads need no token


def test_tokens_are_revocable_and_follow_the_users_config(web_app, web_env, tmp_path):
    c = client(web_app)
    proc = run_cli(["user", "token", "editor"], web_env)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("shr_") and "revoke-token" in proc.stderr
    headers = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/me", headers=headers).json()["user"] == "editor"
    listed = run_cli(["user", "list"], web_env)
    token_id = token[4:].split("_", 1)[0]
    assert token_id in listed.stdout and token not in listed.stdout and "viewer" in listed.stdout
    proc = run_cli(["user", "revoke-token", token_id], web_env)
    assert proc.returncode == 0 and "revoked" in proc.stdout
    assert c.get("/api/me", headers=headers).status_code == 401
    assert run_cli(["user", "revoke-token", token_id], web_env).returncode == 2
    assert run_cli(["user", "token", "nobody"], web_env).returncode == 2
    # a token whose user left the config no longer works
    headers = bearer(web_app, "leaver")
    web = web_app.state.web.web
    assert c.get("/api/me", headers=headers).status_code == 200
    saved = web.users
    object.__setattr__(web, "users", {k: v for k, v in saved.items() if k != "leaver"})
    try:
        assert c.get("/api/me", headers=headers).status_code == 401
    finally:
        object.__setattr__(web, "users", saved)


def test_user_add_prints_toml_and_never_writes_the_config(web_env, web_config):
    before = web_config.read_text()
    proc = run_cli(["user", "add", "carol", "--role", "viewer", "--password-stdin"], {**web_env}, timeout=60)
    assert proc.returncode == 2 and "password" in proc.stderr  # no input: empty password refused
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, "-m", "sharer.cli", "user", "add", "carol", "--role", "viewer",
                           "--password-stdin"], input="a-long-password\n", cwd=ROOT, env=web_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('[users.carol]\nrole = "viewer"\npassword_hash = "$argon2id$')
    assert "a-long-password" not in proc.stdout + proc.stderr
    assert web_config.read_text() == before


def test_previews_count_in_each_platforms_rules_and_report_over_limit_text(web_app, editor_token, runtime):
    c = client(web_app)
    body = share_body(["wechat-main", "weibo-main", "x-main"])
    r = c.post("/api/previews", json=body, headers=editor_token)
    assert r.status_code == 200, r.text
    posts = {p["account"]: p for p in r.json()["posts"]}
    expected = service.preview(runtime, load_article(str(ARTICLE)), ["wechat-main", "weibo-main", "x-main"])
    for post in expected:
        got = posts[post.account]
        assert {k: got[k] for k in ("text", "length", "limit", "unit", "payload")} == \
            {k: post.to_dict()[k] for k in ("text", "length", "limit", "unit", "payload")}
        assert got["error"] is None
    weibo_text = posts["weibo-main"]["text"]
    long_text = "很长的微博" * 40 + " " + weibo_text.split()[-1]
    r = c.post("/api/previews", json={**body, "texts": {"weibo-main": long_text}}, headers=editor_token)
    got = {p["account"]: p for p in r.json()["posts"]}
    assert got["weibo-main"]["error"] and got["weibo-main"]["length"] > got["weibo-main"]["limit"] == 140
    assert got["wechat-main"]["error"] is None  # the others are still previewed


def test_validation_errors_are_422_with_the_field(web_app, editor_token):
    c = client(web_app)
    bad = share_body(["hook-a"])
    bad["article"]["url"] = "ftp://example.com/x"
    r = c.post("/api/previews", json=bad, headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "article.url"
    r = c.post("/api/previews", json={"article": {"url": "https://e.com/a"}, "accounts": ["hook-a"]},
               headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "article.title"
    r = c.post("/api/shares", json=share_body(["nope"]), headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "accounts"
    assert "sharer-web.toml" not in r.text  # no config path in messages
    r = c.post("/api/shares", json=share_body(["hook-a"], at="next tuesday-ish"), headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "at"
    for query in ("status=sideways", "platform=myspace", "account=nope", "cursor=zzz", "since=yesterday",
                  "limit=0", "until=2026-13-45"):
        r = c.get(f"/api/shares?{query}", headers=editor_token)
        assert r.status_code == 422, (query, r.text)
    r = c.post("/api/shares", content=b"{not json", headers={**editor_token, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_share_delivers_and_reads_back_in_the_cli_contract(web_app, editor_token, viewer_token, runtime, worker,
                                                            emulators):
    c = client(web_app)
    r = c.post("/api/shares", json=share_body(["hook-a", "weibo-main"]), headers=editor_token)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["duplicate"] is False and len(created["deliveries"]) == 2
    wait_settled(runtime, created["share_id"])
    r = c.get(f"/api/shares/{created['share_id']}", headers=viewer_token)
    share = r.json()
    assert share["title"].startswith("BAIC GROUP") and share["created_at"].endswith("Z")
    assert [d["status"] for d in share["deliveries"]] == ["delivered", "delivered"]
    assert share["deliveries"] == [d.to_json() for d in service.status(runtime, created["share_id"])]
    one = share["deliveries"][0]
    assert c.get(f"/api/deliveries/{one['id']}", headers=viewer_token).json() == one
    assert len(sandbox_posts(emulators["weibo"])) == 1


def test_idempotency_key_returns_the_same_share(web_app, editor_token, runtime, worker):
    c = client(web_app)
    headers = {**editor_token, "Idempotency-Key": f"cms-{time.time()}"}
    first = c.post("/api/shares", json=share_body(["hook-b"]), headers=headers)
    again = c.post("/api/shares", json=share_body(["hook-b"]), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["share_id"] == first.json()["share_id"] and again.json()["duplicate"] is True
    wait_settled(runtime, first.json()["share_id"])


def test_list_filters_and_cursor_pages(web_app, editor_token, runtime, worker, emulators):
    c = client(web_app)
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=400, count=1, body={"error": "nope"})
    tag = f"Filterable {time.time()}"
    ids = []
    for i in range(3):
        art = article_json(ARTICLE) | {"title": f"{tag} #{i}"}
        r = c.post("/api/shares", json={"article": art, "accounts": ["hook-b" if i == 0 else "hook-a"]},
                   headers=editor_token)
        ids.append(r.json()["share_id"])
    for sid in ids:
        wait_settled(runtime, sid)
    out = c.get("/api/shares", params={"q": tag.lower()}, headers=editor_token).json()
    assert [s["share_id"] for s in out["shares"]] == ids[::-1]  # newest first
    assert set(out["counts"]) >= {"delivered", "failed", "scheduled", "needs_review", "retrying"}
    failed = c.get("/api/shares", params={"q": tag, "status": "failed"}, headers=editor_token).json()
    assert [s["share_id"] for s in failed["shares"]] == [ids[0]]
    by_account = c.get("/api/shares", params={"q": tag, "account": "hook-a"}, headers=editor_token).json()
    assert [s["share_id"] for s in by_account["shares"]] == ids[:0:-1]
    assert c.get("/api/shares", params={"q": tag, "platform": "weibo"}, headers=editor_token).json()["shares"] == []
    today = c.get("/api/shares", params={"q": tag, "since": time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())},
                  headers=editor_token).json()
    assert len(today["shares"]) == 3
    assert c.get("/api/shares", params={"q": tag, "until": "2001-01-01"}, headers=editor_token).json()["shares"] == []
    page1 = c.get("/api/shares", params={"q": tag, "limit": 2}, headers=editor_token).json()
    assert len(page1["shares"]) == 2 and page1["next_cursor"]
    page2 = c.get("/api/shares", params={"q": tag, "limit": 2, "cursor": page1["next_cursor"]},
                  headers=editor_token).json()
    assert [s["share_id"] for s in page2["shares"]] == [ids[0]] and page2["next_cursor"] is None


def test_retry_needs_review_confirmation_mark_posted_and_conflicts(web_app, editor_token, runtime, worker,
                                                                    emulators):
    c = client(web_app)
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=403, count=1, body={"error": "forbidden"})
    sid = c.post("/api/shares", json=share_body(["hook-a"]), headers=editor_token).json()["share_id"]
    [d] = wait_settled(runtime, sid)
    assert d.status == "failed"
    r = c.post(f"/api/deliveries/{d.id}/retry", headers=editor_token)
    assert r.status_code == 200 and r.json()["status"] in ("queued", "sending", "delivered")
    [d] = wait_settled(runtime, sid)
    assert d.status == "delivered"
    r = c.post(f"/api/deliveries/{d.id}/retry", headers=editor_token)
    assert r.status_code == 409 and "delivered" in r.json()["detail"]
    # needs_review (set directly: what the reconciler does when it cannot tell)
    sid = c.post("/api/shares", json=share_body(["hook-b"], force=True), headers=editor_token).json()["share_id"]
    [d] = wait_settled(runtime, sid)
    runtime.store.transition(d.id, "*", "needs_review", "test: cannot tell")
    r = c.post(f"/api/deliveries/{d.id}/retry", json={}, headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "confirm"
    r = c.post(f"/api/deliveries/{d.id}/posted", json={"url": "javascript:alert(1)"}, headers=editor_token)
    assert r.status_code == 422
    r = c.post(f"/api/deliveries/{d.id}/posted", json={"url": "https://example.com/p/1"}, headers=editor_token)
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    assert r.json()["post_url"] == "https://example.com/p/1"
    runtime.store.transition(d.id, "*", "needs_review", "test: again")
    r = c.post(f"/api/deliveries/{d.id}/retry", json={"confirm": True}, headers=editor_token)
    assert r.status_code == 200
    assert wait_settled(runtime, sid)[0].status == "delivered"
    for path in ("/api/deliveries/dl_nope/retry", "/api/deliveries/dl_nope/posted", "/api/deliveries/dl_nope/cancel",
                 "/api/shares/sh_nope/cancel", "/api/deliveries/sh_x/cancel"):
        assert c.post(path, json={}, headers=editor_token).status_code == 404, path
    assert c.patch("/api/shares/sh_nope", json={"at": "2030-01-01 09:00"}, headers=editor_token).status_code == 404
    assert c.get("/api/shares/sh_nope", headers=editor_token).status_code == 404


def test_schedule_reschedule_and_cancel(web_app, editor_token, viewer_token, runtime):
    c = client(web_app)
    day = date.today() + timedelta(days=20)
    r = c.post("/api/shares", json=share_body(["hook-a", "telegram-channel"], at=f"{day} 09:00",
                                              tz="Asia/Shanghai", force=True), headers=editor_token)
    assert r.status_code == 201, r.text
    sid = r.json()["share_id"]
    assert {d["status"] for d in r.json()["deliveries"]} == {"scheduled"}
    assert r.json()["deliveries"][0]["scheduled_for"] == f"{day}T01:00:00.000Z"
    listed = c.get("/api/schedule", headers=viewer_token).json()["deliveries"]
    assert {d["share_id"] for d in listed} >= {sid}
    later = day + timedelta(days=1)
    r = c.patch(f"/api/shares/{sid}", json={"at": f"{later}T10:30:00+00:00"}, headers=editor_token)
    assert r.status_code == 200, r.text
    assert {d["scheduled_for"] for d in r.json()["deliveries"]} == {f"{later}T10:30:00.000Z"}
    assert c.patch(f"/api/shares/{sid}", json={"at": "whenever"}, headers=editor_token).status_code == 422
    assert c.patch(f"/api/shares/{sid}", json={"at": f"{later} 10:00", "tz": "Mars/Base"},
                   headers=editor_token).status_code == 422
    r = c.post(f"/api/shares/{sid}/cancel", headers=editor_token)
    assert r.status_code == 200 and len(r.json()["cancelled"]) == 2 and r.json()["not_cancelled"] == {}
    r = c.patch(f"/api/shares/{sid}", json={"at": f"{later} 11:00"}, headers=editor_token)
    assert r.status_code == 409  # nothing left to move
    assert sid not in {d["share_id"] for d in c.get("/api/schedule", headers=viewer_token).json()["deliveries"]}


def test_accounts_show_limits_history_and_credential_checks_without_secrets(web_app, viewer_token, runtime, worker,
                                                                           emulators):
    c = client(web_app)
    service.share(runtime, load_article(str(ARTICLE)), ["hook-bad"], force=True)
    sid = service.share(runtime, load_article(str(ARTICLE)), ["hook-a"], force=True).share_id
    wait_settled(runtime, sid)
    time.sleep(0.5)
    runtime.redis.delete(*[runtime.keys.cache(a, "web-credential-check") for a in runtime.settings.accounts])
    r = c.get("/api/accounts?check=true", headers=viewer_token)
    assert r.status_code == 200
    rows = {a["name"]: a for a in r.json()["accounts"]}
    assert set(rows) == set(runtime.settings.accounts)
    assert rows["weibo-main"]["limit"] == 140 and rows["weibo-main"]["platform_title"]
    assert rows["hook-a"]["last_success"]["delivery_id"]
    assert rows["hook-bad"]["last_failure"]["error"]
    creds = {name: row["credentials"] for name, row in rows.items()}
    for name in ("wechat-main", "weibo-main", "telegram-channel", "mastodon-main", "x-main"):
        assert creds[name]["ok"] is True, (name, creds[name])
    assert creds["hook-a"] == {**creds["hook-a"], "ok": None, "message": "cannot check without posting"}
    assert creds["wechat-badsecret"]["ok"] is False and "re-authorise" in creds["wechat-badsecret"]["message"]
    assert creds["weibo-badtoken"]["ok"] is False
    for secret in all_secrets(runtime):
        assert secret not in r.text
    assert "sandbox-" not in r.text
    without = c.get("/api/accounts", headers=viewer_token).json()["accounts"]
    assert all(a["credentials"] is None for a in without)


def test_healthz_checks_redis_and_a_worker(web_app, worker):
    r = client(web_app).get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["redis"] is True and body["workers"]


def test_openapi_documents_every_endpoint(web_app):
    spec = client(web_app).get("/openapi.json").json()
    paths = spec["paths"]
    for method, path in READS + WRITES:
        templ = path.replace("sh_nope", "{share_id}").replace("dl_nope", "{delivery_id}")
        assert method.lower() in paths[templ], (method, templ)
    assert "Idempotency-Key" in json.dumps(paths["/api/shares"]["post"])
    assert "/login" not in paths and "/compose" not in paths
    assert spec["components"]["schemas"]["DeliveryOut"]["properties"]["status"]


@pytest.mark.parametrize("path", ["/shares", "/compose", "/schedule", "/accounts", "/shares/sh_x"])
def test_pages_redirect_anonymous_to_sign_in(web_app, path):
    r = client(web_app).get(path)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"


def test_next_free_slot(web_app, editor_token):
    c = client(web_app)
    r = c.post("/api/shares", json=share_body(["hook-slots"], next_slot=True, force=True), headers=editor_token)
    assert r.status_code == 201, r.text
    [d] = r.json()["deliveries"]
    assert d["status"] == "scheduled" and d["timezone"] == "Asia/Shanghai"
    assert d["scheduled_for"][11:16] in ("01:00", "04:30", "10:00")  # 09:00, 12:30, 18:00 in Shanghai
    r = c.post("/api/shares", json=share_body(["hook-a"], next_slot=True, force=True), headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "next_slot"
    r = c.post("/api/shares", json=share_body(["hook-slots"], next_slot=True, at="2030-01-01 09:00"),
               headers=editor_token)
    assert r.status_code == 422
    assert c.post(f"/api/shares/{d['share_id']}/cancel", headers=editor_token).json()["cancelled"] == [d["id"]]
