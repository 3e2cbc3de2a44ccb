"""Approval notices: "waiting for your sign-off", "approved", "rejected: …", "not approved by its slot".

Sent by a Celery task (``sharer.notice``) to the ``[alerts] webhook`` (signed JSON, like delivery
alerts) and to the ``[workflow] notify`` group bot — through that bot platform's own composer and
publisher, so the card is shaped and limited like any post to it. Each notice links to the share in
the dashboard (``[web] public_url``). ``notice_text`` is pure; ``send_notice`` does the I/O.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

from .alerts import post_signed
from .article import Article
from .clock import iso
from .errors import DeliveryError, TransientError
from .platforms import get_platform
from .platforms.base import DeliveryContext
from .runtime import Runtime
from .store.records import Delivery, ShareRecord

log = logging.getLogger("sharer.notify")
KINDS = ("requested", "approved", "rejected", "missed")


@dataclass(frozen=True)
class Notice:
    kind: str
    title: str  # the card's headline
    summary: str  # one or two lines: who, which accounts, why
    link: str  # the share in the dashboard (else the article)


def share_link(public_url: str | None, share: ShareRecord) -> str:
    return f"{public_url}/shares/{share.id}" if public_url else share.url


def notice_text(kind: str, share: ShareRecord, deliveries: list[Delivery], actor: str, reason: str,
                public_url: str | None) -> Notice:
    """The notice's words (pure)."""
    waiting = [d for d in deliveries if d.approval is not None]
    accounts = ", ".join(sorted({d.account for d in waiting})) or "-"
    version = max((d.approval.version for d in waiting if d.approval), default=1)
    due = next((d for d in waiting if d.scheduled_for), None)
    when = ""
    if due is not None:
        from datetime import UTC, datetime

        from .timeparse import local_text

        when = f"; due {local_text(datetime.fromtimestamp(due.scheduled_for or 0.0, UTC), due.timezone or 'UTC')} " \
               f"{due.timezone}"
    if kind == "requested":
        title = f"Waiting for approval: {share.title}"
        summary = f"{actor} submitted version {version} for {accounts}{when}."
    elif kind == "approved":
        title = f"Approved: {share.title}"
        summary = f"{actor} approved version {version} for {accounts}."
    elif kind == "rejected":
        title = f"Rejected: {share.title}"
        summary = f"{actor} rejected version {version} for {accounts}: {reason}"
    else:
        title = f"Not approved in time: {share.title}"
        summary = f"Version {version} for {accounts} was still waiting for approval at its slot{when}; " \
                  "it was not sent."
    return Notice(kind, title, summary, share_link(public_url, share))


def send_notice(rt: Runtime, kind: str, share_id: str, target: str, actor: str = "", reason: str = "") -> bool:
    share = rt.store.share(share_id)
    if share is None or kind not in KINDS:
        return False
    deliveries = rt.store.get_many(share.delivery_ids, with_events=False)
    notice = notice_text(kind, share, deliveries, actor, reason, rt.settings.workflow.public_url)
    if target == "webhook":
        return _to_webhook(rt, notice, share, deliveries, actor, reason)
    if target == "bot":
        return _to_bot(rt, notice)
    return False


def _to_webhook(rt: Runtime, notice: Notice, share: ShareRecord, deliveries: list[Delivery], actor: str,
                reason: str) -> bool:
    url, secret = rt.settings.alert_webhook, rt.settings.alert_secret
    if not url:
        return False
    waiting = [d for d in deliveries if d.approval is not None]
    body = json.dumps({
        "event": f"approval.{notice.kind}", "share_id": share.id, "title": share.title, "article_url": share.url,
        "accounts": sorted({d.account for d in waiting}), "delivery_ids": [d.id for d in waiting],
        "version": max((d.approval.version for d in waiting if d.approval), default=1), "actor": actor or None,
        "reason": reason or None, "link": notice.link, "message": notice.summary, "at": iso(),
    }, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Sharer-Share": share.id}
    return post_signed(rt, url, secret, body, headers)


def _to_bot(rt: Runtime, notice: Notice) -> bool:
    """A short card through the bot platform's own composer and publisher (no UTM on our own link)."""
    name = rt.settings.workflow.notify
    if not name:
        return False
    account = dataclasses.replace(rt.settings.account(name), utm=None, template=None)
    platform = get_platform(account.platform)(account)
    post = platform.compose(Article(title=notice.title, url=notice.link, summary=notice.summary))
    ctx = DeliveryContext(delivery_id=f"notice-{notice.kind}", account=account, session=rt.session,
                          timeout=rt.settings.http_timeout, redis=rt.redis, keys=rt.keys,
                          media_rewrite=rt.settings.media_rewrite)
    try:
        platform.publish(post, ctx)
    except TransientError:
        raise
    except DeliveryError as e:  # a refused notice is logged, not retried forever
        log.warning("approval notice to %s refused: %s", name, ctx.redact(str(e)))
        return False
    return True
