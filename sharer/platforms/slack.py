"""Slack incoming webhook: one message per share, a ``section`` block (mrkdwn) plus the article image.

Set-up: in Slack, create an app → Incoming Webhooks → Add New Webhook to Workspace → pick the channel;
the URL ``https://hooks.slack.com/services/T…/B…/…`` is the secret. Store the part after
``/services/`` (or the whole URL) as credential ``webhook``; ``api_base`` stays ``https://hooks.slack.com``.

Quirks (fact sheet §13):
- Body ``{"text": fallback, "blocks": [...]}``; a section's ``text`` is at most 3,000 characters
  (counted as sent, after mrkdwn escaping of ``& < >``). ``text`` is the notification fallback.
- Answers are plain text: ``ok`` (200) or an error string with a 4xx (``invalid_payload``,
  ``channel_not_found``, ``no_service`` / ``invalid_token`` when the webhook was revoked, …);
  ~1 message/s per channel, 429 with ``Retry-After`` beyond it.
- No message id, no public URL, no idempotency and no way to read the channel: after an ambiguous
  failure ``find_existing`` cannot tell (needs review), never a blind resend.

Why not ``slack-sdk``: its ``WebhookClient`` sends through ``urllib`` with its own retry handlers, so
it would bypass our session, timeouts and the one network-error classification; the wire is one POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, fit, tag_url
from ..errors import Ambiguous, AuthExpired, ComposeError, PermanentError
from ..text import count_chars, trim
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, send, short
from .spec import Credentials, Demo, Limits, Options, PlatformSpec, RateLimit, Sandbox

SECTION_LIMIT = 3000
FALLBACK_LIMIT = 40_000
NOTE = "Slack incoming webhook: the answer carries no message id and no link"


def _refused(hint: str) -> Rule:
    return Rule(PermanentError, f"Slack: {hint} ({{message}})")


# Slack's answer strings (fact sheet §13); the message is the error string itself.
ERRORS = ErrorTable(
    codes={
        "no_service": Rule(AuthExpired, "Slack: the webhook was revoked or never existed ({message}): "
                                        "create a new one and update credentials.webhook"),
        "invalid_token": Rule(AuthExpired, "Slack: the webhook token is invalid ({message}): "
                                           "update credentials.webhook"),
        "invalid_payload": _refused("the message body was refused"),
        "invalid_blocks": _refused("a block was refused"),
        "msg_blocks_too_long": _refused("the blocks are too long"),
        "no_text": _refused("the message has no text"),
        "channel_not_found": _refused("the webhook's channel no longer exists"),
        "channel_is_archived": _refused("the webhook's channel is archived"),
        "action_prohibited": _refused("a workspace admin restricted posting to this channel"),
        "posting_to_general_channel_denied": _refused("only admins may post to this channel"),
    },
    other_code=_refused("the message was refused"),
)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only ``&``, ``<`` and ``>`` (they start links and entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section_text(values: Mapping[str, str]) -> str:
    """``*<url|title>*`` then the summary: the link label is the title (``|`` cannot appear in it)."""
    head = f"*<{values['url']}|{escape(values['title']).replace('|', '¦')}>*" if values.get("title") else values["url"]
    return "\n\n".join(p for p in (head, escape(values.get("summary", ""))) if p)


@dataclass(frozen=True)
class SlackOptions(Options):
    image: bool = True  # an image block with the article's lead image (Slack fetches the URL)


class Slack(Platform[SlackOptions]):
    spec = PlatformSpec(
        id="slack", title="Slack", api_base="https://hooks.slack.com",
        limits=Limits(SECTION_LIMIT, "characters", count_chars, media=1),
        options=SlackOptions,
        credentials=Credentials(required=("webhook",)),
        rate_limit=RateLimit(1, 1.0),  # about one message per second per channel
        sandbox=Sandbox("sharer.sandbox.slack:SlackEmulator", 8913),
        demo=(Demo(),),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        warnings: list[str] = []
        if text is not None:
            body = text.strip()
            self.check_override(body, count_chars(body), SECTION_LIMIT)
        else:
            fitted = fit(section_text, article_values(article, url), count=count_chars, limit=SECTION_LIMIT,
                         drop_order=("summary", "title"), field_count=lambda s: count_chars(escape(s)))
            if not fitted.fits:
                raise ComposeError(self.account.name, f"the section is {fitted.length} characters even "
                                   f"without summary and title; the limit is {SECTION_LIMIT}")
            warnings += [f"{name} trimmed to fit Slack's {SECTION_LIMIT}-character section"
                         for name in fitted.cut] + [f"{name} left out: no room" for name in fitted.dropped]
            body = fitted.text
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
        media: tuple[str, ...] = ()
        if self.options.image and article.image:
            blocks.append({"type": "image", "image_url": article.image, "alt_text": trim(article.title, 2000).text})
            media = (article.image,)
        fallback = trim(f"{article.title} {url}" if text is None else body, FALLBACK_LIMIT, count=count_chars).text
        payload = {"text": fallback, "blocks": blocks}
        return Post(self.id, self.account.name, body, payload, count_chars(body), SECTION_LIMIT, self.unit,
                    tuple(warnings), media)

    def webhook_url(self) -> str:
        hook = self.account.secret("webhook").strip()
        if "/services/" in hook:  # the whole URL was configured: keep the secret part
            hook = hook.split("/services/", 1)[1]
        return f"{self.account.api_base.rstrip('/')}/services/{hook.strip('/')}"

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        resp = send(ctx, "POST", self.webhook_url(), json=post.payload, allow_redirects=False)
        answer = resp.text.strip()
        if resp.status_code == 200 and answer == "ok":
            return Receipt(None, None, NOTE)
        message = ctx.redact(short(answer) or f"HTTP {resp.status_code}")
        if resp.status_code == 200:
            raise Ambiguous(f"Slack answered HTTP 200 but not ok: {message}", status=200)
        if resp.status_code == 429 or resp.status_code >= 500 or not answer or " " in answer:
            raise ERRORS.for_response(resp, f"Slack answered HTTP {resp.status_code}: {message}")
        raise ERRORS.for_code(answer, message, status=resp.status_code)
