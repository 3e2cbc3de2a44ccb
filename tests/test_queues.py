"""``[celery] queue_per_platform``: a stalled platform never delays the others.

Mastodon's emulator holds every status request open for HOLD seconds (a platform that has stalled).
Deliveries to Mastodon wait in ``<queue>.mastodon``, served by a worker pinned to it
(``celery -A tasks worker -Q <queue>.mastodon``); a second worker serves everything else. A webhook
share made while both Mastodon workers' children are stuck is delivered at once. The same load with
one shared queue (the default) makes the webhook wait for the stall, which is what the option is for.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from conftest import REDIS_URL, Worker, inject, sandbox_posts
from test_chaos import article, cleanup, env_for, wait_for

from sharer import service
from sharer.config import load_settings
from sharer.queue import control_queue, platform_queue
from sharer.runtime import Runtime

HOLD = 6.0


def _config(tmp: Path, emulators, per_platform: bool) -> Path:
    tag = secrets.token_hex(4)
    path = tmp / f"sharer-queues-{tag}.toml"
    path.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-pq-{tag}"\n\n'
        f'[celery]\nqueue = "sharer-pq-{tag}"\nqueue_per_platform = {str(per_platform).lower()}\n\n'
        '[delivery]\nlease_seconds = 20\nhttp_timeout = 10\nduplicate_window_hours = 0\n\n'
        f'[accounts.pq-hook]\nplatform = "webhook"\napi_base = "{emulators["webhook"].url}/hooks/pq"\n'
        'credentials = { secret = "sandbox:" }\n\n'
        f'[accounts.pq-masto]\nplatform = "mastodon"\napi_base = "{emulators["mastodon"].url}"\n'
        'credentials = { access_token = "sandbox:" }\noptions = { image = false }\n')
    return path


def _webhook_latency(rt: Runtime, emulators) -> tuple[float, int]:
    """Stall Mastodon (4 deliveries held open), then time a webhook share; also return how many
    Mastodon statuses had been answered by then (0: the stall was still on)."""
    run = secrets.token_hex(3)
    inject(emulators["mastodon"], path="/api/v1/statuses", kind="hold", seconds=HOLD, count=4, match=run)
    for i in range(4):
        service.share(rt, article(f"{run}m{i}z"), ["pq-masto"])
    wait_for(lambda: sum(1 for d in rt.store.query(account="pq-masto", limit=10, with_events=False)[0]
                         if d.status == "sending") >= 2, 20, "Mastodon deliveries to stall")
    t0 = time.monotonic()
    [d] = service.share(rt, article(f"{run}hz"), ["pq-hook"]).deliveries
    wait_for(lambda: rt.store.get(d.id, with_events=False).status == "delivered", 30, "the webhook delivery")
    took = time.monotonic() - t0
    done = sum(1 for x in rt.store.query(account="pq-masto", limit=10, with_events=False)[0] if x.status == "delivered")
    return took, done


def test_stalled_platform_does_not_delay_another_with_per_platform_queues(emulators, tmp_path):
    config = _config(tmp_path, emulators, per_platform=True)
    env = env_for(config, tmp_path)
    rt = Runtime(load_settings(config))
    s = rt.settings
    masto = Worker(env, concurrency=2, queues=[platform_queue(s, "mastodon")])
    rest = Worker(env, concurrency=1, queues=[s.queue, control_queue(s), platform_queue(s, "webhook")])
    try:
        took, masto_done = _webhook_latency(rt, emulators)
    finally:
        masto.stop()
        rest.stop()
        cleanup(rt)
    assert masto_done == 0, "the Mastodon stall was over before the webhook was timed"
    assert took < HOLD / 2, f"webhook waited {took:.1f}s behind the stalled platform"
    assert [p["path"] for p in sandbox_posts(emulators["webhook"])] == ["/hooks/pq"]
    print(f"\nper-platform queues: webhook delivered {took:.2f}s after the share, Mastodon still stalled")


def test_one_shared_queue_makes_the_webhook_wait_for_the_stall(emulators, tmp_path):
    """The control: the default single queue, one worker with two children, both stuck in Mastodon."""
    config = _config(tmp_path, emulators, per_platform=False)
    env = env_for(config, tmp_path)
    rt = Runtime(load_settings(config))
    w = Worker(env, concurrency=2)
    try:
        took, _ = _webhook_latency(rt, emulators)
    finally:
        w.stop()
        cleanup(rt)
    assert took > HOLD / 2, f"expected the webhook to wait for the stall, it took {took:.1f}s"
    print(f"\none queue: webhook delivered {took:.2f}s after the share (behind the stall)")


def test_a_shares_messages_reach_the_redis_broker_in_one_round_trip(tmp_path, emulators, monkeypatch):
    """Ten deliveries, one ``enqueue_many``: redis-py sends one packet (kombu's producer batch, one
    pipeline) — against ten for ten ``enqueue`` calls. Counted at redis-py's socket write."""
    import redis.connection

    config = _config(tmp_path, emulators, per_platform=True)
    rt = Runtime(load_settings(config))
    try:
        rt.queue.enqueue_many([("dl_warm1", "pq-hook"), ("dl_warm2", "pq-masto")])  # connect, declare
        sent: list[bytes] = []
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(self, command, check_health=True):
            sent.append(b"".join(command) if isinstance(command, list) else command)
            return original(self, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        rt.queue.enqueue_many([(f"dl_batch{i}", "pq-hook" if i % 2 else "pq-masto") for i in range(10)])
        batched = len(sent)
        sent.clear()
        for i in range(10):
            rt.queue.enqueue(f"dl_single{i}", account="pq-hook")
        single = len(sent)
        monkeypatch.undo()
        s = rt.settings
        r = rt.redis
        assert (r.llen(platform_queue(s, "webhook")), r.llen(platform_queue(s, "mastodon"))) == (1 + 5 + 10, 1 + 5)
    finally:
        cleanup(rt)
    assert batched == 1 and single == 10, (batched, single)


def test_healthz_counts_a_worker_pinned_to_a_platform_queue_and_names_a_queue_nobody_consumes(
        emulators, tmp_path, monkeypatch):
    """/healthz with per-platform queues: a worker serving only ``<queue>.mastodon`` is alive and listed;
    while nothing consumes the main, control or webhook queue it is 503 naming them; with a second
    worker for those, 200; when the Mastodon worker stops, 503 naming the Mastodon queue."""
    from web_support import client

    from sharer.web.app import create_app

    monkeypatch.setenv("SHARER_TEST_PQ_WEB_SECRET", secrets.token_hex(16))
    config = _config(tmp_path, emulators, per_platform=True)
    config.write_text(config.read_text() + '\n[web]\nsecret_key = "env:SHARER_TEST_PQ_WEB_SECRET"\n')
    env = env_for(config, tmp_path)
    rt = Runtime(load_settings(config))
    s = rt.settings
    main_q, control, hook_q, masto_q = s.queue, control_queue(s), platform_queue(s, "webhook"), platform_queue(
        s, "mastodon")
    web = client(create_app(load_settings(config)))

    def health(status: int) -> dict:
        r = web.get("/healthz")
        return r.json() if r.status_code == status else {}

    masto = Worker(env, concurrency=1, queues=[masto_q])
    rest = None
    try:
        body = wait_for(lambda: (b := health(503)) and b["workers"] and b, 15, "the Mastodon worker's heartbeat")
        [name] = body["workers"]
        assert name.startswith(masto.name + "@") and body["status"] == "degraded" and body["redis"] is True
        assert body["queues"] == {main_q: [], control: [], masto_q: [name], hook_q: []}
        assert body["unconsumed"] == [main_q, control, hook_q]

        rest = Worker(env, concurrency=1, queues=[main_q, control, hook_q])
        body = wait_for(lambda: health(200), 15, "/healthz to be ok with both workers")
        assert body["status"] == "ok" and body["unconsumed"] == [] and len(body["workers"]) == 2
        assert body["queues"][masto_q] == [name] and body["queues"][hook_q] == body["queues"][main_q] != []

        masto.stop()  # its platform's queue has no consumer now: deliveries to Mastodon would wait
        body = wait_for(lambda: (b := health(503)) and b["unconsumed"] and b, 15, "/healthz to see it go")
        assert body["unconsumed"] == [masto_q] and name not in body["workers"] and len(body["workers"]) == 1
    finally:
        masto.stop()
        if rest is not None:
            rest.stop()
        cleanup(rt)
