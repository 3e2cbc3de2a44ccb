"""The delivery log at size: write N deliveries (default 1,000,000) through our own store — 90 days of
shares of 1–5 accounts each, realistic statuses, composed posts and event timelines — then time what
the dashboard asks for, each repeated, beside a bare baseline measured in the same run (one raw
``ZRANGE BYLEX`` of 20 members from the shares index):

- the share list's first page and pages deep in the log (cursors), every status filter, an account and
  a platform filter, title search (Chinese substrings common and rare, Latin words and prefixes,
  case-insensitive), date ranges, the schedule page (500 posts with their titles), counts, account
  activity;
- completeness: every needle title planted on a random day is found by one search; every rare-status
  share is found walking the pages;
- Redis bytes per delivery (all of it: records, events, shares with their article, every index), after
  the settled shares are packed as the hourly purge task packs them (``sharer/store/cold.py``).

Writes use pipelines (``create_share(pipe=...)``, 200 shares per round trip) under a dedicated db and
prefix, deleted afterwards. Usage:
    python bench/dashboard.py [--deliveries 1000000] [--reps 30]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer import service  # noqa: E402
from sharer.config import load_settings  # noqa: E402
from sharer.loaders import load_article  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402
from sharer.store import codec  # noqa: E402
from sharer.store.deliveries import STATUSES  # noqa: E402

DAY = 86400.0
ACCOUNTS = {"hook-1": "webhook", "hook-2": "webhook", "hook-3": "webhook", "tg-news": "telegram",
            "tg-ops": "telegram", "md-main": "mastodon"}
WORDS = ["北汽", "宁德时代", "电池", "新能源", "汽车", "发布", "合作", "战略", "比亚迪", "充电", "技术", "市场",
         "销量", "增长", "政策", "出口", "芯片", "智能", "驾驶", "储能", "固态", "工厂", "投资", "季度"]
LATIN = ["CATL", "BAIC", "BYD", "EV", "battery", "charging", "Model", "Seal", "Shenxing", "outlook"]
NEEDLES = ["麒麟电池量产瑞典工厂", "Qilin Northvolt tie-up"]  # planted on random days, 12 shares each
# settled statuses of an old delivery; the newest hours also have queued/sending/retrying
SETTLED = [("delivered", 0.9385), ("failed", 0.04), ("cancelled", 0.02), ("needs_review", 0.001),
           ("unknown", 0.0005)]


def config(tmp: Path, tag: str) -> Path:
    cfg = tmp / "sharer.toml"
    accounts = []
    for name, platform in ACCOUNTS.items():
        if platform == "webhook":
            accounts.append(f'[accounts.{name}]\nplatform = "webhook"\napi_base = "http://127.0.0.1:9/{name}"\n'
                            'credentials = { secret = "sandbox:" }\n')
        elif platform == "telegram":
            accounts.append(f'[accounts.{name}]\nplatform = "telegram"\napi_base = "http://127.0.0.1:9"\n'
                            'credentials = { bot_token = "sandbox:" }\noptions = { chat_id = "@bench" }\n')
        else:
            accounts.append(f'[accounts.{name}]\nplatform = "mastodon"\napi_base = "http://127.0.0.1:9"\n'
                            'credentials = { access_token = "sandbox:" }\n')
    cfg.write_text(f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "bd{tag}"\n'
                   f'[celery]\nqueue = "bench-dash-{tag}"\n' + "\n".join(accounts))
    return cfg


def title(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(3, 6)) + rng.sample(LATIN, rng.randint(0, 2))
    rng.shuffle(words)
    return "".join(w if not w.isascii() else f" {w} " for w in words).strip() + f" 第{rng.randint(1, 999)}期"


def write(rt: Runtime, n_deliveries: int, rng: random.Random) -> dict:
    """Write the log; returns what was planted (needle share ids, rare-status share ids)."""
    article = load_article(str(ROOT / "examples" / "baic-catl.json"))
    posts = {name: p.to_dict() for name, p in zip(ACCOUNTS, service.preview(rt, article, list(ACCOUNTS)))}
    art = article.to_dict()
    now = time.time()
    n_shares = max(1, n_deliveries // 3)
    needles = {q: set(rng.sample(range(n_shares), min(12, n_shares))) for q in NEEDLES}
    planted: dict = {"needles": {q: [] for q in NEEDLES}}
    rare_shares: dict[str, set[str]] = {"needs_review": set(), "unknown": set()}
    written = 0
    i = 0
    names = list(ACCOUNTS)
    pipe = rt.redis.pipeline(transaction=False)
    t0 = time.time()
    while written < n_deliveries:
        created = now - 90 * DAY + 90 * DAY * (i / n_shares) - 60
        sid = f"sh_{int(created * 1000):011x}{secrets.token_hex(5)}"
        t = next((q for q, s in needles.items() if i in s), None)
        share_title = f"{title(rng)} {t}" if t else title(rng)
        accounts = rng.sample(names, min(rng.randint(1, 5), n_deliveries - written))
        scheduled = now - created < 14 * DAY and rng.random() < 0.03
        ds, extra = [], []
        for a in accounts:
            did = f"dl_{int(created * 1000):011x}{secrets.token_hex(5)}"
            d = {"id": did, "account": a, "platform": ACCOUNTS[a], "post": posts[a]}
            if scheduled:
                d.update(status="scheduled", scheduled_for=now + rng.uniform(60, 30 * DAY), timezone="Asia/Shanghai",
                         slot_label="bench", version=0, max_lateness=900, message="scheduled for later")
            elif now - created < 2 * 3600:
                d["status"] = rng.choice(["queued", "sending", "retrying", "delivered", "delivered"])
            else:
                x, st = rng.random(), "delivered"
                for name, p in SETTLED:
                    if x < p:
                        st = name
                        break
                    x -= p
                d["status"] = st
            st = d["status"]
            if st in rare_shares:
                rare_shares[st].add(sid)
            if st == "delivered":
                d.update(post_id=str(rng.randint(10**8, 10**9)), post_url=f"https://example.social/p/{did}")
                extra.append((did, ["sending", "delivered"]))
            elif st == "failed":
                d.update(error="HTTP 400: the platform refused the post", error_kind="permanent")
                extra.append((did, ["sending", "retrying", "sending", "failed"]))
            elif st in ("needs_review", "unknown"):
                extra.append((did, ["sending", st]))
            ds.append(d)
        rt.store.create_share({"id": sid, "article": art, "title": share_title, "url": article.url,
                               "delivery_ids": [d["id"] for d in ds]}, ds, at=created, pipe=pipe)
        at = created
        for did, steps in extra:
            for n, st in enumerate(steps):
                at += 1.5
                pipe.rpush(rt.keys.events(did), codec.pack_event(int(at * 1000), st, n // 2 + 1, st, "worker"))
        if t:
            planted["needles"][t].append(sid)
        written += len(ds)
        i += 1
        if i % 200 == 0:
            pipe.execute()
            if i % 20000 == 0:
                rate = written / (time.time() - t0)
                print(f"  {written:,} deliveries written ({rate:,.0f}/s)", flush=True)
    pipe.execute()
    rt.redis.set(rt.keys.title_index_ready, int(time.time()))  # every share was indexed as it was written
    planted.update(deliveries=written, shares=i, rare=rare_shares, seconds=time.time() - t0)
    return planted


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    fn()  # warm (scripts loaded, connections open)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else values[0]


def all_pages(rt: Runtime, **flt) -> tuple[set[str], int]:
    ids, cursor, n = set(), None, 0
    while True:
        page, cursor = service.list_shares(rt, limit=20, cursor=cursor, **flt)
        ids |= {s.id for s in page}
        n += 1
        if cursor is None:
            return ids, n


def sizes(rt: Runtime, n: int) -> dict[str, float]:
    """Where the bytes go, per delivery: MEMORY USAGE of every key under the prefix, by kind."""
    r, root = rt.redis, rt.keys.root
    kinds = [(f"{root}:cold-map:", "delivery -> share map"), (f"{root}:cold:", "packed shares"),
             (f"{root}:dlv:", "hot records (hash, events, post, long values)"), (f"{root}:share:", "hot shares"),
             (f"{root}:idx:title", "title index"), (f"{root}:idx:", "other indexes")]
    out = {name: 0.0 for _, name in kinds} | {"the rest": 0.0}
    keys = [key.decode() for key in r.scan_iter(match=f"{root}:*", count=5000)]
    for i in range(0, len(keys), 5000):
        pipe = r.pipeline(transaction=False)
        chunk = keys[i:i + 5000]
        for key in chunk:
            pipe.memory_usage(key, samples=0)
        for key, b in zip(chunk, pipe.execute()):
            name = next((name for start, name in kinds if key.startswith(start)), "the rest")
            out[name] += (b or 0) / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deliveries", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    tag = secrets.token_hex(2)  # prefix "bd<4 hex>": as long as the default "sharer", so key names cost the same
    rt = Runtime(load_settings(config(Path(tempfile.mkdtemp(prefix="sharer-bench-dash-")), tag)))
    rng = random.Random(args.seed)
    try:
        mem0 = rt.redis.info("memory")["used_memory"]
        print(f"writing {args.deliveries:,} deliveries under prefix bd{tag} (db 14)", flush=True)
        planted = write(rt, args.deliveries, rng)
        n = planted["deliveries"]
        print(f"wrote {n:,} deliveries in {planted['shares']:,} shares in {planted['seconds']:.0f} s", flush=True)
        hot = rt.redis.info("memory")["used_memory"]
        t = time.time()
        packed = rt.store.compact()  # what the hourly purge task does: settled an hour ago -> packed
        print(f"packed {packed:,} settled shares in {time.time() - t:.0f} s (hot: "
              f"{(hot - mem0) / max(1, n):,.0f} bytes per delivery)", flush=True)
        mem1 = rt.redis.info("memory")["used_memory"]
        for _ in range(30):  # Redis shrinks its key tables a moment after many keys went (serverCron)
            time.sleep(0.5)
            mem1, last = rt.redis.info("memory")["used_memory"], mem1
            if abs(mem1 - last) < 64 * 1024:
                break
        r, k = rt.redis, rt.keys
        members = r.zcard(k.shares_index)
        mid = r.zrange(k.shares_index, members // 2, members // 2)[0].decode()
        deep = r.zrange(k.shares_index, members // 20, members // 20)[0].decode()
        now = time.time()
        cases: list[tuple[str, Callable[[], object]]] = [
            ("bare: ZRANGE BYLEX 20 of the shares index",
             lambda: r.zrange(k.shares_index, "+", "-", desc=True, bylex=True, offset=0, num=20)),
            ("share list, first page", lambda: service.list_shares(rt)),
            ("share list, cursor at half the log", lambda: service.list_shares(rt, cursor=mid)),
            ("share list, cursor at 95% back", lambda: service.list_shares(rt, cursor=deep)),
        ]
        cases += [(f"status = {s}", lambda s=s: service.list_shares(rt, status=s)) for s in STATUSES]
        cases += [
            ("account = tg-ops", lambda: service.list_shares(rt, account="tg-ops")),
            ("platform = mastodon", lambda: service.list_shares(rt, platform="mastodon")),
            ("title 电池 (common bigram)", lambda: service.list_shares(rt, q="电池")),
            ("title 宁德时代 (4 characters)", lambda: service.list_shares(rt, q="宁德时代")),
            ("title 瑞典工厂 (rare)", lambda: service.list_shares(rt, q="瑞典工厂")),
            ("title 量产瑞 (rare, mid-word)", lambda: service.list_shares(rt, q="量产瑞")),
            ("title catl (Latin, any case)", lambda: service.list_shares(rt, q="catl")),
            ("title Northv (Latin prefix, rare)", lambda: service.list_shares(rt, q="Northv")),
            ("title 电池 + status failed", lambda: service.list_shares(rt, q="电池", status="failed")),
            ("one day, 45 days ago", lambda: service.list_shares(rt, since=now - 45 * DAY, until=now - 44 * DAY)),
            ("a week, 60-67 days ago, delivered",
             lambda: service.list_shares(rt, since=now - 67 * DAY, until=now - 60 * DAY, status="delivered")),
            ("schedule page (500 posts + titles)", lambda: service.schedule_titles(
                rt, list({d.share_id for d in service.schedule_page(rt, limit=500)[0]}))),
            ("counts", lambda: service.counts(rt)),
            ("account activity (tg-ops)", lambda: service.account_activity(rt, "tg-ops")),
        ]
        results = [(name, timed(fn, args.reps)) for name, fn in cases]
        # completeness
        checks = []
        for q, sids in planted["needles"].items():
            for query in ((q[2:6], q[:4]) if not q.isascii() else ("northvolt", "QILIN North")):
                page, cursor = service.list_shares(rt, q=query, limit=50)
                found = {s.id for s in page}
                checks.append((f"title {query!r}: {len(found & set(sids))} of {len(sids)} planted in one request"
                               f" (next_cursor {'set' if cursor else 'null'})", set(sids) <= found))
        for st, sids in planted["rare"].items():
            found, pages = all_pages(rt, status=st)
            checks.append((f"status {st}: {len(found & sids)} of {len(sids)} shares over {pages} pages",
                           sids <= found))
        sched, cursor, pages = 0, None, 0
        while True:
            got, cursor = service.schedule_page(rt, limit=500, cursor=cursor)
            sched, pages = sched + len(got), pages + 1
            if cursor is None:
                break
        total_sched = service.counts(rt)["scheduled"]
        checks.append((f"schedule: {sched} of {total_sched} scheduled posts over {pages} pages", sched == total_sched))
        breakdown = sizes(rt, n)
    finally:
        print("deleting the bench keys", flush=True)
        pipe = rt.redis.pipeline(transaction=False)
        for i, key in enumerate(rt.redis.scan_iter(match=f"bd{tag}:*", count=5000)):
            pipe.unlink(key)
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
    per = (mem1 - mem0) / max(1, n)
    print(f"\n{n:,} deliveries, {planted['shares']:,} shares over 90 days; {args.reps} runs each (plus a warm-up)")
    print("| query | p50 ms | p95 ms |")
    print("|---|---|---|")
    for name, xs in results:
        print(f"| {name} | {p(xs, 0.5) * 1000:.1f} | {p(xs, 0.95) * 1000:.1f} |")
    worst = max((p(xs, 0.95), name) for name, xs in results[1:])
    verdict = "met" if worst[0] < 0.1 else "NOT met"
    print(f"slowest p95: {worst[1]} {worst[0] * 1000:.1f} ms; target < 100 ms: {verdict}")
    for text, ok in checks:
        print(f"- {'ok' if ok else 'MISSING'}: {text}")
    print(f"Redis bytes per delivery (used_memory grown / deliveries): {per:,.0f}; MEMORY USAGE by kind: "
          + ", ".join(f"{name} {b:,.0f}" for name, b in breakdown.items())
          + f"; target <= 1,500: {'met' if per <= 1500 else 'NOT met'}")


if __name__ == "__main__":
    main()
