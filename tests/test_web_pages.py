"""The pages: sign-in, CSRF, roles, escaping, compose/load/submit, detail actions, schedule, accounts, and
the settings that keep a demo install on loopback."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date, timedelta

import pytest
from conftest import EXAMPLES, inject, run_cli, wait_settled
from web_support import PASSWORDS, all_secrets, client, csrf_of, users_toml

from sharer import service
from sharer.config import load_settings
from sharer.errors import ConfigError
from sharer.loaders import load_article
from sharer.web.app import create_app

ARTICLE = EXAMPLES / "baic-catl.json"
XSS = "<script>alert(1)</script> & <b>bold</b>"


def login_form(c) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)[1]


def test_sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it(web_app):
    c = client(web_app, "https://testserver")
    token = login_form(c)
    r = c.post("/login", data={"username": "editor", "password": PASSWORDS["editor"], "csrf_token": token,
                               "next": "/schedule"})
    assert r.status_code == 303 and r.headers["location"] == "/schedule"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    session = c.cookies.get("sharer_session")
    page = c.get("/shares")
    assert page.status_code == 200 and "editor" in page.text
    assert c.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert c.post("/logout", data={"csrf_token": csrf_of(page.text)}).status_code == 303
    replay = client(web_app, "https://testserver")
    replay.cookies.set("sharer_session", session)
    assert replay.get("/shares").status_code == 303  # the old cookie is dead
    plain = client(web_app)  # plain http (a loopback demo): no Secure flag, or the cookie would be dropped
    r = plain.post("/login", data={"username": "editor", "password": PASSWORDS["editor"],
                                   "csrf_token": login_form(plain), "next": "/"})
    assert "secure" not in r.headers["set-cookie"].lower()
    assert client(web_app).post("/login", data={"username": "editor", "password": PASSWORDS["editor"],
                                                "next": "/"}).status_code == 403  # no login CSRF token


def test_next_is_never_an_open_redirect(web_app):
    c = client(web_app)
    r = c.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"], "csrf_token": login_form(c),
                               "next": "//evil.example/x"})
    assert r.headers["location"] == "/shares"


def test_login_attempts_are_rate_limited_per_user_and_address(web_app):
    c = client(web_app)
    for _ in range(5):
        r = c.post("/login", data={"username": "locky", "password": "nope", "csrf_token": login_form(c)})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = c.post("/login", data={"username": "locky", "password": PASSWORDS["locky"], "csrf_token": login_form(c)})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    ok = client(web_app)  # another user from the same address is not locked out
    assert ok.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"],
                                   "csrf_token": login_form(ok)}).status_code == 303
    r = c.post("/login", data={"username": "ghost", "password": "x", "csrf_token": login_form(c)})
    assert r.status_code == 401  # unknown users look the same as wrong passwords


def test_viewer_cannot_compose_or_act(viewer, runtime, worker):
    assert viewer.get("/compose").status_code == 403
    sid = service.share(runtime, load_article(str(ARTICLE)), ["hook-a"], force=True).share_id
    [d] = wait_settled(runtime, sid)
    page = viewer.get(f"/shares/{sid}")
    assert page.status_code == 200 and "/retry" not in page.text and "/cancel" not in page.text
    for path in ("/compose", f"/deliveries/{d.id}/retry", f"/shares/{sid}/cancel", f"/shares/{sid}/reschedule"):
        assert viewer.post(path, data={"csrf_token": viewer.csrf}).status_code == 403, path


def test_forms_need_the_csrf_token(editor):
    for path in ("/compose", "/compose/load", "/logout", "/deliveries/dl_x/retry", "/shares/sh_x/cancel"):
        assert editor.post(path, data={"title": "x"}).status_code == 403, path


def test_article_text_is_escaped_on_every_page(editor, viewer, runtime, worker):
    art = load_article(str(ARTICLE))
    from dataclasses import replace

    sid = service.share(runtime, replace(art, title=XSS), ["hook-a", "weibo-main"], force=True).share_id
    wait_settled(runtime, sid)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    for c, path in ((viewer, f"/shares/{sid}"), (viewer, "/shares?q=alert(1)"), (editor, f"/shares/{sid}/deliveries")):
        text = c.get(path).text
        assert "<script>alert" not in text and "<b>bold" not in text, path
    assert escaped in viewer.get(f"/shares/{sid}").text
    assert escaped in viewer.get("/shares?q=alert(1)").text


def test_compose_load_upload_and_url_errors(editor):
    with open(ARTICLE, "rb") as fh:
        r = editor.post("/compose/load", data={"csrf_token": editor.csrf},
                        files={"file": ("baic-catl.json", fh, "application/json")})
    assert r.status_code == 200
    assert 'value="BAIC GROUP and CATL established' in r.text
    assert "https://news.example.com/images/2023/03/13/signing-ceremony.jpg" in r.text
    txt = (EXAMPLES / "baic-catl-page.txt").read_bytes()
    r = editor.post("/compose/load", data={"csrf_token": editor.csrf}, files={"file": ("page.txt", txt, "text/plain")})
    assert r.status_code == 422 and "a .txt article needs" in r.text
    r = editor.post("/compose/load", data={"csrf_token": editor.csrf, "source_url": "https://news.example.com/a"},
                    files={"file": ("page.txt", txt, "text/plain")})
    assert r.status_code == 200 and 'value="https://news.example.com/a"' in r.text
    r = editor.post("/compose/load", data={"csrf_token": editor.csrf},
                    files={"file": ("bad.json", b'{"url": "https://e.com/a"}', "application/json")})
    assert r.status_code == 422 and "title" in r.text and "/tmp" not in r.text
    r = editor.post("/compose/load", data={"csrf_token": editor.csrf},
                    files={"file": ("notes.docx", b"PK", "application/octet-stream")})
    assert r.status_code == 422 and "unknown article format" in r.text


def _compose_data(editor, **extra) -> dict:
    art = load_article(str(ARTICLE)).to_dict()
    data = {"csrf_token": editor.csrf, "idempotency_key": secrets.token_hex(8),
            "title": art["title"], "url": art["url"], "summary": art["summary"], "body_html": art["body_html"],
            "image": art["image"], "author": art["author"], "tags": ", ".join(art["tags"]),
            "published_at": art["published_at"], "lang": art["lang"], "when": "now", "tz": "Asia/Shanghai"}
    data.update(extra)
    return data


def test_compose_submit_shares_and_over_limit_text_is_refused(editor, runtime, worker):
    [post] = service.preview(runtime, load_article(str(ARTICLE)), ["weibo-main"])
    long_text = "太长了" * 60 + post.text  # keeps the article link Weibo requires
    r = editor.post("/compose", data=_compose_data(editor, accounts=["weibo-main"], force="1",
                                                   **{"text.weibo-main": long_text}))
    assert r.status_code == 422 and "weibo-main" in r.text and "limit is 140" in r.text
    kept = json.loads(re.search(r'id="initial-texts">(.*?)</script>', r.text)[1])
    assert kept == {"weibo-main": long_text}  # the editor's text is kept in the form
    # the form alone never sends: it shows what will happen (accounts, how, when) and asks to confirm
    before = service.counts(runtime)
    data = _compose_data(editor, accounts=["hook-a", "weibo-main"], force="1")
    r = editor.post("/compose", data=data)
    assert r.status_code == 200 and 'id="confirm-btn"' in r.text and "now, as soon as you confirm" in r.text
    assert 'data-account="hook-a"' in r.text and 'data-account="weibo-main"' in r.text
    assert service.counts(runtime) == before
    confirm = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text))
    assert confirm["idempotency_key"] == data["idempotency_key"] and confirm["csrf_token"] == editor.csrf
    r = editor.post("/compose", data={**data, "step": "confirm"})
    assert r.status_code == 303 and r.headers["location"].startswith("/shares/sh_")
    sid = r.headers["location"].rsplit("/", 1)[1]
    ds = wait_settled(runtime, sid)
    assert [d.status for d in ds] == ["delivered", "delivered"]
    page = editor.get(f"/shares/{sid}").text
    assert page.count('class="post-link"') == 2 and 'data-status="delivered"' in page
    r = editor.post("/compose", data=_compose_data(editor, accounts=[]))
    assert r.status_code == 422 and "choose at least one account" in r.text
    r = editor.post("/compose", data=_compose_data(editor, accounts=["hook-slots"], when="next_slot", force="1",
                                                   step="confirm"))
    assert r.status_code == 303
    [d] = service.status(runtime, r.headers["location"].rsplit("/", 1)[1])
    assert d.status == "scheduled"
    service.cancel(runtime, d.share_id)
    day = date.today() + timedelta(days=3)
    r = editor.post("/compose", data=_compose_data(editor, accounts=["hook-a"], when="at", at=f"{day}T07:30",
                                                   tz="Europe/Paris", force="1", step="confirm"))
    assert r.status_code == 303
    [d] = service.status(runtime, r.headers["location"].rsplit("/", 1)[1])
    assert d.status == "scheduled" and d.timezone == "Europe/Paris"
    service.cancel(runtime, d.share_id)
    r = editor.post("/compose", data=_compose_data(editor, accounts=["hook-a"], when="at", at=""))
    assert r.status_code == 422 and "give a date and time" in r.text


def test_share_detail_actions(editor, runtime, worker, emulators):
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=403, count=1, body={"error": "forbidden"})
    sid = service.share(runtime, load_article(str(ARTICLE)), ["hook-a"], force=True).share_id
    [d] = wait_settled(runtime, sid)
    page = editor.get(f"/shares/{sid}").text
    assert f'action="/deliveries/{d.id}/retry"' in page and "forbidden" in page
    r = editor.post(f"/deliveries/{d.id}/retry", data={"csrf_token": editor.csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/shares/{sid}"
    [d] = wait_settled(runtime, sid)
    assert d.status == "delivered"
    runtime.store.transition(d.id, "*", "needs_review", "test: cannot tell")
    page = editor.get(f"/shares/{sid}").text
    assert 'name="confirm" value="1" required' in page and "Mark as reviewed" in page
    r = editor.post(f"/deliveries/{d.id}/retry", data={"csrf_token": editor.csrf})
    assert r.status_code == 409 and "confirm" in r.text
    r = editor.post(f"/deliveries/{d.id}/posted", data={"csrf_token": editor.csrf, "url": ""})
    assert r.status_code == 303 and service.delivery(runtime, d.id).status == "delivered"
    r = editor.post(f"/deliveries/{d.id}/cancel", data={"csrf_token": editor.csrf})
    assert r.status_code == 303  # nothing to cancel: the page says what it is
    assert editor.get("/shares/sh_nope").status_code == 404


def test_shares_page_counts_filters_and_pager(editor, runtime):
    page = editor.get("/shares")
    for status in ("delivered", "retrying", "failed", "needs_review", "scheduled"):
        assert f'href="/shares?status={status}"' in page.text
    assert editor.get("/shares?status=sideways").status_code == 422
    assert editor.get("/shares?from=not-a-date").status_code == 422
    r = editor.get("/shares?platform=webhook&account=hook-a&q=BAIC")
    assert r.status_code == 200 and "BAIC" in r.text


def test_schedule_page_reschedules_and_cancels(editor, viewer, runtime):
    day = date.today() + timedelta(days=10)
    res = service.share(runtime, load_article(str(ARTICLE)), ["hook-b"], at=f"{day} 08:15", tz="Asia/Shanghai",
                        force=True)
    page = editor.get("/schedule").text
    assert res.share_id in page and f"{day}T08:15" in page
    assert "Reschedule" not in viewer.get("/schedule").text
    r = editor.post(f"/shares/{res.share_id}/reschedule", data={"csrf_token": editor.csrf, "at": f"{day}T09:45",
                                                                "tz": "Europe/Paris"})
    assert r.status_code == 303
    [d] = service.status(runtime, res.share_id)
    assert d.timezone == "Europe/Paris" and f"{day}T09:45" in editor.get("/schedule").text
    r = editor.post(f"/shares/{res.share_id}/reschedule", data={"csrf_token": editor.csrf, "at": "soon", "tz": ""})
    assert r.status_code == 422
    r = editor.post(f"/shares/{res.share_id}/cancel", data={"csrf_token": editor.csrf, "back": "/schedule"})
    assert r.status_code == 303 and r.headers["location"] == "/schedule"
    assert service.status(runtime, res.share_id)[0].status == "cancelled"
    assert res.share_id not in editor.get("/schedule").text


def test_accounts_page_shows_checks_and_no_secret(viewer, runtime, emulators):
    page = viewer.get("/accounts")
    assert page.status_code == 200
    assert "wechat-main" in page.text and "cannot check without posting" in page.text
    for secret in all_secrets(runtime):
        assert secret not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"


# --- settings ------------------------------------------------------------------------------------

def _cfg(tmp_path, web: str, users: str = "") -> object:
    p = tmp_path / "w.toml"
    p.write_text(f"[web]\n{web}\n\n{users}")
    return load_settings(p)


def test_demo_users_and_the_sandbox_key_keep_the_server_on_loopback(tmp_path, base_env):
    shipped = load_settings("config/sharer.toml")
    create_app(shipped, host="127.0.0.1")  # the demo as shipped
    with pytest.raises(ConfigError, match=r"sandbox:.*loopback"):
        create_app(shipped, host="0.0.0.0")
    env = {"SHARER_WEB_SECRET": "a-real-secret-of-some-length"}
    demo_users = "\n".join(f"[users.{n}]\n" + "\n".join(ln for ln in shipped_lines(n)) for n in ("editor",))
    settings = _cfg(tmp_path, 'secret_key = "env:SHARER_WEB_SECRET"', demo_users)
    with pytest.raises(ConfigError, match=r"\[users.editor\]: demo user.*loopback"):
        create_app(settings, host="0.0.0.0", env=env)
    create_app(_cfg(tmp_path, 'secret_key = "env:SHARER_WEB_SECRET"', users_toml(["viewer"])), host="0.0.0.0",
               env=env)
    proc = run_cli(["--config", "config/sharer.toml", "web", "--host", "0.0.0.0"], base_env)
    assert proc.returncode == 2 and "loopback" in proc.stderr and "Traceback" not in proc.stderr


def shipped_lines(name: str) -> list[str]:
    text = open("config/sharer.toml").read()
    block = text.split(f"[users.{name}]\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


@pytest.mark.parametrize("web, users, needle", [
    ('secret_key = "env:NOPE_NOT_SET"', "", "NOPE_NOT_SET"),
    ('secret_key = "hunter2-inline-value"', "", "never the secret itself"),
    ("", "", "web.secret_key: is required"),
    ('secret_key = "sandbox:"\ncolour = "red"', "", "web.colour"),
    ('secret_key = "sandbox:"\nport = "eighty"', "", "web.port"),
    ('secret_key = "sandbox:"', '[users.bob]\nrole = "owner"\npassword_hash = "$argon2id$x"', "users.bob.role"),
    ('secret_key = "sandbox:"', '[users.bob]\nrole = "editor"\npassword_hash = "plain"', "password_hash"),
    ('secret_key = "sandbox:"', '[users.bob]\nrole = "editor"\npassword = "x"', "users.bob.password"),
])
def test_bad_web_settings_name_the_key(tmp_path, web, users, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)) as e:
        create_app(_cfg(tmp_path, web, users), env={})
    assert "hunter2" not in str(e.value)
