"""Sign-off on the web and the audit log: roles (403), four-eyes in the API and the dashboard, the
approvals queue, the diff of edited texts, and every write path — CLI and API — recording its actor."""

from __future__ import annotations

import json
import re
import time

import pytest
from approval_support import PASSWORD, hook_posts
from conftest import EXAMPLES, run_cli, wait_settled
from web_support import article_json, client

from sharer import service, workflow
from sharer.actor import Actor
from sharer.config import load_settings
from sharer.web.app import create_app
from sharer.web.users import Tokens

ARTICLE = EXAMPLES / "baic-catl.json"


@pytest.fixture(scope="module")
def app(appr_config, art):
    return create_app(load_settings(appr_config))


def sign_in(app, user: str):
    c = client(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)[1]
    r = c.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token, "next": "/"})
    assert r.status_code == 303, r.text
    c.csrf = re.search(r'<meta name="csrf-token" content="([^"]*)"', c.get("/shares").text)[1]
    return c


@pytest.fixture(scope="module")
def tokens(app):
    rt = app.state.web.rt
    store = Tokens(rt.redis, rt.settings.prefix)
    return {u: {"Authorization": f"Bearer {store.create(u, f'{u}-bot')[1]}"}
            for u in ("ed", "ed2", "chief", "chief2", "boss", "reader")}


def body(accounts, **kw):
    return {"article": article_json(ARTICLE), "accounts": accounts, "force": True, **kw}


def _new_share(c, who, accounts=("gated-a",)):
    r = c.post("/api/shares", json=body(list(accounts)), headers=who)
    assert r.status_code == 201, r.text
    return r.json()["share_id"]


def test_each_role_gets_403_on_what_it_may_not_do(app, tokens, art, appr_worker):
    c = client(app)
    sid = _new_share(c, tokens["ed"])
    forbidden = {
        "reader": [("POST", "/api/shares", body(["hook-a"])), ("POST", f"/api/shares/{sid}/approve", {}),
                   ("POST", f"/api/shares/{sid}/reject", {"reason": "no"}), ("POST", f"/api/shares/{sid}/cancel", None),
                   ("GET", "/api/audit", None), ("GET", "/api/tokens", None),
                   ("POST", "/api/tokens", {"user": "reader"})],
        "ed": [("POST", f"/api/shares/{sid}/approve", {}), ("POST", f"/api/shares/{sid}/reject", {"reason": "x"}),
               ("GET", "/api/audit", None), ("GET", "/api/tokens", None), ("POST", "/api/tokens", {"user": "ed"})],
        "chief": [("GET", "/api/tokens", None), ("POST", "/api/tokens", {"user": "chief"}),
                  ("DELETE", "/api/tokens/abc123", None)],
    }
    for user, calls in forbidden.items():
        for method, path, payload in calls:
            r = c.request(method, path, json=payload, headers=tokens[user])
            assert r.status_code == 403, (user, method, path, r.text)
            assert "only" in r.json()["detail"]
    assert service.status(art, sid)[0].status == "awaiting_approval"  # nothing moved
    # what each may do
    assert c.get("/api/approvals", headers=tokens["reader"]).json()["count"] >= 1
    rows = {a["name"]: a for a in c.get("/api/accounts", headers=tokens["reader"]).json()["accounts"]}
    assert rows["gated-a"]["requires_approval"] and not rows["hook-a"]["requires_approval"]
    assert c.get("/api/audit", headers=tokens["chief"]).status_code == 200
    assert c.post(f"/api/shares/{sid}/approve", json={}, headers=tokens["chief"]).status_code == 200
    made = c.post("/api/tokens", json={"user": "ed", "name": "cms"}, headers=tokens["boss"])
    assert made.status_code == 201 and made.json()["token"].startswith("shr_")
    assert any(t["name"] == "cms" for t in c.get("/api/tokens", headers=tokens["boss"]).json())
    assert c.delete(f"/api/tokens/{made.json()['id']}", headers=tokens["boss"]).status_code == 204
    # pages
    pages = {"reader": [("GET", "/compose"), ("GET", "/audit"), ("POST", f"/shares/{sid}/approve"),
                        ("POST", f"/shares/{sid}/resubmit")],
             "ed": [("GET", "/audit"), ("POST", f"/shares/{sid}/approve"), ("POST", f"/shares/{sid}/reject")]}
    for user, calls in pages.items():
        s = sign_in(app, user)
        for method, path in calls:
            r = s.request(method, path, data={"csrf_token": s.csrf, "reason": "x"})
            assert r.status_code == 403, (user, path, r.status_code)
    assert sign_in(app, "chief").get("/audit").status_code == 200


def test_four_eyes_in_the_api_and_the_dashboard_and_the_approved_edit_is_sent(app, tokens, art, appr_worker,
                                                                            emulators):
    c = client(app)
    sid = _new_share(c, tokens["chief"], ("gated-a", "gated-b"))
    r = c.post(f"/api/shares/{sid}/approve", json={}, headers=tokens["chief"])
    assert r.status_code == 403 and "another approver" in r.json()["detail"]
    chief = sign_in(app, "chief")
    page = chief.get(f"/shares/{sid}").text
    assert "another approver must decide" in page and f'action="/shares/{sid}/approve"' not in page
    r = chief.post(f"/shares/{sid}/approve", data={"csrf_token": chief.csrf})
    assert r.status_code == 403 and "another approver" in r.text
    assert {d.status for d in service.status(art, sid)} == {"awaiting_approval"}
    # the queue, with its count in the header
    chief2 = sign_in(app, "chief2")
    queue = chief2.get("/approvals").text
    assert sid in queue and re.search(r'id="approvals-count">\d+<', queue)
    page = chief2.get(f"/shares/{sid}").text
    assert f'action="/shares/{sid}/approve"' in page and 'name="text.gated-b"' in page
    texts = {d.account: d.post["text"] for d in service.status(art, sid)}
    edited = texts["gated-b"].replace("BAIC", "北汽")
    r = chief2.post(f"/shares/{sid}/approve", data={"csrf_token": chief2.csrf, "version": "1",
                                                     "text.gated-a": texts["gated-a"],
                                                     "text.gated-b": edited.replace("\n", "\r\n")})
    assert r.status_code == 303, r.text
    ds = {d.account: d for d in wait_settled(art, sid)}
    assert ds["gated-b"].status == ds["gated-a"].status == "delivered"
    assert [p["body"]["text"] for p in hook_posts(emulators, "gated-b")] == [edited]
    assert ds["gated-b"].approval.edited and not ds["gated-a"].approval.edited
    page = chief2.get(f"/shares/{sid}").text
    assert "<del>BAIC</del><ins>北汽</ins>" in page and "approved by chief2" in page
    # the same share approved again: 409, names who did it
    r = c.post(f"/api/shares/{sid}/approve", json={}, headers=tokens["chief"])
    assert r.status_code == 409 and "already approved by chief2" in r.json()["detail"]


def test_the_submitter_sees_the_reason_and_resubmits_from_the_dashboard(app, tokens, art, appr_worker, emulators):
    c = client(app)
    sid = _new_share(c, tokens["ed"])
    chief = sign_in(app, "chief")
    assert chief.post(f"/shares/{sid}/reject", data={"csrf_token": chief.csrf, "reason": ""}).status_code == 422
    r = chief.post(f"/shares/{sid}/reject", data={"csrf_token": chief.csrf, "reason": "<b>wrong</b> figure"})
    assert r.status_code == 303
    ed = sign_in(app, "ed")
    page = ed.get(f"/shares/{sid}").text
    assert "Rejected: &lt;b&gt;wrong&lt;/b&gt; figure" in page  # escaped
    assert f'action="/shares/{sid}/resubmit"' in page and "Resubmit as version 2" in page
    revised = "Revised: BAIC and CATL https://example.com/r"
    r = ed.post(f"/shares/{sid}/resubmit", data={"csrf_token": ed.csrf, "text.gated-a": revised, "note": "fixed"})
    assert r.status_code == 303
    [d] = service.status(art, sid)
    assert d.status == "awaiting_approval" and d.approval.version == 2
    page = chief.get(f"/shares/{sid}").text
    assert "Revised since version 1:" in page and "<ins>" in page and "— ed</span>" in page  # who did each step
    r = c.post(f"/api/shares/{sid}/approve", json={"version": 1}, headers=tokens["chief"])
    assert r.status_code == 409 and "version 2" in r.json()["detail"]
    r = c.post(f"/api/shares/{sid}/approve", json={"version": 2}, headers=tokens["chief"])
    assert r.status_code == 200
    assert wait_settled(art, sid)[0].status == "delivered"
    assert [p["body"]["text"] for p in hook_posts(emulators, "gated-a")] == [revised]
    r = c.post(f"/api/shares/{sid}/reject", json={"reason": ""}, headers=tokens["chief"])
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    # an editor cancels a share still waiting for sign-off from its page
    sid = _new_share(c, tokens["ed2"])
    page = ed.get(f"/shares/{sid}").text
    assert "Cancel what is waiting" in page and 'action="/deliveries/' not in page.split('id="deliveries"')[1]
    r = ed.post(f"/shares/{sid}/cancel", data={"csrf_token": ed.csrf, "back": f"/shares/{sid}"})
    assert r.status_code == 303 and service.status(art, sid)[0].status == "cancelled"
    assert c.post(f"/api/shares/{sid}/approve", json={}, headers=tokens["chief"]).status_code == 409


def _marker(art) -> str:
    latest = art.audit.latest(1)
    return latest[0].id if latest else "0-0"


def _since(art, marker: str):
    from sharer.store.audit import AuditEntry

    rows = art.redis.xrange(art.keys.audit, min=f"({marker}", max="+")
    return [AuditEntry.from_stream(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]


def test_every_cli_command_and_api_write_records_one_audit_entry_naming_its_actor(
        app, tokens, art, appr_worker, appr_env):
    cli_actor = Actor.cli().name
    checked: list[str] = []

    def expect(action: str, actor: str, run):
        marker = _marker(art)
        out = run()
        entries = _since(art, marker)
        assert [(e.action, e.actor) for e in entries] == [(action, actor)], (action, entries)
        checked.append(action)
        return out

    def cli(*args):
        proc = run_cli(list(args), appr_env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # --- the CLI ----------------------------------------------------------------------------------
    out = expect("share", cli_actor, lambda: cli("share", str(ARTICLE), "--to", "hook-a", "--force", "--json"))
    sid = json.loads(out)["share_id"]
    wait_settled(art, sid)
    later = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 86400 * 3))
    out = expect("share", cli_actor, lambda: cli("share", str(ARTICLE), "--to", "hook-b", "--at", later, "--tz",
                                                 "UTC", "--force", "--json"))
    scheduled = json.loads(out)["share_id"]
    later2 = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 86400 * 4))
    expect("reschedule", cli_actor, lambda: cli("schedule", "move", scheduled, "--at", later2, "--tz", "UTC"))
    expect("cancel", cli_actor, lambda: cli("cancel", scheduled))
    bad = service.share(art, service_article(), ["hook-bad"], force=True, actor=Actor.web("ed"))
    [failed] = wait_settled(art, bad.share_id)
    assert failed.status == "failed"
    expect("retry", cli_actor, lambda: cli("retry", failed.id))
    wait_settled(art, bad.share_id)
    [delivered] = service.status(art, sid)
    art.store.transition(delivered.id, "*", "needs_review", "test: cannot tell")
    expect("posted", cli_actor, lambda: cli("posted", delivered.id, "--url", "https://example.com/p/9"))
    gated = service.share(art, service_article(), ["gated-a"], force=True, actor=Actor.web("ed")).share_id
    expect("reject", cli_actor, lambda: cli("reject", gated, "--reason", "not yet"))
    expect("resubmit", cli_actor, lambda: cli("resubmit", gated, "--text", "gated-a=Second try https://e.com/2"))
    expect("approve", "chief", lambda: workflow.approve(art, gated, actor=Actor.web("chief")))
    gated2 = service.share(art, service_article(), ["gated-b"], force=True, actor=Actor.web("ed")).share_id
    expect("approve", cli_actor, lambda: cli("approve", gated2, "--text", "gated-b=Edited https://e.com/3"))
    out = expect("token_create", cli_actor, lambda: run_cli(["user", "token", "ed", "--name", "cli-made"], appr_env))
    token_id = re.search(r"revoke-token (\w+)", out.stderr)[1]
    expect("token_revoke", cli_actor, lambda: cli("user", "revoke-token", token_id))
    expect("preview_sent", cli_actor, lambda: cli("preview", str(ARTICLE), "--to", "wechat-main", "--send-to",
                                                  "editor-wx"))
    expect("sweep", cli_actor, lambda: cli("sweep"))
    expect("purge", cli_actor, lambda: cli("purge"))

    # --- the API (token actors) and the dashboard (session actors) ---------------------------------
    c = client(app)
    ed, chief, boss = tokens["ed"], tokens["chief"], tokens["boss"]
    api_ed, api_chief, api_boss = "ed (token ed-bot)", "chief (token chief-bot)", "boss (token boss-bot)"
    r = expect("share", api_ed, lambda: c.post("/api/shares", json=body(["hook-a"]), headers=ed))
    sid = r.json()["share_id"]
    [d] = wait_settled(art, sid)
    art.store.transition(d.id, "*", "needs_review", "test: cannot tell")
    expect("retry", api_ed, lambda: c.post(f"/api/deliveries/{d.id}/retry", json={"confirm": True}, headers=ed))
    wait_settled(art, sid)
    art.store.transition(d.id, "*", "needs_review", "test: again")
    expect("posted", api_ed, lambda: c.post(f"/api/deliveries/{d.id}/posted", json={}, headers=ed))
    r = expect("share", api_ed, lambda: c.post("/api/shares", json=body(["hook-b"], at=later, tz="UTC"), headers=ed))
    sched = r.json()["share_id"]
    expect("reschedule", api_ed, lambda: c.patch(f"/api/shares/{sched}", json={"at": later2, "tz": "UTC"},
                                                 headers=ed))
    [sd] = service.status(art, sched)
    expect("cancel", api_ed, lambda: c.post(f"/api/deliveries/{sd.id}/cancel", headers=ed))
    r = expect("share", api_ed, lambda: c.post("/api/shares", json=body(["gated-a"]), headers=ed))
    g = r.json()["share_id"]
    expect("reject", api_chief, lambda: c.post(f"/api/shares/{g}/reject", json={"reason": "no"}, headers=chief))
    expect("resubmit", api_ed, lambda: c.post(f"/api/shares/{g}/resubmit", json={}, headers=ed))
    expect("approve", api_chief, lambda: c.post(f"/api/shares/{g}/approve", json={}, headers=chief))
    r = expect("share", api_ed, lambda: c.post("/api/shares", json=body(["gated-b"]), headers=ed))
    expect("cancel", api_ed, lambda: c.post(f"/api/shares/{r.json()['share_id']}/cancel", headers=ed))
    r = expect("token_create", api_boss, lambda: c.post("/api/tokens", json={"user": "ed"}, headers=boss))
    expect("token_revoke", api_boss, lambda: c.delete(f"/api/tokens/{r.json()['id']}", headers=boss))
    expect("preview_sent", api_ed, lambda: c.post("/api/previews/phone", json={
        "article": article_json(ARTICLE), "accounts": ["wechat-main"], "send_to": "editor-wx"}, headers=ed))
    s = expect("sign_in", "ed2", lambda: sign_in(app, "ed2"))
    expect("sign_out", "ed2", lambda: s.post("/logout", data={"csrf_token": s.csrf}))
    assert set(checked) >= {"share", "approve", "reject", "resubmit", "retry", "cancel", "reschedule", "posted",
                            "sign_in", "sign_out", "token_create", "token_revoke", "sweep", "purge", "preview_sent"}
    # the audit log as users read it: CLI --json, the API, the page
    out = json.loads(cli("audit", "--actor", "chief", "--json", "--limit", "5"))
    assert out["entries"] and all(e["user"] == "chief" for e in out["entries"])
    r = c.get("/api/audit", params={"share": g}, headers=chief).json()
    assert [e["action"] for e in r["entries"]] == ["approve", "resubmit", "reject", "share"]
    assert "ed (token ed-bot)" in sign_in(app, "chief").get("/audit", params={"share": g}).text


def service_article():
    from sharer.loaders import load_article

    return load_article(str(ARTICLE))
