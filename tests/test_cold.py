"""Packed settled shares (``sharer/store/cold.py``) on real Redis, with a real worker and the real CLI.

What a user checks: ``sharer status --json`` and the share list say exactly the same before and after a
share is packed; a failed delivery in a packed share can still be retried (and is delivered); purge
leaves nothing behind; a share that is not settled yet is left hot and packed later; packing never
overwrites a change made while it was reading.
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest
from conftest import EXAMPLES, Worker, _delete_prefix, inject, run_cli, wait_settled

from sharer import service
from sharer.clock import iso
from sharer.config import load_settings
from sharer.runtime import Runtime
from sharer.service import new_id
from sharer.store import codec, cold
from sharer.store.shares import ShareFilter, query_shares


@pytest.fixture(scope="module")
def own(config_file, base_env, runtime, tmp_path_factory):
    """A runtime, env and worker with a prefix of their own (packing walks the whole log of a prefix).
    ``runtime`` first: it sets the environment the test config refers to."""
    tag = secrets.token_hex(4)
    path = tmp_path_factory.mktemp("cold") / "sharer.toml"
    text = re.sub(r'prefix = "[^"]+"', f'prefix = "sharer-cold-{tag}"', config_file.read_text(), count=1)
    path.write_text(re.sub(r'queue = "[^"]+"', f'queue = "sharer-cold-{tag}"', text, count=1))
    env = {**base_env, "SHARER_CONFIG": str(path)}
    rt = Runtime(load_settings(path))
    w = Worker(env)
    yield rt, env
    w.stop()
    _delete_prefix(rt.redis, rt.settings.prefix)
    _delete_prefix(rt.redis, rt.settings.queue)


def status_json(env, share_id: str) -> dict:
    proc = run_cli(["status", share_id, "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def hot_keys(rt, share_id: str) -> list[str]:
    ids = rt.store.share_delivery_ids(share_id) or []
    keys = [rt.keys.share(share_id)] + [k for d in ids for k in rt.keys.delivery_keys(d)]
    return [k for k in keys if rt.redis.exists(k)]


def test_a_packed_share_reads_the_same_everywhere_and_a_failed_delivery_can_be_retried(own, emulators):
    rt, env = own
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=400, count=1, body={"error": "nope"})
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a,hook-b", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    sid = json.loads(proc.stdout)["share_id"]
    ds = wait_settled(rt, sid)
    assert sorted(d.status for d in ds) == ["delivered", "failed"]
    before = status_json(env, sid)
    listed = [s.to_json() for s in query_shares(rt.store, ShareFilter(), limit=50)[0]]
    failed_page = [s.to_json() for s in query_shares(rt.store, ShareFilter(status="failed"), limit=50)[0]]
    log_before = run_cli(["log", "--json", "--limit", "50"], env).stdout

    assert rt.store.compact(settled_before=time.time() + 1) >= 1
    assert hot_keys(rt, sid) == []  # the share and every delivery key are gone ...
    assert rt.redis.exists(rt.keys.cold(sid))  # ... into one packed key
    assert status_json(env, sid) == before  # byte for byte what the user saw
    assert [s.to_json() for s in query_shares(rt.store, ShareFilter(), limit=50)[0]] == listed
    assert [s.to_json() for s in query_shares(rt.store, ShareFilter(status="failed"), limit=50)[0]] == failed_page
    assert run_cli(["log", "--json", "--limit", "50"], env).stdout == log_before
    failed = next(d for d in before["deliveries"] if d["status"] == "failed")
    one = run_cli(["status", failed["id"], "--json"], env)
    assert one.returncode == 0 and json.loads(one.stdout)["deliveries"][0] == failed
    assert rt.store.share(sid).article["title"] == json.loads((EXAMPLES / "baic-catl.json").read_text())["title"]
    assert rt.store.share_delivery_ids(sid) == [d["id"] for d in before["deliveries"]]  # what dedupe asks

    # an editor retries the failed one: the share is unpacked, the retry goes out, nothing else moves
    proc = run_cli(["retry", failed["id"], "--json"], env)
    assert proc.returncode == 0, proc.stderr
    assert not rt.redis.exists(rt.keys.cold(sid)) and rt.redis.exists(rt.keys.share(sid))
    ds = wait_settled(rt, sid)
    assert [d.status for d in ds] == ["delivered", "delivered"]
    after = status_json(env, sid)
    delivered = next(d for d in before["deliveries"] if d["status"] == "delivered")
    assert next(d for d in after["deliveries"] if d["id"] == delivered["id"]) == delivered
    retried = next(d for d in after["deliveries"] if d["id"] == failed["id"])
    assert retried["events"][:len(failed["events"])] == failed["events"]  # history kept, retry appended
    for key in hot_keys(rt, sid):
        assert rt.redis.ttl(key) > 0  # settled records expire again

    # purge removes the packed share and its index entries
    assert rt.store.compact(settled_before=time.time() + 1) >= 1
    service.purge(rt)  # the hourly task's path (retention purge, then packing): nothing of this is old yet
    assert rt.redis.exists(rt.keys.cold(sid))
    removed = rt.store.purge(time.time() + 5)
    assert removed >= 2
    assert not rt.redis.exists(rt.keys.cold(sid)) and rt.store.share(sid) is None
    assert rt.store.get(failed["id"]) is None
    left = [k.decode() for k in rt.redis.scan_iter(match=f"{rt.settings.prefix}:*")]
    assert not [k for k in left if sid in k or failed["id"] in k]
    members = [m.decode() for s in ("delivered", "failed") for m in rt.redis.zrange(rt.keys.status_index(s), 0, -1)]
    assert not [m for m in members if failed["id"] in m or delivered["id"] in m]
    assert not rt.redis.zrange(rt.keys.account_index("hook-b"), 0, -1)


def _settled_share(rt, n: int = 2, error: str = "", legacy: bool = False) -> tuple[str, list[str]]:
    sid = new_id("sh")
    ids = [new_id("dl") for _ in range(n)]
    article = {"title": f"宁德时代 packed {sid}", "url": "https://news.example.com/p", "body_html": "<p>x</p>" * 40}
    post = {"platform": "webhook", "text": "宁德时代 and BAIC " * 10, "payload": {"t": "x" * 300}}
    rt.store.create_share({"id": sid, "article": article, "title": article["title"], "url": article["url"],
                           "delivery_ids": ids, "shared_by": "alice"},
                          [{"id": d, "account": "hook-a" if i % 2 == 0 else "hook-b", "platform": "webhook",
                            "post": post} for i, d in enumerate(ids)])
    for i, d in enumerate(ids):
        assert rt.store.transition(d, "queued", "sending", "sending", bump=True).ok
        if error and i == 1:
            assert rt.store.transition(d, "sending", "failed", error, fields={"error": error}).ok
        else:
            assert rt.store.transition(d, "sending", "delivered", "delivered",
                                       fields={"post_url": f"https://e.com/{d}", "post_id": d}).ok
    if legacy:  # an event and a post in the forms written before issue 15
        d = ids[0]
        rt.redis.rpush(rt.keys.events(d), json.dumps({"at": iso(), "status": "delivered", "attempt": 1,
                                                      "message": "checked by hand"}))
        rt.redis.delete(rt.keys.delivery_post(d))
        rt.redis.hset(rt.keys.delivery(d), "post", json.dumps({"text": "old form"}))
    return sid, ids


def test_pack_and_unpack_keep_every_field_event_post_and_expiry(own):
    rt, _ = own
    long_error = "HTTP 400: " + "the platform refused the post at some length; " * 4
    sid, ids = _settled_share(rt, 3, error=long_error, legacy=True)
    before = [d.to_json() for d in rt.store.get_many(ids)]
    assert rt.redis.exists(rt.keys.delivery_long(ids[1]))  # the long error is beside its record
    ttls = {k: rt.redis.pttl(k) for k in hot_keys(rt, sid)}
    assert rt.store.compact(settled_before=time.time() + 1) >= 1
    assert hot_keys(rt, sid) == []
    assert [d.to_json() for d in rt.store.get_many(ids)] == before
    assert rt.store.get(ids[0]).post == {"text": "old form"}
    assert rt.store.share_heads([sid])[sid].shared_by == "alice"
    assert service.schedule_titles(rt, [sid]) == {sid: f"宁德时代 packed {sid}"}
    blob = rt.redis.get(rt.keys.cold(sid))
    raw = sum(len(json.dumps(d)) for d in before)
    assert len(blob) < raw / 3  # one compressed key for the whole share
    assert rt.redis.pttl(rt.keys.cold(sid)) > 0
    assert all(cold.unpack_id(rt.redis.hget(rt.keys.cold_map(cold.bucket(d)), cold.pack_id(d)), "sh") == sid
               for d in ids)

    assert rt.store.cold.thaw(sid)
    assert not rt.redis.exists(rt.keys.cold(sid))
    assert [d.to_json() for d in rt.store.get_many(ids)] == before
    assert not any(rt.redis.hexists(rt.keys.cold_map(cold.bucket(d)), cold.pack_id(d)) for d in ids)
    for key, ttl in ttls.items():  # the same expiry as before it was packed (give or take the test's time)
        assert abs(rt.redis.pttl(key) - ttl) < 5000, key
    assert rt.redis.hget(rt.keys.delivery(ids[1]), "error").decode() == codec.LONG_MARK


def test_an_unsettled_share_stays_hot_and_is_packed_once_it_settles(own):
    rt, _ = own
    sid, ids = new_id("sh"), [new_id("dl")]
    rt.store.create_share({"id": sid, "article": {"title": "t"}, "title": "waiting", "url": "https://e.com/w",
                           "delivery_ids": ids}, [{"id": ids[0], "account": "hook-a", "platform": "webhook"}])
    rt.store.compact(settled_before=time.time() + 1)
    assert rt.redis.exists(rt.keys.share(sid)) and not rt.redis.exists(rt.keys.cold(sid))
    member = rt.redis.zrange(rt.keys.cold_pending, 0, -1)
    assert any(m.decode().endswith(sid) for m in member)  # looked at again next time
    assert rt.store.transition(ids[0], "queued", "cancelled", "cancelled by an editor").ok
    rt.store.compact(settled_before=time.time() + 1)
    assert rt.redis.exists(rt.keys.cold(sid)) and not rt.redis.exists(rt.keys.share(sid))
    assert not any(m.decode().endswith(sid) for m in rt.redis.zrange(rt.keys.cold_pending, 0, -1))
    assert rt.store.get(ids[0]).status == "cancelled"


def test_packing_refuses_a_share_changed_since_it_was_read(own):
    """The pack script checks every record against what was read; a change in between wins."""
    rt, _ = own
    sid, ids = _settled_share(rt, 2, error="refused")
    blob = b"C1" + b"x"
    keys = [rt.keys.cold(sid), rt.keys.share(sid)]
    args = [blob, "", str(rt.redis.hlen(rt.keys.share(sid))), sid]
    for d in ids:
        keys += [rt.keys.delivery(d), rt.keys.events(d), rt.keys.delivery_post(d), rt.keys.delivery_long(d),
                 rt.keys.cold_map(cold.bucket(d))]
        h = rt.redis.hgetall(rt.keys.delivery(d))
        args += [d, h[b"status"].decode(), h[b"updated_at"].decode(), str(rt.redis.llen(rt.keys.events(d))),
                 str(rt.redis.strlen(rt.keys.delivery_post(d))), str(rt.redis.hlen(rt.keys.delivery_long(d)))]
    time.sleep(0.002)
    assert rt.store.transition(ids[1], "failed", "queued", "retried by an editor").ok  # the change
    assert rt.store.cold._compact(keys=keys, args=args) == -1
    assert not rt.redis.exists(rt.keys.cold(sid)) and len(hot_keys(rt, sid)) >= 3
    assert rt.store.get(ids[1]).status == "queued"


def test_the_delivery_log_pages_through_hot_and_packed_shares_newest_first(own):
    rt, _ = own
    made = [_settled_share(rt, 2) for _ in range(6)]
    rt.store.compact(settled_before=time.time() + 1)
    made += [_settled_share(rt, 3) for _ in range(3)]  # hot
    want = [d for _, ids in made for d in ids]
    got, cursor = [], None
    while True:
        page, cursor = rt.store.query(limit=4, cursor=cursor, with_events=False)
        got += [d.id for d in page]
        if cursor is None:
            break
    mine = [d for d in got if d in set(want)]
    assert sorted(mine) == sorted(want) and len(mine) == len(set(mine))  # every one, once
    created = {d.id: d.created_at for d in rt.store.get_many(got, with_events=False)}
    assert got == sorted(got, key=lambda i: (created[i], i), reverse=True)  # newest first, exactly
    delivered, _ = rt.store.query(status="delivered", limit=200, with_events=False)
    assert set(want) <= {d.id for d in delivered}


def test_finished_weeks_of_the_title_index_are_stored_at_their_exact_size(own):
    """Posting strings grow by APPEND (with spare room); once their week is over, packing rewrites them
    at their exact size — same bytes, same expiry — and every title is still found."""
    from sharer.store import titles

    rt, _ = own
    r, k = rt.redis, rt.keys
    week_ago = time.time() - 8 * 86400
    made = []
    for i in range(40):
        at = week_ago + i
        sid = f"sh_{int(at * 1000):011x}{secrets.token_hex(5)}"  # an id of that millisecond: packed entries
        rt.store.create_share({"id": sid, "title": f"封存测试 seal{i:02d}", "url": "https://e.com/s",
                               "delivery_ids": []}, [], at=at)
        made.append(sid)
    week = titles.week_of(int(week_ago * 1000))
    key = k.title_postings(week, "b:封存")
    assert r.strlen(key) == 40 * titles.ENTRY
    before, value, ttl = r.memory_usage(key, samples=0), r.get(key), r.ttl(key)
    r.delete(k.title_sealed)
    rt.store.compact(settled_before=time.time() + 1)
    assert r.get(key) == value and abs(r.ttl(key) - ttl) <= 2
    assert r.memory_usage(key, samples=0) < before  # the spare room is gone
    assert int(r.get(k.title_sealed)) == titles.week_of(int(time.time() * 1000)) - 1
    assert titles.seal(r, k, rt.store._seal) == 0  # nothing more until another week ends
    page, cursor = query_shares(rt.store, ShareFilter(q="封存测试"), limit=50)
    assert {s.id for s in page} == set(made) and cursor is None
