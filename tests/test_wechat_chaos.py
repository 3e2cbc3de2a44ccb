"""WeChat kill -9 proofs: a worker SIGKILLed while WeChat holds the ``freepublish/submit`` or
``message/mass/sendall`` answer open never makes a second post or send, and never ends ``failed`` when the
article is out. Also: an answer dropped after WeChat accepted, and the same article shared twice.

Like ``test_chaos.py``: real ``celery -A tasks worker`` processes, real Redis, the session WeChat emulator
over HTTP, the module's own config with a SHORT lease (4 s, http_timeout 3 s) so dead leases expire
within the test, and the sweeper called by the test as beat would. Pool children are killed four at a
time (the pool is back at once; one child at a time costs Celery ~5 s per kill), ``SHARER_CHAOS_LOOPS``
(default 20) kills per call.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter

import pytest
import requests
from conftest import Worker, inject, sandbox_posts
from test_chaos import alive, cleanup, env_for, pool_children, settle, wait_for

from sharer import service
from sharer.article import Article
from sharer.config import load_settings
from sharer.platforms._wechat_mass import clientmsgid
from sharer.runtime import Runtime

LOOPS = int(os.environ.get("SHARER_CHAOS_LOOPS", "20"))
LEASE, HTTP_TIMEOUT = 4.0, 3.0
HOLD = LEASE + 2.0  # WeChat answers after this long: past the lease (the client gives up at 3 s)
ROUND = 4  # pool children killed at once
FAST = "publish_poll_interval = 0.05, publish_poll_seconds = 2.0, default_cover_media_id = \"SANDBOX_DEFAULT_COVER\""


def wx_toml(url: str, redis_url: str, tag: str) -> str:
    return (f'[redis]\nurl = "{redis_url}"\nprefix = "sharer-wxchaos-{tag}"\n\n'
            f'[celery]\nqueue = "sharer-wxchaos-{tag}"\n\n[defaults]\ntimezone = "UTC"\n\n'
            f"[delivery]\nlease_seconds = {LEASE}\nhttp_timeout = {HTTP_TIMEOUT}\n"
            "retry = { base = 0.1, cap = 0.5, max_attempts = 6 }\nduplicate_window_hours = 0\n\n"
            f'[accounts.wx-publish]\nplatform = "wechat"\napi_base = "{url}"\n'
            f'credentials = {{ appid = "sandbox:", appsecret = "sandbox:" }}\noptions = {{ {FAST} }}\n\n'
            f'[accounts.wx-mass]\nplatform = "wechat"\napi_base = "{url}"\n'
            'credentials = { appid = "sandbox:", appsecret = "sandbox:" }\n'
            f'options = {{ publish_mode = "mass", account_type = "service", mass_quota = 10000, {FAST} }}\n')


@pytest.fixture(scope="module")
def wxchaos(tmp_path_factory, emulators):
    from conftest import REDIS_URL

    tmp = tmp_path_factory.mktemp("wxchaos")
    config = tmp / "sharer-wxchaos.toml"
    config.write_text(wx_toml(emulators["wechat"].url, REDIS_URL, secrets.token_hex(4)))
    rt = Runtime(load_settings(config))
    yield rt, env_for(config, tmp)
    cleanup(rt)


@pytest.fixture
def wx(emulators):
    emu = emulators["wechat"]
    # jobs are final as soon as they are looked at; the emulator's mass quota is no limit here
    requests.post(emu.url + "/_sandbox/config", json={"publish_seconds": 0, "mass_quota": 100000},
                  timeout=5).raise_for_status()
    return emu


def article(token: str) -> Article:
    return Article(title=f"断电测试 {token}", url=f"https://news.example.com/zh/chaos/{token}",
                   summary="进程在发布途中被杀死：文章不能丢，也不能发两次。", body_html=f"<p>正文 {token}</p>")


def posts_of(emu, token: str) -> list[dict]:
    return [p for p in sandbox_posts(emu) if token in p.get("content_source_url", "")]


def in_flight(emu, account: str, ids: list[str], tokens: list[str]) -> bool:
    """Every delivery's submit / sendall has been handled by the emulator (the answer is being held)."""
    with emu.lock:
        if account == "wx-mass":
            return all(clientmsgid(d) in emu.clientmsgids for d in ids)
        raws = [j["draft"]["raw"] for j in emu.jobs.values()]
    return all(any(t in r for r in raws) for t in tokens)


@pytest.mark.parametrize("account", ["wx-publish", "wx-mass"])
def test_worker_killed_while_wechat_holds_the_answer_never_posts_twice(account, wxchaos, wx):
    rt, env = wxchaos
    path = "message/mass/sendall" if account == "wx-mass" else "freepublish/submit"
    run = secrets.token_hex(3)
    ids: list[str] = []
    tokens: list[str] = []
    t0 = time.monotonic()
    w = Worker(env, concurrency=ROUND)
    try:
        for first in range(0, LOOPS, ROUND):
            batch = [f"{run}k{i:03d}z" for i in range(first, min(first + ROUND, LOOPS))]
            if account == "wx-mass":
                # A resend from an earlier round's reconciliation must not take this round's fault: each
                # sendall hold matches its delivery's clientmsgid, set while draft/add is slowed a little.
                for t in batch:
                    inject(wx, path="draft/add", kind="hold", seconds=0.5, match=t)
                held = [service.share(rt, article(t), [account]).deliveries[0].id for t in batch]
                for did in held:
                    inject(wx, path=path, kind="hold", seconds=HOLD, match=clientmsgid(did))
            else:  # the body of a submit names only the draft; nothing else submits during the loop
                inject(wx, path=path, kind="hold", seconds=HOLD, count=len(batch))
                held = [service.share(rt, article(t), [account]).deliveries[0].id for t in batch]
            wait_for(lambda h=held, b=batch: in_flight(wx, account, h, b), 30, f"round {first}: the held calls")
            assert all(d.status == "sending" for d in rt.store.get_many(held, with_events=False))
            kids = [k for k in pool_children(w.proc.pid) if alive(k)]
            assert len(kids) == len(batch), kids  # every child is inside a held call
            for kid in kids:
                os.kill(kid, signal.SIGKILL)
            ids += held
            tokens += batch
        kills = time.monotonic() - t0
        ds = settle(rt, ids, timeout=90)
    finally:
        w.stop()
    by_id = {d.id: d for d in ds}
    for did, token in zip(ids, tokens):
        d, out = by_id[did], posts_of(wx, token)
        assert len(out) == 1, (token, len(out))  # exactly one article / mass send, never two
        assert d.status in ("delivered", "needs_review"), (d.status, d.error)
        if d.status == "delivered":
            assert d.post_id == out[0]["id"]
            assert "unknown" in [e["status"] for e in d.events]  # reconciled, never resent blind
    statuses = Counter(d.status for d in ds)
    assert statuses["delivered"] == LOOPS, dict(statuses)  # every one confirmed (the emulator can tell)
    calls = Counter(r["path"] for r in wx.requests)
    if account == "wx-publish":
        assert calls["/cgi-bin/freepublish/submit"] == LOOPS  # never re-submitted
    print(f"\n{account}: {LOOPS} kills in {kills:.1f}s, settled after {time.monotonic() - t0:.1f}s: {dict(statuses)}")


@pytest.mark.parametrize("account", ["wx-publish", "wx-mass"])
def test_answer_dropped_after_wechat_accepted_is_confirmed_not_resent(account, wxchaos, wx):
    rt, env = wxchaos
    path = "message/mass/sendall" if account == "wx-mass" else "freepublish/submit"
    token = f"{secrets.token_hex(3)}drop"
    inject(wx, path=path, kind="drop_after", count=1)
    w = Worker(env, concurrency=1)
    try:
        did = service.share(rt, article(token), [account]).deliveries[0].id
        [d] = settle(rt, [did], timeout=30)
    finally:
        w.stop()
    [out] = posts_of(wx, token)
    assert d.status == "delivered" and d.post_id == out["id"], (d.status, d.error)
    assert "unknown" in [e["status"] for e in d.events]
    if account == "wx-mass":
        assert "WeChat already had this mass send" in d.note and d.post_url is None
    else:
        assert "published list" in d.note and d.post_url == out["url"]


def test_the_same_article_shared_twice_each_delivery_finds_its_own(wxchaos, wx):
    """Two shares of one article: two articles on the account (freepublish has no duplicate check). The
    second's answer is lost: reconciliation must pick its own article, not the first share's."""
    rt, env = wxchaos
    token = f"{secrets.token_hex(3)}twice"
    w = Worker(env, concurrency=1)
    try:
        first = service.share(rt, article(token), ["wx-publish"]).deliveries[0].id
        [one] = settle(rt, [first], timeout=30)
        inject(wx, path="freepublish/submit", kind="drop_after", count=1)
        second = service.share(rt, article(token), ["wx-publish"]).deliveries[0].id
        [two] = settle(rt, [second], timeout=30)
    finally:
        w.stop()
    out = posts_of(wx, token)
    assert one.status == "delivered" and len(out) == 2
    assert two.status == "delivered" and two.post_id != one.post_id and {one.post_id, two.post_id} == \
        {p["id"] for p in out}
    assert "published list" in two.note


def test_a_lost_submit_whose_article_never_shows_needs_review_after_one_submit(wxchaos, wx):
    """The job never finishes (still publishing), the submit's answer was lost: the draft is gone, the
    article is not listed — the editor decides. One submit, no loop, never ``failed``."""
    rt, env = wxchaos
    requests.post(wx.url + "/_sandbox/config", json={"publish_seconds": 3600, "publishing_polls": 10**6},
                  timeout=5).raise_for_status()
    token = f"{secrets.token_hex(3)}never"
    inject(wx, path="freepublish/submit", kind="drop_after", count=1)
    w = Worker(env, concurrency=1)
    try:
        did = service.share(rt, article(token), ["wx-publish"]).deliveries[0].id
        [d] = settle(rt, [did], timeout=40)
    finally:
        w.stop()
    assert d.status == "needs_review", (d.status, d.error)
    assert "left the draft box" in d.events[-1]["message"]
    assert sum(1 for r in wx.requests if r["path"] == "/cgi-bin/freepublish/submit") == 1
