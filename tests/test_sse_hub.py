"""Live events fan out from one Redis subscription per web process: several streams on a real uvicorn
server each get every notice (a share-filtered stream only its share's), and Redis sees one subscriber."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import replace

import httpx
import pytest
import uvicorn
from web_support import bearer

from sharer.config import load_settings
from sharer.runtime import Runtime
from sharer.web.app import create_app


@pytest.fixture(scope="module")
def hub_site(web_config, runtime):
    base = load_settings(web_config)
    settings = replace(base, prefix=f"{runtime.settings.prefix}-hub-{secrets.token_hex(3)}",
                       web={**base.web, "sse_per_user": 10})  # seven streams for one viewer
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",  # its own port
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    rt = Runtime(settings)
    yield f"http://127.0.0.1:{port}", app, rt
    server.should_exit = True
    thread.join(10)
    for key in rt.redis.scan_iter(match=f"{settings.prefix}*", count=1000):
        rt.redis.delete(key)


def make_share(rt: Runtime, sid: str) -> str:
    did = f"dl_{sid[3:]}"
    rt.store.create_share({"id": sid, "title": "hub", "url": "https://x.example", "delivery_ids": [did]},
                          [{"id": did, "account": "hook-a", "platform": "webhook"}])
    return did


async def read_stream(client: httpx.AsyncClient, url: str, params: dict, got: list, ready: asyncio.Event,
                      want: int) -> None:
    async with client.stream("GET", url, params=params) as r:
        assert r.status_code == 200
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "hello":
                ready.set()
            elif line.startswith("data: ") and event == "delivery":
                got.append(json.loads(line[6:]))
                if len(got) == want:
                    return


def test_every_stream_gets_every_notice_through_one_subscription(hub_site):
    base, app, rt = hub_site
    headers = bearer(app, "viewer")
    a, b = make_share(rt, "sh_hubA"), make_share(rt, "sh_hubB")
    changes = 12  # 6 per share: queued -> retrying -> queued ...

    async def main() -> tuple[list[list], list, int, int]:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            streams = [([], asyncio.Event()) for _ in range(6)]
            only_b: tuple[list, asyncio.Event] = ([], asyncio.Event())
            tasks = [asyncio.create_task(read_stream(client, "/api/events", {}, got, ready, changes))
                     for got, ready in streams]
            tasks.append(asyncio.create_task(read_stream(client, "/api/events", {"share": "sh_hubB"}, *only_b,
                                                         changes // 2)))
            await asyncio.wait_for(asyncio.gather(*(e.wait() for _, e in [*streams, only_b])), 15)
            numsub = dict(rt.redis.pubsub_numsub(rt.keys.events_channel))[rt.keys.events_channel.encode()]
            for i in range(changes // 2):
                for did in (a, b):
                    new = "retrying" if i % 2 == 0 else "queued"
                    assert rt.store.transition(did, "*", new, f"change {i}").ok
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            await asyncio.sleep(0.3)
            after = dict(rt.redis.pubsub_numsub(rt.keys.events_channel))[rt.keys.events_channel.encode()]
            return [got for got, _ in streams], only_b[0], numsub, after

    per_stream, filtered, numsub, after = asyncio.run(main())
    assert numsub == 1  # seven open streams, one Redis subscription
    assert after == 1  # the hub keeps it for the next streams
    expected = [(n["delivery"], n["status"]) for n in per_stream[0]]
    assert len(expected) == changes and {d for d, _ in expected} == {a, b}
    for got in per_stream:
        assert [(n["delivery"], n["status"]) for n in got] == expected
        assert all(set(n) == {"delivery", "share", "status", "attempt", "at"} for n in got)
    assert [(n["delivery"], n["status"]) for n in filtered] == [x for x in expected if x[0] == b]
    deadline = time.time() + 5  # the clients hung up: their streams are gone from the hub
    while app.state.hub.subscribers and time.time() < deadline:
        time.sleep(0.1)
    assert not app.state.hub.subscribers
