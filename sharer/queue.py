"""The one place in ``sharer`` that knows about Celery: the app's settings and sending task messages.

Tasks are sent by name, so the core never imports ``tasks`` (the Celery layer imports us, not the
other way round).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from .config import Settings
from .connections import celery_broker, is_amqp
from .errors import BrokerUnavailable

DELIVER_TASK = "sharer.deliver"
ALERT_TASK = "sharer.alert"
NOTICE_TASK = "sharer.notice"
CONTROL_TASKS = ("sharer.dispatch", "sharer.sweep", "sharer.purge")


def control_queue(settings: Settings) -> str:
    return settings.queue + ".control"


def platform_queue(settings: Settings, platform: str) -> str:
    """``[celery] queue_per_platform``: deliveries to one platform wait in ``<queue>.<platform id>``."""
    return f"{settings.queue}.{platform}"


def delivery_queues(settings: Settings) -> list[str]:
    """Every queue a delivery task can be sent to (all of them: any platform may be pinned)."""
    if not settings.queue_per_platform:
        return [settings.queue]
    from .platforms import REGISTRY

    return [settings.queue] + [platform_queue(settings, pid) for pid in REGISTRY]


def watched_queues(settings: Settings) -> list[str]:
    """The queues some live worker must consume, or what waits there is never sent: the main queue
    (deliveries, alerts, approval notices), the control queue (beat's dispatch, sweep and purge) and,
    with ``queue_per_platform``, the queue of every platform an account is configured for."""
    platforms = sorted({a.platform for a in settings.accounts.values()}) if settings.queue_per_platform else []
    return [settings.queue, control_queue(settings)] + [platform_queue(settings, p) for p in platforms]


def queue_for(settings: Settings, account: str | None) -> str:
    acc = settings.accounts.get(account) if (account and settings.queue_per_platform) else None
    return platform_queue(settings, acc.platform) if acc is not None else settings.queue


def _kombu_queue(name: str, amqp: bool) -> KombuQueue:
    if not amqp:
        # Each queue has its own exchange and routing key: sharing them would copy every message into both.
        return KombuQueue(name, Exchange(name, type="direct"), routing_key=name)
    # RabbitMQ: a quorum queue (replicated, durable, poison messages counted by the broker) behind a
    # topic exchange — Celery's native delayed delivery, which carries our countdowns on quorum
    # queues, routes only through topic exchanges.
    return KombuQueue(name, Exchange(name, type="topic"), routing_key=name,
                      queue_arguments={"x-queue-type": "quorum"})


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Chosen, not defaulted. Each line says why."""
    broker_url, broker_extra = celery_broker(settings.broker_url)
    amqp = is_amqp(settings.broker_url)
    transport = {
        # A task taken but not acknowledged within this many seconds is handed out again. Must exceed
        # the longest countdown we ever use (300 s) and the lease, or messages are duplicated.
        "visibility_timeout": settings.visibility_timeout,
    }
    broker_transport = {**transport, **broker_extra}
    queues = delivery_queues(settings) + [control_queue(settings)]
    amqp_only: dict[str, Any] = {}
    if amqp:
        # Publisher confirms: send_task returns only once RabbitMQ has taken the message.
        broker_transport["confirm_publish"] = True
        amqp_only = {
            # Quorum queues refuse a global QoS prefetch: Celery detects them and uses per-consumer QoS.
            "worker_detect_quorum_queues": True,
            "task_default_queue_type": "quorum",
            "task_default_exchange_type": "topic",
        }
    return {
        "broker_url": broker_url,
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
        "broker_transport_options": broker_transport,
        "result_backend_transport_options": transport,
        "visibility_timeout": settings.visibility_timeout,
        "task_default_queue": settings.queue,
        # Beat's own jobs (the dispatch backstop, sweep, purge) get a queue of their own, so a backlog
        # of deliveries never delays releasing scheduled posts. A plain `celery -A tasks worker`
        # consumes both; a busy installation runs a small extra worker with `-Q <queue>.control`.
        # With [celery] queue_per_platform, deliveries wait in one queue per platform, so a slow or
        # rate-limited platform's backlog never sits in front of the others' (pin workers with -Q).
        "task_queues": [_kombu_queue(q, amqp) for q in queues],
        "task_routes": {name: {"queue": control_queue(settings)} for name in CONTROL_TASKS},
        "task_create_missing_queues": True,
        "broker_connection_retry_on_startup": True,
        "worker_send_task_events": False,
        "enable_utc": True,
        "timezone": "UTC",
        **amqp_only,
    }


class Queue:
    """A sending-only Celery app for the CLI and web processes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.amqp = is_amqp(settings.broker_url)
        self.app = Celery("sharer-client", set_as_current=False)
        self.app.conf.update(celery_settings(settings))
        # a sender gives up quickly on a broker that is down: the record is already stored, and the
        # sweeper re-sends what stayed queued — waiting here only holds the editor (or a web thread)
        self.app.conf.broker_connection_timeout = 3
        self.retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}

    def enqueue(self, delivery_id: str, countdown: float | None = None, account: str | None = None,
                version: int | None = None) -> None:
        """Nudge a delivery. The account name lets the worker apply its rate limit in the claim; the
        schedule version makes a task sent before a reschedule exit without sending."""
        if countdown and countdown > 0 and self.amqp:
            # RabbitMQ delays (Celery's native delayed delivery) count whole seconds: round up
            countdown = float(math.ceil(countdown))
        self._send(DELIVER_TASK, [delivery_id, account, version], queue=queue_for(self.settings, account),
                   countdown=countdown if countdown and countdown > 0 else None)

    def _send(self, name: str, args: list, queue: str | None = None, countdown: float | None = None) -> None:
        with self._broker_errors():
            self.app.send_task(name, args=args, queue=queue or self.settings.queue, countdown=countdown,
                               retry_policy=self.retry_policy)

    @contextmanager
    def _broker_errors(self) -> Iterator[None]:
        """A broker that cannot be reached is one ``BrokerUnavailable`` (password hidden), whatever raised."""
        try:
            yield
        except (OperationalError, RedisError, OSError) as e:
            shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", self.settings.broker_url)
            raise BrokerUnavailable(f"cannot reach the Celery broker at {shown} ({type(e).__name__})") from None

    def enqueue_many(self, deliveries: Sequence[tuple[str, str | None] | tuple[str, str | None, int | None]]
                     ) -> None:
        """Nudge many deliveries — ``(id, account)`` or ``(id, account, schedule version)`` — with one
        broker round trip: kombu's producer batch buffers the Redis LPUSHes into one pipeline
        (RabbitMQ publishes are streamed anyway, confirmed once)."""
        items = [(d[0], d[1], d[2] if len(d) > 2 else None) for d in deliveries]
        if len(items) == 1:
            self.enqueue(items[0][0], account=items[0][1], version=items[0][2])
            return
        if not items:
            return
        with self._broker_errors(), self.app.producer_or_acquire() as producer, producer.batch():
            for delivery_id, account, version in items:
                self.app.send_task(DELIVER_TASK, args=[delivery_id, account, version],
                                   queue=queue_for(self.settings, account), producer=producer,
                                   retry_policy=self.retry_policy)

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
            self._send(ALERT_TASK, [delivery_id, target])

    def send_notice(self, kind: str, share_id: str, actor: str, reason: str = "") -> None:
        """An approval notice (requested / approved / rejected / missed): one task per configured target."""
        targets = (["webhook"] if self.settings.alert_webhook else []) + (
            ["bot"] if self.settings.workflow.notify else [])
        for target in targets:
            self.app.send_task(NOTICE_TASK, args=[kind, share_id, target, actor, reason], queue=self.settings.queue)

    def close(self) -> None:
        self.app.close()
