"""What the CLI prints: tables, the live --wait view, progress lines, plurals. Pure formatting, no Redis."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from .clock import parse_iso
from .store.deliveries import Delivery
from .timeparse import local_text


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 delivery``, ``2 deliveries``, ``0 accounts``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {many or (word[:-1] + 'ies' if word.endswith('y') else word + 's')}"


def shown_at(d: Delivery) -> str:
    """A scheduled time in the zone it was given in."""
    if d.scheduled_for is None:
        return ""
    zone = d.timezone or "UTC"
    return f"{local_text(datetime.fromtimestamp(d.scheduled_for, UTC), zone)} {zone}"


def local_time(iso_text: str, zone: str) -> str:
    """A record's ISO UTC time as ``YYYY-MM-DD HH:MM:SS`` in ``zone`` (the config's display zone)."""
    from zoneinfo import ZoneInfo

    try:
        return parse_iso(iso_text).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, KeyError):
        return iso_text


def why(d: Delivery) -> str:
    return f"at {shown_at(d)}" if d.status == "scheduled" else d.reason()


def render_table(deliveries: list[Delivery], events: bool = False, context_zone: str | None = None) -> str:
    """The delivery table. ``context_zone``: add TIME (created, in that zone) and SHARE columns (``log``)."""
    if not deliveries:
        return "(no deliveries)"
    head: tuple[str, ...] = ("DELIVERY", "ACCOUNT", "PLATFORM", "STATUS", "TRIES")
    if context_zone:
        head = (f"TIME ({context_zone})", "SHARE", *head)
    rows: list[tuple[str, ...]] = [(*head, "WHERE / WHY")]
    for d in deliveries:
        tries = str(d.attempts) + (f" ({d.rate_waits} rate-limited)" if d.rate_waits else "")
        cells: tuple[str, ...] = (d.id, d.account, d.platform, d.status + (" (overdue)" if d.overdue else ""),
                                  tries)
        if context_zone:
            cells = (local_time(d.created_at, context_zone), d.share_id, *cells)
        rows.append((*cells, why(d)))
    n = len(head)
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:n], widths)) + "  " + r[n] for r in rows]
    if events:
        for d in deliveries:
            lines.append("")
            lines.append(f"{d.id} ({d.account}):")
            for ev in d.events:
                lines.append(f"  {ev['at']}  {ev['status']:<12} #{ev['attempt']}  {ev['message']}")
    return "\n".join(lines)


class LiveTable:
    """Redraws the status table in place on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.lines = 0

    def update(self, deliveries: list[Delivery]) -> None:
        if not self.enabled:
            return
        text = render_table(deliveries)
        if self.lines:
            self.stream.write(f"\x1b[{self.lines}F\x1b[J")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.lines = text.count("\n") + 1

    def close(self) -> None:
        if self.enabled and self.lines:
            self.stream.write(f"\x1b[{self.lines}F\x1b[J")
            self.stream.flush()


class Progress:
    """``--wait``'s report: the live table on a terminal, otherwise one line per event (a state change or
    a step such as "waiting for the instance to process it"), so a pipe or a CI log shows progress."""

    def __init__(self, tty: bool, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.live = LiveTable(tty, self.stream)
        self.seen: dict[str, int] = {}

    def update(self, deliveries: list[Delivery]) -> None:
        if self.live.enabled:
            self.live.update(deliveries)
            return
        for d in deliveries:
            for ev in d.events[self.seen.get(d.id, 0):]:
                self.stream.write(f"{ev['at']}  {d.id}  {d.account}  {ev['status']}  #{ev['attempt']}  "
                                  f"{ev['message']}\n")
            self.seen[d.id] = len(d.events)
        self.stream.flush()

    def close(self) -> None:
        self.live.close()


CANCEL_WORDS = {
    "cancelled": "already cancelled",
    "delivered": "not cancelled: already delivered",
    "failed": "not cancelled: it already failed (nothing will be sent)",
    "sending": "not cancelled: it is being sent right now",
    "unknown": "not cancelled: it may already be out (being checked)",
    "needs_review": "not cancelled: it needs review (close it with `sharer posted` or `sharer retry`)",
}


def cancel_line(delivery_id: str, status: str) -> str:
    return f"{delivery_id}: {CANCEL_WORDS.get(status, f'not cancelled ({status})')}"
