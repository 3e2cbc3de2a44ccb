"""Feishu / Lark custom bot (自定义机器人): one rich-text ``post`` message per share in a group chat.

Set-up: in the group, Settings → Bots → Add bot → Custom bot; copy the webhook URL
``https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN`` (Lark: ``https://open.larksuite.com/...`` — set
``api_base``). Store TOKEN as credential ``hook_token``. Recommended: under Security settings enable
"Signature verification" (签名校验) and store its secret as credential ``secret``.

Quirks:
- Signature: top-level ``timestamp`` (unix seconds, a string) and ``sign`` =
  base64(HMAC-SHA256(key = f"{timestamp}\\n{secret}", msg = b"")) — the string is the *key* and the
  message is empty (unlike DingTalk). The timestamp must be within 1 hour of Feishu's clock.
- Answers HTTP 200 with ``{"code", "msg", "data"}`` (+ legacy ``StatusCode``/``StatusMessage``).
- Request body ≤ 20 KB (unverified: option ``max_body_bytes``); 5 requests/s and 100/min per bot.
- No message id, no public URL, and the bot cannot read the chat (``find_existing`` raises Ambiguous).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..article import Article
from ..compose import fit, tag_url, with_summary
from ..errors import ComposeError, PermanentError, RateLimited
from ..text import count_utf8_bytes
from ._bots import json_size, post_json, read_more
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule
from .spec import Credentials, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

LOCALES = ("zh_cn", "en_us", "ja_jp")
SIGN_RESERVE = 80  # bytes the timestamp and sign fields add to the body: ,"timestamp":"…","sign":"…"
NOTE = "Feishu bot: the webhook returns no message id and a group message has no public URL"


def _refused(hint: str) -> Rule:
    return Rule(PermanentError, f"Feishu: {hint}: {{message}}")


# Feishu's body codes (fact sheet §10); the message is already redacted.
ERRORS = ErrorTable(
    codes={
        11232: Rule(RateLimited, "Feishu: frequency limited: {message}", retry_after=60.0),
        19021: _refused("the signature was rejected (sign mismatch, or the timestamp is more than 1 h off): "
                        "check the signing secret and this server's clock"),
        19022: _refused("this server's IP address is not in the bot's allow-list"),
        19024: _refused("the message contains none of the bot's keywords"),
        9499: _refused("bad request (malformed or too big)"),
    },
    other_code=_refused("the message was refused"),
)


def sign(timestamp: str, secret: str) -> str:
    """Feishu's signature: the HMAC key is "timestamp\\nsecret" and the message is empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class FeishuOptions(Options):
    locale: str = "zh_cn"         # the post's language key: zh_cn, en_us or ja_jp
    max_body_bytes: int = 20480   # request body limit (unverified: configurable)

    def check(self) -> FeishuOptions:
        if self.locale not in LOCALES:
            raise OptionError("locale", f"must be one of {', '.join(LOCALES)}, got {self.locale!r}")
        if self.max_body_bytes < 1024:
            raise OptionError("max_body_bytes", "must be an integer of at least 1024")
        return self


class Feishu(Platform[FeishuOptions]):
    spec = PlatformSpec(
        id="feishu", title="Feishu/Lark bot", api_base="https://open.feishu.cn",
        limits=Limits(20480, "bytes", count_utf8_bytes),
        options=FeishuOptions,
        credentials=Credentials(required=("hook_token",), optional=("secret",)),
        rate_limit=RateLimit(5, 1.0),  # 5 requests/s per bot (also 100/min)
        sandbox=Sandbox("sharer.sandbox.feishu:FeishuEmulator", 8907),
    )

    def _payload(self, article: Article, summary: str, url: str) -> dict[str, Any]:
        lines: list[list[dict[str, str]]] = []
        if summary:
            lines.append([{"tag": "text", "text": summary}])
        lines.append([{"tag": "a", "text": read_more(article.lang), "href": url}])
        return {"msg_type": "post",
                "content": {"post": {self.options.locale: {"title": article.title, "content": lines}}}}

    def compose(self, article: Article, text: str | None = None) -> Post:
        """The summary (or the editor's text) as the body line; the body size counts toward 20 KB."""
        url = tag_url(article.url, self.account.utm)
        limit = self.options.max_body_bytes
        reserve = SIGN_RESERVE if self.account.has_secret("secret") else 0

        def size(s: str) -> int:
            return json_size(self._payload(article, s, url)) + reserve

        warnings: list[str] = []
        if text is not None:
            self.check_override(text, 0, limit)  # emptiness; the size is checked on the whole body
            if size(text) > limit:
                raise ComposeError(self.account.name, f"with this text the message body is {size(text)} bytes; "
                                                      f"Feishu accepts at most {limit}")
            summary = text
        else:
            article = with_summary(article, warnings)  # never a post with only a link
            def body(v: Mapping[str, str]) -> str:
                return v["summary"]

            fitted = fit(body, {"summary": article.summary}, count=size, limit=limit, drop_order=("summary",),
                         field_count=count_utf8_bytes)
            summary = fitted.values["summary"]
            if not fitted.fits:
                raise ComposeError(self.account.name, f"even without a summary the message body is "
                                                      f"{size(summary)} bytes; Feishu accepts at most {limit}")
            if fitted.changed("summary"):
                warnings.append(f"summary trimmed so the message body fits {limit} bytes")
        payload = self._payload(article, summary, url)
        return Post(self.id, self.account.name, summary, payload, size(summary), limit, self.unit, tuple(warnings))

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        body = dict(post.payload)
        if self.account.has_secret("secret"):
            timestamp = str(int(time.time()))
            body = {"timestamp": timestamp, "sign": sign(timestamp, self.account.secret("secret")), **body}
        url = f"{self.account.api_base}/open-apis/bot/v2/hook/{quote(self.account.secret('hook_token'), safe='')}"
        post_json(ctx, "Feishu", url, body, ERRORS, code_keys=("code", "StatusCode"),
                  msg_keys=("msg", "StatusMessage"))
        return Receipt(None, None, NOTE)
