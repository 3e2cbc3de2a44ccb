"""Webhook receiver: accepts any POST, checks the HMAC signature, keeps the post."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json

from .server import Emulator, Request, Response, route

SANDBOX_SECRET = "sandbox-secret"  # what "sandbox:" resolves to for the key "secret"


class WebhookEmulator(Emulator):
    platform = "webhook"

    def reset_state(self) -> None:
        self.ids = itertools.count(1)
        self.secret = SANDBOX_SECRET

    @route("POST", r"/(?P<path>.*)")
    def receive(self, req: Request) -> Response:
        expected = "sha256=" + hmac.new(self.secret.encode(), req.body, hashlib.sha256).hexdigest()
        signature = req.headers.get("x-sharer-signature", "")
        if not hmac.compare_digest(signature, expected):
            return Response(401, {"error": "signature does not match"})
        try:
            payload = json.loads(req.body)
        except ValueError:
            return Response(400, {"error": "body is not JSON"})
        with self.lock:
            post_id = f"wh-{next(self.ids)}"
            self.record_post({"id": post_id, "path": req.path, "signature": signature,
                              "delivery": req.headers.get("x-sharer-delivery"), "body": payload,
                              "raw": req.body.decode("utf-8")})
        return Response(201, {"id": post_id, "url": f"{self.url}/_sandbox/posts/{post_id}"})
