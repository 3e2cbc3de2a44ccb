"""DingTalk (钉钉) custom robot: one ``link`` card (or ``markdown`` message) per share in a group chat.

Set-up: in the group, Group settings → Bots → Add robot → Custom (自定义, webhook); copy the webhook
``https://oapi.dingtalk.com/robot/send?access_token=TOKEN`` and store TOKEN as credential
``access_token``. Pick a security setting: "Additional signature" (加签, recommended — store its
``SEC…`` secret as credential ``secret``), custom keywords (the article must contain one) or an IP
allow-list.

Quirks:
- Signature: query ``&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{ms}\\n{secret}")))>``; the timestamp must be close to DingTalk's clock (≈1 h, unverified). A
  rejected timestamp is retried once with a fresh one inside the same publish call.
- Answers HTTP 200 with ``{"errcode", "errmsg"}``; all security failures are 310000 (the errmsg says which).
- 20 messages/min per robot; going over throttles the robot for 10 minutes (130101).
- Content size limit unverified: option ``max_text_bytes`` (UTF-8 bytes of ``text``).
- No message id, no public URL, and the robot cannot read the chat (``find_existing`` raises Ambiguous).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar
from urllib.parse import urlencode

from ..article import Article
from ..compose import tag_url
from ..errors import DeliveryError, PermanentError, RateLimited
from ..text import count_utf8_bytes
from ._bots import fit_bytes, fit_summary, post_json, read_more
from .base import DeliveryContext, Platform, Post, Receipt

MSGTYPES = ("link", "markdown")
NOTE = "DingTalk robot: the webhook returns no message id and a group message has no public URL"


def sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's signature (before URL encoding): HMAC key = secret, message = "ms\\nsecret"."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def markdown_text(article: Article, summary: str, url: str) -> str:
    parts = [f"#### {article.title}", summary]
    if article.image:
        parts.append(f"![]({article.image})")
    parts.append(f"[{read_more(article.lang)}]({url})")
    return "\n\n".join(p for p in parts if p)


class DingTalk(Platform):
    id = "dingtalk"
    title = "DingTalk robot"
    default_api_base = "https://oapi.dingtalk.com"
    required_credentials = ("access_token",)
    optional_credentials = ("secret",)
    option_defaults: ClassVar[dict[str, Any]] = {"msgtype": "link", "max_text_bytes": 4096}
    limit = 4096
    unit = "bytes"
    sandbox_port = 8908
    rate_limit: ClassVar[tuple[int, float]] = (20, 60.0)  # over 20/min throttles the robot for 10 minutes

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        out = super().validate_options(raw)
        if out["msgtype"] not in MSGTYPES:
            raise ValueError(f"msgtype: must be one of {', '.join(MSGTYPES)}, got {out['msgtype']!r}")
        if not isinstance(out["max_text_bytes"], int) or out["max_text_bytes"] < 256:
            raise ValueError("max_text_bytes: must be an integer of at least 256")
        return out

    def compose(self, article: Article, text: str | None = None) -> Post:
        """``link``: the summary is the card text; ``markdown``: heading, summary, picture, link."""
        url = tag_url(article.url, self.account.utm)
        kind = self.options["msgtype"]
        limit = int(self.options["max_text_bytes"])
        warnings: list[str] = []
        if text is not None:
            self.check_override(text, count_utf8_bytes(text), limit)
            body = text
        elif kind == "link":  # DingTalk requires a non-empty card text: fall back to the title
            body = fit_bytes(article.summary or article.title, limit, "link text", warnings)
        else:
            summary = fit_summary(lambda s: count_utf8_bytes(markdown_text(article, s, url)), article.summary, limit)
            if summary != article.summary:
                warnings.append(f"summary trimmed so the markdown text fits {limit} bytes")
            body = markdown_text(article, summary, url)
            if count_utf8_bytes(body) > limit:
                body = fit_bytes(body, limit, "markdown text", warnings)
        if kind == "link":
            card = {"title": article.title, "text": body, "messageUrl": url}
            if article.image:
                card["picUrl"] = article.image
            payload: dict[str, Any] = {"msgtype": "link", "link": card}
        else:
            payload = {"msgtype": "markdown", "markdown": {"title": article.title, "text": body}}
        return Post(self.id, self.account.name, body, payload, count_utf8_bytes(body), limit, self.unit,
                    tuple(warnings))

    def _url(self) -> str:
        query = {"access_token": self.account.secret("access_token")}
        if self.account.has_secret("secret"):
            ms = int(time.time() * 1000)
            query |= {"timestamp": str(ms), "sign": sign(ms, self.account.secret("secret"))}
        return f"{self.account.api_base}/robot/send?{urlencode(query)}"

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        for attempt in (1, 2):
            code, message = post_json(ctx, "DingTalk", self._url(), post.payload)
            if code == 0:
                return Receipt(None, None, NOTE)
            if (code == 310000 and "invalid timestamp" in message.lower() and attempt == 1
                    and self.account.has_secret("secret")):
                # Nothing was posted; a fresh timestamp once is safe (a skewed clock fails again).
                ctx.step("DingTalk rejected the timestamp; retrying once with a fresh one")
                continue
            break
        raise error_for(code, message)


def error_for(code: int, message: str) -> DeliveryError:
    """DingTalk's body codes (fact sheet §11). ``message`` is already redacted."""
    if code == 130101:
        return RateLimited(f"DingTalk: sending too fast; the robot is throttled for 10 minutes: {message}",
                           retry_after=600.0, code=code)
    if code == 310000:
        low = message.lower()
        hint = ("the message contains none of the robot's keywords" if "keyword" in low else
                "the signature does not match: check the signing secret" if "sign not match" in low else
                "the timestamp was rejected: check this server's clock" if "timestamp" in low else
                "this server's IP address is not in the robot's allow-list" if "whitelist" in low else
                "the robot's security settings refused the message")
        return PermanentError(f"DingTalk: {hint}: {message}", code=code)
    if code == 300001:
        return PermanentError(f"DingTalk: the access token does not exist (wrong token or robot removed): {message}",
                              code=code)
    return PermanentError(f"DingTalk refused the message: {message}", code=code)
