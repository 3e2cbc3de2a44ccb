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

from typing import Any, ClassVar
from urllib.parse import urlencode

from ..article import Article
from ..compose import article_values, render_template, tag_url, with_summary
from ..errors import DeliveryError, PermanentError, RateLimited
from ..text import count_utf8_bytes
from ._bots import fit_bytes, fit_summary, post_json, read_more
from .base import DeliveryContext, Platform, Post, Receipt

TITLE_BYTES = 128
DESCRIPTION_BYTES = 512
MARKDOWN_BYTES = 4096
TEXT_BYTES = 2048
MSGTYPES = ("news", "markdown", "text")
NOTE = "WeCom group robot: the webhook returns no message id and a group message has no public URL"


def markdown_content(title: str, summary: str, url: str, lang: str | None) -> str:
    """Title as a heading, the summary, then the link (WeCom's markdown subset)."""
    parts = [f"## {title}", summary, f"[{read_more(lang)}]({url})"]
    return "\n\n".join(p for p in parts if p)


class WeCom(Platform):
    id = "wecom"
    title = "WeCom group robot"
    default_api_base = "https://qyapi.weixin.qq.com"
    required_credentials = ("key",)
    option_defaults: ClassVar[dict[str, Any]] = {"msgtype": "news"}
    default_template = "{title}\n\n{summary}\n\n{url}"  # used by msgtype "text" only
    limit = DESCRIPTION_BYTES
    unit = "bytes"
    sandbox_port = 8906
    rate_limit: ClassVar[tuple[int, float]] = (20, 60.0)  # 20 messages/min per robot (for the limiter)

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        out = super().validate_options(raw)
        if out["msgtype"] not in MSGTYPES:
            raise ValueError(f"msgtype: must be one of {', '.join(MSGTYPES)}, got {out['msgtype']!r}")
        return out

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        kind = self.options["msgtype"]
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
                if kind == "markdown":
                    def render(s: str) -> str:
                        return markdown_content(article.title, s, url, article.lang)
                else:
                    def render(s: str) -> str:
                        return render_template(self.template, {**article_values(article, url), "summary": s})
                summary = fit_summary(lambda s: count_utf8_bytes(render(s)), article.summary, limit)
                body = render(summary)
                if summary != article.summary:
                    warnings.append(f"summary trimmed so the {kind} content fits {limit} bytes")
                if count_utf8_bytes(body) > limit:  # a template with long fixed parts: cut the whole
                    body = fit_bytes(body, limit, f"{kind} content", warnings)
            payload = {"msgtype": kind, kind: {"content": body}}
        return Post(self.id, self.account.name, body, payload, count_utf8_bytes(body), limit, self.unit,
                    tuple(warnings))

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        query = urlencode({"key": self.account.secret("key")})
        url = f"{self.account.api_base}/cgi-bin/webhook/send?{query}"
        code, message = post_json(ctx, "WeCom", url, post.payload)
        if code == 0:
            return Receipt(None, None, NOTE)
        raise error_for(code, message)


def error_for(code: int, message: str) -> DeliveryError:
    """WeCom's body codes (fact sheet §9). ``message`` is already redacted."""
    if code == 45009:  # api freq out of limit (unverified for webhooks): the window is a minute
        return RateLimited(f"WeCom: too many messages for this robot: {message}", retry_after=60.0, code=code)
    if code == 93000:
        return PermanentError(f"WeCom: invalid webhook url — the key is wrong or the robot was removed from "
                              f"the group: {message}", code=code)
    if code == 40058:
        return PermanentError(f"WeCom rejected a field of the message: {message}", code=code)
    return PermanentError(f"WeCom refused the message: {message}", code=code)
