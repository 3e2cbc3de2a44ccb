"""The one place in ``sharer`` that knows about Celery: the app's settings and sending task messages.

Tasks are sent by name, so the core never imports ``tasks`` (the Celery layer imports us, not the
other way round).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

from .config import Settings

DELIVER_TASK = "sharer.deliver"
ALERT_TASK = "sharer.alert"
NOTICE_TASK = "sharer.notice"
CONTROL_TASKS = ("sharer.dispatch", "sharer.sweep", "sharer.purge")


def control_queue(settings: Settings) -> str:
    return settings.queue + ".control"


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Chosen, not defaulted. Each line says why."""
    transport = {
        # A task taken but not acknowledged within this many seconds is handed out again. Must exceed
        # the longest countdown we ever use (300 s) and the lease, or messages are duplicated.
        "visibility_timeout": settings.visibility_timeout,
    }
    return {
        "broker_url": settings.broker_url,
        # JSON only: a pickle payload from the broker is code execution waiting to happen.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # The delivery record is the result; storing Celery results only costs Redis memory.
        "task_ignore_result": True,
        "result_backend": None,
        # Acknowledge after the task ran, so a worker that dies mid-task does not lose the message...
        "task_acks_late": True,
        # ...and requeue it when the child process is killed (the record's lease and attempt number
        # make the re-run safe).
        "task_reject_on_worker_lost": True,
        # Take one message at a time: a prefetched message sits unacked behind a slow post.
        "worker_prefetch_multiplier": 1,
        # The same visibility timeout in all three places Celery reads it from.
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "visibility_timeout": settings.visibility_timeout,
        "task_default_queue": settings.queue,
        # Beat's own jobs (dispatch every second, sweep, purge) get a queue of their own, so a backlog
        # of deliveries never delays releasing scheduled posts. A plain `celery -A tasks worker`
        # consumes both; a busy installation runs a small extra worker with `-Q <queue>.control`.
        # Each queue has its own exchange and routing key: sharing them would copy every message into both.
        "task_queues": [KombuQueue(q, Exchange(q, type="direct"), routing_key=q)
                        for q in (settings.queue, control_queue(settings))],
        "task_routes": {name: {"queue": control_queue(settings)} for name in CONTROL_TASKS},
        "task_create_missing_queues": True,
        "broker_connection_retry_on_startup": True,
        "worker_send_task_events": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


class Queue:
    """A sending-only Celery app for the CLI and web processes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.app = Celery("sharer-client", set_as_current=False)
        self.app.conf.update(celery_settings(settings))

    def enqueue(self, delivery_id: str, countdown: float | None = None, account: str | None = None,
                version: int | None = None) -> None:
        """Nudge a delivery. The account name lets the worker apply its rate limit in the claim; the
        schedule version makes a task sent before a reschedule exit without sending."""
        self.app.send_task(DELIVER_TASK, args=[delivery_id, account, version], queue=self.settings.queue,
                           countdown=countdown if countdown and countdown > 0 else None)

    def send_alert(self, delivery_id: str, account: str | None = None) -> None:
        """One alert task per configured target, so a failing receiver never repeats the other's."""
        targets = ["global"] if self.settings.alert_webhook else []
        if account is not None:
            acc = self.settings.accounts.get(account)
            wants_account = acc is not None and bool(acc.alert_webhook)
        else:  # the caller did not say which account: the task looks it up
            wants_account = any(a.alert_webhook for a in self.settings.accounts.values())
        if wants_account:
            targets.append("account")
        for target in targets:
            self.app.send_task(ALERT_TASK, args=[delivery_id, target], queue=self.settings.queue)

    def send_notice(self, kind: str, share_id: str, actor: str, reason: str = "") -> None:
        """An approval notice (requested / approved / rejected / missed): one task per configured target."""
        targets = (["webhook"] if self.settings.alert_webhook else []) + (
            ["bot"] if self.settings.workflow.notify else [])
        for target in targets:
            self.app.send_task(NOTICE_TASK, args=[kind, share_id, target, actor, reason], queue=self.settings.queue)

    def close(self) -> None:
        self.app.close()
