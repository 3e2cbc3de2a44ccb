"""One delivery attempt, start to finish: claim the record, compose, publish, record the verdict.

Called by the Celery task; returns what the caller should do next (nothing, or send the task again
after ``countdown`` seconds). No Celery here: the task is a thin wrapper.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from .article import Article
from .errors import DeliveryError, SharerError
from .platforms import get_platform
from .platforms.base import DeliveryContext, Post, Receipt
from .runtime import Runtime

log = logging.getLogger("sharer.delivery")


@dataclass(frozen=True)
class Next:
    """What the task does after an attempt: nothing (``countdown`` None) or run again later."""

    countdown: float | None = None


DONE = Next()


def run_delivery(rt: Runtime, delivery_id: str) -> Next:
    store = rt.store
    claim = store.claim(delivery_id, rt.settings.lease_seconds)
    if claim.outcome != "ok":
        log.info("delivery %s not sent now: %s %s", delivery_id, claim.outcome, claim.detail)
        return DONE
    token, record = claim.token, claim.record
    assert record is not None
    try:
        if claim.article_json is None:
            raise SharerError(f"share {record.share_id} is gone")
        article = Article.from_dict(json.loads(claim.article_json))
        account = rt.settings.account(record.account)
        platform = get_platform(account.platform)(account)
        post = platform.compose(article, record.override)
    except SharerError as e:
        store.transition(delivery_id, "sending", "failed", f"cannot compose: {e}", token=token,
                         fields={"error": str(e), "error_kind": "compose"})
        return DONE

    ctx = DeliveryContext(
        delivery_id=delivery_id, account=account, session=rt.session, timeout=rt.settings.http_timeout,
        redis=rt.redis, keys=rt.keys, state=dict(record.state), media_rewrite=rt.settings.media_rewrite,
        on_step=lambda msg: store.transition(delivery_id, "sending", None, msg, token=token),
        on_state=lambda state: store.transition(delivery_id, "sending", None, "progress saved",
                                                token=token, fields={"state": state}),
    )
    try:
        receipt = platform.publish(post, ctx)
    except DeliveryError as e:
        message = ctx.redact(str(e))
        store.transition(delivery_id, "sending", "failed", message, token=token,
                         fields={"error": message, "error_kind": e.kind, "post": post.to_dict()})
        return DONE
    except Exception as e:  # a bug in a client: record it without leaking anything
        log.exception("delivery %s: unexpected error", delivery_id)
        message = ctx.redact(f"internal error: {type(e).__name__}: {e}")
        store.transition(delivery_id, "sending", "failed", message, token=token,
                         fields={"error": message, "error_kind": "internal", "post": post.to_dict()})
        return DONE
    _delivered(rt, delivery_id, token, post, receipt)
    return DONE


def _delivered(rt: Runtime, delivery_id: str, token: int, post: Post, receipt: Receipt) -> None:
    where = receipt.url or receipt.note or "no public URL"
    rt.store.transition(
        delivery_id, "sending", "delivered", f"delivered: {where}", token=token,
        fields={"post_id": receipt.post_id, "post_url": receipt.url, "note": receipt.note, "error": None,
                "error_kind": None, "post": post.to_dict(), "lease_until": None},
    )
