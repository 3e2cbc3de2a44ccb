"""The dispatcher: release due scheduled posts (and long retry waits) to the workers.

Ticked by beat every second (``sharer.dispatch``); several beats or dispatchers may run at once —
the dispatch script hands each entry to exactly one of them. A post later than its max_lateness is
not published silently: it becomes ``needs_review`` with an alert.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from . import metrics
from .runtime import Runtime
from .store.schedule import Released

log = logging.getLogger("sharer.scheduler")


@dataclass
class DispatchReport:
    released: list[Released] = field(default_factory=list)

    @property
    def missed(self) -> list[Released]:
        return [r for r in self.released if r.action == "missed"]


def dispatch_due(rt: Runtime, batch: int = 500, at: float | None = None) -> DispatchReport:
    report = DispatchReport()
    # the heartbeat scheduling checks: no tick for a minute means scheduled posts would not go out
    rt.redis.set(rt.keys.dispatcher_heartbeat, repr(time.time()), ex=86400)
    while True:
        rows = rt.schedule.dispatch(batch=batch, claim_lease=30.0,
                                    default_max_lateness=rt.settings.max_lateness, at=at)
        report.released += rows
        sent = []
        for r in rows:
            if r.action in ("queued", "missed"):  # a scheduled post (not a long retry wait)
                metrics.dispatched(r.lag)
                acc = rt.settings.accounts.get(r.account)
                metrics.status_changed(acc.platform if acc else "unknown",
                                       "queued" if r.action == "queued" else "needs_review")
            if r.action == "missed":
                log.warning("delivery %s (%s) missed its slot by %.0f s: needs review", r.delivery_id,
                            r.account, r.lag)
                if rt.settings.alerts_configured:
                    rt.queue.send_alert(r.delivery_id, r.account or None)
                continue
            sent.append((r.delivery_id, r.account or None, r.version))
        rt.queue.enqueue_many(sent)  # the whole batch in one broker round trip
        rt.schedule.confirm([did for did, _, _ in sent])
        if len(rows) < batch:
            return report
