"""Generic webhook: POST the post as JSON to a URL, signed with HMAC-SHA256.

Headers sent: ``X-Sharer-Signature: sha256=<hex of HMAC(secret, raw body)>``, ``X-Sharer-Delivery``
(the delivery id; a receiver can de-duplicate on it) and ``X-Sharer-Timestamp``. A 2xx answer means
delivered; its JSON ``id`` and ``url`` (if any) are recorded. Any other answer is read by the shared
HTTP table (``sharer.platforms.http``): 429/5xx retried, 502/504 reconciled, redirects (never followed)
and 4xx refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..text import count_chars
from .base import DeliveryContext, Platform, Post, Receipt
from .http import DEFAULT_TABLE, json_body, send, short
from .spec import Credentials, Demo, Limits, Options, PlatformSpec, Sandbox


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookOptions(Options):
    include_body: bool = True  # send the article's sanitised HTML body as ``body_html``


class Webhook(Platform[WebhookOptions]):
    spec = PlatformSpec(
        id="webhook", title="Webhook",
        limits=Limits(100_000, "characters", count_chars),
        options=WebhookOptions,
        credentials=Credentials(required=("secret",)),
        sandbox=Sandbox("sharer.sandbox.webhook:WebhookEmulator", 8900),
        demo=(Demo(path="/hooks/newsroom"), Demo(suffix="-2", path="/hooks/intranet")),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        if text is not None:
            self.check_override(text, len(text), self.limit)
            body_text = text
        else:
            body_text = render_template(self.template, article_values(article, url))
        payload: dict[str, Any] = {
            "title": article.title,
            "url": url,
            "summary": article.summary,
            "text": body_text,
            "image": article.image,
            "tags": list(article.tags),
            "lang": article.lang,
            "published_at": article.published_at.isoformat() if article.published_at else None,
        }
        if self.options.include_body:
            payload["body_html"] = article.body_html
        return Post(self.id, self.account.name, body_text, payload, len(body_text), self.limit, self.unit)

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        body = json.dumps({"delivery_id": ctx.delivery_id, **post.payload}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Sharer-Signature": sign(self.account.secret("secret"), body),
            "X-Sharer-Delivery": ctx.delivery_id,
            "X-Sharer-Timestamp": str(int(time.time())),
        }
        # A redirect is refused, not followed: following would re-send the signed post somewhere else
        # (or turn it into a GET). The receiver's URL belongs in the config.
        resp = send(ctx, "POST", self.account.api_base, data=body, headers=headers, allow_redirects=False)
        data = json_body(resp)
        if 200 <= resp.status_code < 300:
            post_id = data.get("id")
            return Receipt(str(post_id) if post_id is not None else None, data.get("url"))
        detail = data.get("error") or data.get("message") or resp.text
        raise DEFAULT_TABLE.for_response(resp, ctx.redact(f"receiver answered HTTP {resp.status_code}: "
                                                          f"{short(str(detail))}"))
