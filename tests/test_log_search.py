"""The share list stays complete on a big log: title search through its index, rare-status filters
through the status index, pages that stop early always hand back a cursor. Real Redis, own prefix."""

from __future__ import annotations

import secrets
import time

import pytest

from sharer.store.deliveries import DeliveryStore
from sharer.store.keys import Keys
from sharer.store.shares import ShareFilter, query_shares

DAY = 86400.0


@pytest.fixture
def store(runtime):
    s = DeliveryStore(runtime.redis, Keys(f"{runtime.settings.prefix}-log-{secrets.token_hex(3)}"))
    yield s
    for key in runtime.redis.scan_iter(match=f"{s.k.prefix}:*", count=2000):
        runtime.redis.delete(key)


def write(store: DeliveryStore, n: int, *, title="电动汽车 Battery news {i}", status="delivered",
          start: float | None = None, span: float = 80 * DAY, odd: dict[int, dict] | None = None) -> list[str]:
    """``n`` shares of two deliveries each, oldest first, spread over ``span`` seconds; ``odd`` gives
    some of them another title or status."""
    t0 = (start or time.time()) - span
    ids = []
    for i in range(n):
        o = (odd or {}).get(i, {})
        sid = f"sh_t{i:06d}{secrets.token_hex(2)}"
        ds = [{"id": f"dl_{sid[3:]}{a}", "account": a, "platform": "webhook",
               "status": o.get("status", status)} for a in ("hook-a", "hook-b")]
        store.create_share({"id": sid, "title": o.get("title", title.format(i=i)), "url": "https://x.example",
                            "delivery_ids": [d["id"] for d in ds]}, ds, at=t0 + span * i / n)
        ids.append(sid)
    return ids


def every_page(store, flt, limit=20):
    """All pages of a query: (shares in order, number of requests)."""
    out, cursor, requests = [], None, 0
    while True:
        page, cursor = query_shares(store, flt, limit=limit, cursor=cursor)
        requests += 1
        out += page
        if cursor is None:
            return out, requests


def test_title_search_finds_the_oldest_share_of_a_big_log_in_one_request(store):
    ids = write(store, 2600, odd={0: {"title": "宁德时代发布麒麟电池 CATL Qilin pack"}})
    for q in ("宁德", "麒麟电池", "时代发布麒", "catl", "QILIN", "Qil", "CATL Qilin"):
        page, cursor = query_shares(store, ShareFilter(q=q))
        assert [s.id for s in page] == [ids[0]], q
        assert cursor is None, q
        assert page[0].deliveries and page[0].title.startswith("宁德时代")
    # nothing matches: an empty page and no cursor, in one request
    assert query_shares(store, ShareFilter(q="比亚迪")) == ([], None)
    # a substring that is in no title even though each of its bigrams is in some title
    assert query_shares(store, ShareFilter(q="电池电动")) == ([], None)


def test_title_search_pages_are_newest_first_and_combine_with_other_filters(store):
    odd = {i: {"title": f"比亚迪 Seal 第{i}期"} for i in range(0, 2400, 100)}
    odd[1200] = {"title": "比亚迪 Seal 第1200期", "status": "failed"}
    ids = write(store, 2400, odd=odd)
    wanted = [ids[i] for i in sorted(odd, reverse=True)]
    got, requests = every_page(store, ShareFilter(q="比亚迪"), limit=10)
    assert [s.id for s in got] == wanted and requests == 3
    page, cursor = query_shares(store, ShareFilter(q="seal", status="failed"))
    assert [s.id for s in page] == [ids[1200]] and cursor is None
    since = time.time() - 41 * DAY  # index 1200 was written at 40 days ago, 1100 at 43
    got, _ = every_page(store, ShareFilter(q="比亚迪", since=since), limit=7)
    assert [s.id for s in got] == [ids[i] for i in sorted(odd, reverse=True) if i >= 1200]


def test_a_one_character_search_never_returns_an_empty_last_page_that_hides_matches(store):
    ids = write(store, 2300, title="Plain {i}", odd={5: {"title": "一 Plain five"}})
    got, requests = every_page(store, ShareFilter(q="一"))
    assert [s.id for s in got] == [ids[5]]
    assert requests >= 2  # the scan budget cut the first page short: it came back with a cursor


def test_the_title_index_follows_retention(store):
    ids = write(store, 30, title="Retention check {i} 保留期限", span=100 * DAY)
    assert len(every_page(store, ShareFilter(q="保留"))[0]) == 30
    store.purge(time.time() - 91.5 * DAY)  # shares 0-2 are older (3.3 days apart)
    left, _ = every_page(store, ShareFilter(q="保留"))
    assert {s.id for s in left} == set(ids[3:])
    # the purged shares' entries are gone from every token set
    for key in store.r.scan_iter(match=f"{store.k.prefix}:idx:title:*"):
        members = {m.decode().split(":", 1)[1] for m in store.r.zrange(key, 0, -1)}
        assert not members & set(ids[:3])


def test_a_log_written_before_the_index_is_indexed_and_then_searchable(store):
    ids = write(store, 40, title="Old log {i} 旧日志")
    for key in store.r.scan_iter(match=f"{store.k.prefix}:idx:title*"):
        store.r.delete(key)
    page, cursor = query_shares(store, ShareFilter(q="旧日"), limit=50)
    assert {s.id for s in page} == set(ids) and cursor is None
    assert store.r.exists(store.k.title_index_version)


def test_a_rare_status_is_found_from_anywhere_in_the_log_in_one_request(store):
    odd = {i: {"status": "needs_review"} for i in (3, 1500, 2990)}
    ids = write(store, 3000, odd=odd)
    page, cursor = query_shares(store, ShareFilter(status="needs_review"))
    assert [s.id for s in page] == [ids[2990], ids[1500], ids[3]] and cursor is None
    got, requests = every_page(store, ShareFilter(status="needs_review"), limit=2)
    assert [s.id for s in got] == [ids[2990], ids[1500], ids[3]] and requests == 2
    page, _ = query_shares(store, ShareFilter(status="needs_review", account="hook-b", since=time.time() - 50 * DAY))
    assert [s.id for s in page] == [ids[2990], ids[1500]]


def test_shares_created_in_the_same_millisecond_are_never_split_out_of_the_pages(store):
    at = time.time() - DAY
    ids = []
    for i in range(7):
        sid = f"sh_same{i}{secrets.token_hex(2)}"
        ds = [{"id": f"dl_same{i}{a}", "account": a, "platform": "webhook", "status": "failed"}
              for a in ("hook-a", "hook-b")]
        store.create_share({"id": sid, "title": "same ms", "url": "https://x.example",
                            "delivery_ids": [d["id"] for d in ds]}, ds, at=at)
        ids.append(sid)
    for limit in (1, 2, 3):
        got, _ = every_page(store, ShareFilter(status="failed"), limit=limit)
        assert sorted(s.id for s in got) == sorted(ids) and len(got) == 7, limit
        got, _ = every_page(store, ShareFilter(account="hook-a"), limit=limit)
        assert len(got) == 7 and len({s.id for s in got}) == 7


def test_the_plain_list_pages_through_everything_once(store):
    ids = write(store, 95)
    got, requests = every_page(store, ShareFilter(), limit=20)
    assert [s.id for s in got] == ids[::-1] and requests == 5
