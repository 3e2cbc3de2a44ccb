"""The delivery log's compact layout (issue 15) on real Redis: listpack records, the post and long
values beside them, compact events, a compressed article — and records written the old way still load."""

from __future__ import annotations

import json

from sharer.clock import iso
from sharer.service import new_id
from sharer.store import codec
from sharer.store.deliveries import Outcome, Status

ARTICLE = {"title": "宁德时代 and BAIC sign a memorandum", "url": "https://news.example.com/a",
           "summary": "BAIC GROUP and CATL established in-depth cooperation. " * 8,
           "body": "新能源 battery cooperation, charging networks and exports. " * 20}
POST = {"platform": "webhook", "account": "hook-a", "text": ARTICLE["summary"][:280],
        "payload": {"title": ARTICLE["title"], "summary": ARTICLE["summary"], "text": ARTICLE["body"][:900]}}


def _share(rt, **extra):
    sid, did = new_id("sh"), new_id("dl")
    rt.store.create_share({"id": sid, "article": ARTICLE, "title": ARTICLE["title"], "url": ARTICLE["url"],
                           "delivery_ids": [did]},
                          [{"id": did, "account": "hook-a", "platform": "webhook", "post": POST, **extra}])
    return sid, did


def test_a_record_stays_listpack_with_its_post_and_long_values_beside_it(runtime):
    r, k = runtime.redis, runtime.keys
    long_override = "An editor's own text for this account, far longer than sixty-four bytes. " * 3
    sid, did = _share(runtime, override=long_override)
    assert r.object("encoding", k.delivery(did)) == b"listpack"
    assert all(len(v) <= codec.LISTPACK_VALUE for v in r.hgetall(k.delivery(did)).values())
    assert len(r.get(k.delivery_post(did))) < len(json.dumps(POST)) / 3  # compressed against the article
    d = runtime.store.get(did)
    assert d.post == POST and d.override == long_override
    # a long error written by the worker's script goes beside the record too, and comes back whole
    error = "HTTP 400: " + "the platform refused the post because of reasons it explains at length; " * 3
    assert runtime.store.transition(did, "queued", "cancelled", "no", fields={"error": error}).ok
    assert r.object("encoding", k.delivery(did)) == b"listpack"
    d = runtime.store.get(did)
    assert d.error == error and d.status is Status.CANCELLED
    assert r.ttl(k.delivery_long(did)) > 0 and r.ttl(k.delivery_post(did)) > 0  # settled: they expire with it
    # a short value replaces the long one and the long copy is gone
    assert runtime.store.transition(did, "cancelled", None, "", fields={"error": "short"}).ok
    assert runtime.store.get(did).error == "short" and not r.hexists(k.delivery_long(did), "error")
    assert r.object("encoding", k.share(sid)) is not None and b"article" not in r.hkeys(k.share(sid))
    assert runtime.store.share(sid).article == ARTICLE


def test_claim_hands_the_worker_the_long_values_and_the_article_in_one_call(runtime):
    _, did = _share(runtime, override="x" * 200, state=json.dumps({"media_id": "m" * 80}))
    claim = runtime.store.claim(did, 30)
    assert claim.ok and claim.record.override == "x" * 200 and claim.record.state == {"media_id": "m" * 80}
    assert json.loads(claim.article_json) == ARTICLE
    sent = {**POST, "text": "what was sent in the end"}
    assert runtime.store.transition(did, "sending", "delivered", "delivered", token=claim.token,
                                    fields={"post": sent, "post_url": "https://e.com/p/1"}).ok
    d = runtime.store.get(did)
    assert d.post == sent and d.post_url == "https://e.com/p/1" and d.override == "x" * 200


def test_events_are_compact_arrays_read_back_as_the_json_contract(runtime):
    _, did = _share(runtime)
    runtime.store.transition(did, "queued", "cancelled", "changed my mind", actor="alice")
    raw = runtime.redis.lrange(runtime.keys.events(did), 0, -1)
    assert all(e.startswith(b"[") for e in raw) and len(raw[0]) < 40
    events = runtime.store.get(did).events
    assert [(e["status"], e["message"], e["actor"]) for e in events] == [
        ("queued", "queued", "worker"), ("cancelled", "changed my mind", "alice")]
    assert all(e["at"].endswith("Z") and len(e["at"]) == 24 for e in events)
    assert events[-1]["at"] == runtime.store.get(did).updated_at  # the script's ms clock = its ISO time


def test_records_written_before_issue_15_still_load_and_change(runtime):
    """The old layout exactly as the previous code wrote it: post and article as JSON fields, events
    as objects with an ISO time (and, older still, without an actor)."""
    r, k = runtime.redis, runtime.keys
    sid, did, created = new_id("sh"), new_id("dl"), "2026-11-25T21:40:00.123Z"
    member = f"1764106800123:{did}"
    r.hset(k.share(sid), mapping={"id": sid, "article": json.dumps(ARTICLE, ensure_ascii=False),
                                  "title": ARTICLE["title"], "url": ARTICLE["url"],
                                  "delivery_ids": json.dumps([did]), "created_at": created})
    r.hset(k.delivery(did), mapping={"id": did, "account": "hook-a", "platform": "webhook",
                                     "post": json.dumps(POST, ensure_ascii=False), "share_id": sid,
                                     "status": "queued", "attempts": 0, "created_at": created,
                                     "updated_at": created, "idx": member,
                                     "error": "an old error text that is well over sixty-four bytes long, as before"})
    r.rpush(k.events(did), json.dumps({"at": created, "status": "queued", "attempt": 0, "message": "queued"}),
            json.dumps({"at": created, "status": "queued", "attempt": 0, "message": "nudged", "actor": "bob"}))
    r.zadd(k.status_index("queued"), {member: 0})
    d = runtime.store.get(did)
    assert d.post == POST and d.error.startswith("an old error")
    assert [(e["message"], e["actor"]) for e in d.events] == [("queued", None), ("nudged", "bob")]
    assert runtime.store.share(sid).article == ARTICLE
    record, article = runtime.store.load(did)
    assert record.id == did and json.loads(article) == ARTICLE
    claim = runtime.store.claim(did, 30)
    assert claim.ok and json.loads(claim.article_json) == ARTICLE and claim.record.post == POST
    res = runtime.store.transition(did, "sending", "failed", "refused", token=claim.token,
                                   fields={"error": "refused", "post": {**POST, "text": "new"}})
    assert res.outcome is Outcome.OK
    d = runtime.store.get(did)
    assert d.status is Status.FAILED and d.post["text"] == "new" and d.error == "refused"
    assert [e["status"] for e in d.events] == ["queued", "queued", "sending", "failed"]
    assert d.events[-1]["at"] >= iso(0)


def test_codec_round_trips_and_falls_back_without_an_article():
    article = codec.compact_json(ARTICLE).encode()
    for a in (article, None):
        assert codec.unpack_post(codec.pack_post(POST, a), a) == POST
    assert codec.unpack_post(codec.pack_post(POST, article), None) is None  # its article is gone
    assert json.loads(codec.unpack_article(codec.pack_article(ARTICLE), None)) == ARTICLE
    ev = codec.pack_event(1764106800123, "delivered", 2, "delivered: https://e.com/p/1", "worker")
    assert codec.unpack_event(ev) == {"at": "2025-11-25T21:40:00.123Z", "status": "delivered", "attempt": 2,
                                      "message": "delivered: https://e.com/p/1", "actor": "worker"}
    assert codec.split_long({"a": "x" * 65, "b": "y", "c": codec.LONG_MARK}) == (
        {"a": codec.LONG_MARK, "b": "y", "c": codec.LONG_MARK}, {"a": "x" * 65, "c": codec.LONG_MARK})


def test_a_new_share_is_created_at_its_ids_millisecond_and_indexed_in_11_bytes_a_token(runtime):
    from sharer.clock import epoch_of
    from sharer.store import titles
    r, k = runtime.redis, runtime.keys
    sid, did = _share(runtime)
    id_ms = int(sid[3:14], 16)
    assert round(epoch_of(runtime.store.share(sid).created_at) * 1000) == id_ms
    member = f"{id_ms:013d}:{sid}"
    assert r.zscore(k.shares_index, member) == 0 and r.zscore(k.status_index("queued"), f"{id_ms:013d}:{did}") == 0
    assert titles.pack(member) == bytes.fromhex("0" + sid[3:]) and titles.unpack(titles.pack(member)) == member
    week = id_ms // titles.WEEK_MS
    toks = titles.tokens(ARTICLE["title"])
    for t in toks:
        assert titles.pack(member) in r.get(k.title_postings(week, t)), t
        assert r.ttl(k.title_postings(week, t)) > runtime.store.retention
        assert r.zscore(k.title_odd(t), member) is None
    # a backdated share with the same kind of id is indexed by its own member, in the odd sets
    sid2, did2 = new_id("sh"), new_id("dl")
    runtime.store.create_share({"id": sid2, "title": "Backdated 回溯", "url": ARTICLE["url"], "delivery_ids": [did2]},
                               [{"id": did2, "account": "hook-a", "platform": "webhook"}], at=1764106800.5)
    assert r.zscore(k.title_odd("b:回溯"), f"1764106800500:{sid2}") == 0
