"""LINE Messaging API emulator: broadcast / push / multicast with ``X-Line-Retry-Key``, bot info.

A request with a retry key already accepted (kept 24 h) answers **409** ``{"message": "The retry key is
already accepted", "sentMessages": […]}`` with ``x-line-accepted-request-id`` and sends nothing.
Every answer carries ``x-line-request-id``. Errors are ``{"message", "details": [{"message",
"property"}]}``; text length is counted here on its own (UTF-16 code units, ≤ 5,000); image
messages need HTTPS URLs; 1–5 messages. Injected codes: 400, 401, 403, 429 (``monthly: true`` for
the monthly-quota answer), 500.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from .server import JSON, Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-channel_access_token"
KEY_TTL = 86400.0


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _bad(message: str, prop: str | None = None, detail: str = "") -> Response:
    body: JSON = {"message": message}
    if prop:
        body = {"message": "The request body has 1 error(s)", "details": [{"message": detail, "property": prop}]}
    return Response(400, body)


class LineEmulator(Emulator):
    platform = "line"

    def reset_state(self) -> None:
        self.tokens = {SANDBOX_TOKEN}
        self.keys: dict[str, tuple[float, str, list[JSON]]] = {}  # retry key -> (at, request id, sent)
        self.ids = itertools.count(500000000000000001)

    def expire_tokens(self) -> None:
        self.tokens = set()

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 500)
        text = {400: "The request body has 1 error(s)", 401: "Authentication failed. Confirm that the access token "
                "in the authorization header is valid.", 403: "Access to this API is not available for your account",
                429: "You have reached your monthly limit." if spec.get("monthly") else "Too Many Requests",
                }.get(code, "An error occurred in the server")
        return Response(code, {"message": text}, {"x-line-request-id": str(uuid.uuid4())})

    def _handle(self, req: Request) -> Response:
        resp = super()._handle(req)
        resp.headers.setdefault("x-line-request-id", str(uuid.uuid4()))
        return resp

    def _authorized(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    @route("GET", r"/v2/bot/info")
    def info(self, req: Request) -> Response:
        if not self._authorized(req):
            return Response(401, {"message": "Authentication failed."})
        return Response(200, {"userId": "U00000000000000000000000000000001", "basicId": "@sharer",
                              "displayName": "Sharer sandbox", "chatMode": "bot", "markAsReadMode": "auto"})

    @route("POST", r"/v2/bot/message/(?P<mode>broadcast|push|multicast)")
    def send(self, req: Request) -> Response:
        if not self._authorized(req):
            return Response(401, {"message": "Authentication failed. Confirm that the access token in the "
                                             "authorization header is valid."})
        key = req.headers.get("x-line-retry-key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                return _bad("The value for the 'X-Line-Retry-Key' header is invalid")
        try:
            body = json.loads(req.body)
        except ValueError:
            return _bad("The request body has 1 error(s)", "body", "Invalid JSON")
        problem = self._validate(req.params["mode"], body)
        if problem:
            return problem
        request_id = str(uuid.uuid4())
        with self.lock:
            now = time.time()
            if key and key in self.keys and now - self.keys[key][0] < KEY_TTL:
                _, accepted, sent = self.keys[key]
                return Response(409, {"message": "The retry key is already accepted", "sentMessages": sent},
                                {"x-line-accepted-request-id": accepted, "x-line-request-id": request_id})
            sent = [{"id": str(next(self.ids)), "quoteToken": uuid.uuid4().hex} for _ in body["messages"]]
            self.record_post({"id": request_id, "mode": req.params["mode"], "to": body.get("to"),
                              "messages": body["messages"], "retry_key": key, "sent": sent,
                              "notification_disabled": bool(body.get("notificationDisabled"))})
            if key:
                self.keys[key] = (now, request_id, sent)
        answer: JSON = {} if req.params["mode"] == "broadcast" else {"sentMessages": sent}
        return Response(200, answer, {"x-line-request-id": request_id})

    @staticmethod
    def _validate(mode: str, body: Any) -> Response | None:
        if not isinstance(body, dict):
            return _bad("The request body has 1 error(s)", "body", "Must be an object")
        if mode == "push" and not body.get("to"):
            return _bad("The property, 'to', in the request body is invalid (line: -, column: -)")
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return _bad("The request body has 1 error(s)", "messages", "Size must be between 1 and 5")
        for n, m in enumerate(messages):
            kind = m.get("type") if isinstance(m, dict) else None
            if kind == "text":
                if not 0 < utf16_units(str(m.get("text") or "")) <= 5000:
                    return _bad("", f"messages[{n}].text", "Length must be between 0 and 5000")
            elif kind == "image":
                for prop in ("originalContentUrl", "previewImageUrl"):
                    if not str(m.get(prop) or "").startswith("https://"):
                        return _bad("", f"messages[{n}].{prop}", "Must be an HTTPS URL")
            else:
                return _bad("", f"messages[{n}].type", "Must be one of the following values: [text, image, …]")
        return None
