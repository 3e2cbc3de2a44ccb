"""Dispatch lag and memory of the schedule: 10,000 deliveries due in the same minute, with 100,000
more pending in the set, released by a real `celery -A tasks beat` (its dispatcher thread wakes for
the next due entry; the 15 s tick is only a backstop).

Prints p50/p99/max of each delivery's dispatch lag (release time - due time, as the dispatch script
records it) beside a bare baseline measured in the same run: one Python loop that sleeps until each
entry of a plain sorted set is due and takes it (ZRANGEBYSCORE + ZREM) — the floor this machine's scheduling and
Redis round trip allow. Also Redis memory per scheduled delivery (record + event + indexes +
schedule entry). Usage:
    python bench/schedule.py [--due 10000] [--pending 100000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer.config import load_settings  # noqa: E402
from sharer.loaders import load_article  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402


def create(rt: Runtime, article: dict, count: int, first_due: float, spread: float, tag: str) -> list[str]:
    """Scheduled deliveries written straight through the store, 1,000 per share."""
    ids = []
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        share_id = f"sh_bench{tag}{start}"
        deliveries = []
        for i in range(n):
            did = f"dl_bench{tag}{start + i}"
            due = first_due + spread * ((start + i) / max(1, count))
            deliveries.append({"id": did, "account": "bench", "platform": "webhook", "scheduled_for": due,
                               "timezone": "Asia/Shanghai", "slot_label": "bench", "version": 0,
                               "max_lateness": 900, "message": "scheduled"})
            ids.append(did)
        rt.store.create_share({"id": share_id, "article": article, "title": "bench", "url": "https://x.example",
                               "delivery_ids": [d["id"] for d in deliveries]}, deliveries, status="scheduled")
    return ids


def bare_baseline(rt: Runtime, count: int, spread: float, key: str) -> list[float]:
    """Sleep until the next due member, take it, record how late that was (same due spread)."""
    first = time.time() + 2
    pipe = rt.redis.pipeline(transaction=False)
    for i in range(count):
        pipe.zadd(key, {f"b{i}": first + spread * i / count})
    pipe.execute()
    lags = []
    while True:
        head = rt.redis.zrange(key, 0, 0, withscores=True)
        if not head:
            return lags
        wait = head[0][1] - time.time()
        if wait > 0:
            time.sleep(wait)
        t = time.time()
        due_now = rt.redis.zrangebyscore(key, "-inf", t, start=0, num=500, withscores=True)
        if due_now:
            rt.redis.zrem(key, *[m for m, _ in due_now])
            t = time.time()
            lags += [t - due for _, due in due_now]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--pending", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sharer-bench-schedule-"))
    tag = secrets.token_hex(3)
    cfg = tmp / "sharer.toml"
    cfg.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "bench-sched-{tag}"\n'
        f'[celery]\nqueue = "bench-sched-{tag}"\n'
        '[accounts.bench]\nplatform = "webhook"\napi_base = "http://127.0.0.1:9/hook"\n'
        'credentials = { secret = "sandbox:" }\n'
    )
    os.environ["SHARER_CONFIG"] = str(cfg)
    rt = Runtime(load_settings(cfg))
    article = load_article(str(ROOT / "examples" / "baic-catl.json")).to_dict()
    beat = control = None
    try:
        mem0 = rt.redis.info("memory")["used_memory"]
        create(rt, article, args.pending, time.time() + 86400, 86400, "p")
        mem1 = rt.redis.info("memory")["used_memory"]
        per_entry = (mem1 - mem0) / max(1, args.pending)
        first_due = time.time() + 15 + args.due / 2000  # leave time to write them all first
        ids = create(rt, article, args.due, first_due, 60.0, "d")
        print(f"created {args.pending} pending + {args.due} due within one minute; starting beat", flush=True)
        log = open(tmp / "beat.log", "wb")
        beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "beat", "-s", str(tmp / "beat.db"),
                                 "-l", "WARNING"], cwd=ROOT, env=dict(os.environ), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        # The worker consumes only the control queue: this measures the dispatcher, not the posting
        # (the released deliveries' messages wait in the delivery queue and are deleted afterwards).
        control = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q",
                                    f"bench-sched-{tag}.control", "-c", "1", "--without-gossip", "--without-mingle",
                                    "-l", "WARNING"], cwd=ROOT, env=dict(os.environ), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        deadline = first_due + 60 + 30
        while time.time() < deadline:
            if rt.store.count_by_status()["queued"] >= args.due:
                break
            time.sleep(1)
        lags = [d.lag_seconds for d in rt.store.get_many(ids, with_events=False) if d.lag_seconds is not None]
        for proc in (beat, control):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        beat = control = None
        print("measuring the bare baseline (same due spread, one minute)", flush=True)
        bare = bare_baseline(rt, args.due, 60.0, f"bench-sched-{tag}:bare")
    finally:
        for proc in (beat, control):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
        for pattern in (f"bench-sched-{tag}*",):
            for k in rt.redis.scan_iter(match=pattern, count=5000):
                rt.redis.delete(k)
    print(f"released {len(lags)} of {args.due} (pending in the set: {args.pending})")
    print("| dispatch lag (s) | sharer (beat + dispatcher thread) | bare loop (sleep + take) |")
    print("|---|---|---|")
    for name, q in (("p50", 0.50), ("p99", 0.99)):
        print(f"| {name} | {pct(lags, q):.3f} | {pct(bare, q):.3f} |")
    print(f"| max | {max(lags):.3f} | {max(bare):.3f} |")
    print(f"Redis memory per scheduled delivery (record, event, indexes, schedule entry): {per_entry:.0f} bytes")
    print(f"p99 target < 0.1 s: {'met' if pct(lags, 0.99) < 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
