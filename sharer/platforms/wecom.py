"""WeCom (企业微信) group robot: one message per share, posted to a group chat through its webhook.

Set-up: in the WeCom group chat, "…" → Add group robot (添加群机器人) → New robot; copy the webhook URL
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``. The ``key`` is the only secret (there is
no signature): store it as credential ``key`` (``env:`` or ``file:``), never in the config itself.

Quirks:
- Limits are in UTF-8 **bytes** (a CJK character is 3): news title ≤128, description ≤512, markdown
  content ≤4096, text content ≤2048. Generated fields are trimmed grapheme-safe with a warning; an
  editor's override over the limit is refused (ComposeError).
- The answer is HTTP 200 with ``{"errcode", "errmsg"}``; 93000 = wrong key or robot removed.
- 20 messages/min per robot. No message id, no public URL, no idempotency, and the robot cannot read the
  chat, so reconciliation after an ambiguous failure cannot tell (``find_existing`` raises Ambiguous).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..article import Article
from ..compose import article_values, fit, render_template, tag_url, with_summary
from ..errors import PermanentError, RateLimited
from ..text import count_utf8_bytes
from ._bots import fit_bytes, post_json, read_more
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule
from .spec import Credentials, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

TITLE_BYTES = 128
DESCRIPTION_BYTES = 512
MARKDOWN_BYTES = 4096
TEXT_BYTES = 2048
MSGTYPES = ("news", "markdown", "text")
NOTE = "WeCom group robot: the webhook returns no message id and a group message has no public URL"

# WeCom's body codes (fact sheet §9); the message is already redacted.
ERRORS = ErrorTable(
    codes={
        # api freq out of limit (unverified for webhooks): the window is a minute
        45009: Rule(RateLimited, "WeCom: too many messages for this robot: {message}", retry_after=60.0),
        93000: Rule(PermanentError, "WeCom: invalid webhook url — the key is wrong or the robot was removed "
                                    "from the group: {message}"),
        40058: Rule(PermanentError, "WeCom rejected a field of the message: {message}"),
    },
    other_code=Rule(PermanentError, "WeCom refused the message: {message}"),
)


def markdown_content(title: str, summary: str, url: str, lang: str | None) -> str:
    """Title as a heading, the summary, then the link (WeCom's markdown subset)."""
    parts = [f"## {title}", summary, f"[{read_more(lang)}]({url})"]
    return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class WeComOptions(Options):
    msgtype: str = "news"  # news card, markdown or text

    def check(self) -> WeComOptions:
        if self.msgtype not in MSGTYPES:
            raise OptionError("msgtype", f"must be one of {', '.join(MSGTYPES)}, got {self.msgtype!r}")
        return self


class WeCom(Platform[WeComOptions]):
    spec = PlatformSpec(
        id="wecom", title="WeCom group robot", api_base="https://qyapi.weixin.qq.com",
        limits=Limits(DESCRIPTION_BYTES, "bytes", count_utf8_bytes),
        options=WeComOptions,
        credentials=Credentials(required=("key",)),
        template="{title}\n\n{summary}\n\n{url}",  # used by msgtype "text" only
        rate_limit=RateLimit(20, 60.0),  # 20 messages/min per robot (for the limiter)
        sandbox=Sandbox("sharer.sandbox.wecom:WeComEmulator", 8906),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        kind = self.options.msgtype
        warnings: list[str] = []
        article = with_summary(article, warnings)  # never an empty card
        if kind == "news":
            limit = DESCRIPTION_BYTES
            if text is not None:
                self.check_override(text, count_utf8_bytes(text), limit)
                body = text
            else:
                body = fit_bytes(article.summary, limit, "description", warnings)
            item = {"title": fit_bytes(article.title, TITLE_BYTES, "title", warnings), "description": body,
                    "url": url}
            if article.image:
                item["picurl"] = article.image
            payload: dict[str, Any] = {"msgtype": "news", "news": {"articles": [item]}}
        else:
            limit = MARKDOWN_BYTES if kind == "markdown" else TEXT_BYTES
            if text is not None:
                self.check_override(text, count_utf8_bytes(text), limit)
                body = text
            else:
                body = self._fitted(article, url, kind, limit, warnings)
            payload = {"msgtype": kind, kind: {"content": body}}
        return Post(self.id, self.account.name, body, payload, count_utf8_bytes(body), limit, self.unit,
                    tuple(warnings))

    def _fitted(self, article: Article, url: str, kind: str, limit: int, warnings: list[str]) -> str:
        values = article_values(article, url)
        if kind == "markdown":
            def render(v: Any) -> str:
                return markdown_content(article.title, v["summary"], url, article.lang)
        else:
            def render(v: Any) -> str:
                return render_template(self.template, v)
        fitted = fit(render, values, count=count_utf8_bytes, limit=limit, drop_order=("summary",))
        if fitted.changed("summary"):
            warnings.append(f"summary trimmed so the {kind} content fits {limit} bytes")
        if not fitted.fits:  # a template with long fixed parts: cut the whole
            return fit_bytes(fitted.text, limit, f"{kind} content", warnings)
        return fitted.text

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        query = urlencode({"key": self.account.secret("key")})
        url = f"{self.account.api_base}/cgi-bin/webhook/send?{query}"
        post_json(ctx, "WeCom", url, post.payload, ERRORS)
        return Receipt(None, None, NOTE)
