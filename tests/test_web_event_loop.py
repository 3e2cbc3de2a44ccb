"""Nothing slow runs on the event loop: every ``async def`` route and handler leaves Redis, outgoing HTTP
and argon2 to worker threads.

Redis-py's command send, requests' ``Session.send`` and argon2's hash/verify are wrapped (the libraries'
own entry points, not our code) to note any call made while an asyncio loop runs in the calling
thread — which is the event loop itself: worker threads have none. Then a signed-in editor goes
through every page form post (sign in, load, review, share, retry/posted/cancel, reschedule, settings,
resubmit, sign out), the HTML error pages and the JSON API, and not one call may have been on the loop.
"""

from __future__ import annotations

import asyncio
import re
import traceback

import argon2
import pytest
import redis.connection
import requests
from conftest import REDIS_URL, wait_settled
from test_web_pages import ARTICLE, _compose_data
from web_support import client, sign_in

from sharer.web.prefs import PrefsStore


@pytest.fixture
def on_loop(monkeypatch) -> list[str]:
    seen: list[str] = []

    def guard(owner: type, name: str, what: str) -> None:
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # a worker thread (or the test itself): fine
                pass
            else:
                stack = "".join(traceback.format_stack(limit=12)[:-1])
                seen.append(f"{what} on the event loop:\n{stack}")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)

    guard(redis.connection.AbstractConnection, "send_packed_command", "a Redis command")
    guard(requests.Session, "send", "an HTTP request")
    guard(argon2.PasswordHasher, "verify", "argon2 verify")
    guard(argon2.PasswordHasher, "hash", "argon2 hash")
    return seen


@pytest.fixture
def editor_prefs(runtime):
    """The walk saves the shared editor's language and zone: clear them after, as other modules' pages
    (in this process, in whatever order pytest-xdist gives them) expect the editor to have none."""
    yield
    PrefsStore(runtime.redis, runtime.keys.root).set("editor", None, None)


def test_no_async_route_blocks_the_event_loop(on_loop, editor_prefs, web_app, runtime, worker):
    anon = client(web_app)
    page = anon.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    wrong = anon.post("/login", data={"username": "editor", "password": "not-it", "csrf_token": token, "next": "/"})
    assert wrong.status_code == 401
    editor = sign_in(web_app, "editor")  # POST /login: limiter, argon2, audit, session
    csrf = {"csrf_token": editor.csrf}

    with open(ARTICLE, "rb") as fh:
        r = editor.post("/compose/load", data=csrf, files={"file": ("a.json", fh, "application/json")})
    assert r.status_code == 200
    assert editor.post("/compose/load", data=csrf).status_code == 422  # neither file nor URL
    data = _compose_data(editor, accounts=["hook-a"], force="1")
    assert editor.post("/compose", data=data).status_code == 200  # the confirmation page
    r = editor.post("/compose", data={**data, "step": "confirm"})
    assert r.status_code == 303, r.text
    sid = r.headers["location"].rsplit("/", 1)[1]
    [d] = wait_settled(runtime, sid)
    assert d.status == "delivered"

    assert editor.post(f"/deliveries/{d.id}/retry", data=csrf).status_code == 409  # delivered: the page says why
    assert editor.post(f"/deliveries/{d.id}/posted", data=csrf).status_code == 409
    assert editor.post(f"/deliveries/{d.id}/cancel", data=csrf).status_code in (303, 409)
    assert editor.post(f"/shares/{sid}/cancel", data=csrf).status_code == 303
    assert editor.post(f"/shares/{sid}/reschedule", data=csrf).status_code == 422  # no time given
    assert editor.post(f"/shares/{sid}/resubmit", data=csrf).status_code in (409, 422)  # not rejected
    assert editor.post(f"/shares/{sid}/approve", data=csrf).status_code == 403  # an editor: the HTML 403 page
    assert editor.get("/no-such-page").status_code == 404  # the HTML 404 page names the signed-in user
    assert editor.post("/settings", data={**csrf, "language": "en", "timezone": "Asia/Shanghai"}).status_code == 303
    assert editor.get("/shares").status_code == 200
    assert editor.get("/api/shares", headers={"X-CSRF-Token": editor.csrf}).status_code == 200
    assert anon.get("/healthz").status_code == 200
    assert editor.post("/logout", data=csrf).status_code == 303
    assert editor.get("/shares").status_code == 303  # signed out

    assert on_loop == [], "\n\n".join(on_loop)


def test_the_guard_sees_a_call_on_the_loop(on_loop):
    """The check itself works: a Redis command sent from inside a running loop is noted."""

    async def blocking() -> None:
        redis.Redis.from_url(REDIS_URL).ping()

    asyncio.run(blocking())
    assert on_loop and all("a Redis command on the event loop" in seen for seen in on_loop)
