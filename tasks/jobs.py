"""Task bodies: pass ids, call the core, map its verdict to Celery. Nothing clever lives here."""

from __future__ import annotations

from sharer.delivery import run_delivery
from sharer.queue import DELIVER_TASK
from sharer.runtime import get_runtime

from . import app


@app.task(name=DELIVER_TASK, ignore_result=True)
def deliver(delivery_id: str) -> None:
    rt = get_runtime()
    nxt = run_delivery(rt, delivery_id)
    if nxt.countdown is not None:
        rt.queue.enqueue(delivery_id, countdown=nxt.countdown)


@app.task(name="sharer.purge", ignore_result=True)
def purge() -> int:
    from sharer.service import purge as purge_old

    return purge_old(get_runtime())
