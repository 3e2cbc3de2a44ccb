"""One Redis subscription per web process, fanned out to every open event stream.

Each status notice is read from Redis once and encoded as an SSE ``event: delivery`` block once; every
stream gets the same string through its own bounded queue (a stream filtered to one share only gets
that share's). Notices arriving within ``COALESCE`` of each other (a share to ten accounts, a batch of
scheduled posts) reach each stream as one string, so a burst costs each stream one wake-up and one
write. 200 open dashboards therefore cost one pub/sub connection, not 200, and one JSON decode per
change, not 200.

A stream that falls ``QUEUE`` notices behind (a stalled client) is ended rather than buffered without
bound; the browser reconnects and re-reads. After the hub's own Redis connection drops and comes
back, every stream gets ``event: hello`` again, so pages re-read what they might have missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError

from ..connections import async_redis_client

log = logging.getLogger("sharer.web.hub")
HELLO = "retry: 2000\nevent: hello\ndata: {}\n\n"
QUEUE = 1000  # bursts a stream may be behind before it is ended
COALESCE = 0.02  # seconds: notices arriving within this window go to each stream as one write
CLOSED = ""  # queued to a stream that is ended
KEEPALIVE = 15.0  # seconds: a comment line to every stream keeps proxies from closing idle ones
KEEPALIVE_TEXT = ": keepalive\n\n"


@dataclass(eq=False)
class Subscriber:
    share: str | None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    overflowed: bool = False


class EventHub:
    def __init__(self, redis_url: str, channel: str):
        self.redis_url, self.channel = redis_url, channel
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._pending: list[tuple[str | None, str]] = []
        self._flush_at: asyncio.TimerHandle | None = None

    async def subscribe(self, share: str | None = None, timeout: float = 5.0) -> Subscriber:
        """Register a stream; returns once the hub is subscribed, so the stream misses nothing after."""
        self._ensure_running()
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise RedisConnectionError("cannot subscribe to the events channel") from None
        sub = Subscriber(share)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        if self._beat is not None and not self._beat.done() and self._loop is loop:
            self._beat.cancel()
        # first stream, or the app now runs on another event loop (tests): start here
        self._loop, self._ready = loop, asyncio.Event()
        self.subscribers, self._pending, self._flush_at = set(), [], None
        self._task = loop.create_task(self._run(), name="sharer-event-hub")
        self._beat = loop.create_task(self._keepalive(), name="sharer-event-hub-keepalive")

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE)
            for sub in list(self.subscribers):
                if sub.queue.empty():
                    self._put(sub, KEEPALIVE_TEXT)

    async def close(self) -> None:
        for task in (self._task, self._beat):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        for sub in list(self.subscribers):
            self._end(sub)
        self._task = None

    async def _run(self) -> None:
        assert self._ready is not None
        connected_before = False
        while True:
            client = async_redis_client(self.redis_url, socket_connect_timeout=5, health_check_interval=30)
            pubsub = None
            try:
                await client.initialize()  # a cluster client must learn its slots before it can subscribe
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                self._ready.set()
                if connected_before:  # we may have missed notices while away: let pages re-read
                    self._fan_out(None, HELLO)
                connected_before = True
                async for msg in pubsub.listen():
                    self.publish_raw(msg.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis restarting or unreachable: retry, streams stay open
                self._ready.clear()
                log.warning("event hub: %s; resubscribing in 1 s", e)
                await asyncio.sleep(1.0)
            finally:
                try:
                    if pubsub is not None:
                        await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    def publish_raw(self, data: object) -> None:
        """Decode one notice and encode it once; it goes out with the rest of its burst."""
        try:
            notice = json.loads(data)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        if not isinstance(notice, dict):
            return
        text = f"event: delivery\ndata: {json.dumps(notice, separators=(',', ':'))}\n\n"
        self._pending.append((notice.get("share"), text))
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(COALESCE, self._flush)

    def _flush(self) -> None:
        """One write per stream per burst: every stream's queue gets the notices joined in one string
        (built once for all unfiltered streams, once per share for share-filtered ones)."""
        pending, self._pending, self._flush_at = self._pending, [], None
        if not pending:
            return
        everything = "".join(text for _, text in pending)
        per_share: dict[str, str] = {}
        for share, text in pending:
            if share is not None:
                per_share[share] = per_share.get(share, "") + text
        for sub in list(self.subscribers):
            text = per_share.get(sub.share, "") if sub.share else everything
            if text:
                self._put(sub, text)

    def _fan_out(self, share: str | None, text: str) -> None:
        for sub in list(self.subscribers):
            if share is None or not sub.share or sub.share == share:
                self._put(sub, text)

    def _put(self, sub: Subscriber, text: str) -> None:
        try:
            sub.queue.put_nowait(text)
        except asyncio.QueueFull:
            sub.overflowed = True
            self._end(sub)

    def _end(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        while True:  # make room for the end marker
            try:
                sub.queue.put_nowait(CLOSED)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()
