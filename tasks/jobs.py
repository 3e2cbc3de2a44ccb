"""Task bodies: pass ids, call the core, map its verdict to Celery. Nothing clever lives here."""

from __future__ import annotations

from celery.signals import beat_init

from sharer.errors import TransientError
from sharer.queue import ALERT_TASK, DELIVER_TASK, NOTICE_TASK
from sharer.runtime import get_runtime

from . import app


@app.task(name=DELIVER_TASK, ignore_result=True)
def deliver(delivery_id: str, account: str | None = None, version: int | None = None) -> None:
    from sharer.delivery import run_delivery
    from sharer.logs import bound

    rt = get_runtime()
    with bound(delivery=delivery_id, account=account, actor="worker"):
        nxt = run_delivery(rt, delivery_id, account, version)
    if nxt.countdown is not None:
        rt.queue.enqueue(delivery_id, countdown=nxt.countdown, account=account)


@app.task(name="sharer.dispatch", ignore_result=True, expires=5)
def dispatch() -> int:
    from sharer.scheduler import dispatch_due

    return len(dispatch_due(get_runtime()).released)


@beat_init.connect
def start_dispatcher(**_: object) -> None:
    """Every beat also runs the dispatcher thread that wakes for the next due entry."""
    from sharer.scheduler import Dispatcher

    Dispatcher(get_runtime()).start()


@app.task(name="sharer.sweep", ignore_result=True)
def sweep() -> dict:
    from sharer.sweeper import sweep as run_sweep

    report = run_sweep(get_runtime())
    return {"nudged": len(report.nudged), "overdue": len(report.overdue)}


@app.task(name=ALERT_TASK, ignore_result=True, autoretry_for=(TransientError,), max_retries=8,
          retry_backoff=5, retry_backoff_max=300, retry_jitter=True)
def alert(delivery_id: str, target: str = "global") -> None:
    from sharer.alerts import send_alert

    send_alert(get_runtime(), delivery_id, target)


@app.task(name=NOTICE_TASK, ignore_result=True, autoretry_for=(TransientError,), max_retries=8,
          retry_backoff=5, retry_backoff_max=300, retry_jitter=True)
def notice(kind: str, share_id: str, target: str, actor: str = "", reason: str = "") -> None:
    from sharer.notify import send_notice

    send_notice(get_runtime(), kind, share_id, target, actor, reason)


@app.task(name="sharer.purge", ignore_result=True)
def purge() -> int:
    from sharer.service import purge as purge_old

    return purge_old(get_runtime())
