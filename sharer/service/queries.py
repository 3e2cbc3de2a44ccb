"""Reading what happened: a share's deliveries, one delivery, the log, the dashboards' share list,
counts, the audit log, and waiting until a share has settled. Nothing here writes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InputError, NotFound
from ..runtime import Runtime
from ..store.audit import AuditAction, AuditEntry
from ..store.deliveries import STATUSES, TERMINAL, Delivery, Status
from .common import known_account

if TYPE_CHECKING:
    from ..store.shares import ShareSummary


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
        from ..store.shares import CURSOR

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


def list_shares(rt: Runtime, *, status: str | None = None, account: str | None = None,
                platform: str | None = None, since: float | None = None, until: float | None = None,
                q: str | None = None, limit: int = 20,
                cursor: str | None = None) -> tuple[list[ShareSummary], str | None]:
    """Shares newest first with their deliveries, filtered; returns (shares, next_cursor)."""
    from ..store.shares import CURSOR, ShareFilter, query_shares

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
    from ..store.shares import load_share

    found = load_share(rt.store, share_id)
    if found is None:
        raise NotFound(f"no share with id {share_id!r}")
    return found


def counts(rt: Runtime) -> dict[str, int]:
    """Deliveries per status (the status indexes' sizes: O(1) each)."""
    return rt.store.count_by_status()


def audit(rt: Runtime, *, actor: str | None = None, since: float | None = None, share_id: str | None = None,
          action: str | None = None, limit: int = 50, cursor: str | None = None
          ) -> tuple[list[AuditEntry], str | None]:
    """Who did what, newest first: (entries, next_cursor)."""
    from ..store.audit import CURSOR, AuditFilter

    if not 1 <= limit <= 1000:
        raise InputError("limit", "must be between 1 and 1000")
    if cursor and not CURSOR.match(cursor):
        raise InputError("cursor", "not a cursor this command returned")
    if action and action not in {str(a) for a in AuditAction}:
        raise InputError("action", f"unknown action {action!r} (one of: {', '.join(a for a in AuditAction)})")
    return rt.audit.query(AuditFilter(actor or None, since, share_id or None, action or None), limit=limit,
                          cursor=cursor or None)
