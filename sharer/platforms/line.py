"""LINE Official Account: one broadcast (all friends) or push (one user/group) per share.

Set-up: LINE Developers console → your provider → the Messaging API channel of the Official Account →
Messaging API tab → Channel access token (long-lived) → Issue; store it as credential
``channel_access_token``. ``options.mode = "push"`` with ``options.to`` (a user, group or room id)
sends to one chat instead of every friend.

Quirks (fact sheet §15):
- ``{"messages": [...]}`` (≤ 5): a text message (≤ 5,000 UTF-16 code units), then the lead image as
  an image message when its URL is HTTPS (LINE fetches ``originalContentUrl``/``previewImageUrl``).
- ``X-Line-Retry-Key`` = a UUID derived from the delivery id, so every attempt of one delivery sends
  the same key. LINE keeps keys 24 h; a repeat after the first was accepted answers **409** with
  ``x-line-accepted-request-id``: that means done, recorded delivered with the first request's id.
  The platform is declared idempotent, so an ambiguous failure is resent with the same key.
- 429 is either the rate limit or the monthly message quota ("You have reached your monthly limit."),
  which lasts until the month ends (Japan time). Broadcasts: 60 requests/hour (unverified: the
  account's ``rate_limit`` overrides it).
- Broadcast messages have no public URL; the receipt keeps LINE's request id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..article import Article
from ..compose import article_values, fit, tag_url
from ..errors import AuthExpired, ComposeError, DeliveryError, PermanentError, RateLimited
from ..text import count_utf16
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Idempotency, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

TEXT_LIMIT = 5000
MODES = ("broadcast", "push")
RETRY_KEYS = uuid.UUID("8f0c3f52-6d2b-4c55-9a63-3f3e2a4b7c10")  # namespace: retry key = uuid5(this, delivery id)
MONTHLY = "monthly limit"

ERRORS = ErrorTable(statuses={
    401: Rule(AuthExpired, "LINE: the channel access token is not valid ({message}): issue a new one and update "
                           "credentials.channel_access_token"),
    403: Rule(PermanentError, "LINE: not allowed for this channel or plan ({message})"),
}, rate_limit_default=60.0)


def retry_key(delivery_id: str) -> str:
    """The same UUID for every attempt of one delivery (what makes a resend safe)."""
    return str(uuid.uuid5(RETRY_KEYS, delivery_id))


def until_next_month(now: datetime | None = None) -> float:
    """Seconds until the monthly quota resets (the 1st, 00:00 Japan time)."""
    now = now or datetime.now(ZoneInfo("Asia/Tokyo"))
    first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    return max(60.0, (first - now).total_seconds())


@dataclass(frozen=True)
class LineOptions(Options):
    mode: str = "broadcast"           # broadcast: every friend; push: the chat in ``to``
    to: str = ""                      # push: a user id (U…), group id (C…) or room id (R…)
    image: bool = True                # the lead image as a second message (HTTPS URLs only)
    notification_disabled: bool = False

    def check(self) -> LineOptions:
        if self.mode not in MODES:
            raise OptionError("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "push" and not self.to:
            raise OptionError("to", "is required when mode is push (a user, group or room id)")
        return self


class Line(Platform[LineOptions]):
    spec = PlatformSpec(
        id="line", title="LINE Official Account", api_base="https://api.line.me",
        limits=Limits(TEXT_LIMIT, "UTF-16 units", count_utf16, media=1),
        options=LineOptions,
        credentials=Credentials(required=("channel_access_token",)),
        rate_limit=RateLimit(60, 3600.0),  # broadcast: 60 requests/hour per channel (unverified)
        idempotency=Idempotency.KEY,       # X-Line-Retry-Key = uuid5(delivery id)
        sandbox=Sandbox("sharer.sandbox.line:LineEmulator", 8915),
        demo=(Demo(),),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        warnings: list[str] = []
        if text is not None:
            body = text.strip()
            self.check_override(body, count_utf16(body), TEXT_LIMIT)
        else:
            fitted = fit(self.template, article_values(article, url), count=count_utf16, limit=TEXT_LIMIT,
                         drop_order=("summary", "title"))
            if not fitted.fits:
                raise ComposeError(self.account.name, f"the template alone is {fitted.length} UTF-16 units; "
                                   f"the limit is {TEXT_LIMIT}")
            warnings += [f"{name} trimmed to fit LINE's {TEXT_LIMIT} UTF-16 units" for name in fitted.cut]
            body = fitted.text
        messages: list[dict[str, Any]] = [{"type": "text", "text": body}]
        media: tuple[str, ...] = ()
        if self.options.image and article.image:
            if article.image.startswith("https://"):
                messages.append({"type": "image", "originalContentUrl": article.image,
                                 "previewImageUrl": article.image})
                media = (article.image,)
            else:
                warnings.append("image left out: LINE needs an HTTPS image URL")
        payload: dict[str, Any] = {"messages": messages}
        if self.options.mode == "push":
            payload["to"] = self.options.to
        if self.options.notification_disabled:
            payload["notificationDisabled"] = True
        return Post(self.id, self.account.name, body, payload, count_utf16(body), TEXT_LIMIT, self.unit,
                    tuple(warnings), media)

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        headers = {"Authorization": f"Bearer {self.account.secret('channel_access_token')}",
                   "X-Line-Retry-Key": retry_key(ctx.delivery_id)}
        url = f"{self.account.api_base}/v2/bot/message/{self.options.mode}"
        # idempotent: with the retry key a repeat cannot send twice, so a lost answer is safe to resend
        resp = send(ctx, "POST", url, idempotent=True, json=post.payload, headers=headers)
        data = json_body(resp)
        if resp.status_code == 200:
            sent = data.get("sentMessages") or []
            first = str(sent[0].get("id")) if sent and isinstance(sent[0], dict) else None
            return Receipt(first or resp.headers.get("x-line-request-id"), None, self._note())
        if resp.status_code == 409 and resp.headers.get("x-line-accepted-request-id"):
            ctx.step("LINE had already accepted this retry key: the messages went out on an earlier attempt")
            return Receipt(resp.headers["x-line-accepted-request-id"], None, self._note())
        raise self._error(ctx, resp, data)

    def _note(self) -> str:
        return ("LINE broadcast: sent to every friend of the account; no public URL" if self.options.mode ==
                "broadcast" else f"LINE push to {self.options.to}; no public URL")

    def _error(self, ctx: DeliveryContext, resp: Any, data: dict[str, Any]) -> DeliveryError:
        status = resp.status_code
        detail = str(data.get("message") or short(resp.text) or f"HTTP {status}")
        details = data.get("details") or []
        if isinstance(details, list) and details:
            detail += ": " + "; ".join(f"{d.get('property', '?')}: {d.get('message', '')}" for d in details[:3]
                                       if isinstance(d, dict))
        message = ctx.redact(f"LINE answered HTTP {status}: {short(detail)}")
        if status == 429 and MONTHLY in detail.lower():
            return RateLimited(f"{message} (the quota resets at the start of next month, Japan time)",
                               retry_after=until_next_month(), status=429)
        if status == 409:  # a conflict without the accepted id: we cannot tell what happened
            return ERRORS.for_response(resp, message)
        return ERRORS.for_response(resp, message, retry_safe=True)

    def check_credentials(self, ctx: DeliveryContext) -> str:
        resp = send(ctx, "GET", f"{self.account.api_base}/v2/bot/info", idempotent=True,
                    headers={"Authorization": f"Bearer {self.account.secret('channel_access_token')}"})
        data = json_body(resp)
        if resp.status_code != 200:
            raise self._error(ctx, resp, data)
        return f"bot {data.get('displayName') or '?'} ({data.get('basicId') or data.get('userId') or '?'})"
