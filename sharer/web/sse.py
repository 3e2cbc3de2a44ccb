"""``GET /api/events``: delivery status changes as Server-Sent Events, fed by Redis pub/sub.

Every status change in the store PUBLISHes ``{delivery, share, status, attempt, at}`` on
``<prefix>:events`` inside the same Lua script that makes the change, so the stream misses nothing that
happens while it is open. The web process holds one subscription for all streams (``hub.py``). The
first event (``hello``) tells the browser it is subscribed: it then re-reads the share once, covering
changes made between rendering the page and subscribing.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from .auth import Ctx, Reader
from .hub import CLOSED, HELLO, EventHub, Subscriber

router = APIRouter(prefix="/api", tags=["api"])


class StreamLimits:
    """Open event streams per user and in all (each holds a connection and a queue): 429 past either."""

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
    hub: EventHub = request.app.state.hub
    try:
        sub = await hub.subscribe(share)
    except BaseException:
        release()
        raise
    return StreamingResponse(_stream(hub, sub, release), media_type="text/event-stream",
                             background=BackgroundTask(release),
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(hub: EventHub, sub: Subscriber, release: Callable[[], None]) -> AsyncIterator[str]:
    """One stream: the hub's already-encoded notices and keepalives. A client that goes away cancels
    it (Starlette listens for the disconnect), which unsubscribes it and frees its slot."""
    try:
        yield HELLO
        while True:
            text = await sub.queue.get()  # the hub also queues the idle keepalive
            while not sub.queue.empty() and text != CLOSED:  # behind: catch up in one write
                nxt = sub.queue.get_nowait()
                if nxt == CLOSED:
                    yield text
                    return
                text += nxt
            if text == CLOSED:
                return
            yield text
    finally:
        hub.unsubscribe(sub)
        release()
