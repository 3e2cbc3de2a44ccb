"""The whole pipeline's throughput per topology: one Redis, RabbitMQ + Redis, a Sentinel group, a Cluster.

Same worker (prefork x2), same local webhook receiver (the sandbox, a separate process), same share
loop (one delivery per share) for each topology, one after the other in the same run:

* ``redis``: broker and data in one private ``redis-server`` started here, whose ``INFO cpu``
  gives the Redis CPU time each delivery costs (broker + data, networking included): one Redis
  core's ceiling is 1 s divided by it;
* ``rabbitmq + redis``: RabbitMQ at 127.0.0.1:5672 (quorum queue, publisher confirms), data in Redis;
* ``sentinel``: broker and data behind a Sentinel group started here (one primary, one replica,
  three sentinels: ``tests/ha_support.py``), with WAIT for the replica after each share and claim;
* ``cluster``: data on a three-primary Redis Cluster started here (one installation = one slot, so
  one primary does the work), broker on a private ``redis-server``; its CPU is the cluster's, summed.

Usage: python bench/brokers.py [-n 1000] [--concurrency 2] [--only redis,rabbitmq,sentinel,cluster]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ha_support import Node, RedisClusterGroup, SentinelGroup, free_port  # noqa: E402

from bench.throughput import PORT, start, stop  # noqa: E402
from sharer import service  # noqa: E402
from sharer.config import load_settings  # noqa: E402
from sharer.loaders import load_article  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402


def redis_cpu(urls: list[str]) -> float:
    """The servers' own CPU seconds (user + system) so far: commands, scripts, networking, all of it."""
    import redis

    total = 0.0
    for url in urls:
        info = redis.Redis.from_url(url).info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def run_one(name: str, tmp: Path, redis_url: str, broker_url: str | None, n: int, concurrency: int,
            cpu: list[str] | None = None) -> str:
    tag = secrets.token_hex(3)
    cfg = tmp / f"{tag}.toml"
    broker = f'broker_url = "{broker_url}"\n' if broker_url else ""
    cfg.write_text(
        f'[redis]\nurl = "{redis_url}"\nprefix = "bench-b-{tag}"\n[celery]\n{broker}queue = "bench-b-{tag}"\n'
        f'[accounts.bench]\nplatform = "webhook"\napi_base = "http://127.0.0.1:{PORT}/hooks/bench"\n'
        'credentials = { secret = "sandbox:" }\nutm = false\noptions = { include_body = false }\n')
    env = {**os.environ, "SHARER_CONFIG": str(cfg)}
    rt = Runtime(load_settings(cfg))
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "prefork", "-c", str(concurrency),
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
                    "-n", f"{name.split()[0]}-{tag}@%h"], env, None, tmp / f"{tag}.log")
    try:
        time.sleep(4)
        article = load_article(str(ROOT / "examples" / "baic-catl.json"))
        cpu0 = redis_cpu(cpu) if cpu else 0.0
        t0 = time.perf_counter()
        share_times = []
        for _ in range(n):
            s0 = time.perf_counter()
            service.share(rt, article, ["bench"], force=True)
            share_times.append(time.perf_counter() - s0)
        while rt.store.count_by_status()["delivered"] < n:
            if time.perf_counter() - t0 > 600:
                raise SystemExit(f"{name}: timed out")
            time.sleep(0.05)
        rate = n / (time.perf_counter() - t0)
        share_times.sort()
        p50 = share_times[len(share_times) // 2] * 1000
        per = f"{(redis_cpu(cpu) - cpu0) / n * 1e6:.0f}" if cpu else "—"
        return f"| {name} | {rate:.0f} | {p50:.1f} | {per} |"
    finally:
        stop(worker)
        for k in rt.redis.scan_iter(match=f"*bench-b-{tag}*", count=1000):  # {…} on a cluster
            rt.redis.delete(k)
        rt.queue.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--only", default="redis,rabbitmq,sentinel,cluster")
    args = ap.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="sharer-bench-brokers-"))
    env = dict(os.environ)
    sandbox = start([sys.executable, "-m", "sharer.cli", "sandbox", "--base-port", str(PORT)], env,
                    "sandbox running", tmp / "sandbox.log")
    rows = []
    group = SentinelGroup(tmp / "sentinel")
    cluster = RedisClusterGroup(tmp / "cluster")
    private = Node(tmp / "private", free_port(), [])
    try:
        private.start()
        own = f"redis://127.0.0.1:{private.port}"  # after start(): a taken port is swapped for a fresh one
        if "redis" in only:
            rows.append(run_one("redis (broker + data)", tmp, f"{own}/0", None, args.n, args.concurrency,
                                cpu=[own]))
        if "rabbitmq" in only:
            rows.append(run_one("rabbitmq broker + redis data", tmp, "redis://127.0.0.1:6379/14",
                                "amqp://guest:guest@127.0.0.1:5672//", args.n, args.concurrency))
        if "sentinel" in only:
            group.start()
            rows.append(run_one("sentinel (broker + data, WAIT 1 replica)", tmp, group.url, None, args.n,
                                args.concurrency))
        if "cluster" in only:
            cluster.start()
            nodes = [f"redis://127.0.0.1:{node.port}" for node in cluster.nodes]
            rows.append(run_one("redis broker + cluster data (3 primaries)", tmp, cluster.url, f"{own}/1",
                                args.n, args.concurrency, cpu=[own, *nodes]))
    finally:
        private.stop()
        group.stop()
        cluster.stop()
        stop(sandbox)
    print(f"{args.n} deliveries per topology, worker prefork x{args.concurrency}")
    print("| topology | deliveries/s | share() p50 ms | Redis CPU µs per delivery |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
