"""Posting later: an editor's time read in the right zone, an account's slot taken with its minimum
spacing, the schedule listed page by page, a share moved to a new time, and the warning when no
dispatcher is running to release what is due.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..actor import Actor, actor_or_local
from ..errors import InputError
from ..runtime import Runtime
from ..store.audit import AuditAction
from ..store.deliveries import Delivery
from ..timeparse import GRACE_SECONDS, When
from ..timeparse import parse_when as _parse_when
from .common import known_account, record_audit
from .queries import status

if TYPE_CHECKING:
    from ..config import Account, Settings


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


def reserve_slot(rt: Runtime, delivery_id: str, account: Account, when: When | None,
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
    """The titles of these shares in one pipelined round trip (a purged share has none; a packed one is
    read from its packed form)."""
    return {sid: head.title for sid, head in rt.store.share_heads(share_ids).items()}


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
