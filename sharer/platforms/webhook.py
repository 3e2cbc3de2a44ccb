"""Generic webhook: POST the post as JSON to a URL, signed with HMAC-SHA256.

Headers sent: ``X-Sharer-Signature: sha256=<hex of HMAC(secret, raw body)>``, ``X-Sharer-Delivery``
(the delivery id; a receiver can de-duplicate on it) and ``X-Sharer-Timestamp``. A 2xx answer means
delivered; its JSON ``id`` and ``url`` (if any) are recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..errors import PermanentError
from .base import DeliveryContext, Platform, Post, Receipt, error_for_status, json_body, send, short


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook(Platform):
    id = "webhook"
    title = "Webhook"
    default_api_base = ""
    required_credentials = ("secret",)
    limit = 100_000
    unit = "characters"
    sandbox_port = 8900
    option_defaults = {"include_body": True}

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        if text is not None:
            self.check_override(text, len(text), self.limit)
            body_text = text
        else:
            body_text = render_template(self.template, article_values(article, url))
        payload = {
            "title": article.title,
            "url": url,
            "summary": article.summary,
            "text": body_text,
            "image": article.image,
            "tags": list(article.tags),
            "lang": article.lang,
            "published_at": article.published_at.isoformat() if article.published_at else None,
        }
        if self.options["include_body"]:
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
        resp = send(ctx, "POST", self.account.api_base, data=body, headers=headers)
        if 200 <= resp.status_code < 300:
            data = json_body(resp)
            post_id = data.get("id")
            return Receipt(str(post_id) if post_id is not None else None, data.get("url"))
        data = json_body(resp)
        detail = data.get("error") or data.get("message") or resp.text
        message = ctx.redact(f"receiver answered HTTP {resp.status_code}: {short(str(detail))}")
        err = error_for_status(resp, message)
        if resp.status_code in (301, 302, 303, 307, 308):
            raise PermanentError(message, status=resp.status_code)
        raise err
