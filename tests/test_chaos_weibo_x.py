"""Issue 10 proofs for Weibo and X: a worker killed mid-post, a reply lost after the post was made, the
same article shared twice — never a second post, never ``failed`` while the post is out, never a loop.

Real ``celery -A tasks worker`` subprocesses, real Redis, the Weibo and X emulators over HTTP. The
module has its own config (own prefix and queue) with a SHORT lease (12 s; http_timeout 11 s leaves a
busy box room to get four posts in flight) so dead leases expire within the test, and the sweeper
(what beat runs every minute) is called by the test. Both emulators have their duplicate detection
switched OFF for the kill loops: a second post would then be visible instead of being refused.

1. ``SHARER_CHAOS_LOOPS`` (default 20) SIGKILLs of pool children, each while the emulator holds the
   post request open: on even loops the post is made and the answer held past the lease, on odd
   loops the request is held and then dropped unanswered (no post). After the lease expires the
   delivery is reconciled from the account's timeline (Weibo's t.cn texts, X's
   ``GET /2/users/:id/tweets``): found -> ``delivered`` with that post; proven absent -> sent once.
2. The connection dropped after the platform accepted the post -> ``delivered``, one post, one attempt.
3. The same article twice (detection on) -> the second is ``delivered`` with ``already_posted`` and
   the note naming the first post, after a single request.
4. An X thread whose worker dies while part 2 is held open resumes at part 3: no part twice.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from conftest import REDIS_URL, Worker, inject, sandbox_posts
from test_chaos import alive, cleanup, env_for, pool_children, settle, wait_for

from sharer import service
from sharer.article import Article
from sharer.config import load_settings
from sharer.runtime import Runtime

LOOPS = int(os.environ.get("SHARER_CHAOS_LOOPS", "20"))
LEASE = 12.0
HTTP_TIMEOUT = 11.0
HOLD = LEASE + 2.0  # held past the lease (the client itself gives up at 11 s)
ROUND = 4  # pool children, all inside a held post when killed together
PATHS = {"weibo": "/2/statuses/share.json", "x": "/2/tweets"}
ACCOUNTS = {"weibo": "cx-weibo", "x": "cx-x"}


def toml(emulators, tag: str) -> str:
    weibo, x = emulators["weibo"].url, emulators["x"].url
    fast = "rate_limit = { count = 1000, per_seconds = 1 }\n"
    oauth1 = ('credentials = { consumer_key = "sandbox:", consumer_secret = "sandbox:", access_token = "sandbox:", '
              'access_token_secret = "sandbox:" }\n')
    return (
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-cwx-{tag}"\n\n[celery]\nqueue = "sharer-cwx-{tag}"\n\n'
        '[defaults]\ntimezone = "UTC"\n\n'
        f"[delivery]\nlease_seconds = {LEASE}\nhttp_timeout = {HTTP_TIMEOUT}\n"
        "retry = { base = 0.1, cap = 0.5, max_attempts = 6 }\nduplicate_window_hours = 0\n\n"
        f'[accounts.cx-weibo]\nplatform = "weibo"\napi_base = "{weibo}"\n'
        'credentials = { access_token = "sandbox:" }\n'
        'options = { safe_domains = ["news.example.com"], rip = "203.0.113.7", attach_image = false }\n' + fast + "\n"
        f'[accounts.cx-x]\nplatform = "x"\napi_base = "{x}"\n{oauth1}'
        'options = { username = "sharer_sandbox", attach_image = false }\n' + fast + "\n"
        f'[accounts.cx-thread]\nplatform = "x"\napi_base = "{x}"\n{oauth1}'
        'options = { username = "sharer_sandbox", attach_image = false, thread = true }\n' + fast
    )


@pytest.fixture(scope="module")
def cwx(tmp_path_factory, emulators):
    tmp = tmp_path_factory.mktemp("chaos-wx")
    config = tmp / "sharer-cwx.toml"
    config.write_text(toml(emulators, secrets.token_hex(4)))
    rt = Runtime(load_settings(config))
    env = env_for(config, tmp)
    yield rt, env
    cleanup(rt)


@pytest.fixture(scope="module")
def cwx_worker(cwx):
    """One worker for the whole module (pool children are killed; the pool replaces them)."""
    w = Worker(cwx[1], concurrency=ROUND)
    yield w
    w.stop()


def pool_back(worker: Worker, killed: list[int]) -> None:
    """Wait for the pool to replace the killed children (a slow respawn on a busy box would otherwise
    stretch the next round past the client's timeout, and a post would not be mid-call when killed)."""
    wait_for(lambda: len([k for k in pool_children(worker.proc.pid) if alive(k) and k not in killed]) == ROUND,
             30, "the pool to replace its killed children")
    time.sleep(0.5)  # the requeued messages of the killed children find a live lease and exit


def emulator_config(emu, platform: str, duplicates: bool) -> None:
    if platform == "weibo":
        body = {"duplicate_check": duplicates, "posts_per_hour": 10_000}
        requests.post(emu.url + "/_sandbox/weibo/config", json=body, timeout=5).raise_for_status()
    else:
        body = {"duplicate_check": duplicates, "post_limit": 10_000}
        requests.post(emu.url + "/_sandbox/config", json=body, timeout=5).raise_for_status()


def article(token: str, body: str = "") -> Article:
    """A unique article; ``token`` is in every request body of its post (faults ``match`` on it)."""
    return Article(title=f"Chaos {token}", url=f"https://news.example.com/chaos/{token}/",
                   summary="工人进程在发布中途被杀，帖子既不能丢也不能重复。", body_html=body, lang="en")


def posts_with(emu, token: str) -> list[dict]:
    return [p for p in sandbox_posts(emu) if token in p["text"]]


def calls(emu, path: str) -> int:
    return sum(1 for r in emu.requests if r["path"] == path and r["method"] == "POST")


@pytest.mark.parametrize("platform", ["weibo", "x"])
def test_worker_killed_mid_post_20_times_no_second_post_none_failed(platform, cwx, cwx_worker, emulators):
    rt, _ = cwx
    emu, path, account = emulators[platform], PATHS[platform], ACCOUNTS[platform]
    emulator_config(emu, platform, duplicates=False)  # a resend would show as a second post
    run = secrets.token_hex(3)
    tokens: dict[str, str] = {}  # delivery id -> token
    made: dict[str, bool] = {}
    t0 = time.monotonic()
    for first in range(0, LOOPS, ROUND):
        held, before = [], calls(emu, path)
        for i in range(first, min(first + ROUND, LOOPS)):
            token = f"{run}k{i:03d}q"
            kind = "hold" if i % 2 == 0 else "timeout"  # post made and answer held / held, then dropped
            inject(emu, path=path, kind=kind, seconds=HOLD, count=1, match=token)
            did = service.share(rt, article(token), [account]).deliveries[0].id
            tokens[did], made[did] = token, kind == "hold"
            held.append(did)
        wait_for(lambda b=before, n=len(held): calls(emu, path) >= b + n, 60, f"loop {first}: requests in flight")
        now = {d.id: d.status for d in rt.store.get_many(held, with_events=False)}
        assert set(now.values()) == {"sending"}, now  # every one is mid-call
        kids = [k for k in pool_children(cwx_worker.proc.pid) if alive(k)]
        assert len(kids) == ROUND, kids  # every child is inside a held post
        for kid in kids:
            os.kill(kid, signal.SIGKILL)
        pool_back(cwx_worker, kids)
    killed = time.monotonic() - t0
    ds = settle(rt, list(tokens), timeout=90)
    took = time.monotonic() - t0

    per = {d.id: posts_with(emu, tokens[d.id]) for d in ds}
    assert all(len(p) <= 1 for p in per.values()), {d: len(p) for d, p in per.items() if len(p) > 1}
    assert not [d.id for d in ds if d.status == "failed" and per[d.id]], "failed although the post is out"
    for d in ds:
        if d.status == "delivered":
            [p] = per[d.id]
            assert d.post_id == str(p["id"]) and not d.already_posted, (d.id, d.events)
        assert "unknown" in [e["status"] for e in d.events]  # reconciled, never resent blind
        assert d.attempts == (1 if made[d.id] else 2), (d.id, made[d.id], d.events)  # found: not sent again
    statuses = Counter(d.status for d in ds)
    assert statuses == {"delivered": LOOPS}, {d.id: (d.status, d.error) for d in ds if d.status != "delivered"}
    resent = sum(1 for d in ds if d.attempts == 2)
    print(f"\n{platform}: {LOOPS} kills in {killed:.1f}s, settled after {took:.1f}s: {dict(statuses)}; "
          f"{resent} proven absent and sent once more, {LOOPS - resent} found on the timeline")


@pytest.mark.parametrize("platform", ["weibo", "x"])
def test_reply_lost_after_the_post_was_accepted_is_found_not_resent(platform, cwx, cwx_worker, emulators):
    rt, _ = cwx
    emu = emulators[platform]
    emulator_config(emu, platform, duplicates=False)
    token = f"{secrets.token_hex(3)}drop"
    inject(emu, path=PATHS[platform], kind="drop_after", count=1, match=token)
    [d] = settle(rt, [service.share(rt, article(token), [ACCOUNTS[platform]]).deliveries[0].id], timeout=30)
    [post] = posts_with(emu, token)
    assert d.status == "delivered" and d.post_id == str(post["id"]) and d.attempts == 1
    assert any("dropped" in e["message"] for e in d.events if e["status"] == "unknown")


@pytest.mark.parametrize("platform", ["weibo", "x"])
def test_same_article_twice_is_delivered_with_a_note_never_a_loop(platform, cwx, cwx_worker, emulators):
    rt, _ = cwx
    emu = emulators[platform]
    emulator_config(emu, platform, duplicates=True)
    art = article(f"{secrets.token_hex(3)}twice")
    [first] = settle(rt, [service.share(rt, art, [ACCOUNTS[platform]]).deliveries[0].id], timeout=30)
    before = calls(emu, PATHS[platform])
    [second] = settle(rt, [service.share(rt, art, [ACCOUNTS[platform]], force=True).deliveries[0].id], timeout=30)
    name = "Weibo" if platform == "weibo" else "X"
    assert first.status == second.status == "delivered" and not first.already_posted
    assert second.already_posted and second.post_id == first.post_id and second.attempts == 1
    assert second.note == f"{name} already had this post: {first.post_url}"
    assert calls(emu, PATHS[platform]) == before + 1 and len(posts_with(emu, art.url.split("/")[-2])) == 1


def test_x_thread_killed_on_part_two_resumes_without_reposting(cwx, cwx_worker, emulators):
    rt, _ = cwx
    emu = emulators["x"]
    emulator_config(emu, "x", duplicates=False)
    run = secrets.token_hex(3)
    tokens: dict[str, str] = {}
    before = calls(emu, "/2/tweets")
    for i in range(ROUND):
        token = f"{run}t{i}q"
        filler = " It is long enough to be a thread part of its own." * 4  # one paragraph per part
        body = (f"<p>Part two {token}: the worker dies while X holds this part open.{filler}</p>"
                f"<p>Part three {token}: posted by the retry, once.{filler}</p>")
        inject(emu, path="/2/tweets", kind="hold" if i % 2 == 0 else "timeout", seconds=HOLD, count=1,
               match=f"Part two {token}")
        tokens[service.share(rt, article(token, body), ["cx-thread"]).deliveries[0].id] = token
    wait_for(lambda: calls(emu, "/2/tweets") >= before + 2 * ROUND, 20, "part 2 of every thread in flight")
    kids = [k for k in pool_children(cwx_worker.proc.pid) if alive(k)]
    for kid in kids:
        os.kill(kid, signal.SIGKILL)
    pool_back(cwx_worker, kids)
    ds = settle(rt, list(tokens), timeout=60)
    for d in ds:
        parts = posts_with(emu, tokens[d.id])
        texts = Counter(p["text"] for p in parts)
        assert d.status == "delivered" and len(parts) == 3 and max(texts.values()) == 1, (d.status, d.error, texts)
        assert [p["in_reply_to_tweet_id"] for p in parts] == [None, parts[0]["id"], parts[1]["id"]]
        assert d.post_id == parts[0]["id"] and d.note == "thread of 3 posts"


def test_module_config_is_its_own(cwx):
    rt, env = cwx
    assert rt.settings.lease_seconds == LEASE and Path(env["SHARER_CONFIG"]).exists()
