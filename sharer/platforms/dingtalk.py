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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..article import Article
from ..compose import fit, tag_url
from ..errors import DeliveryError, PermanentError, RateLimited
from ..text import count_utf8_bytes
from ._bots import fit_bytes, post_json, read_more
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule
from .spec import Credentials, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

MSGTYPES = ("link", "markdown")
NOTE = "DingTalk robot: the webhook returns no message id and a group message has no public URL"


def _security(message: str) -> str:
    """310000 covers every security setting; its errmsg says which one refused."""
    low = message.lower()
    hint = ("the message contains none of the robot's keywords" if "keyword" in low else
            "the signature does not match: check the signing secret" if "sign not match" in low else
            "the timestamp was rejected: check this server's clock" if "timestamp" in low else
            "this server's IP address is not in the robot's allow-list" if "whitelist" in low else
            "the robot's security settings refused the message")
    return f"DingTalk: {hint}: {message}"


# DingTalk's body codes (fact sheet §11); the message is already redacted.
ERRORS = ErrorTable(
    codes={
        130101: Rule(RateLimited, "DingTalk: sending too fast; the robot is throttled for 10 minutes: {message}",
                     retry_after=600.0),
        310000: Rule(PermanentError, _security),
        300001: Rule(PermanentError, "DingTalk: the access token does not exist (wrong token or robot removed): "
                                     "{message}"),
    },
    other_code=Rule(PermanentError, "DingTalk refused the message: {message}"),
)


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


@dataclass(frozen=True)
class DingTalkOptions(Options):
    msgtype: str = "link"       # link card or markdown
    max_text_bytes: int = 4096  # content size limit (unverified: configurable)

    def check(self) -> DingTalkOptions:
        if self.msgtype not in MSGTYPES:
            raise OptionError("msgtype", f"must be one of {', '.join(MSGTYPES)}, got {self.msgtype!r}")
        if self.max_text_bytes < 256:
            raise OptionError("max_text_bytes", "must be an integer of at least 256")
        return self


class DingTalk(Platform[DingTalkOptions]):
    spec = PlatformSpec(
        id="dingtalk", title="DingTalk robot", api_base="https://oapi.dingtalk.com",
        limits=Limits(4096, "bytes", count_utf8_bytes),
        options=DingTalkOptions,
        credentials=Credentials(required=("access_token",), optional=("secret",)),
        rate_limit=RateLimit(20, 60.0),  # over 20/min throttles the robot for 10 minutes
        sandbox=Sandbox("sharer.sandbox.dingtalk:DingTalkEmulator", 8908),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        """``link``: the summary is the card text; ``markdown``: heading, summary, picture, link."""
        url = tag_url(article.url, self.account.utm)
        kind = self.options.msgtype
        limit = self.options.max_text_bytes
        warnings: list[str] = []
        if text is not None:
            self.check_override(text, count_utf8_bytes(text), limit)
            body = text
        elif kind == "link":  # DingTalk requires a non-empty card text: fall back to the title
            body = fit_bytes(article.summary or article.title, limit, "link text", warnings)
        else:
            def render(v: Mapping[str, str]) -> str:
                return markdown_text(article, v["summary"], url)

            fitted = fit(render, {"summary": article.summary}, count=count_utf8_bytes, limit=limit,
                         drop_order=("summary",))
            if fitted.changed("summary"):
                warnings.append(f"summary trimmed so the markdown text fits {limit} bytes")
            body = fitted.text if fitted.fits else fit_bytes(fitted.text, limit, "markdown text", warnings)
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
        try:
            post_json(ctx, "DingTalk", self._url(), post.payload, ERRORS)
        except DeliveryError as e:
            if not (e.code == "310000" and "invalid timestamp" in e.message.lower()
                    and self.account.has_secret("secret")):
                raise
            # Nothing was posted; a fresh timestamp once is safe (a skewed clock fails again).
            ctx.step("DingTalk rejected the timestamp; retrying once with a fresh one")
            post_json(ctx, "DingTalk", self._url(), post.payload, ERRORS)
        return Receipt(None, None, NOTE)
