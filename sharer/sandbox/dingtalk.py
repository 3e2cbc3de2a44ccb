"""DingTalk custom robot emulator: ``POST /robot/send?access_token=TOKEN[&timestamp=MS&sign=SIGN]``.

Always HTTP 200 with ``{"errcode", "errmsg"}``: 300001 unknown token (or a removed robot: fault
``expired_token``), 310000 for every security failure ("sign not match", "invalid timestamp" past a
1 h skew, "keywords not in content"; "ip … not in whitelist" via an injected error with ``errmsg``),
40035 for a missing parameter, 130101 past 20 messages/min — after which the robot stays throttled for
10 minutes. A signature, when sent, is always verified. ``attempts`` keeps every send's timestamp
(faulted ones too). Extra control endpoint:

  GET/POST /_sandbox/config   {"require_sign": false, "keywords": [], "rate_limit": 20, "rate_window": 60,
                               "throttle_seconds": 600, "timestamp_window": 3600, "clock_offset": 0,
                               "tokens": [...], "secret": "…"}   (clock_offset: seconds the robot is ahead)
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

SANDBOX_TOKEN = "sandbox-access_token"  # what "sandbox:" resolves to for the credential "access_token"
SANDBOX_SECRET = "sandbox-secret"  # ... and for the credential "secret"
MORE = ", more: [https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages]"
MESSAGES = {
    40035: "缺少参数 json",
    130101: "send too fast, exceed 20 times per minute",
    300001: "token is not exist",
    310000: "sign not match",
}
CONFIG_KEYS = {"require_sign": bool, "keywords": list, "rate_limit": int, "rate_window": float,
               "throttle_seconds": float, "timestamp_window": float, "clock_offset": float, "tokens": list,
               "secret": str}
REQUIRED = {"text": ("content",), "link": ("title", "text", "messageUrl"), "markdown": ("title", "text"),
            "actionCard": ("title", "text"), "feedCard": ("links",)}


class DingTalkEmulator(Emulator):
    platform = "dingtalk"
    config_schema = CONFIG_KEYS

    def reset_state(self) -> None:
        self.ids = itertools.count(1)
        self.config: JSON = {"require_sign": False, "keywords": [], "rate_limit": 20, "rate_window": 60.0,
                             "throttle_seconds": 600.0, "timestamp_window": 3600.0, "clock_offset": 0.0,
                             "tokens": [SANDBOX_TOKEN], "secret": SANDBOX_SECRET}
        self.sent: dict[str, deque[float]] = {}
        self.throttled_until: dict[str, float] = {}
        self.attempts: list[JSON] = []

    def expire_tokens(self) -> None:
        self.config["tokens"] = []

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 310000)
        return self._err(code, spec.get("errmsg") or MESSAGES.get(code, "error"))

    def _err(self, code: int, errmsg: str) -> Response:
        return Response(200, {"errcode": code, "errmsg": errmsg + (MORE if code == 310000 else "")})

    def dispatch(self, req: Request) -> Response:
        if req.path == "/robot/send":
            with self.lock:
                self.attempts.append({"timestamp": req.query.get("timestamp"), "at": time.time()})
        return super().dispatch(req)

    @route("POST", r"/robot/send")
    def send(self, req: Request) -> Response:
        token = req.query.get("access_token", "")
        now = time.time()
        with self.lock:
            config = dict(self.config)
            if token not in config["tokens"]:
                return self._err(300001, MESSAGES[300001])
            if self.throttled_until.get(token, 0) > now:
                return self._err(130101, MESSAGES[130101])
        signed = "sign" in req.query or "timestamp" in req.query
        if signed or config["require_sign"]:
            problem = self._sign_problem(req.query.get("timestamp", ""), req.query.get("sign", ""), config,
                                         now + float(config["clock_offset"]))
            if problem:
                return self._err(310000, problem)
        try:
            body = req.json()
        except ValueError:
            return self._err(40035, MESSAGES[40035])
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype not in REQUIRED:
            return self._err(40035, "缺少参数 msgtype")
        part = body.get(msgtype)
        if not isinstance(part, dict):
            return self._err(40035, f"缺少参数 {msgtype}")
        for name in REQUIRED[msgtype]:
            if not part.get(name):
                return self._err(40035, f"缺少参数 {msgtype}.{name}")
        text = "\n".join(str(v) for v in part.values() if isinstance(v, str))
        if config["keywords"] and not any(k in text for k in config["keywords"]):
            return self._err(310000, "keywords not in content")
        with self.lock:
            window = self.sent.setdefault(token, deque())
            while window and window[0] <= now - float(config["rate_window"]):
                window.popleft()
            if len(window) >= int(config["rate_limit"]):
                self.throttled_until[token] = now + float(config["throttle_seconds"])
                return self._err(130101, MESSAGES[130101])
            window.append(now)
            self.record_post({"id": f"dingtalk-{next(self.ids)}", "msgtype": msgtype, "body": body, "text": text,
                              "signature_valid": True if signed else None,
                              "timestamp": req.query.get("timestamp")})
        return Response(200, {"errcode": 0, "errmsg": "ok"})

    @staticmethod
    def _sign_problem(timestamp: str, sign: str, config: JSON, now: float) -> str | None:
        """DingTalk's rule, written independently of the client: HMAC(secret, "ms\\nsecret"), base64.

        The query was URL-decoded already, so a sign sent without URL encoding ('+' read as ' ') fails.
        """
        if not timestamp.isdigit() or abs(now * 1000 - int(timestamp)) > float(config["timestamp_window"]) * 1000:
            return "invalid timestamp"
        secret = config["secret"]
        string_to_sign = timestamp + "\n" + secret
        expected = base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest())
        return None if hmac.compare_digest(expected, sign.encode()) else "sign not match"
