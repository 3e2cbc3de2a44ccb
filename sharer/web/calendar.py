"""The calendar page's grid: a week or a month of days in the reader's zone, each with the posts that
are scheduled for it and the posts that went out (or failed) on it, per account.

``grid`` is pure (records in, days out); ``entries`` reads the schedule and the delivery log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .. import service
from ..errors import InputError
from ..runtime import Runtime
from ..store.deliveries import Delivery

VIEWS = ("week", "month")
SHOWN = ("scheduled", "delivered", "failed", "needs_review", "sending", "queued", "retrying")
MAX_SENT = 2000  # newest deliveries looked at for a range (a calendar is not an archive search)


@dataclass
class Entry:
    delivery: Delivery
    at: float
    title: str

    @property
    def status(self) -> str:
        return self.delivery.status


@dataclass
class Day:
    day: date
    in_range: bool
    today: bool
    entries: list[Entry] = field(default_factory=list)


def parse_day(value: str | None, tz: ZoneInfo) -> date:
    if not value:
        return datetime.now(tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("date", f"expected YYYY-MM-DD, got {value!r}") from None


def bounds(view: str, anchor: date) -> tuple[date, date, date, date]:
    """(first shown, last shown, first of the period, last of the period); weeks start on Monday."""
    if view not in VIEWS:
        raise InputError("view", f"must be one of: {', '.join(VIEWS)}")
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return start, start + timedelta(days=6), start, start + timedelta(days=6)
    first = anchor.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    last = nxt - timedelta(days=1)
    start = first - timedelta(days=first.weekday())
    end = last + timedelta(days=6 - last.weekday())
    return start, end, first, last


def step(view: str, anchor: date, forward: bool) -> date:
    if view == "week":
        return anchor + timedelta(days=7 if forward else -7)
    first = anchor.replace(day=1)
    return (first + timedelta(days=32)).replace(day=1) if forward else (first - timedelta(days=1)).replace(day=1)


def grid(view: str, anchor: date, tz: ZoneInfo, entries: list[Entry]) -> list[Day]:
    start, end, first, last = bounds(view, anchor)
    today = datetime.now(tz).date()
    days = {start + timedelta(days=i): Day(start + timedelta(days=i), first <= start + timedelta(days=i) <= last,
                                           start + timedelta(days=i) == today)
            for i in range((end - start).days + 1)}
    for e in sorted(entries, key=lambda e: e.at):
        d = datetime.fromtimestamp(e.at, tz).date()
        if d in days:
            days[d].entries.append(e)
    return list(days.values())


def entries(rt: Runtime, view: str, anchor: date, tz: ZoneInfo, account: str | None) -> list[Entry]:
    start, end, _, _ = bounds(view, anchor)
    lo = datetime.combine(start, time.min, tz)
    hi = datetime.combine(end + timedelta(days=1), time.min, tz)
    found: dict[str, Entry] = {}
    titles: dict[str, str] = {}

    def title(share_id: str) -> str:
        if share_id not in titles:
            try:
                titles[share_id] = service.get_share(rt, share_id).title
            except Exception:
                titles[share_id] = share_id
        return titles[share_id]

    for d in service.schedule_list(rt, account=account, start=lo, end=hi):
        if d.scheduled_for is not None:
            found[d.id] = Entry(d, d.scheduled_for, title(d.share_id))
    recent, _ = rt.store.query(account=account, since=lo.timestamp() - 86400, limit=MAX_SENT, with_events=False)
    for d in recent:
        if d.id in found or d.status not in SHOWN or d.status == "scheduled":
            continue
        at = _epoch(d.updated_at)
        if at is not None and lo.timestamp() <= at < hi.timestamp():
            found[d.id] = Entry(d, at, title(d.share_id))
    return list(found.values())


def _epoch(value: str | None) -> float | None:
    try:
        return datetime.fromisoformat((value or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
