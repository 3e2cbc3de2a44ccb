"""``share --wait`` is woken by the events channel, not by polling."""

from __future__ import annotations

import threading
import time

from conftest import EXAMPLES

from sharer import service
from sharer.loaders import load_article


def test_wait_returns_as_soon_as_the_last_delivery_settles_with_a_30s_safety_poll(runtime, worker, emulators):
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    result = service.share(runtime, article, ["hook-a", "hook-b"])
    seen: list[list[str]] = []
    t0 = time.monotonic()
    ds = service.wait(runtime, result.share_id, timeout=60, poll=30.0,
                      on_update=lambda ds: seen.append([d.status for d in ds]))
    took = time.monotonic() - t0
    assert [d.status for d in ds] == ["delivered", "delivered"]
    assert took < 10, f"waited {took:.1f}s: the pub/sub notice did not wake it"
    assert len(seen) >= 2  # woken by changes on the way, not only at the end


def test_wait_ignores_other_shares_notices_and_still_times_out(runtime):
    """A scheduled share stays put; other shares' notices flood the channel; wait ends at its timeout."""
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            runtime.redis.publish(runtime.keys.events_channel, '{"share": "sh_other", "status": "queued"}')
            time.sleep(0.01)

    scheduled = service.share(runtime, article, ["hook-slots"], next_slot=True)
    t = threading.Thread(target=noise, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        ds = service.wait(runtime, scheduled.share_id, timeout=1.0, poll=30.0)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join(5)
        service.cancel(runtime, scheduled.share_id)
    assert [d.status for d in ds] == ["scheduled"]
    assert 0.9 <= took < 3.0, took
