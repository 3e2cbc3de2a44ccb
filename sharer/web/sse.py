"""``GET /api/events``: delivery status changes as Server-Sent Events, fed by Redis pub/sub.

Every status change in the store PUBLISHes ``{delivery, share, status, attempt, at}`` on
``<prefix>:events`` inside the same Lua script that makes the change, so the stream misses nothing that
happens while it is open. The first event (``hello``) tells the browser it is subscribed: it then
re-reads the share once, covering changes made between rendering the page and subscribing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ..connections import async_redis_client
from .auth import Ctx, Reader

router = APIRouter(prefix="/api", tags=["api"])
KEEPALIVE = 15.0  # seconds: a comment line keeps proxies from closing an idle stream


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: hello`, then `event: delivery` with JSON "
                                            "{delivery, share, status, attempt, at} per status change"},
                       401: {"description": "not signed in"}})
async def events(request: Request, ctx: Ctx, who: Reader,
                 share: Annotated[str | None, Query(max_length=100, description="only this share's")] = None,
                 ) -> StreamingResponse:
    """Live delivery status changes (Server-Sent Events)."""
    stream = _stream(request, ctx.rt.settings.redis_url, ctx.rt.keys.events_channel, share)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(request: Request, redis_url: str, channel: str, share: str | None) -> AsyncIterator[str]:
    client = async_redis_client(redis_url, socket_connect_timeout=5, health_check_interval=30)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        yield "retry: 2000\nevent: hello\ndata: {}\n\n"
        last = time.monotonic()
        while not await request.is_disconnected():
            msg = await pubsub.get_message(timeout=1.0)
            if msg is None:
                if time.monotonic() - last > KEEPALIVE:
                    last = time.monotonic()
                    yield ": keepalive\n\n"
                continue
            try:
                notice = json.loads(msg["data"])
            except (TypeError, ValueError):
                continue
            if share and notice.get("share") != share:
                continue
            last = time.monotonic()
            yield f"event: delivery\ndata: {json.dumps(notice, separators=(',', ':'))}\n\n"
    finally:
        try:
            await pubsub.aclose()
        finally:
            await client.aclose()
