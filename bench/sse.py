"""Live events at scale: 200 open dashboards (SSE streams) on one web process, 100 back-to-back status
changes written through the store. Reports p50/p95/max from the change's write to its arrival on each
stream, beside a bare baseline measured in the same run: one raw Redis pub/sub subscriber in this
process receiving the same notices (the transport's floor). Also how many Redis subscriptions the web
process holds (``PUBSUB NUMSUB``). The web app runs as its own uvicorn process. Usage:
    python bench/sse.py [--streams 200] [--changes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from sharer.config import load_settings  # noqa: E402
from sharer.runtime import Runtime  # noqa: E402
from sharer.web.users import Tokens, hash_password  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stream(port: int, token: str, arrivals: dict[str, list[float]], ready: asyncio.Event,
                 counter: list[int], want: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    got, buf, hello = 0, b"", False
    try:
        while got < want:
            chunk = await reader.read(65536)
            if not chunk:
                return
            t = time.time()
            buf += chunk
            *blocks, buf = buf.split(b"\n\n")
            for block in blocks:
                if b"event: hello" in block and not hello:
                    hello = True
                    counter[0] += 1
                    if counter[0] == counter[1]:
                        ready.set()
                elif b"event: delivery" in block:
                    at = block.index(b'"delivery":"') + 12
                    arrivals.setdefault(block[at:block.index(b'"', at)].decode(), []).append(t)
                    got += 1
    finally:
        writer.close()


async def raw_subscriber(url: str, channel: str, arrivals: dict[str, list[float]], want: int,
                         ready: asyncio.Event) -> None:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    ready.set()
    got = 0
    async for msg in pubsub.listen():
        t = time.time()
        arrivals.setdefault(json.loads(msg["data"])["delivery"], []).append(t)
        got += 1
        if got == want:
            break
    await pubsub.aclose()
    await client.aclose()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else values[0]


async def run(rt: Runtime, port: int, token: str, streams: int, changes: int) -> tuple[list, list, int]:
    ids = []
    for i in range(changes):
        sid = f"sh_ssebench{i}"
        did = f"dl_ssebench{i}"
        rt.store.create_share({"id": sid, "title": "sse", "url": "https://x.example", "delivery_ids": [did]},
                              [{"id": did, "account": "bench", "platform": "webhook"}])
        ids.append(did)
    arrivals: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    ready, raw_ready = asyncio.Event(), asyncio.Event()
    counter = [0, streams]
    tasks = [asyncio.create_task(stream(port, token, arrivals, ready, counter, changes)) for _ in range(streams)]
    raw_task = asyncio.create_task(raw_subscriber(rt.settings.redis_url, rt.keys.events_channel, raw, changes,
                                                  raw_ready))
    await asyncio.wait_for(asyncio.gather(ready.wait(), raw_ready.wait()), 60)
    numsub = dict(rt.redis.pubsub_numsub(rt.keys.events_channel))[rt.keys.events_channel.encode()]
    sent: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    def write_all() -> None:  # back to back, from a thread so this loop keeps reading
        for did in ids:
            sent[did] = time.time()
            rt.store.transition(did, "*", "retrying", "bench change")

    await loop.run_in_executor(None, write_all)
    await asyncio.wait_for(asyncio.gather(*tasks, raw_task), 120)
    lat = [t - sent[d] for d, ts in arrivals.items() for t in ts]
    base = [t - sent[d] for d, ts in raw.items() for t in ts]
    return lat, base, numsub


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--changes", type=int, default=100)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sharer-bench-sse-"))
    tag = secrets.token_hex(3)
    cfg = tmp / "sharer.toml"
    cfg.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:6379/14"\nprefix = "bench-sse-{tag}"\n'
        f'[celery]\nqueue = "bench-sse-{tag}"\n'
        f'[web]\nsecret_key = "sandbox:"\nsse_per_user = {args.streams}\nsse_total = {args.streams}\n'
        f'[users.bench]\nrole = "viewer"\npassword_hash = "{hash_password(secrets.token_hex(8))}"\n'
        '[accounts.bench]\nplatform = "webhook"\napi_base = "http://127.0.0.1:9/hook"\n'
        'credentials = { secret = "sandbox:" }\n'
    )
    env = {**os.environ, "SHARER_CONFIG": str(cfg)}
    rt = Runtime(load_settings(cfg))
    _, token = Tokens(rt.redis, rt.settings.prefix).create("bench")
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "uvicorn", "sharer.web.app:create_app", "--factory", "--host",
                            "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                           start_new_session=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        lat, base, numsub = asyncio.run(run(rt, port, token, args.streams, args.changes))
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(20)
        for k in rt.redis.scan_iter(match=f"bench-sse-{tag}*", count=5000):
            rt.redis.delete(k)
    print(f"{args.streams} streams x {args.changes} back-to-back changes: {len(lat)} notices received "
          f"(expected {args.streams * args.changes}); Redis subscriptions held by the web process: {numsub - 1}")
    print("| change -> arrival (ms) | sharer SSE, every stream | bare Redis subscriber |")
    print("|---|---|---|")
    for name, q in (("p50", 0.50), ("p95", 0.95)):
        print(f"| {name} | {pct(lat, q) * 1000:.1f} | {pct(base, q) * 1000:.1f} |")
    print(f"| max | {max(lat) * 1000:.1f} | {max(base) * 1000:.1f} |")
    print(f"p95 target < 100 ms: {'met' if pct(lat, 0.95) < 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
