"""Redis high availability: the data store and the broker behind a real Sentinel group, primary killed.

One primary, one replica, three sentinels (``tests/ha_support.py``), all on loopback ports in the
test's temp dir. sharer is configured with one ``sentinel://…?master_name=…`` URL for both the data
store and the broker. 500 deliveries are in flight to the webhook emulator when the primary is
SIGKILLed; the sentinels promote the replica; the dead primary is started again (a supervisor would)
and rejoins as a replica. Afterwards every delivery must end ``delivered`` or ``needs_review`` — none
lost — and the receiver must hold at most one post per delivery id, exactly one for each delivered.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter

import pytest
from conftest import Worker, sandbox_posts
from ha_support import SentinelGroup
from test_chaos import STALE_QUEUED, article, delivery_of, env_for, settle, wait_for

from sharer import service
from sharer.config import load_settings
from sharer.runtime import Runtime

SHARES = 250  # x 2 accounts = 500 deliveries
LEASE, HTTP_TIMEOUT = 4.0, 3.0


def ha_toml(emulators, url: str, tag: str) -> str:
    hook = emulators["webhook"].url
    out = [f'[redis]\nurl = "{url}"\nprefix = "sharer-ha-{tag}"\n\n[celery]\nqueue = "sharer-ha-{tag}"\n\n'
           f'[delivery]\nlease_seconds = {LEASE}\nhttp_timeout = {HTTP_TIMEOUT}\n'
           'retry = { base = 0.1, cap = 0.5, max_attempts = 10 }\nduplicate_window_hours = 0\n']
    for x in "ab":
        out.append(f'[accounts.ha-{x}]\nplatform = "webhook"\napi_base = "{hook}/hooks/ha-{x}"\n'
                   'credentials = { secret = "sandbox:" }\n')
    return "\n".join(out)


class Supervised:
    """The worker under a supervisor (systemd's ``Restart=always``): started again whenever it exits.

    kombu can exit on the lost connection ("Unrecoverable error: AttributeError … 'hostname'" while
    restoring unacked messages, kombu 5.7), and when it does depends on how fast the failover and the
    reconnect go, so the check runs on every sweep round, not once after the failover.
    """

    def __init__(self, env: dict[str, str]):
        self.env, self.restarts, self.logs = env, 0, []
        self.worker = Worker(env, concurrency=2)

    def check(self) -> None:
        if self.worker.proc.poll() is not None:
            self.logs.append(self.worker.output()[-4000:])
            self.worker.stop()
            self.worker = Worker(self.env, concurrency=2)
            self.restarts += 1

    def report(self) -> str:
        alive = self.worker.proc.poll() is None
        tail = [line for line in self.worker.output().splitlines() if "Task sharer." not in line][-40:]
        return (f"worker alive: {alive}; restarts: {self.restarts}\n--- earlier workers' last output:\n"
                + "\n".join(self.logs) + "\n--- current worker's log (task lines left out):\n" + "\n".join(tail))

    def stop(self) -> None:
        self.worker.stop()


@pytest.fixture
def sentinel_group(tmp_path):
    group = SentinelGroup(tmp_path / "ha")
    try:
        group.start()
        yield group
    finally:
        group.stop()


def test_primary_killed_mid_run_every_delivery_settles_none_lost_none_twice(sentinel_group, emulators, tmp_path):
    group = sentinel_group
    config = tmp_path / "sharer-ha.toml"
    config.write_text(ha_toml(emulators, group.url, secrets.token_hex(4)))
    env = env_for(config, tmp_path)
    rt = Runtime(load_settings(config))
    assert rt.settings.min_replica_acks == 1  # a sentinel:// URL waits for the replica by default
    emu = emulators["webhook"]

    def ours() -> Counter:
        return Counter(delivery_of("webhook", p) for p in sandbox_posts(emu) if p["path"].startswith("/hooks/ha-"))

    t0 = time.monotonic()
    run = secrets.token_hex(3)
    ids = []
    for i in range(SHARES):  # written (and WAITed for on the replica) before the worker starts
        ids += [d.id for d in service.share(rt, article(f"{run}h{i:03d}z"), ["ha-a", "ha-b"]).deliveries]
    sup = Supervised(env)
    try:
        wait_for(lambda: sum(ours().values()) >= 60, 60, "the first 60 posts")
        old = group.master_port()
        before = sum(ours().values())
        group.primary.kill()
        killed = time.monotonic()
        new = group.wait_failover(old)
        failover = time.monotonic() - killed
        group.primary.start()  # the supervisor restarts it; the sentinels make it a replica of `new`
        # Sweep as beat would; a message lost with the primary (not yet replicated) leaves its record
        # `queued`, which the sweeper re-nudges once it is STALE_QUEUED old: sweep as if a minute later.
        ds = settle(rt, ids, timeout=25, every=1.0, fail=False, each=sup.check)
        shifted = ds is None
        if shifted:
            ds = settle(rt, ids, timeout=60, every=2.0, shift=lambda now: now + STALE_QUEUED + 1, each=sup.check)
        took = time.monotonic() - t0
    except BaseException:
        print(sup.report())
        raise
    finally:
        sup.stop()
        rt.queue.close()

    assert len(ids) == 500
    statuses = Counter(d.status for d in ds)
    assert len(ds) == 500 and set(statuses) <= {"delivered", "needs_review"}, statuses
    per = ours()
    twice = {d: n for d, n in per.items() if n > 1}
    assert not twice, f"posted twice: {twice}"
    assert all(per[d.id] == 1 for d in ds if d.status == "delivered")
    assert before < 500 and new != old
    after_failover = sum(1 for d in ds if d.status == "delivered") - before
    assert after_failover > 0, "nothing was delivered after the failover"
    print(f"\n500 deliveries; {before} posted before the kill; failover in {failover:.1f}s; settled {dict(statuses)} "
          f"in {took:.1f}s; stale-queued sweep needed: {shifted}; worker restarts: {sup.restarts}")


def test_the_web_apps_event_stream_client_follows_the_sentinel_primary(sentinel_group):
    """The SSE stream's asyncio client (sharer.connections.async_redis_client) finds the primary through
    the sentinels and receives what is published there."""
    import asyncio

    from sharer.connections import async_redis_client, redis_client

    url = sentinel_group.url

    async def roundtrip() -> bytes:
        client = async_redis_client(url, socket_connect_timeout=5)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe("sharer-ha-events")
            redis_client(url).publish("sharer-ha-events", b"hello")
            for _ in range(50):
                msg = await pubsub.get_message(timeout=0.1)
                if msg:
                    return msg["data"]
            return b""
        finally:
            await pubsub.aclose()
            await client.aclose()

    assert asyncio.run(roundtrip()) == b"hello"
    assert redis_client(url).info("replication")["role"] == "master"
    assert redis_client(url).info("server")["tcp_port"] == sentinel_group.master_port()
