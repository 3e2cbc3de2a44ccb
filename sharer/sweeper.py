"""Nothing silent: re-nudge deliveries a lost message left behind, and flag the overdue ones.

Run by beat every minute (``sharer.sweep``) and by ``sharer sweep``. Nudging is always safe: the
claim script lets only one worker send, and a record that moved on ignores the message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .clock import parse_iso
from .runtime import Runtime

log = logging.getLogger("sharer.sweeper")
STALE_QUEUED = 60.0  # a queued record untouched this long lost its message (or the worker is down)


@dataclass
class SweepReport:
    nudged: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)


def sweep(rt: Runtime, now: float | None = None, batch: int = 2000) -> SweepReport:
    now = time.time() if now is None else now
    store, report = rt.store, SweepReport()
    overdue_after = rt.settings.overdue_seconds
    for status in ("queued", "retrying", "sending", "unknown"):
        for d in store.get_many(store.ids_in_status(status, batch), with_events=False):
            if d.status != status:
                continue
            age = now - parse_iso(d.updated_at).timestamp()
            due = (
                (status == "queued" and age >= STALE_QUEUED and (d.not_before or 0) <= now)
                or (status == "retrying" and (d.not_before or 0) <= now and age >= 5)
                or (status == "sending" and (d.lease_until or 0) < now)
                or (status == "unknown" and age >= STALE_QUEUED)
            )
            if due:
                rt.queue.enqueue(d.id, account=d.account)
                report.nudged.append(d.id)
            if not d.overdue and now - parse_iso(d.created_at).timestamp() > overdue_after:
                minutes = overdue_after / 60
                if store.transition(d.id, status, None, f"overdue: not settled after {minutes:.0f} min",
                                    fields={"overdue": "1"}, actor="sweeper").ok:
                    report.overdue.append(d.id)
                    log.warning("delivery %s (%s) is overdue in status %s", d.id, d.account, status)
    return report
