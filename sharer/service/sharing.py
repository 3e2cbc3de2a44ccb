"""``share``: one article to many accounts: checked, composed, de-duplicated, stored with its audit
entry in one write, then enqueued now or scheduled (waiting for sign-off where ``[workflow]`` says).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import dedupe, metrics
from ..actor import Actor, actor_or_local
from ..article import Article
from ..dedupe import Earlier
from ..errors import ComposeError, InputError
from ..platforms.base import Post
from ..runtime import Runtime
from ..store.audit import AuditAction, AuditEntry
from ..store.deliveries import Delivery
from ..timeparse import When
from .common import enqueue_or_leave_for_sweeper, known_account, new_id, unique_accounts
from .previews import compose_each
from .queries import status
from .scheduling import dispatcher_warning, reserve_slot, resolve_when


@dataclass(frozen=True)
class ShareResult:
    share_id: str
    deliveries: list[Delivery]
    duplicate: bool = False  # True: no new share was written (an earlier one is returned)
    # accounts skipped because they already had this article, with the earlier delivery
    duplicates: dict[str, Earlier] = field(default_factory=dict)
    replayed: bool = False  # True: the idempotency key was used before for this same request
    warnings: tuple[str, ...] = ()  # e.g. scheduled while no dispatcher is running

    @property
    def duplicate_of(self) -> str | None:
        """The earlier share this one repeats (the first skipped account's), for a "shared before" notice."""
        return next((e.delivery.share_id for e in self.duplicates.values()), None)

    def to_json(self, accounts: list[str] | None = None) -> dict:
        """``{"share_id", "deliveries"}``: each new delivery with ``duplicate_of: null``, then each skipped
        account's earlier delivery with ``duplicate_of`` naming it (in the requested account order)."""
        rows = [(d.account, {**d.to_json(), "duplicate_of": None}) for d in self.deliveries]
        rows += [(e.account, {**e.delivery.to_json(), "duplicate_of": e.to_json()})
                 for e in self.duplicates.values()]
        order = {a: i for i, a in enumerate(accounts or [])}
        rows.sort(key=lambda r: order.get(r[0], len(order)))
        return {"share_id": self.share_id, "deliveries": [r[1] for r in rows]}


def share(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None,
          *, idempotency_key: str | None = None, force: bool | Iterable[str] = False,
          at: str | datetime | None = None, tz: str | None = None, next_slot: bool = False,
          max_lateness: float | None = None, scope: str = "anonymous", shared_by: str | None = None,
          actor: Actor | None = None) -> ShareResult:
    """Create a share with one delivery per account, then enqueue one task per delivery — or, with
    ``at`` / ``next_slot``, schedule them (status ``scheduled``; the dispatcher releases them on time).

    Every post is composed first, so a bad override fails here and nothing is stored; an account the
    article itself cannot go to gets a ``failed`` (``compose``) delivery and the others are sent.
    Repeating a trigger is safe: the same ``idempotency_key`` from the same caller (``scope``) returns
    the same share (a different request under it is refused), and an account that already had this
    article within ``[delivery] duplicate_window_hours`` is skipped and reported — unless ``force``
    (True for every account, or the names of the accounts to send to anyway). ``shared_by`` (the
    signed-in user, from the web app) is kept on the share record.

    Deliveries to accounts that need sign-off (``[workflow]``) wait in ``awaiting_approval``; the
    others go out (or are scheduled) as usual. ``actor`` is who shares (default: the local user); it is
    also ``shared_by`` when that is not given.
    """
    actor = actor_or_local(actor)
    accounts = unique_accounts(accounts)
    for name in accounts:
        known_account(rt, name, "to")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
        raise InputError("idempotency_key", "must be 1 to 200 characters")
    unknown_override = set(overrides or {}) - set(accounts)
    if unknown_override:
        raise InputError("text", f"override for account {sorted(unknown_override)[0]!r} which is not in --to")
    if at is not None and next_slot:
        raise InputError("at", "give either a time or --next-slot, not both")
    if max_lateness is not None and not (0 <= max_lateness < float("inf")):
        raise InputError("max_lateness", "must be zero or more minutes")
    forced = set(accounts) if force is True else set(force or ())
    unknown_forced = forced - set(accounts)
    if unknown_forced:
        raise InputError("force", f"account {sorted(unknown_forced)[0]!r} is not in --to")
    posts = compose_each(rt, article, accounts, overrides)
    when = resolve_when(rt, at, tz) if at is not None else None
    share_id = new_id("sh")
    if idempotency_key is not None:
        timing = {"at": when.epoch if when else None, "next_slot": next_slot, "max_lateness": max_lateness}
        fingerprint = dedupe.request_fingerprint(article, accounts, overrides, timing)
        ttl = max(rt.settings.duplicate_window, 86400.0)
        earlier_id = dedupe.claim_key(rt, scope, idempotency_key, fingerprint, share_id, ttl)
        if earlier_id is not None:
            return ShareResult(earlier_id, status(rt, earlier_id), duplicate=True, replayed=True)
    try:
        composed = [a for a, post in zip(accounts, posts) if not isinstance(post, ComposeError)]
        dups, taken = dedupe.claim_accounts(rt, article, composed, overrides, share_id, forced)
    except BaseException:
        if idempotency_key is not None:
            dedupe.release_key(rt, scope, idempotency_key, share_id)
        raise
    sending = [(name, post) for name, post in zip(accounts, posts) if name not in dups]
    if not sending:  # every account already had it: nothing new is written
        if idempotency_key is not None:
            dedupe.release_key(rt, scope, idempotency_key, share_id)
        first = next(iter(dups.values())).delivery.share_id
        return ShareResult(first, [], duplicate=True, duplicates=dups)
    try:
        records, broker = _write_share(rt, share_id, article, sending, overrides, when, next_slot,
                                       max_lateness, shared_by, actor)
    except BaseException:
        dedupe.release_accounts(rt, taken, share_id)
        if idempotency_key is not None:
            dedupe.release_key(rt, scope, idempotency_key, share_id)
        raise
    warnings: tuple[str, ...] = (broker,) if broker else ()  # the broker was down: the sweeper sends them
    if when is not None or next_slot:
        warning = dispatcher_warning(rt)
        warnings += (warning,) if warning else ()
    return ShareResult(share_id, records, duplicates=dups, warnings=warnings)


def _write_share(rt: Runtime, share_id: str, article: Article, sending: list[tuple[str, Post | ComposeError]],
                 overrides: dict[str, str] | None, when: When | None, next_slot: bool,
                 max_lateness: float | None, shared_by: str | None = None, actor: Actor | None = None
                 ) -> tuple[list[Delivery], str | None]:
    """Store the share and its deliveries (with its audit entry), then enqueue them (now) or take their
    slots (scheduled). Deliveries to accounts that need sign-off wait for it. Returns the records and,
    when the broker did not take the messages, the warning saying so."""
    from .. import workflow

    actor = actor_or_local(actor)
    accounts = [name for name, _ in sending]
    deliveries: list[dict[str, Any]] = []
    gated = workflow.needs_approval(rt, accounts)
    for name, post in sending:
        if isinstance(post, ComposeError):  # recorded failed; the other accounts go ahead
            reason = post.problem
            deliveries.append({"id": new_id("dl"), "account": name, "status": "failed", "error": reason,
                               "error_kind": "compose", "platform": rt.settings.account(name).platform,
                               "message": f"cannot compose: {reason}"})
            continue
        d = {"id": new_id("dl"), "account": name, "platform": post.platform, "post": post.to_dict(),
             "override": (overrides or {}).get(name)}
        if name in gated:
            d.update(workflow.submission_fields(actor, post), message="waiting for approval (version 1)")
        deliveries.append(d)
    sendable = [d for d in deliveries if d.get("status") != "failed"]
    gated = {d["account"] for d in sendable} & gated  # a post that cannot compose waits for nobody
    share_record = {"id": share_id, "article": article.to_dict(), "title": article.title, "url": article.url,
                    "delivery_ids": [d["id"] for d in deliveries], "shared_by": shared_by or actor.name}
    entry = AuditEntry(AuditAction.SHARE, actor.name, actor.user,
                       f"shared “{article.title}” to {', '.join(accounts)}"
                       + (f"; waiting for approval: {', '.join(sorted(gated))}" if gated else ""),
                       share_id, None, {"accounts": accounts, "awaiting": sorted(gated),
                                        "scheduled": when is not None or next_slot})
    also = lambda pipe: rt.audit.record(entry, pipe)  # noqa: E731  (the audit entry, in the same MULTI)
    if when is None and not next_slot:
        records = rt.store.create_share(share_record, deliveries, actor=actor.name, also=also)
        for d in deliveries:  # queued, or failed (compose) for an account the article cannot go to
            metrics.status_changed(d["platform"], d.get("status", "queued"))
        rt.replicated()  # behind Sentinel: the share survives a failover before anyone is told it exists
        broker = enqueue_or_leave_for_sweeper(
            rt, [(d["id"], d["account"]) for d in sendable if d["account"] not in gated])
        _alert_failed(rt, deliveries)
        if gated:
            workflow.notify(rt, "requested", share_id, actor)
        if broker is None:
            return records, None
        return rt.store.get_many([d["id"] for d in deliveries]), broker
    taken: list[tuple[str, str]] = []
    try:
        for d in sendable:
            slot = reserve_slot(rt, str(d["id"]), rt.settings.account(str(d["account"])), when, max_lateness)
            if d["account"] in gated:
                slot["message"] += "; waiting for approval (version 1)"
                slot.pop("status", None)
            d.update(slot)
            taken.append((str(d["account"]), str(d["id"])))
        rt.store.create_share(share_record, deliveries, status="scheduled", actor=actor.name, also=also)
        rt.replicated()
    except BaseException:
        for account, did in taken:  # nothing stored: give the slots back
            rt.schedule.release_slot(account, did)
        raise
    _alert_failed(rt, deliveries)
    if gated:
        workflow.notify(rt, "requested", share_id, actor)
    return rt.store.get_many([d["id"] for d in deliveries]), None


def _alert_failed(rt: Runtime, deliveries: list[dict]) -> None:
    from ..errors import BrokerUnavailable

    if rt.settings.alerts_configured:
        for d in deliveries:
            if d.get("status") == "failed":
                try:
                    rt.queue.send_alert(d["id"])
                except BrokerUnavailable:  # the failed record is the truth; only its notice is lost
                    return
