"""The core API used by the CLI, the web app and tests: preview, share, status, log.

Everything here is plain Python over a ``Runtime``; no Celery, no HTTP framework.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import dedupe, metrics
from .actor import Actor, actor_or_local
from .article import Article
from .dedupe import Earlier
from .errors import ComposeError, InputError, NotFound
from .platforms import get_platform
from .platforms.base import Post
from .runtime import Runtime
from .store.audit import AuditAction, AuditEntry
from .store.deliveries import CANCELLABLE, RETRYABLE, STATUSES, TERMINAL, Delivery, Status
from .store.states import Approval
from .timeparse import GRACE_SECONDS, When
from .timeparse import parse_when as _parse_when

if TYPE_CHECKING:
    from .config import Account, Settings
    from .store.audit import AuditEntry
    from .store.shares import ShareSummary


def new_id(prefix: str) -> str:
    """Time-ordered, unguessable ids: ``sh_``/``dl_`` + hex milliseconds + random hex."""
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def preview(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
            ) -> list[Post]:
    """Compose each account's post exactly as delivery will (same pure function)."""
    overrides = overrides or {}
    posts = []
    for name in accounts:
        account = known_account(rt, name, "to")
        platform = get_platform(account.platform)(account)
        posts.append(platform.compose(article, overrides.get(name)))
    return posts


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
    accounts = _unique_accounts(accounts)
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
    posts = _compose_each(rt, article, accounts, overrides)
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
    from . import workflow

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
            slot = _reserve(rt, str(d["id"]), rt.settings.account(str(d["account"])), when, max_lateness)
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


DISPATCHER_SILENCE = 60.0  # seconds without a dispatcher tick before scheduling warns


def dispatcher_warning(rt: Runtime, now: float | None = None) -> str | None:
    """A warning when no dispatcher (``celery -A tasks beat`` + a worker) has ticked for a minute:
    scheduled posts would not go out."""
    raw = rt.redis.get(rt.keys.dispatcher_heartbeat)
    if raw is not None:
        silent = (now or time.time()) - float(raw)
        if silent <= DISPATCHER_SILENCE:
            return None
        return (f"no dispatcher has run for {silent / 60:.0f} min: scheduled posts go out only while "
                "`celery -A tasks beat` and a worker are running")
    return ("no dispatcher has run yet: scheduled posts go out only while `celery -A tasks beat` and a "
            "worker are running")


def known_account(rt: Runtime, name: str, field_name: str = "account") -> Account:
    """The account named by the user, or an ``InputError`` blaming the field they typed it in."""
    try:
        return rt.settings.accounts[name]
    except KeyError:
        known = ", ".join(sorted(rt.settings.accounts)) or "none configured"
        raise InputError(field_name, f"unknown account {name!r} (known: {known})") from None


def _compose_each(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None
                  ) -> list[Post | ComposeError]:
    """Each account's post, or why the article cannot go there. An editor's own text that does not
    fit is bad input (raised: nothing is stored); an article an account cannot take is that
    account's ``failed`` (``compose``) delivery and does not hold back the others."""
    out: list[Post | ComposeError] = []
    for name in accounts:
        try:
            [post] = preview(rt, article, [name], {name: overrides[name]} if overrides and name in overrides else None)
        except ComposeError as e:
            if name in (overrides or {}):
                raise
            out.append(e)
            continue
        out.append(post)
    return out


def _alert_failed(rt: Runtime, deliveries: list[dict]) -> None:
    from .errors import BrokerUnavailable

    if rt.settings.alerts_configured:
        for d in deliveries:
            if d.get("status") == "failed":
                try:
                    rt.queue.send_alert(d["id"])
                except BrokerUnavailable:  # the failed record is the truth; only its notice is lost
                    return


BROKER_DOWN = "queued; the broker is down, the sweeper will send it"


def enqueue_or_leave_for_sweeper(rt: Runtime, items: list[tuple[str, str]]) -> str | None:
    """Nudge each stored delivery. A broker that is down is no reason to undo a share: the records
    are the truth, stay ``queued``, and the sweeper nudges them once it can — exactly once, as the
    claim lets only one worker send. Returns the warning to show, or None."""
    from .errors import BrokerUnavailable

    try:
        rt.queue.enqueue_many(items)  # one broker round trip for the whole share
    except BrokerUnavailable as e:
        # kombu's batch is one pipeline: when it fails, none of it is known to be queued. The sweeper
        # nudges them all; a message that did get through is harmless (the claim lets one worker send).
        for did, _ in items:
            rt.store.transition(did, "queued", None, f"{e}; the sweeper will send it")
        return f"{BROKER_DOWN} ({e})"
    return None


def resolve_when(rt: Runtime, at: str | datetime, tz: str | None = None) -> When:
    """An editor's time in ``tz`` (default ``[defaults] timezone``, never the machine's zone)."""
    zone_name = tz or rt.settings.timezone
    text = at.isoformat() if isinstance(at, datetime) else at
    when = _parse_when(text, zone_name, time.time())
    horizon = rt.settings.retention_days * 86400
    if when.epoch - time.time() > horizon:
        raise InputError("at", f"more than {rt.settings.retention_days:.0f} days ahead (the scheduling "
                               "horizon is [log] retention_days)")
    return when


def parse_when(text: str, tz: str | None, settings: Settings) -> datetime:
    """The UTC instant of an editor's time (``InputError("at", …)`` when it can't be used)."""
    return _parse_when(text, tz or settings.timezone, time.time()).utc


def _reserve(rt: Runtime, delivery_id: str, account: Account, when: When | None,
             max_lateness: float | None) -> dict[str, Any]:
    """Take the account's slot (given time, or its next free posting slot) keeping its minimum spacing."""
    zone_name = account.timezone or rt.settings.timezone
    if when is None:
        if account.slots is None:
            raise InputError("next_slot", f"account {account.name!r} has no posting slots configured "
                                          f"([accounts.{account.name}] slots)")
        candidates = account.slots.upcoming(zone_name, time.time() + GRACE_SECONDS)
        got = rt.schedule.take(account.name, delivery_id, candidates, account.min_spacing, exclusive=True)
        if got is None:
            raise InputError("next_slot", f"account {account.name!r} has no free slot in the next 90 days "
                                          f"([accounts.{account.name}] slots, min_spacing_minutes)")
        when = When(datetime.fromtimestamp(got, UTC), zone_name)
    else:
        got = rt.schedule.take(account.name, delivery_id, [when.epoch], account.min_spacing, exclusive=False)
        if got is None:
            minutes = account.min_spacing / 60
            raise InputError("at", f"account {account.name!r} already has a post within {minutes:.0f} min of "
                                   f"{when.label()} (its minimum spacing: [accounts.{account.name}] "
                                   "min_spacing_minutes)")
    lateness = max_lateness if max_lateness is not None else (
        account.max_lateness if account.max_lateness is not None else rt.settings.max_lateness)
    return {"scheduled_for": when.epoch, "timezone": when.zone, "slot_label": when.label(), "version": 0,
            "max_lateness": lateness, "message": f"scheduled for {when.label()}"}


SCHEDULE_CURSOR = re.compile(r"^\d+(\.\d+)?:[A-Za-z0-9_]{1,64}$")


def schedule_page(rt: Runtime, *, account: str | None = None, start: datetime | None = None,
                  end: datetime | None = None, limit: int = 200, cursor: str | None = None,
                  scan_budget: int = 5000) -> tuple[list[Delivery], str | None]:
    """Scheduled deliveries by due time, one page (optionally one account's, within [start, end]).

    Returns (deliveries, next_cursor); a page cut short by ``scan_budget`` (entries of other accounts,
    long retry waits) still has a cursor, so nothing scheduled is ever left out silently.
    """
    if account:
        known_account(rt, account)
    if not 1 <= limit <= 1000:
        raise InputError("limit", "must be between 1 and 1000")
    if cursor and not SCHEDULE_CURSOR.match(cursor):
        raise InputError("cursor", "not a cursor this API returned")
    found: list[Delivery] = []
    scanned = 0
    while True:
        rows, cursor = rt.schedule.entries(start.timestamp() if start else None, end.timestamp() if end else None,
                                           cursor, batch=max(limit - len(found), 100))
        records = {d.id: d for d in rt.store.get_many([i for i, _ in rows], with_events=False)}
        for n, (did, due) in enumerate(rows):
            d = records.get(did)
            if d is not None and d.status == "scheduled" and (not account or d.account == account):
                found.append(d)
                if len(found) == limit:
                    more = n + 1 < len(rows) or cursor is not None
                    return found, (f"{due!r}:{did}" if more else None)
        scanned += len(rows)
        if cursor is None or scanned >= scan_budget:
            return found, cursor


def schedule_list(rt: Runtime, *, account: str | None = None, start: datetime | None = None,
                  end: datetime | None = None) -> list[Delivery]:
    """Every scheduled delivery by due time (optionally one account's, within [start, end])."""
    out, cursor = [], None
    while True:
        page, cursor = schedule_page(rt, account=account, start=start, end=end, limit=1000, cursor=cursor)
        out += page
        if cursor is None:
            return out


def schedule_titles(rt: Runtime, share_ids: list[str]) -> dict[str, str]:
    """The titles of these shares in one pipelined round trip (a purged share has none)."""
    pipe = rt.redis.pipeline(transaction=False)
    for sid in share_ids:
        pipe.hget(rt.keys.share(sid), "title")
    return {sid: t.decode() if isinstance(t, bytes) else t for sid, t in zip(share_ids, pipe.execute())
            if t is not None}


def reschedule(rt: Runtime, share_id: str, at: str | datetime, tz: str | None = None, *,
               actor: Actor | None = None) -> list[Delivery]:
    """Move every still-scheduled delivery of a share (also those waiting for sign-off) to a new time
    (bumps each one's version)."""
    actor = actor_or_local(actor)
    ds = status(rt, share_id)
    when = resolve_when(rt, at, tz)
    pending = [d for d in ds if d.status == "scheduled"
               or (d.status == "awaiting_approval" and d.scheduled_for is not None)]
    if not pending:
        raise InputError("share", f"{share_id} has no scheduled deliveries left to move")
    for d in pending:
        account = rt.settings.account(d.account)
        rt.schedule.release_slot(d.account, d.id)
        if rt.schedule.take(d.account, d.id, [when.epoch], account.min_spacing, exclusive=False) is None:
            rt.schedule.take(d.account, d.id, [d.scheduled_for or when.epoch], 0, exclusive=False)
            raise InputError("at", f"account {d.account!r} already has a post within "
                                   f"{account.min_spacing / 60:.0f} min of {when.label()} "
                                   f"(its minimum spacing: [accounts.{d.account}] min_spacing_minutes)")
        rt.schedule.reschedule(d.id, d.account, when.epoch, when.zone, when.label(), actor=actor.name)
    record_audit(rt, AuditAction.RESCHEDULE, actor, f"rescheduled to {when.label()}", share_id,
                 data={"at": when.utc.isoformat(), "timezone": when.zone, "deliveries": [d.id for d in pending]})
    return status(rt, share_id)


def status(rt: Runtime, share_id: str) -> list[Delivery]:
    ids = rt.store.share_delivery_ids(share_id)
    if ids is None:
        raise NotFound(f"no share with id {share_id!r}")
    return rt.store.get_many(ids)


def delivery(rt: Runtime, delivery_id: str) -> Delivery:
    d = rt.store.get(delivery_id)
    if d is None:
        raise NotFound(f"no delivery with id {delivery_id!r}")
    return d


def log(rt: Runtime, *, status: str | None = None, account: str | None = None, since: float | None = None,
        limit: int = 50, cursor: str | None = None) -> tuple[list[Delivery], str | None]:
    if status and status not in STATUSES:
        raise InputError("status", f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    if account:
        known_account(rt, account)
    if not 1 <= limit <= 1000:
        raise InputError("limit", f"must be between 1 and 1000, got {limit}")
    if cursor is not None:
        from .store.shares import CURSOR

        if not CURSOR.match(cursor):
            raise InputError("cursor", "not a cursor sharer printed (use the next_cursor of the previous page)")
    if since is not None and not (math.isfinite(since) and 0 <= since < 1e11):
        raise InputError("since", "out of range")
    return rt.store.query(status=status, account=account, since=since, limit=limit, cursor=cursor)


def wait(rt: Runtime, share_id: str, timeout: float = 600.0,
         on_update: Callable[[list[Delivery]], object] | None = None, poll: float = 2.0) -> list[Delivery]:
    """Block until every delivery of the share is terminal (or needs an editor), or ``timeout``.

    Woken by the events channel (every status change is PUBLISHed by the script that makes it): the
    share is re-read when one of its deliveries changes. Subscribed before the first read, so nothing
    between the two is missed; ``poll`` is only the safety net should a notice be lost (a reconnect).
    """
    deadline = time.monotonic() + timeout
    pubsub = None
    try:
        pubsub = rt.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(rt.keys.events_channel)
    except Exception:  # no pub/sub (e.g. Redis busy reconnecting): fall back to polling
        pubsub = None
    try:
        while True:
            ds = status(rt, share_id)
            if on_update:
                on_update(ds)
            if all(is_settled(d) for d in ds) or time.monotonic() > deadline:
                return ds
            _next_change(pubsub, share_id, min(poll, max(0.0, deadline - time.monotonic())))
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass


def _next_change(pubsub: Any, share_id: str, seconds: float) -> None:
    """Return when a notice about ``share_id`` arrives (or after ``seconds``); drain what else came."""
    if pubsub is None:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            msg = pubsub.get_message(timeout=left)
        except Exception:  # the subscription broke: the poll still covers us
            time.sleep(max(0.0, min(left, 0.5)))
            return
        if msg is None:
            continue
        try:
            notice = json.loads(msg["data"])
        except (TypeError, ValueError):
            continue
        if notice.get("share") == share_id:
            return


def is_settled(d: Delivery) -> bool:
    """Nothing more happens without a person: terminal, or waiting for an editor or an approver."""
    return d.status in TERMINAL or d.status in (Status.NEEDS_REVIEW, Status.AWAITING_APPROVAL, Status.REJECTED)


def purge(rt: Runtime, *, actor: Actor | None = None) -> int:
    """Enforce ``[log] retention_days`` on deliveries, shares and the audit log. ``actor``: a person ran
    it (recorded); beat's hourly run passes none."""
    cutoff = time.time() - rt.settings.retention_days * 86400
    rt.audit.purge(cutoff)  # the audit log is retained like the log
    removed = rt.store.purge(cutoff)
    if actor is not None:
        record_audit(rt, AuditAction.PURGE, actor, f"purged {removed} deliveries older than "
                                             f"{rt.settings.retention_days:g} days", data={"removed": removed})
    return removed


def audit_preview_sent(rt: Runtime, actor: Actor, article: Article, sent: list) -> None:
    """A WeChat draft sent to a follower's phone is a write on the platform: it goes in the audit log."""
    record_audit(rt, AuditAction.PREVIEW_SENT, actor,
                 f"sent a preview of “{article.title}” to {sent[0].to} ({', '.join(p.account for p in sent)})",
                 data={"accounts": [p.account for p in sent], "to": sent[0].to})


def record_audit(rt: Runtime, action: AuditAction, actor: Actor, detail: str, share_id: str | None = None,
           delivery_id: str | None = None, data: dict | None = None) -> None:
    """One audit log entry (the write paths here call it; so do the CLI and web for theirs)."""
    rt.audit.record(AuditEntry(action, actor.name, actor.user, detail, share_id, delivery_id, data or {}))


# --- editor actions -------------------------------------------------------------------------------

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


def _unique_accounts(accounts: list[str]) -> list[str]:
    out: list[str] = []
    for a in accounts:
        a = a.strip()
        if a and a not in out:
            out.append(a)
    if not out:
        raise InputError("to", "name at least one account")
    return out


# --- reading for dashboards (the web app; the CLI may use them too) -------------------------------

@dataclass(frozen=True)
class PreviewItem:
    """One account's preview: its post, or why it cannot be composed (with the counted length if known)."""

    account: str
    platform: str
    post: Post | None
    error: str | None = None
    length: int | None = None
    limit: int | None = None
    unit: str | None = None


def preview_each(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
                 ) -> list[PreviewItem]:
    """Like ``preview``, but an account whose post cannot be composed gets its error instead of failing
    the whole call: a live editor shows "151/140" on that card and keeps the others."""
    out = []
    for name in _unique_accounts(accounts):
        account = known_account(rt, name, "to")
        cls = get_platform(account.platform)
        try:
            [post] = preview(rt, article, [name], {name: overrides[name]} if overrides and name in overrides else None)
        except ComposeError as e:
            out.append(PreviewItem(name, account.platform, None, e.problem, e.length, e.limit, cls.unit))
            continue
        out.append(PreviewItem(name, account.platform, post, None, post.length, post.limit, post.unit))
    return out


def list_shares(rt: Runtime, *, status: str | None = None, account: str | None = None,
                platform: str | None = None, since: float | None = None, until: float | None = None,
                q: str | None = None, limit: int = 20,
                cursor: str | None = None) -> tuple[list[ShareSummary], str | None]:
    """Shares newest first with their deliveries, filtered; returns (shares, next_cursor)."""
    from .store.shares import CURSOR, ShareFilter, query_shares

    if status and status not in STATUSES:
        raise InputError("status", f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    if account:
        known_account(rt, account)
    if not 1 <= limit <= 200:
        raise InputError("limit", "must be between 1 and 200")
    if cursor and not CURSOR.match(cursor):
        raise InputError("cursor", "not a cursor this API returned")
    flt = ShareFilter(status=status, account=account, platform=platform, since=since, until=until, q=q)
    return query_shares(rt.store, flt, limit=limit, cursor=cursor)


def get_share(rt: Runtime, share_id: str) -> ShareSummary:
    """The share (title, url, created_at) with every delivery and its events."""
    from .store.shares import load_share

    found = load_share(rt.store, share_id)
    if found is None:
        raise NotFound(f"no share with id {share_id!r}")
    return found


def counts(rt: Runtime) -> dict[str, int]:
    """Deliveries per status (the status indexes' sizes: O(1) each)."""
    return rt.store.count_by_status()


def account_activity(rt: Runtime, account: str, scan: int = 200) -> tuple[Delivery | None, Delivery | None]:
    """The account's most recent delivered and most recent failed delivery among its last ``scan``."""
    rt.settings.account(account)
    recent, _ = rt.store.query(account=account, limit=scan, with_events=False)
    ok = next((d for d in recent if d.status == "delivered"), None)
    bad = next((d for d in recent if d.status in ("failed", "needs_review")), None)
    return ok, bad


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool | None  # None: the platform has no way to check without posting
    message: str


def check_credentials(rt: Runtime, account: str, timeout: float = 5.0) -> CredentialCheck:
    """One cheap read on the platform proving the account's credentials work (never posts)."""
    from .errors import DeliveryError
    from .platforms.base import DeliveryContext

    acc = rt.settings.account(account)
    platform = get_platform(acc.platform)(acc)
    ctx = DeliveryContext(delivery_id=f"check-{account}", account=acc, session=rt.session,
                          timeout=min(timeout, rt.settings.http_timeout), redis=rt.redis, keys=rt.keys,
                          media_rewrite=rt.settings.media_rewrite, fetch_policy=rt.settings.fetch_policy())
    try:
        return CredentialCheck(True, ctx.redact(platform.check_credentials(ctx)))
    except NotImplementedError:
        return CredentialCheck(None, "cannot check without posting")
    except DeliveryError as e:
        return CredentialCheck(False, ctx.redact(str(e)))
    except Exception as e:  # a check must never take the page down, nor leak a secret in a message
        return CredentialCheck(False, ctx.redact(f"check failed: {type(e).__name__}"))


# --- the audit log --------------------------------------------------------------------------------

def audit(rt: Runtime, *, actor: str | None = None, since: float | None = None, share_id: str | None = None,
          action: str | None = None, limit: int = 50, cursor: str | None = None
          ) -> tuple[list[AuditEntry], str | None]:
    """Who did what, newest first: (entries, next_cursor)."""
    from .store.audit import CURSOR, AuditAction, AuditFilter

    if not 1 <= limit <= 1000:
        raise InputError("limit", "must be between 1 and 1000")
    if cursor and not CURSOR.match(cursor):
        raise InputError("cursor", "not a cursor this command returned")
    if action and action not in {str(a) for a in AuditAction}:
        raise InputError("action", f"unknown action {action!r} (one of: {', '.join(a for a in AuditAction)})")
    return rt.audit.query(AuditFilter(actor or None, since, share_id or None, action or None), limit=limit,
                          cursor=cursor or None)
