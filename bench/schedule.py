"""Dispatch lag and memory of the schedule: 10,000 deliveries due in the same minute, with 100,000
more pending in the set, released by a real `celery -A tasks beat` (1 s tick).

Prints p50/p99/max of each delivery's dispatch lag (release time - due time) and Redis memory per
scheduled delivery (record + event + indexes + schedule entry). Usage:
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
    finally:
        for proc in (beat, control):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
        for pattern in (f"bench-sched-{tag}*",):
            for k in rt.redis.scan_iter(match=pattern, count=5000):
                rt.redis.delete(k)
    print(f"released {len(lags)} of {args.due} (pending in the set: {args.pending})")
    print("| dispatch lag | seconds |")
    print("|---|---|")
    print(f"| p50 | {pct(lags, 0.50):.3f} |")
    print(f"| p99 | {pct(lags, 0.99):.3f} |")
    print(f"| max | {max(lags):.3f} |")
    print(f"Redis memory per scheduled delivery (record, event, indexes, schedule entry): {per_entry:.0f} bytes")
    print(f"p99 target < 2 s: {'met' if pct(lags, 0.99) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
