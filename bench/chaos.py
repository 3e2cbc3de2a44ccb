"""Chaos at scale: many deliveries, several worker processes, random 503s, a shared per-account rate limit.

Case 5 of tests/test_chaos.py, bigger. The sandbox (``sharer sandbox``) runs as its own process; its
webhook answers a random ``--fault-rate`` of calls with 503. Workers are ``celery -A tasks worker``
subprocesses. Every delivery is triggered at once (``--trigger-rate`` paces them instead), then the
script waits until all are settled, running the sweeper every 10 s as beat would (every 60 s).

Reported: delivered / duplicates (deliveries with more than one post) / lost (no settled record, or
``delivered`` with no post) / needs_review / failed, p50 and p99 trigger-to-delivered latency (the
record's ``created_at`` to its ``delivered`` event), and the rate limit as observed: the most sends
(claims) and the most posts (arrivals at the receiver) in any window of the limit's length.

Usage: python bench/chaos.py [-n 2000] [--workers 3] [--concurrency 2] [--fault-rate 0.2]
                             [--accounts 3] [--rate-limit 40/1] [--trigger-rate 0] [--port 18950]
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
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer import service  # noqa: E402
from sharer.article import Article  # noqa: E402
from sharer.clock import parse_iso  # noqa: E402
from sharer.config import load_settings  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402
from sharer.sweeper import sweep  # noqa: E402

SETTLED = ("delivered", "failed", "needs_review", "cancelled")


def start(cmd: list[str], env: dict[str, str], ready: str, log: Path) -> subprocess.Popen:
    fh = open(log, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while ready.encode() not in log.read_bytes():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def max_in_window(times: list[float], per: float) -> int:
    """Most of the (sorted) times inside any window of ``per`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= per:
            j += 1
        best = max(best, i - j + 1)
    return best


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="deliveries (default 2000)")
    ap.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    ap.add_argument("--concurrency", type=int, default=2, help="prefork children per worker (default 2)")
    ap.add_argument("--fault-rate", type=float, default=0.2, help="share of webhook calls answered 503 (0.2)")
    ap.add_argument("--accounts", type=int, default=3, help="webhook accounts, each rate-limited (default 3)")
    ap.add_argument("--rate-limit", default="40/1", help="COUNT/SECONDS per account, 0 = none (default 40/1)")
    ap.add_argument("--trigger-rate", type=float, default=0.0, help="deliveries/s to trigger, 0 = all at once")
    ap.add_argument("--port", type=int, default=18950, help="sandbox base port (webhook = this port)")
    ap.add_argument("--timeout", type=float, default=900.0, help="give up waiting after this many seconds")
    args = ap.parse_args()

    limit = None
    if args.rate_limit not in ("0", ""):
        count, _, per = args.rate_limit.partition("/")
        limit = (int(count), float(per or 1))
    tmp = Path(tempfile.mkdtemp(prefix="sharer-chaos-"))
    tag = secrets.token_hex(3)
    hook = f"http://127.0.0.1:{args.port}"
    names = [f"chaos-{i}" for i in range(args.accounts)]
    rate = f"rate_limit = {{ count = {limit[0]}, per_seconds = {limit[1]} }}\n" if limit else ""
    cfg = tmp / "sharer.toml"
    cfg.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "chaos-bench-{tag}"\n'
        f'[celery]\nqueue = "chaos-bench-{tag}"\n'
        # 10 attempts: with 20 % faults a delivery fails all of them with p = 0.2**10 (1e-7)
        "[delivery]\nlease_seconds = 30\nhttp_timeout = 5\nduplicate_window_hours = 0\n"
        "retry = { base = 0.1, cap = 0.5, max_attempts = 10 }\n"
        + "".join(f'[accounts.{a}]\nplatform = "webhook"\napi_base = "{hook}/hooks/{a}"\n'
                  'credentials = { secret = "sandbox:" }\nutm = false\noptions = { include_body = false }\n'
                  f"{rate}" for a in names)
    )
    env = dict(os.environ, SHARER_CONFIG=str(cfg))
    env.pop("SHARER_REDIS_URL", None)
    env.pop("SHARER_BROKER_URL", None)
    rt = Runtime(load_settings(cfg))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start([sys.executable, "-m", "sharer.cli", "sandbox", "--base-port", str(args.port)], env,
                           "sandbox running", tmp / "sandbox.log"))
        if args.fault_rate > 0:
            requests.post(f"{hook}/_sandbox/faults", timeout=5, json={
                "path": "/hooks/chaos-", "kind": "status", "status": 503, "count": 10**9,
                "probability": args.fault_rate, "body": {"error": "injected: busy"}}).raise_for_status()
        for i in range(args.workers):
            procs.append(start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "prefork", "-c",
                                str(args.concurrency), "-n", f"chaos{i}-{tag}@%h", "--without-gossip",
                                "--without-mingle", "--without-heartbeat", "-l", "INFO"], env, " ready.",
                               tmp / f"worker{i}.log"))

        # --- trigger ---
        t0 = time.time()
        ids: list[str] = []
        share = 0
        while len(ids) < args.n:
            to = names[: min(len(names), args.n - len(ids))]
            a = Article(title=f"Chaos bench {tag} {share}", url=f"https://news.example.com/chaos/{tag}/{share}",
                        summary="Twenty per cent of these calls fail; none may be lost or doubled.")
            ids += [d.id for d in service.share(rt, a, to).deliveries]
            share += 1
            if args.trigger_rate > 0:
                time.sleep(max(0.0, t0 + len(ids) / args.trigger_rate - time.time()))
        triggered = time.time() - t0

        # --- wait, sweeping like beat ---
        last_sweep = time.time()
        while True:
            counts = rt.store.count_by_status()
            if sum(counts[s] for s in SETTLED) >= args.n or time.time() - t0 > args.timeout:
                break
            if time.time() - last_sweep > 10:
                sweep(rt)
                last_sweep = time.time()
            time.sleep(0.2)
        wall = time.time() - t0

        records = rt.store.get_many(ids, with_events=True)
        posts = requests.get(f"{hook}/_sandbox/posts", timeout=60).json()["posts"]
    finally:
        for p in reversed(procs):
            stop(p)
        for pattern in (f"chaos-bench-{tag}*", f"_kombu.binding*.chaos-bench-{tag}*"):
            for k in rt.redis.scan_iter(match=pattern, count=1000):
                rt.redis.delete(k)
        rt.queue.close()

    # --- verdict ---
    mine = [p for p in posts if p.get("path", "").startswith("/hooks/chaos-")]
    per_delivery = Counter((p.get("body") or {}).get("delivery_id") or p.get("delivery") for p in mine)
    status = Counter(d.status for d in records)
    duplicates = sum(1 for c in per_delivery.values() if c > 1)
    unsettled = args.n - sum(status[s] for s in SETTLED)
    delivered_without_post = sum(1 for d in records if d.status == "delivered" and per_delivery[d.id] == 0)
    lost = unsettled + delivered_without_post
    latencies = []
    for d in records:
        done = [e for e in d.events if e["status"] == "delivered"]
        if done:
            latencies.append(parse_iso(done[-1]["at"]).timestamp() - parse_iso(d.created_at).timestamp())
    sends = sum(d.attempts for d in records)

    print(f"deliveries: {args.n} to {args.accounts} webhook accounts, rate limit "
          f"{f'{limit[0]}/{limit[1]:g}s per account' if limit else 'none'}; workers: {args.workers} x prefork "
          f"{args.concurrency}; 503 fault rate: {args.fault_rate:.0%}")
    print(f"triggered in {triggered:.1f}s, all settled after {wall:.1f}s ({args.n / wall:.0f} deliveries/s); "
          f"{sends} sends ({sends - args.n} retries); {len(mine)} posts at the receiver")
    print()
    print("| delivered | duplicates | lost | needs_review | failed | p50 latency | p99 latency |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {status['delivered']} | {duplicates} | {lost} | {status['needs_review']} | {status['failed']} | "
          f"{percentile(latencies, 50):.2f} s | {percentile(latencies, 99):.2f} s |")
    if limit:
        print()
        print(f"| account | sends | most sends in any {limit[1]:g} s (limit {limit[0]}) | posts | "
              f"most posts arriving in any {limit[1]:g} s |")
        print("|---|---|---|---|---|")
        for a in names:
            claims = sorted(parse_iso(e["at"]).timestamp() for d in records if d.account == a
                            for e in d.events if e["status"] == "sending")
            arrivals = sorted(p["received_at"] for p in mine if p["path"] == f"/hooks/{a}")
            print(f"| {a} | {len(claims)} | {max_in_window(claims, limit[1])} | {len(arrivals)} | "
                  f"{max_in_window(arrivals, limit[1])} |")
        print()
        floor = args.n / (args.accounts * limit[0] / limit[1])
        print(f"(latency includes waiting behind the rate limit: {args.n} deliveries at "
              f"{args.accounts} x {limit[0]}/{limit[1]:g}s need at least {floor:.1f}s)")
    if duplicates or lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
