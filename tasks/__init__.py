"""The Celery layer: ``celery -A tasks worker`` and ``celery -A tasks beat``.

Thin on purpose: each task calls one function of the ``sharer`` core. Configuration is read when
Celery first needs it (``on_configure``), never at import.
"""

from __future__ import annotations

from celery import Celery

app = Celery("sharer")


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    from sharer.queue import celery_settings
    from sharer.runtime import get_runtime

    settings = get_runtime().settings
    sender.conf.update(celery_settings(settings))
    sender.conf.beat_schedule = {
        # release due scheduled posts (and long retry waits); several beats may run: it is atomic
        "dispatch": {"task": "sharer.dispatch", "schedule": 1.0, "options": {"expires": 5}},
        # re-nudge deliveries whose message was lost, expire dead leases, flag overdue ones
        "sweep": {"task": "sharer.sweep", "schedule": 60.0},
        # enforce [log] retention_days
        "purge-old-deliveries": {"task": "sharer.purge", "schedule": 3600.0},
    }


from . import jobs  # noqa: E402,F401  (registers the tasks on `app`)

__all__ = ["app"]
