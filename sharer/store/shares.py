"""Listing shares, newest first, with filters: what the dashboard's share list and ``GET /api/shares`` show.

Shares are indexed in one lexicographic sorted set (``"<13-digit created ms>:<share id>"``), so time
order, a date range and the cursor are one ``ZRANGE BYLEX``. The other filters (status, account,
platform, title) need the share's deliveries, so they are applied while walking the index; a page scans
at most ``scan_budget`` index entries and then hands back a cursor, so one request never reads the whole
log however selective the filter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..clock import ms
from .deliveries import Delivery, DeliveryStore, _s

CURSOR = re.compile(r"^\d{13}:[A-Za-z0-9_]{1,64}$")


@dataclass
class ShareSummary:
    """A share and its deliveries (each in the ``Delivery.to_json`` contract)."""

    id: str
    title: str
    url: str
    created_at: str
    deliveries: list[Delivery] = field(default_factory=list)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"share_id": self.id, "title": self.title, "url": self.url, "created_at": self.created_at,
                "deliveries": [d.to_json() for d in self.deliveries]}


@dataclass(frozen=True)
class ShareFilter:
    status: str | None = None
    account: str | None = None
    platform: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    q: str | None = None  # case-insensitive substring of the title

    def matches(self, s: ShareSummary) -> bool:
        if self.q and self.q.casefold() not in s.title.casefold():
            return False
        ds = s.deliveries
        if self.status and not any(d.status == self.status for d in ds):
            return False
        if self.account and not any(d.account == self.account for d in ds):
            return False
        return not (self.platform and not any(d.platform == self.platform for d in ds))


def load_share(store: DeliveryStore, share_id: str, with_events: bool = True) -> ShareSummary | None:
    rec = store.share(share_id)
    if rec is None:
        return None
    return ShareSummary(share_id, rec.title, rec.url, rec.created_at,
                        store.get_many(rec.delivery_ids, with_events=with_events))


def query_shares(store: DeliveryStore, flt: ShareFilter, *, limit: int = 20, cursor: str | None = None,
                 scan_budget: int = 2000) -> tuple[list[ShareSummary], str | None]:
    """Newest first. ``cursor`` is the ``next_cursor`` of the previous page (None: no more pages)."""
    highs = []
    if cursor:
        highs.append(cursor)
    if flt.until is not None:
        highs.append(f"{ms(flt.until):013d}")  # exclusive: every member at that ms sorts after it
    high = f"({min(highs)}" if highs else "+"
    low = f"[{ms(flt.since):013d}" if flt.since is not None else "-"
    found: list[ShareSummary] = []
    scanned = 0
    batch = max(limit * 2, 50)
    r, k = store.r, store.k
    while scanned < scan_budget:
        members = [_s(m) for m in r.zrange(k.shares_index, high, low, desc=True, bylex=True, offset=0, num=batch)]
        if not members:
            return found, None
        ids = [m.split(":", 1)[1] for m in members]
        pipe = r.pipeline(transaction=False)
        for sid in ids:
            pipe.hmget(k.share(sid), "title", "url", "created_at", "delivery_ids")
        rows = pipe.execute()
        for member, sid, row in zip(members, ids, rows):
            scanned += 1
            if row[3] is None:  # purged meanwhile
                continue
            title = _s(row[0] or b"")
            if flt.q and flt.q.casefold() not in title.casefold():
                continue
            h = {"title": title, "url": _s(row[1] or b""), "created_at": _s(row[2] or b"")}
            summary = _summary(sid, h, store.get_many(json.loads(_s(row[3])), with_events=True))
            if flt.matches(summary):
                found.append(summary)
                if len(found) == limit:
                    more = r.zrange(k.shares_index, f"({member}", low, desc=True, bylex=True, offset=0, num=1)
                    return found, member if more else None
            if scanned >= scan_budget:
                return found, member  # budget spent: the caller may continue from here
        if len(members) < batch:
            return found, None
        high = f"({members[-1]}"
    return found, None


def _summary(share_id: str, h: dict[str, Any], deliveries: list[Delivery]) -> ShareSummary:
    return ShareSummary(share_id, str(h.get("title") or ""), str(h.get("url") or ""),
                        str(h.get("created_at") or ""), deliveries)
