"""``GET /api/events``: delivery status changes as Server-Sent Events, fed by Redis pub/sub.

Every status change in the store PUBLISHes ``{delivery, share, status, attempt, at}`` on
``<prefix>:events`` inside the same Lua script that makes the change, so the stream misses nothing that
happens while it is open. The first event (``hello``) tells the browser it is subscribed: it then
re-reads the share once, covering changes made between rendering the page and subscribing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ..connections import async_redis_client
from .auth import Ctx, Reader

router = APIRouter(prefix="/api", tags=["api"])
KEEPALIVE = 15.0  # seconds: a comment line keeps proxies from closing an idle stream


class StreamLimits:
    """Open event streams per user and in all (each holds a Redis connection): 429 past either."""

    def __init__(self, per_user: int, total: int):
        self.per_user, self.total = per_user, total
        self.open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, user: str) -> Callable[[], None]:
        """Reserve a stream for ``user``; returns its release (safe to call more than once)."""
        with self._lock:
            if sum(self.open.values()) >= self.total:
                raise HTTPException(429, f"too many live event streams on this server (at most {self.total})",
                                    headers={"Retry-After": "10"})
            if self.open.get(user, 0) >= self.per_user:
                raise HTTPException(429, f"too many live event streams for {user!r} (at most {self.per_user}); "
                                         "close another tab", headers={"Retry-After": "10"})
            self.open[user] = self.open.get(user, 0) + 1
        done = False

        def release() -> None:
            nonlocal done
            with self._lock:
                if not done:
                    done = True
                    self.open[user] -= 1
                    if not self.open[user]:
                        del self.open[user]

        return release


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: hello`, then `event: delivery` with JSON "
                                            "{delivery, share, status, attempt, at} per status change"},
                       401: {"description": "not signed in"},
                       429: {"description": "too many open event streams (per user or in all)"}})
async def events(request: Request, ctx: Ctx, who: Reader,
                 share: Annotated[str | None, Query(max_length=100, description="only this share's")] = None,
                 ) -> StreamingResponse:
    """Live delivery status changes (Server-Sent Events)."""
    release = request.app.state.sse.take(who.user.name)
    stream = _stream(request, ctx.rt.settings.redis_url, ctx.rt.keys.events_channel, share, release)
    return StreamingResponse(stream, media_type="text/event-stream", background=BackgroundTask(release),
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(request: Request, redis_url: str, channel: str, share: str | None,
                  release: Callable[[], None]) -> AsyncIterator[str]:
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
        release()
        try:
            await pubsub.aclose()
        finally:
            await client.aclose()
