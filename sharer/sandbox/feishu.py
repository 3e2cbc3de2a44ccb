"""Feishu / Lark custom bot emulator: ``POST /open-apis/bot/v2/hook/{TOKEN}``.

Always HTTP 200 with ``{"code", "msg", "data"}`` (success also carries the legacy ``StatusCode`` /
``StatusMessage``): 19001 unknown token (or a removed bot: fault ``expired_token``), 9499 malformed or
over 20 KB, 19021 sign mismatch or timestamp more than 1 h off, 19024 no keyword, 11232 over 5/s.
A signature, when sent, is always verified against the sandbox secret (a real bot without signing
would ignore it; verifying catches our bugs). Extra control endpoint:

  GET/POST /_sandbox/config   {"require_sign": false, "keywords": [], "rate_limit": 5, "rate_window": 1,
                               "max_body_bytes": 20480, "sign_window": 3600, "clock_offset": 0, "tokens": [...],
                               "secret": "…"}     (clock_offset: seconds the bot's clock is ahead of ours)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections import deque
from typing import Any

from .server import JSON, Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-hook_token"  # what "sandbox:" resolves to for the credential "hook_token"
SANDBOX_SECRET = "sandbox-secret"  # ... and for the credential "secret"
MESSAGES = {
    9499: "Bad Request",
    11232: "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]",
    19001: "param invalid: incoming webhook access token invalid",
    19021: "sign match fail or timestamp is not within one hour from current time",
    19022: "Ip Not Allowed",
    19024: "Key Words Not Found",
}
CONFIG_KEYS = {"require_sign": bool, "keywords": list, "rate_limit": int, "rate_window": float,
               "max_body_bytes": int, "sign_window": float, "clock_offset": float, "tokens": list, "secret": str}
MSG_TYPES = ("text", "post", "image", "share_chat", "interactive")
POST_TAGS = ("text", "a", "at", "img", "media", "emotion", "hr", "code_block")


class FeishuEmulator(Emulator):
    platform = "feishu"
    config_schema = CONFIG_KEYS

    def reset_state(self) -> None:
        self.ids = itertools.count(1)
        self.config: JSON = {"require_sign": False, "keywords": [], "rate_limit": 5, "rate_window": 1.0,
                             "max_body_bytes": 20480, "sign_window": 3600.0, "clock_offset": 0.0,
                             "tokens": [SANDBOX_TOKEN],
                             "secret": SANDBOX_SECRET}
        self.sent: dict[str, deque[float]] = {}

    def expire_tokens(self) -> None:
        self.config["tokens"] = []

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 9499)
        return self._err(code, spec.get("msg") or MESSAGES.get(code, "error"))

    def _err(self, code: int, msg: str) -> Response:
        return Response(200, {"code": code, "data": {}, "msg": msg})

    @route("POST", r"/open-apis/bot/v2/hook/(?P<token>[^/]+)")
    def hook(self, req: Request) -> Response:
        token = req.params["token"]
        with self.lock:
            config = dict(self.config)
        if token not in config["tokens"]:
            return self._err(19001, MESSAGES[19001])
        if len(req.body) > int(config["max_body_bytes"]):
            return self._err(9499, f"Bad Request: body is {len(req.body)} bytes, over the limit")
        try:
            body = req.json()
        except ValueError:
            return self._err(9499, "Bad Request: body is not valid JSON")
        if not isinstance(body, dict):
            return self._err(9499, "Bad Request: body must be a JSON object")
        signed = "sign" in body or "timestamp" in body
        if signed or config["require_sign"]:
            if not self._sign_ok(body.get("timestamp"), body.get("sign"), config):
                return self._err(19021, MESSAGES[19021])
        problem = _check(body)
        if problem:
            return self._err(9499, f"Bad Request: {problem}")
        text = _visible_text(body)
        if config["keywords"] and not any(k in text for k in config["keywords"]):
            return self._err(19024, MESSAGES[19024])
        with self.lock:
            now = time.time()
            window = self.sent.setdefault(token, deque())
            while window and window[0] <= now - float(config["rate_window"]):
                window.popleft()
            if len(window) >= int(config["rate_limit"]):
                return self._err(11232, MESSAGES[11232])
            window.append(now)
            self.record_post({"id": f"feishu-{next(self.ids)}", "msg_type": body["msg_type"],
                              "content": body["content"], "text": text,
                              "signature_valid": True if signed else None, "timestamp": body.get("timestamp")})
        return Response(200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"})

    @staticmethod
    def _sign_ok(timestamp: Any, sign: Any, config: JSON) -> bool:
        """The Feishu rule, written independently of the client: key = "ts\\nsecret", empty message."""
        if not isinstance(sign, str) or not isinstance(timestamp, (str, int)) or not str(timestamp).isdigit():
            return False
        if abs(time.time() + float(config["clock_offset"]) - int(timestamp)) > float(config["sign_window"]):
            return False
        mac = hmac.new((str(timestamp) + "\n" + config["secret"]).encode(), digestmod=hashlib.sha256)
        return hmac.compare_digest(base64.b64encode(mac.digest()), sign.encode())


def _check(body: JSON) -> str | None:
    """What is wrong with the message, or None."""
    msg_type, content = body.get("msg_type"), body.get("content")
    if msg_type not in MSG_TYPES:
        return f"msg_type must be one of {', '.join(MSG_TYPES)}"
    if msg_type == "interactive":
        return None if isinstance(body.get("card"), dict) or isinstance(content, dict) else "card is missing"
    if not isinstance(content, dict):
        return "content must be an object"
    if msg_type == "text":
        return None if isinstance(content.get("text"), str) and content["text"] else "content.text is empty"
    if msg_type != "post":
        return None
    post = content.get("post")
    if not isinstance(post, dict) or not post:
        return "content.post must map a locale to a post"
    for locale, doc in post.items():
        if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
            return f"content.post.{locale}.content must be a list of lines"
        if not isinstance(doc.get("title", ""), str):
            return f"content.post.{locale}.title must be a string"
        for line in doc["content"]:
            if not isinstance(line, list):
                return f"content.post.{locale}.content: each line must be a list of elements"
            for el in line:
                if not isinstance(el, dict) or el.get("tag") not in POST_TAGS:
                    return f"content.post.{locale}: unknown element {el!r}"
                if el["tag"] in ("text", "a") and not isinstance(el.get("text"), str):
                    return f"content.post.{locale}: {el['tag']} element without text"
                if el["tag"] == "a" and not str(el.get("href", "")).startswith(("http://", "https://")):
                    return f"content.post.{locale}: link without an http(s) href"
    return None


def _visible_text(body: JSON) -> str:
    """What a group member reads (titles, text runs and link texts with their targets)."""
    content = body.get("content") or {}
    if body["msg_type"] == "text":
        return content.get("text", "")
    out = []
    for doc in (content.get("post") or {}).values():
        out.append(doc.get("title", ""))
        for line in doc["content"]:
            out.append("".join(el.get("text", "") + (f" ({el['href']})" if el["tag"] == "a" else "") for el in line))
    return "\n".join(p for p in out if p)
