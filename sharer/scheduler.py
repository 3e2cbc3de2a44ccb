"""The dispatcher: release due scheduled posts (and long retry waits) to the workers.

``Dispatcher`` runs in every beat process (a thread started by ``beat_init``): it sleeps until the next
due entry — blocking on the schedule's wake list, which every new or moved entry pushes to — and
releases it the moment it is due, instead of polling once a second. Several beats or dispatchers may
run at once: the dispatch script hands each entry to exactly one of them. A post later than its
max_lateness is not published silently: it becomes ``needs_review`` with an alert; so does one still
waiting for sign-off (the approvers are told). Beat still sends a
``sharer.dispatch`` task every ``BACKSTOP`` seconds, so a stuck thread costs lag, never a post.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis

from . import metrics
from .runtime import Runtime
from .store.schedule import Released

log = logging.getLogger("sharer.scheduler")
BACKSTOP = 15.0  # seconds between beat's own dispatch ticks (the thread normally got there first)
MAX_SLEEP = 5.0  # wake at least this often (a claim whose dispatcher died, a missed nudge)
# Redis checks blocked clients' timeouts on its own clock tick (hz 10: up to ~100 ms late), so the
# last stretch before a due time is slept here, where the timer is exact.
BLOCK_MARGIN = 0.12


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
            if r.action == "unapproved":
                _unapproved(rt, r)
                continue
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


def _unapproved(rt: Runtime, r: Released) -> None:
    """Due, but still waiting for sign-off: it was not sent (the script made it needs_review); tell the
    approvers and write it in the audit log."""
    from .actor import Actor
    from .store.audit import AuditAction, AuditEntry
    from .workflow import notify

    log.warning("delivery %s (%s) was not approved by its slot: not sent", r.delivery_id, r.account)
    d = rt.store.get(r.delivery_id, with_events=False)
    if d is None:
        return
    actor = Actor.system("scheduler")
    rt.audit.record(AuditEntry(AuditAction.UNAPPROVED_AT_DUE, actor.name, actor.user,
                               f"{d.account}: not approved by its slot; not sent", d.share_id, d.id))
    notify(rt, "missed", d.share_id, actor)


class Dispatcher:
    """Release each entry when it falls due: sleep until the earliest one, wake early when nudged."""

    def __init__(self, rt: Runtime, max_sleep: float = MAX_SLEEP):
        self.rt, self.max_sleep = rt, max_sleep
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                dispatch_due(self.rt)
                self._sleep()
            except redis.RedisError as e:  # Redis restarting or failing over: try again shortly
                log.warning("dispatcher: %s; retrying in 1 s", e)
                self.stop.wait(1.0)
            except Exception:
                log.exception("dispatcher failed; retrying in 1 s")
                self.stop.wait(1.0)

    def _sleep(self) -> None:
        nxt = self.rt.schedule.next_due()
        left = self.max_sleep if nxt is None else min(self.max_sleep, nxt - time.time())
        if left > BLOCK_MARGIN:
            if self.rt.schedule.wait(left - BLOCK_MARGIN):
                return  # nudged: an entry was added or moved, look again
            nxt = self.rt.schedule.next_due()
            left = 0.0 if nxt is None else nxt - time.time()
        if 0 < left <= BLOCK_MARGIN:
            self.stop.wait(left)

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="sharer-dispatcher", daemon=True)
        t.start()
        return t
