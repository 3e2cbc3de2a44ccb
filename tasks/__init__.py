"""The Celery layer: ``celery -A tasks worker`` and ``celery -A tasks beat``.

Thin on purpose: each task calls one function of the ``sharer`` core. Configuration is read when
Celery first needs it (``on_configure``), never at import. A config error there stops the process
with the CLI's one-line message and exit code 2: Celery would otherwise swallow it and run on its own
defaults (``amqp://guest@localhost``, queue ``celery``) — a worker that says ``ready`` and delivers
nothing.
"""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery, signals

app = Celery("sharer")


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    from sharer.errors import ConfigError
    from sharer.queue import celery_settings
    from sharer.runtime import get_runtime
    from sharer.scheduler import BACKSTOP

    try:
        settings = get_runtime().settings
    except ConfigError as e:
        _refuse(e)
    sender.conf.update(celery_settings(settings))
    sender.conf.beat_schedule = {
        # release due scheduled posts (and long retry waits); several beats may run: it is atomic.
        # Each beat's dispatcher thread wakes for the next due entry; this tick is only its backstop.
        "dispatch": {"task": "sharer.dispatch", "schedule": BACKSTOP, "options": {"expires": 5}},
        # re-nudge deliveries whose message was lost, expire dead leases, flag overdue ones
        "sweep": {"task": "sharer.sweep", "schedule": 60.0},
        # enforce [log] retention_days
        "purge-old-deliveries": {"task": "sharer.purge", "schedule": 3600.0},
    }


def _refuse(error: Exception) -> None:
    """Exit now, the CLI's way: one line, exit 2. ``os._exit``: Celery catches SystemExit here."""
    sys.stderr.write(f"error: {error}\n")
    sys.stderr.flush()
    os._exit(2)


_heartbeat = None


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **_: object) -> None:
    """Beat in Redis for /healthz (sharer.heartbeat), for every queue this worker consumes."""
    global _heartbeat
    from sharer.heartbeat import Heartbeat
    from sharer.runtime import get_runtime

    rt = get_runtime()
    queues = sorted(q.name for q in sender.task_consumer.queues) if sender is not None else [rt.settings.queue]
    _heartbeat = Heartbeat(rt.redis, rt.keys.root, sender.hostname if sender else "worker", queues).start()



@signals.worker_init.connect
def _worker_init(**_: object) -> None:
    """Before the pool forks: multiprocess metrics (each child writes its own file) when a port is set."""
    from sharer.runtime import get_runtime

    if get_runtime().settings.metrics_worker_port:
        from sharer.metrics import prepare_worker

        prepare_worker()


@signals.worker_ready.connect
def _worker_ready(**_: object) -> None:
    from sharer.runtime import get_runtime

    rt = get_runtime()
    if rt.settings.metrics_worker_port:
        from sharer.metrics import serve_worker

        serve_worker(rt, rt.settings.metrics_worker_port, rt.settings.metrics_worker_host)


@signals.worker_shutdown.connect
def _worker_shutdown(**_: object) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
    from sharer.metrics import worker_stopped

    worker_stopped()


@signals.worker_process_shutdown.connect
def _child_exit(pid: int | None = None, **_: object) -> None:
    from sharer.metrics import child_exited

    child_exited(pid or os.getpid())


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger: logging.Logger | None = None, **_: object) -> None:
    """``[log] format = "json"``: Celery's own handlers get the JSON formatter too."""
    from sharer.runtime import get_runtime

    if get_runtime().settings.log_format == "json":
        from sharer.logs import use_json

        use_json(logger)


from . import jobs  # noqa: E402,F401  (registers the tasks on `app`)

__all__ = ["app"]
