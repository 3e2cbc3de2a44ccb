"""WeCom (企业微信) group robot emulator: ``POST /cgi-bin/webhook/send?key=KEY``.

Always HTTP 200 with ``{"errcode", "errmsg"}``: 93000 for an unknown key (or a removed robot: fault
``expired_token``), 40058 for a missing/oversized field (byte limits in UTF-8), 40008 for an unknown
msgtype, 45009 past 20 messages/min per robot. Extra control endpoint:

  GET/POST /_sandbox/config   {"rate_limit": 20, "rate_window": 60, "keys": ["sandbox-key"]}
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import time
from collections import deque
from typing import Any

from .server import JSON, Emulator, Request, Response, route

SANDBOX_KEY = "sandbox-key"  # what "sandbox:" resolves to for the credential "key"
MESSAGES = {
    0: "ok",
    40008: "invalid message type",
    40058: "invalid Request Parameter",
    45009: "api freq out of limit",
    93000: "invalid webhook url",
}
CONFIG_KEYS = {"rate_limit": int, "rate_window": float, "keys": list}


def nbytes(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


class WeComEmulator(Emulator):
    platform = "wecom"
    config_schema = CONFIG_KEYS

    def reset_state(self) -> None:
        self.ids = itertools.count(1)
        self.config: JSON = {"rate_limit": 20, "rate_window": 60.0, "keys": [SANDBOX_KEY]}
        self.sent: dict[str, deque[float]] = {}

    def expire_tokens(self) -> None:
        """A robot removed from its group: its key now answers 93000."""
        self.config["keys"] = []

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 40058)
        return self._err(code, spec.get("errmsg") or MESSAGES.get(code, "error"))

    def _err(self, code: int, errmsg: str) -> Response:
        hint = f"hint: [{int(time.time())}_{secrets.token_hex(8)}], from ip: 127.0.0.1, " \
               f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
        return Response(200, {"errcode": code, "errmsg": f"{errmsg}, {hint}"})

    @route("POST", r"/cgi-bin/webhook/send")
    def send(self, req: Request) -> Response:
        key = req.query.get("key", "")
        with self.lock:
            if key not in self.config["keys"]:
                return self._err(93000, MESSAGES[93000])
        try:
            body = req.json()
        except ValueError:
            return self._err(40058, "request body is not valid JSON")
        if not isinstance(body, dict):
            return self._err(40058, "request body must be a JSON object")
        msgtype = body.get("msgtype")
        check = getattr(self, f"_check_{msgtype}", None) if isinstance(msgtype, str) else None
        if check is None:
            return self._err(40008, f"invalid message type {msgtype!r}")
        problem = check(body.get(msgtype))
        if problem:
            return self._err(40058, f"{problem}. invalid Request Parameter")
        with self.lock:
            now = time.time()
            window = self.sent.setdefault(key, deque())
            while window and window[0] <= now - float(self.config["rate_window"]):
                window.popleft()
            if len(window) >= int(self.config["rate_limit"]):
                return self._err(45009, MESSAGES[45009])
            window.append(now)
            self.record_post({"id": f"wecom-{next(self.ids)}", "msgtype": msgtype, "body": body,
                              "text": _visible_text(str(msgtype), body[msgtype])})
        return Response(200, {"errcode": 0, "errmsg": "ok"})

    # --- per msgtype validation: the problem, or None ----------------------------------------------

    def _check_text(self, part: Any) -> str | None:
        return _content(part, "text", 2048)

    def _check_markdown(self, part: Any) -> str | None:
        return _content(part, "markdown", 4096)

    def _check_news(self, part: Any) -> str | None:
        articles = part.get("articles") if isinstance(part, dict) else None
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            return "news.articles must hold 1 to 8 articles"
        for i, a in enumerate(articles):
            if not isinstance(a, dict):
                return f"news.articles[{i}] must be an object"
            if not isinstance(a.get("title"), str) or not a["title"]:
                return f"news.articles[{i}].title is missing"
            if nbytes(a["title"]) > 128:
                return f"news.articles[{i}].title exceed max length 128"
            if nbytes(a.get("description")) > 512:
                return f"news.articles[{i}].description exceed max length 512"
            if not isinstance(a.get("url"), str) or not a["url"].startswith(("http://", "https://")):
                return f"news.articles[{i}].url is missing or invalid"
            if "picurl" in a and not isinstance(a["picurl"], str):
                return f"news.articles[{i}].picurl must be a string"
        return None

    def _check_image(self, part: Any) -> str | None:
        if not isinstance(part, dict) or not isinstance(part.get("base64"), str):
            return "image.base64 is missing"
        try:
            raw = base64.b64decode(part["base64"], validate=True)
        except ValueError:
            return "image.base64 is not valid base64"
        if len(raw) > 2 * 1024 * 1024:
            return "image exceed max size 2M"
        if part.get("md5") != hashlib.md5(raw).hexdigest():
            return "image.md5 does not match the image"
        return None


def _content(part: Any, kind: str, limit: int) -> str | None:
    content = part.get("content") if isinstance(part, dict) else None
    if not isinstance(content, str) or not content.strip():
        return f"{kind}.content is empty"
    if nbytes(content) > limit:
        return f"{kind}.content exceed max length {limit}"
    return None


def _visible_text(msgtype: str, part: JSON) -> str:
    """What a group member reads, for tests to look at."""
    if msgtype == "news":
        return "\n".join(f"{a['title']}\n{a.get('description', '')}\n{a['url']}" for a in part["articles"])
    return str(part.get("content", ""))
