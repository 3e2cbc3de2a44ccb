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
    for key in store.r.scan_iter(match=f"{store.k.prefix}:idx:title-odd:*"):  # these ids are not new_id's
        members = {m.decode().split(":", 1)[1] for m in store.r.zrange(key, 0, -1)}
        assert members and not members & set(ids[:3])


def test_a_log_written_before_the_index_is_indexed_and_then_searchable(store):
    ids = write(store, 40, title="Old log {i} 旧日志")
    for key in store.r.scan_iter(match=f"{store.k.prefix}:idx:title*"):
        store.r.delete(key)
    page, cursor = query_shares(store, ShareFilter(q="旧日"), limit=50)
    assert {s.id for s in page} == set(ids) and cursor is None
    assert store.r.exists(store.k.title_index_ready)


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


# --- the title index's posting strings (version 2) --------------------------------------------------

def std_id(at_ms: int) -> str:
    """A share id in ``new_id``'s form for that millisecond."""
    return f"sh_{at_ms:011x}{secrets.token_hex(5)}"


def put(store: DeliveryStore, sid: str, title: str, at_ms: int | None = None, status: str = "delivered") -> str:
    """One share of two deliveries, created at ``at_ms`` (None: now)."""
    ds = [{"id": f"dl_{sid[3:]}{a}", "account": a, "platform": "webhook", "status": status}
          for a in ("hook-a", "hook-b")]
    # half a millisecond in: ``ms()`` truncates, and an exact x/1000 may land a hair below x
    store.create_share({"id": sid, "title": title, "url": "https://x.example", "delivery_ids": [d["id"] for d in ds]},
                       ds, at=None if at_ms is None else (at_ms + 0.5) / 1000)
    return sid


def std(store: DeliveryStore, at_ms: int, title: str) -> str:
    """A share with a standard id, created at its id's millisecond (as every new share is)."""
    return put(store, std_id(at_ms), title, at_ms=at_ms)


def member(store: DeliveryStore, sid: str) -> str:
    created = store.share(sid).created_at
    from sharer.clock import epoch_of
    return f"{round(epoch_of(created) * 1000):013d}:{sid}"


def keys_like(store: DeliveryStore, pattern: str) -> list[str]:
    return sorted(k.decode() for k in store.r.scan_iter(match=f"{store.k.prefix}:{pattern}", count=1000))


def week(key: str) -> int:
    """The week of a posting string's name."""
    return int(key.split(":idx:title-w:", 1)[1].split(":", 1)[0])


def test_a_share_from_every_week_of_the_retention_window_is_found_in_one_request(store):
    now_ms = int(time.time() * 1000)
    days = [*range(0, 90, 3), 89.9]
    ids = [std(store, now_ms - int(d * DAY * 1000), f"周报 Weekly digest {d}") for d in days]
    for i in range(200):  # other titles in the same weeks
        std(store, now_ms - int(i * 0.45 * DAY * 1000), f"Noise {i} 噪音")
    page, cursor = query_shares(store, ShareFilter(q="周报"), limit=50)
    assert [s.id for s in page] == ids and cursor is None
    page, cursor = query_shares(store, ShareFilter(q="weekly DIG"), limit=50)
    assert [s.id for s in page] == ids and cursor is None
    assert not keys_like(store, "idx:title-odd:*")  # every share had a standard id at its own ms
    weeks = {week(k) for k in keys_like(store, "idx:title-w:*:b:周报")}
    assert len(weeks) in (13, 14)  # one string per week the shares were created in


def test_chinese_substrings_of_every_length_and_latin_prefixes_in_any_case(store):
    now_ms = int(time.time() * 1000)
    title = "宁德时代发布麒麟电池 Shenxing Superfast-Charging"
    shares = {std(store, now_ms - d * 86_400_000, t): t for d, t in (
        (10, title), (9, "麒麟 发布 宁德 时代 Shen xing"), (8, "电池电动 superb 代发"))}

    def expected(q: str) -> list[str]:  # newest first
        return sorted((s for s, t in shares.items() if q.casefold() in t.casefold()), reverse=True)

    han = title.split(" ")[0]
    for n in range(2, len(han) + 1):
        for i in range(len(han) - n + 1):
            q = han[i:i + n]
            page, cursor = query_shares(store, ShareFilter(q=q))
            assert [s.id for s in page] == expected(q) and expected(q) and cursor is None, q
    for q in ("shen", "SHENX", "Shenxing", "supERF", "charg", "CHARGING", "Shenxing Super", "麒麟电池 shen"):
        page, cursor = query_shares(store, ShareFilter(q=q))
        assert [s.id for s in page] == expected(q) and expected(q) and cursor is None, q
    for q in ("麟电池电", "hing", "xing Superfast-Charging!", "宁德发布", "时代发布麒麟电池电动"):
        assert query_shares(store, ShareFilter(q=q)) == ([], None), q


def test_odd_ids_and_a_backdated_share_are_found_in_created_order(store):
    now_ms = int(time.time() * 1000)
    a = std(store, now_ms - 39 * 86_400_000, "Odd order test 顺序")
    b = std(store, now_ms - 41 * 86_400_000, "Odd order test 顺序")
    old = put(store, "sh_old", "Odd order test 顺序", at_ms=now_ms - 50 * 86_400_000)
    upper = put(store, f"sh_{now_ms - 45 * 86_400_000:011X}ABCDE12345", "Odd order test 顺序",
                at_ms=now_ms - 45 * 86_400_000)  # upper-case hex: not new_id's form
    from sharer.service import new_id
    backdated = new_id("sh")  # its id says now; it was created 40 days ago
    put(store, backdated, "Odd order test 顺序", at_ms=now_ms - 40 * 86_400_000)
    fresh = put(store, new_id("sh"), "Odd order test 顺序")  # at=None: created at its id's millisecond
    assert member(store, fresh) == f"{int(fresh[3:14], 16):013d}:{fresh}"
    odd = {m.decode().split(":", 1)[1] for m in store.r.zrange(store.k.title_odd("b:顺序"), 0, -1)}
    assert odd == {old, upper, backdated}
    for q in ("顺序", "odd ORDER"):
        page, cursor = query_shares(store, ShareFilter(q=q))
        assert [s.id for s in page] == [fresh, a, backdated, b, upper, old] and cursor is None, q
    got, requests = every_page(store, ShareFilter(q="顺序"), limit=2)
    assert [s.id for s in got] == [fresh, a, backdated, b, upper, old] and requests == 3


def test_pages_of_a_search_return_every_match_exactly_once(store):
    now_ms = int(time.time() * 1000) - 5 * 86_400_000
    want = []
    for i in range(40):
        at = now_ms - (i // 4) * 3_600_000  # four shares per millisecond
        want.append(std(store, at, f"Paging 分页测试 {i}"))
        if i % 5 == 0:
            want.append(put(store, f"sh_odd{i:03d}", f"Paging 分页测试 odd {i}", at_ms=at))
        std(store, at, "页测试 分页测 Pagingless")  # every token, not the text: dropped on verification
    want.append(std(store, now_ms - 11 * 3_600_000, "Paging 分页测试 the oldest"))  # the last candidate
    by_member = sorted(want, key=lambda sid: member(store, sid), reverse=True)
    for limit in (1, 3, 7, 48, 60):
        got, requests = every_page(store, ShareFilter(q="分页测试"), limit=limit)
        assert [s.id for s in got] == by_member, limit
        assert requests == max(1, -(-len(want) // limit)), limit  # a cursor exactly when more remain
    got, _ = every_page(store, ShareFilter(q="paging 分页", status="delivered", account="hook-b"), limit=6)
    assert [s.id for s in got] == by_member


def test_since_and_until_are_exact_at_the_millisecond(store):
    t0 = int(time.time() * 1000) - 20 * 86_400_000
    at = {}
    for d in range(5):
        at[d] = std(store, t0 + d, f"Bounds 界限 {d}")
    odd = put(store, "sh_bounds_odd", "Bounds 界限 odd", at_ms=t0 + 2)

    def search(since_ms, until_ms):
        flt = ShareFilter(q="界限", since=(since_ms + 0.5) / 1000, until=(until_ms + 0.5) / 1000)
        return {s.id for s in every_page(store, flt, limit=2)[0]}

    assert search(t0 + 1, t0 + 3) == {at[1], at[2], odd}  # since inclusive, until exclusive
    assert search(t0 + 2, t0 + 3) == {at[2], odd}
    assert search(t0 + 2, t0 + 2) == set()
    assert search(t0, t0 + 5) == {*at.values(), odd}
    assert search(t0 + 4, t0 + 10 * 86_400_000) == {at[4]}
    # a bound far outside the window is clamped, not read week by week
    assert search(0, int(time.time() * 1000) + 400 * 86_400_000) == {*at.values(), odd}


def test_posting_strings_expire_with_their_week_and_purge_only_touches_odd_sets(store):
    from sharer.store import titles
    now_ms = int(time.time() * 1000)
    old = [std(store, now_ms - int((88 + i) * DAY * 1000), f"Expiry 过期 {i}") for i in range(6)]
    odd = put(store, "sh_expiry_odd", "Expiry 过期 odd", at_ms=now_ms - int(93 * DAY * 1000))
    keep = std(store, now_ms - 1000, "Expiry 过期 new")
    for key in keys_like(store, "idx:title-w:*"):
        expected = (week(key) + 1) * titles.WEEK_MS // 1000 + store.retention + 86400
        assert store.r.execute_command("EXPIRETIME", key) == expected, key
    assert store.r.ttl(store.k.title_odd("b:过期")) == -1  # the purge removes these
    store.purge(time.time() - 90 * DAY)
    found = {s.id for s in every_page(store, ShareFilter(q="过期"))[0]}
    assert found == {keep, *old[:2]}  # the purged shares' entries are still in their strings: dropped
    assert store.r.zcard(store.k.title_odd("b:过期")) == 0 and odd not in found


def test_a_version_1_index_is_rebuilt_and_its_sorted_sets_deleted(store):
    from sharer.store import titles
    now_ms = int(time.time() * 1000)
    ids = [std(store, now_ms - i * 86_400_000, f"Migrate 迁移 {i}") for i in range(30)]
    ids.append(put(store, "sh_migrate_odd", "Migrate 迁移 odd", at_ms=now_ms - 31 * 86_400_000))
    assert store.compact(settled_before=time.time() + 1) == len(ids)  # settled: packed, titles included
    assert store.r.exists(store.k.cold(ids[0])) and not store.r.exists(store.k.share(ids[0]))
    # the log as version 1 left it: one sorted set per token, no posting strings, version "1"
    for key in keys_like(store, "idx:title*"):
        store.r.delete(key)
    pipe = store.r.pipeline()
    for sid in ids:
        m = member(store, sid)
        for t in titles.tokens(store.share(sid).title):  # (a packed share reads the same)
            pipe.zadd(store.k.title_index(t), {m: 0})
    pipe.set(store.k.title_index_version, "1")
    pipe.set(store.k.title_index("not-a-zset"), "x")
    pipe.execute()
    # a big log waits for the purge
    assert not titles.ready(store.r, store.k, store.retention, store.share_heads, small=0)
    assert titles.version(store.r, store.k) == "1" and store.r.exists(store.k.title_index("b:迁移"))
    store.purge(time.time() - 91 * DAY)  # the hourly purge rebuilds it
    assert titles.version(store.r, store.k) == "2"
    # version 1 stays a day for processes of the earlier version still running (a rolling upgrade)
    assert store.r.exists(store.k.title_index("b:迁移")) and store.r.get(store.k.title_index_version) == b"1"
    store.r.set(store.k.title_index_ready, int(time.time() - titles.UPGRADE_GRACE - 60))  # a day later
    store.purge(time.time() - 91 * DAY)
    assert not store.r.exists(store.k.title_index_version)
    assert keys_like(store, "idx:title:*") == [store.k.title_index("not-a-zset")]
    assert keys_like(store, "idx:title-odd:*") and keys_like(store, "idx:title-w:*")
    assert all(store.r.ttl(k) > 0 for k in keys_like(store, "idx:title-w:*"))
    page, cursor = query_shares(store, ShareFilter(q="迁移"), limit=50)
    assert [s.id for s in page] == ids and cursor is None
    titles.backfill(store.r, store.k, store.retention, store.share_heads)  # twice: each entry is in twice
    page, cursor = query_shares(store, ShareFilter(q="migrate"), limit=50)
    assert [s.id for s in page] == ids and cursor is None
