"""Discord webhook emulator: execute (``?wait=true`` → the message, else 204), get webhook, get message.

Errors are Discord's JSON: ``{"message": "Unknown Webhook", "code": 10015}`` (404), ``Invalid Webhook
Token`` 50027 (401), ``Invalid Form Body`` 50035 (400) with an ``errors`` tree naming the field,
``Cannot send an empty message`` 50006. An injected 429 answers ``{"message", "retry_after" (float
seconds), "global"}`` with ``Retry-After`` and ``X-RateLimit-*`` headers. Lengths are counted here on
their own (code points).
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from .server import JSON, Emulator, Request, Response, route

WEBHOOK_ID = "1180000000000000001"
CHANNEL_ID = "1190000000000000001"
SANDBOX_TOKEN = "sandbox-token"  # what "sandbox:" resolves to for the credential "token"


def _too_long(field: str, limit: int) -> Response:
    return Response(400, {"message": "Invalid Form Body", "code": 50035, "errors": {field: {"_errors": [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}}})


class DiscordEmulator(Emulator):
    platform = "discord"

    def reset_state(self) -> None:
        self.token = SANDBOX_TOKEN
        self.ids = itertools.count(1200000000000000001)

    def expire_tokens(self) -> None:
        self.token = ""  # the webhook was deleted

    def error(self, code: Any, spec: JSON) -> Response:
        code = 50035 if code is None else int(code)
        if code == 429:
            wait = float(spec.get("retry_after", 1.5))
            return Response(429, {"message": "You are being rate limited.", "retry_after": wait, "global": False},
                            {"Retry-After": str(int(wait) + 1), "X-RateLimit-Limit": "5",
                             "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(wait)})
        status, text = {10015: (404, "Unknown Webhook"), 50027: (401, "Invalid Webhook Token"),
                        50006: (400, "Cannot send an empty message"), 50013: (403, "Missing Permissions"),
                        0: (500, "500: Internal Server Error")}.get(code, (400, "Invalid Form Body"))
        return Response(status, {"message": text, "code": code})

    def _check(self, req: Request) -> Response | None:
        if req.params["id"] != WEBHOOK_ID or not self.token:
            return Response(404, {"message": "Unknown Webhook", "code": 10015})
        if req.params["token"] != self.token:
            return Response(401, {"message": "Invalid Webhook Token", "code": 50027})
        return None

    @route("GET", r"/api/webhooks/(?P<id>\d+)/(?P<token>[^/]+)")
    def get_webhook(self, req: Request) -> Response:
        return self._check(req) or Response(200, {"id": WEBHOOK_ID, "type": 1, "name": "Sharer sandbox",
                                                  "channel_id": CHANNEL_ID, "guild_id": "1170000000000000001"})

    @route("GET", r"/api/webhooks/(?P<id>\d+)/(?P<token>[^/]+)/messages/(?P<mid>\d+)")
    def get_message(self, req: Request) -> Response:
        problem = self._check(req)
        if problem:
            return problem
        with self.lock:
            for post in self.posts:
                if post["id"] == req.params["mid"]:
                    return Response(200, post)
        return Response(404, {"message": "Unknown Message", "code": 10008})

    @route("POST", r"/api/webhooks/(?P<id>\d+)/(?P<token>[^/]+)")
    def execute(self, req: Request) -> Response:
        problem = self._check(req)
        if problem:
            return problem
        try:
            body = json.loads(req.body)
        except ValueError:
            return Response(400, {"message": "The request body contains invalid JSON.", "code": 50109})
        content, embeds = str(body.get("content") or ""), body.get("embeds") or []
        if not content and not embeds:
            return Response(400, {"message": "Cannot send an empty message", "code": 50006})
        if len(content) > 2000:
            return _too_long("content", 2000)
        if len(embeds) > 10:
            return _too_long("embeds", 10)
        total = 0
        for n, embed in enumerate(embeds):
            for field, limit in (("title", 256), ("description", 4096)):
                if len(str(embed.get(field) or "")) > limit:
                    return _too_long(f"embeds.{n}.{field}", limit)
                total += len(str(embed.get(field) or ""))
        if total > 6000:
            return _too_long("embeds", 6000)
        with self.lock:
            message = self.record_post({
                "id": str(next(self.ids)), "type": 0, "channel_id": CHANNEL_ID, "webhook_id": WEBHOOK_ID,
                "content": content, "embeds": embeds, "author": {"username": body.get("username") or "Sharer sandbox",
                                                                 "bot": True},
                "allowed_mentions": body.get("allowed_mentions"),
                "timestamp": datetime.fromtimestamp(time.time(), UTC).isoformat()})
        if req.query.get("wait", "").lower() != "true":
            return Response(204, b"")
        return Response(200, {k: v for k, v in message.items() if k != "received_at"})
