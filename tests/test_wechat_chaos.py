"""WeChat kill -9 proofs: a worker SIGKILLed while WeChat holds the ``freepublish/submit`` or
``message/mass/sendall`` answer open never makes a second post or send, and never ends ``failed`` when the
article is out. Also: an answer dropped after WeChat accepted, and the same article shared twice.

The kills run on ``harness.kill_while_held`` (real ``celery -A tasks worker`` processes, real Redis, the
session WeChat emulator over HTTP, a config of its own with a SHORT lease, 4 s and http_timeout 3 s, so
dead leases expire within the test, the sweeper called as beat would). WeChat's flow is several calls,
so the holds are WeChat's own (``SubmitHold``, ``SendallHold``). Pool children are killed four at a time
(the pool is back at once; one child at a time costs Celery ~5 s per kill), ``SHARER_CHAOS_LOOPS``
(default 20) kills per call. The other proofs use ``harness.short_lease`` for their runtime.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Worker
from harness import Hold, configure, demo_table, inject, kill_while_held, sandbox_posts, short_lease
from test_chaos import cleanup, settle

from sharer import service
from sharer.article import Article
from sharer.platforms._wechat_mass import clientmsgid

LOOPS = int(os.environ.get("SHARER_CHAOS_LOOPS", "20"))
LEASE = 4.0  # the client gives up at 3 s; WeChat answers after 6 s, past the lease
FAST = {"publish_poll_interval": 0.05, "publish_poll_seconds": 2.0,
        "default_cover_url": "", "default_cover_media_id": "SANDBOX_DEFAULT_COVER"}
MASS = {**FAST, "publish_mode": "mass", "account_type": "service", "mass_quota": 10000}
OPTIONS = {"wx-publish": FAST, "wx-mass": MASS}


@pytest.fixture(scope="module")
def wxchaos(emulators):
    """(runtime, worker env) with wx-publish and wx-mass: the demo account, fast polls, a default cover."""
    rt, env = short_lease("wxchaos", {name: demo_table(emulators, "wechat", o) for name, o in OPTIONS.items()},
                          lease=LEASE)
    yield rt, env
    cleanup(rt)


@pytest.fixture
def wx(emulators):
    emu = emulators["wechat"]
    configure(emu, publish_seconds=0, mass_quota=100000)  # jobs final when looked at; the quota no limit here
    return emu


def article(token: str) -> Article:
    return Article(title=f"断电测试 {token}", url=f"https://news.example.com/zh/chaos/{token}",
                   summary="进程在发布途中被杀死：文章不能丢，也不能发两次。", body_html=f"<p>正文 {token}</p>")


def posts_of(emu, token: str) -> list[dict]:
    return [p for p in sandbox_posts(emu) if token in p.get("content_source_url", "")]


@dataclass(frozen=True)
class SubmitHold(Hold):
    """A submit's body names only the draft: hold the round's next submits (nothing else submits during
    the loop); held once every article's draft has become a publish job."""

    path: str = "freepublish/submit"

    def before(self, emulator: Any, tokens: list[str], seconds: float) -> None:
        inject(emulator, path=self.path, kind="hold", seconds=seconds, count=len(tokens))

    def held(self, emulator: Any, tokens: list[str], ids: list[str]) -> bool:
        with emulator.lock:
            raws = [j["draft"]["raw"] for j in emulator.jobs.values()]
        return all(any(t in r for r in raws) for t in tokens)


@dataclass(frozen=True)
class SendallHold(Hold):
    """Each sendall hold matches its delivery's clientmsgid, so a resend from an earlier round's
    reconciliation cannot take this round's fault; the clientmsgid is known once the delivery exists, so
    draft/add is slowed a little (matched by the article) while the holds are set."""

    path: str = "message/mass/sendall"

    def before(self, emulator: Any, tokens: list[str], seconds: float) -> None:
        for t in tokens:
            inject(emulator, path="draft/add", kind="hold", seconds=0.5, match=t)

    def after(self, emulator: Any, ids: list[str], seconds: float) -> None:
        for did in ids:
            inject(emulator, path=self.path, kind="hold", seconds=seconds, match=clientmsgid(did))

    def held(self, emulator: Any, tokens: list[str], ids: list[str]) -> bool:
        with emulator.lock:
            return all(clientmsgid(d) in emulator.clientmsgids for d in ids)


HOLDS = {"wx-publish": SubmitHold(), "wx-mass": SendallHold()}


@pytest.mark.parametrize("account", ["wx-publish", "wx-mass"])
def test_worker_killed_while_wechat_holds_the_answer_never_posts_twice(account, wx, emulators):
    ds = kill_while_held(emulators, "wechat", HOLDS[account], "delivered", loops=LOOPS, options=OPTIONS[account],
                         lease=LEASE, article_for=article, own_post_id=True)
    # the harness checked: one article / mass send per token, every delivery "delivered" with its own
    # post's id (the emulator can tell), each reconciled after the kill ("unknown"), never resent blind
    assert len(ds) == LOOPS
    if account == "wx-publish":
        calls = Counter(r["path"] for r in wx.requests)
        assert calls["/cgi-bin/freepublish/submit"] == LOOPS  # never re-submitted


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
    configure(wx, publish_seconds=3600, publishing_polls=10**6)
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
