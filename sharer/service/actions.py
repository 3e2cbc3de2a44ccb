"""An editor's actions on what was shared: retry, mark as posted, cancel, purge the old log, and the
audit entry for a preview sent to a phone. Each is one compare-and-set on the record, then audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..actor import Actor, actor_or_local
from ..article import Article
from ..errors import InputError
from ..runtime import Runtime
from ..store.audit import AuditAction
from ..store.deliveries import CANCELLABLE, RETRYABLE, Delivery
from ..store.states import Approval
from .common import enqueue_or_leave_for_sweeper, record_audit
from .queries import delivery, status


def retry(rt: Runtime, delivery_id: str, *, confirmed: bool = False, actor: Actor | None = None) -> Delivery:
    """Send a failed or needs_review delivery again. needs_review needs ``confirmed``: it may be out.

    One that was never signed off (its slot passed while it waited) is not retried: an approver
    approves it (which sends it) or rejects it."""
    actor = actor_or_local(actor)
    d = delivery(rt, delivery_id)
    if d.approval is not None and d.approval.state is not Approval.APPROVED:
        raise InputError("delivery", f"{delivery_id} was never approved; an approver must approve it "
                                     f"(sharer approve {d.share_id}) or reject it")
    if d.status not in RETRYABLE:
        raise InputError("delivery", f"{delivery_id} is {d.status}; only failed or needs_review can be retried")
    if d.status == "needs_review" and not confirmed:
        raise InputError("confirm", f"{delivery_id} may already be published; check the account first, "
                                    "then confirm the retry")
    result = rt.store.transition(delivery_id, d.status, "queued", f"retry requested by {actor.name}", actor=actor.name,
                                 fields={"not_before": None, "error": None, "error_kind": None,
                                         "rate_waits": "0", "overdue": None, "retried_at": time.time(),
                                         "attempt_base": d.attempts})
    if not result.ok:
        raise InputError("delivery", f"{delivery_id} changed to {result.status} meanwhile; nothing done")
    record_audit(rt, AuditAction.RETRY, actor, f"retry of {d.account} ({d.status})", d.share_id, delivery_id)
    enqueue_or_leave_for_sweeper(rt, [(delivery_id, d.account)])
    return delivery(rt, delivery_id)


def mark_posted(rt: Runtime, delivery_id: str, url: str | None = None, *, actor: Actor | None = None
                ) -> Delivery:
    """An editor checked the account and found the post: close a needs_review delivery as delivered."""
    actor = actor_or_local(actor)
    d = delivery(rt, delivery_id)
    if d.status not in ("needs_review", "unknown"):
        raise InputError("delivery", f"{delivery_id} is {d.status}; only needs_review can be marked posted")
    if d.approval is not None and d.approval.state is not Approval.APPROVED:
        raise InputError("delivery", f"{delivery_id} was never approved, so it was not sent; an approver "
                                     f"approves (sharer approve {d.share_id}) or rejects it")
    if url is not None and not url.startswith(("http://", "https://")):
        raise InputError("url", "must be an http(s) URL")
    result = rt.store.transition(delivery_id, d.status, "delivered", f"marked as posted by {actor.name}",
                                 fields={"post_url": url, "error": None, "error_kind": None,
                                         "note": f"confirmed by {actor.name}"}, actor=actor.name)
    if not result.ok:
        raise InputError("delivery", f"{delivery_id} changed to {result.status} meanwhile; nothing done")
    record_audit(rt, AuditAction.POSTED, actor, f"marked {d.account} as posted" + (f" at {url}" if url else ""),
           d.share_id, delivery_id, {"url": url})
    return delivery(rt, delivery_id)


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str]
    not_cancelled: dict[str, str]  # delivery id -> its status (already out, or sending)


def cancel(rt: Runtime, share_or_delivery_id: str, *, actor: Actor | None = None) -> CancelResult:
    """Cancel what has not started sending (or is waiting for sign-off); report what was already out."""
    actor = actor_or_local(actor)
    if share_or_delivery_id.startswith("dl_"):
        ds = [delivery(rt, share_or_delivery_id)]
    else:
        ds = status(rt, share_or_delivery_id)
    cancelled, kept = [], {}
    for d in ds:
        if d.status in CANCELLABLE and rt.store.transition(d.id, CANCELLABLE, "cancelled",
                                                            f"cancelled by {actor.name}", actor=actor.name).ok:
            cancelled.append(d.id)
            rt.redis.zrem(rt.keys.schedule, d.id)
            rt.schedule.release_slot(d.account, d.id)
        else:
            now = rt.store.get(d.id, with_events=False)
            kept[d.id] = now.status if now else "gone"
    share_id = ds[0].share_id if ds else None
    record_audit(rt, AuditAction.CANCEL, actor, f"cancelled {len(cancelled)} of {len(ds)} deliveries", share_id,
                 share_or_delivery_id if share_or_delivery_id.startswith("dl_") else None,
                 {"cancelled": cancelled, "not_cancelled": kept})
    return CancelResult(cancelled, kept)


def purge(rt: Runtime, *, actor: Actor | None = None) -> int:
    """Enforce ``[log] retention_days`` on deliveries, shares and the audit log, then pack the shares
    settled for an hour. ``actor``: a person ran it (recorded); beat's hourly run passes none."""
    cutoff = time.time() - rt.settings.retention_days * 86400
    rt.audit.purge(cutoff)  # the audit log is retained like the log
    removed = rt.store.purge(cutoff)
    # shares settled for an hour are packed (sharer/store/cold.py); a large log written before packing
    # existed is packed 50,000 shares an hour, so no run holds the task for long
    rt.store.compact(limit=50_000)
    if actor is not None:
        record_audit(rt, AuditAction.PURGE, actor, f"purged {removed} deliveries older than "
                                             f"{rt.settings.retention_days:g} days", data={"removed": removed})
    return removed


def audit_preview_sent(rt: Runtime, actor: Actor, article: Article, sent: list) -> None:
    """A WeChat draft sent to a follower's phone is a write on the platform: it goes in the audit log."""
    record_audit(rt, AuditAction.PREVIEW_SENT, actor,
                 f"sent a preview of “{article.title}” to {sent[0].to} ({', '.join(p.account for p in sent)})",
                 data={"accounts": [p.account for p in sent], "to": sent[0].to})
