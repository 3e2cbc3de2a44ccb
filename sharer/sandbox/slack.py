"""Slack incoming-webhook emulator: ``POST /services/{hook}``, plain-text answers as Slack gives them.

``ok`` (200) for a good message; ``invalid_payload`` (400, not JSON), ``no_text`` (400, neither
``text`` nor ``blocks``), ``invalid_blocks`` (400, a section text over 3,000 characters or more than
50 blocks), ``no_service`` (404, an unknown or revoked webhook). Injected error codes answer with the
status Slack uses for them (``rate_limited`` → 429 + ``Retry-After``). The section length is counted
here on its own (code points), not with sharer's counters.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from .server import JSON, Emulator, Request, Response, route

SANDBOX_HOOK = "sandbox-webhook"  # what "sandbox:" resolves to for the credential "webhook"
REAL_SHAPED = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
STATUS = {"invalid_payload": 400, "no_text": 400, "invalid_blocks": 400, "msg_blocks_too_long": 400,
          "channel_not_found": 404, "no_service": 404, "channel_is_archived": 410, "action_prohibited": 403,
          "posting_to_general_channel_denied": 403, "invalid_token": 403, "rate_limited": 429}


class SlackEmulator(Emulator):
    platform = "slack"

    def reset_state(self) -> None:
        self.hooks = {SANDBOX_HOOK, REAL_SHAPED}
        self.ids = itertools.count(1)

    def expire_tokens(self) -> None:
        self.hooks = set()  # the webhooks were revoked

    def error(self, code: Any, spec: JSON) -> Response:
        name = str(code or "invalid_payload")
        headers = {"Retry-After": str(spec.get("retry_after", 1))} if name == "rate_limited" else {}
        return Response(STATUS.get(name, 400), name, headers)

    @route("POST", r"/services/(?P<hook>.+)")
    def receive(self, req: Request) -> Response:
        hook = req.params["hook"]
        if hook not in self.hooks:
            return Response(404, "no_service")
        try:
            body = json.loads(req.body)
        except ValueError:
            return Response(400, "invalid_payload")
        if not isinstance(body, dict):
            return Response(400, "invalid_payload")
        blocks = body.get("blocks") or []
        if not body.get("text") and not blocks:
            return Response(400, "no_text")
        if not isinstance(blocks, list) or len(blocks) > 50:
            return Response(400, "invalid_blocks")
        for block in blocks:
            if not isinstance(block, dict) or block.get("type") not in ("section", "image", "context", "divider",
                                                                         "header"):
                return Response(400, "invalid_blocks")
            text = (block.get("text") or {}).get("text", "") if block["type"] == "section" else ""
            if len(text) > 3000:
                return Response(400, "invalid_blocks")
        with self.lock:
            self.record_post({"id": f"slack-{next(self.ids)}", "hook": hook, "text": body.get("text", ""),
                              "blocks": blocks})
        return Response(200, "ok", {"Content-Type": "text/html"})
