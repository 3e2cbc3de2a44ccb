"""Deliveries per second through the whole pipeline vs. a bare Celery task, in the same run.

Both use a 2-process prefork worker with sharer's Celery settings, the same Redis, and the same local
webhook receiver (a separate process). Ours does: share() (Redis writes + enqueue) -> claim (Lua) ->
read record + share -> compose -> signed POST -> delivered (Lua). The baseline does one POST and one
Redis write. Usage: python bench/throughput.py [-n 2000] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharer import service  # noqa: E402
from sharer.config import load_settings  # noqa: E402
from sharer.loaders import load_article  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402


def free_base_port(count: int = 10) -> int:
    """A base port with ``count`` free ports after it (the sandbox binds one per emulator)."""
    import random
    import socket

    for _ in range(50):
        base = random.randrange(20000, 40000)
        try:
            socks = []
            for p in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free port range for the sandbox")


PORT = free_base_port()


def start(cmd: list[str], env: dict[str, str], ready: str | None, log: Path) -> subprocess.Popen:
    fh = open(log, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while ready and ready.encode() not in log.read_bytes():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{cmd} failed:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sharer-bench-"))
    tag = secrets.token_hex(3)
    cfg = tmp / "sharer.toml"
    cfg.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "bench-{tag}"\n[celery]\nqueue = "bench-{tag}"\n'
        f'[accounts.bench]\nplatform = "webhook"\napi_base = "http://127.0.0.1:{PORT}/hooks/bench"\n'
        'credentials = { secret = "sandbox:" }\nutm = false\noptions = { include_body = false }\n'
    )
    os.environ["SHARER_CONFIG"] = str(cfg)
    env = dict(os.environ)
    rt = Runtime(load_settings(cfg))
    sandbox = start([sys.executable, "-m", "sharer.cli", "sandbox", "--base-port", str(PORT)], env,
                    "sandbox running", tmp / "sandbox.log")
    worker_args = ["worker", "-P", "prefork", "-c", str(args.concurrency), "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    try:
        article = load_article(str(ROOT / "examples" / "baic-catl.json"))
        from bench import baseline_tasks

        body = json.dumps({"title": article.title, "url": article.url, "text": article.summary})
        ours_w = start([sys.executable, "-m", "celery", "-A", "tasks", *worker_args, "-n", f"ours-{tag}@%h"],
                       env, None, tmp / "ours.log")
        bare_w = None
        ours_rates, bare_rates = [], []
        delivered = 0
        # Alternate rounds so machine noise hits both alike; one worker runs at a time.
        for rnd in range(args.rounds):
            if rnd:
                ours_w = start([sys.executable, "-m", "celery", "-A", "tasks", *worker_args, "-n",
                                f"ours{rnd}-{tag}@%h"], env, None, tmp / f"ours{rnd}.log")
            time.sleep(3)
            t0 = time.perf_counter()
            for _ in range(args.n):
                service.share(rt, article, ["bench"], force=True)
            delivered += args.n
            while rt.store.count_by_status()["delivered"] < delivered:
                if time.perf_counter() - t0 > 600:
                    raise SystemExit("ours: timed out")
                time.sleep(0.02)
            ours_rates.append(args.n / (time.perf_counter() - t0))
            stop(ours_w)

            bare_w = start([sys.executable, "-m", "celery", "-A", "bench.baseline_tasks", *worker_args, "-n",
                            f"bare{rnd}-{tag}@%h"], env, None, tmp / f"bare{rnd}.log")
            time.sleep(3)
            key = f"bench-{tag}:bare{rnd}"
            url = f"http://127.0.0.1:{PORT}/hooks/bare"
            t0 = time.perf_counter()
            for _ in range(args.n):
                baseline_tasks.bare.apply_async(args=[url, key, body])
            while int(rt.redis.get(key) or 0) < args.n:
                if time.perf_counter() - t0 > 600:
                    raise SystemExit("bare: timed out")
                time.sleep(0.02)
            bare_rates.append(args.n / (time.perf_counter() - t0))
            stop(bare_w)
            requests.post(f"http://127.0.0.1:{PORT}/_sandbox/reset", timeout=5)
        failed = rt.store.count_by_status()["failed"]
    finally:
        stop(sandbox)
        for k in rt.redis.scan_iter(match=f"bench-{tag}*", count=1000):
            rt.redis.delete(k)
        for k in rt.redis.scan_iter(match=f"_kombu.binding.bench-{tag}*", count=1000):
            rt.redis.delete(k)
    ours, bare = statistics.median(ours_rates), statistics.median(bare_rates)
    print(f"deliveries: {args.n} per round, {args.rounds} rounds, worker: prefork x{args.concurrency}, "
          f"failed: {failed}")
    print("| pipeline | deliveries/s (median) | rounds |")
    print("|---|---|---|")
    print(f"| sharer (share -> worker -> signed webhook -> log) | {ours:.0f} | "
          f"{', '.join(f'{r:.0f}' for r in ours_rates)} |")
    print(f"| bare Celery task (POST + 1 Redis write) | {bare:.0f} | {', '.join(f'{r:.0f}' for r in bare_rates)} |")
    print(f"ratio: {ours / bare:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
