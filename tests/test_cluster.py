"""Redis Cluster: sharer's data store on a real three-primary cluster, proven end to end.

The test starts three ``redis-server --cluster-enabled yes`` processes (``tests/ha_support.py``),
joins them with ``redis-cli --cluster create``, and points ``[redis] url`` at them
(``redis+cluster://…``). Celery's broker cannot be a cluster, so it is the ordinary test Redis (db 13,
this module's own queue). A real worker delivers shares to several sandbox accounts, real beat
releases scheduled posts, and every record must end as a user would check: delivered once each,
on time, and every key of the deployment on one slot of one primary.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import secrets
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from conftest import EXAMPLES, REDIS_URL, ROOT, Worker, run_cli, sandbox_posts
from ha_support import RedisClusterGroup
from test_chaos import delivery_of, env_for, settle
from test_schedule import Beat

from sharer import service, workflow
from sharer.actor import Actor
from sharer.article import Article
from sharer.config import load_settings
from sharer.runtime import Runtime
from sharer.store import scripts
from sharer.store.shares import ShareFilter, query_shares

ACCOUNTS = ["cl-a", "cl-b", "cl-c"]
SHARES = 20  # x 3 accounts = 60 deliveries
CHIEF = Actor.web("chief")


def cluster_toml(emulators, url: str, tag: str) -> str:
    hook = emulators["webhook"].url
    out = [f'[redis]\nurl = "{url}"\nprefix = "sharer-cl-{tag}"\n\n'
           f'[celery]\nbroker_url = "{REDIS_URL}"\nqueue = "sharer-cl-{tag}"\n\n'
           '[delivery]\nlease_seconds = 20\nhttp_timeout = 5\n'
           'retry = { base = 0.1, cap = 0.5, max_attempts = 6 }\nduplicate_window_hours = 0\n\n'
           '[web]\nsecret_key = "env:SHARER_TEST_WEB_SECRET"\n']
    for name in [*ACCOUNTS, "cl-gated"]:
        out.append(f'[accounts.{name}]\nplatform = "webhook"\napi_base = "{hook}/hooks/{name}"\n'
                   'credentials = { secret = "sandbox:" }\n'
                   + ("requires_approval = true\n" if name == "cl-gated" else ""))
    return "\n".join(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster"))
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def on_cluster(cluster, emulators, tmp_path_factory):
    """(runtime, worker env, worker) for a config whose data store is the cluster."""
    from web_support import WEB_SECRET

    os.environ["SHARER_TEST_WEB_SECRET"] = WEB_SECRET
    tmp = tmp_path_factory.mktemp("cl")
    config = tmp / "sharer-cluster.toml"
    config.write_text(cluster_toml(emulators, cluster.url, secrets.token_hex(4)))
    rt = Runtime(load_settings(config))
    env = env_for(config, tmp)
    worker = Worker(env, concurrency=2)
    try:
        yield rt, env, worker
    finally:
        worker.stop()
        rt.queue.close()
        broker = redis_lib.Redis.from_url(REDIS_URL)
        for pattern in (f"{rt.settings.queue}*", f"_kombu.binding*.{rt.settings.queue}*"):
            for key in broker.scan_iter(match=pattern, count=1000):
                broker.delete(key)


def unique(run: str, i: int) -> Article:
    return Article(title=f"Cluster proof {run} article {i:02d}", url=f"https://news.example.com/cl/{run}/{i}/",
                   summary="One deployment, one hash tag, one slot.", lang="en")


def posts(emulators, account: str) -> Counter:
    return Counter(delivery_of("webhook", p) for p in sandbox_posts(emulators["webhook"])
                   if p["path"] == f"/hooks/{account}")


def test_no_module_registers_a_script_around_the_key_guard():
    """Every Lua script goes through ``store.scripts.register`` (the guard); none is sent raw."""
    raw = []
    for path in sorted((ROOT / "sharer").rglob("*.py")):
        if path.name == "scripts.py" and path.parent.name == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("register_script", "eval", "evalsha", "eval_ro", "script_load")):
                raw.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}")
    assert raw == []


def test_the_guard_refuses_a_key_the_script_did_not_declare_even_in_the_same_slot(on_cluster):
    rt, _, _ = on_cluster
    # the cluster itself would run this (same hash tag, same slot): only the guard catches it
    sneaky = scripts.register(rt.redis, "return redis.call('GET', KEYS[1] .. ':other')")
    with pytest.raises(redis_lib.ResponseError, match=r"GET on a key not passed in KEYS: \{sharer-cl-"):
        sneaky(keys=[rt.keys.share("x")])


def test_shares_to_three_accounts_on_a_cluster_are_delivered_exactly_once_each(on_cluster, cluster, emulators):
    rt, env, _ = on_cluster
    run = secrets.token_hex(3)
    t0 = time.monotonic()
    shares = [service.share(rt, unique(run, i), ACCOUNTS) for i in range(SHARES)]
    ids = [d.id for s in shares for d in s.deliveries]
    # the CLI too: --wait follows its deliveries over pub/sub through the cluster client
    cli = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "cl-a,cl-b", "--wait", "--json"], env)
    assert cli.returncode == 0, cli.stderr + cli.stdout
    ids += [d["id"] for d in json.loads(cli.stdout)["deliveries"]]
    done = settle(rt, ids, timeout=60)
    took = time.monotonic() - t0
    assert done is not None and Counter(d.status for d in done) == {"delivered": len(ids)}
    assert all(d.attempts == 1 and [e["status"] for e in d.events] == ["queued", "sending", "delivered"]
               for d in done)
    for account in ACCOUNTS:  # each receiver holds exactly one post per delivery, none other
        mine = {d.id for d in done if d.account == account}
        assert posts(emulators, account) == Counter({i: 1 for i in mine})
    print(f"cluster: {len(ids)} deliveries settled in {took:.1f} s")

    # every key of the deployment carries its hash tag and sits on one slot of one primary
    tag = "{" + rt.settings.prefix + "}"
    where = {port: keys for port, keys in cluster.keys_by_node(f"*{rt.settings.prefix}*").items() if keys}
    assert len(where) == 1, where
    [keys] = where.values()
    assert keys and all(k.startswith(tag + ":") for k in keys)
    assert len({rt.redis.keyslot(k) for k in keys}) == 1

    # reading works as on one Redis: the log by status, a title search (one pipeline of GETs), counts
    found, _ = service.log(rt, status="delivered", limit=100)
    assert {d.id for d in found} >= set(ids)
    page, _ = query_shares(rt.store, ShareFilter(q=f"proof {run} article 07"), limit=5)
    assert [s.id for s in page] == [shares[7].share_id]
    assert rt.store.count_by_status()["delivered"] >= len(ids)
    status = run_cli(["status", shares[0].share_id, "--json"], env)
    assert status.returncode == 0, status.stderr
    assert {d["status"] for d in json.loads(status.stdout)["deliveries"]} == {"delivered"}

    # the settled shares packed (one script per share, all keys declared) read the same, and a
    # packed record unpacks for a change
    before = [d.to_json() for d in rt.store.get_many(ids)]
    assert rt.store.compact(settled_before=time.time() + 1) >= SHARES
    assert not rt.redis.exists(rt.keys.delivery(ids[0])) and rt.redis.exists(rt.keys.cold(shares[0].share_id))
    assert [d.to_json() for d in rt.store.get_many(ids)] == before
    assert rt.store.transition(ids[0], "delivered", None, "checked on the account", actor="alice").ok
    assert rt.redis.exists(rt.keys.delivery(ids[0])) and not rt.redis.exists(rt.keys.cold(shares[0].share_id))

    # retention: a purge (MULTI/EXEC over the indexes) removes the records and their index entries
    assert rt.store.purge(time.time() + 60) >= len(ids)
    assert rt.store.get_many(ids) == [] and service.log(rt, limit=5)[0] == []


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_scheduled_posts_on_a_cluster_are_released_on_time_by_beat(on_cluster, emulators, tmp_path):
    rt, env, _ = on_cluster
    run = secrets.token_hex(3)
    beat = Beat(env, tmp_path, name="cl-beat")
    try:
        plain = [service.share(rt, unique(run, i), ["cl-a", "cl-b"], at=_in(3)) for i in range(3)]
        moved = service.share(rt, unique(run, 10), ["cl-c"], at=_in(3600))
        service.reschedule(rt, moved.share_id, _in(4))
        approved = service.share(rt, unique(run, 11), ["cl-gated"], at=_in(4))
        assert [d.status for d in approved.deliveries] == ["awaiting_approval"]
        assert workflow.approve(rt, approved.share_id, actor=CHIEF).moved == [approved.deliveries[0].id]
        missed = service.share(rt, unique(run, 12), ["cl-gated"], at=_in(3))  # never approved
        ids = [d.id for s in [*plain, moved, approved] for d in s.deliveries]
        done = settle(rt, ids, timeout=40, every=0.5)
        [unapproved] = settle(rt, [missed.deliveries[0].id], timeout=20) or []
    finally:
        beat.stop()
    assert done is not None and Counter(d.status for d in done) == {"delivered": len(ids)}
    for d in done:
        queued = [e for e in d.events if e["status"] == "queued"][-1]
        released = datetime.fromisoformat(queued["at"].replace("Z", "+00:00")).timestamp()
        assert released >= (d.scheduled_for or 0) - 0.01  # never early
        assert 0 <= (d.lag_seconds or 0) < 2.5, (d.id, d.lag_seconds)
    assert {d.id for d in done if d.account == "cl-gated"} == {approved.deliveries[0].id}
    assert unapproved.status == "needs_review" and "not approved by its" in unapproved.events[-1]["message"]
    for account in ("cl-a", "cl-b", "cl-c", "cl-gated"):
        mine = {d.id for d in done if d.account == account}
        assert posts(emulators, account) == Counter({i: 1 for i in mine})


def test_the_dashboards_health_check_and_live_events_work_on_a_cluster(on_cluster):
    """``/healthz`` reads the workers' heartbeat from the cluster; the event hub (one async pub/sub
    subscription) gets the status notices the scripts publish on whichever primary runs them."""
    from fastapi.testclient import TestClient

    from sharer.web.app import create_app
    from sharer.web.hub import EventHub

    rt, _, _ = on_cluster
    with TestClient(create_app(rt.settings), raise_server_exceptions=False) as web:
        health = web.get("/healthz")
    assert health.status_code == 200 and health.json()["redis"] is True and health.json()["workers"]

    async def one_notice() -> str:
        hub = EventHub(rt.settings.redis_url, rt.keys.events_channel)
        try:
            sub = await hub.subscribe()
            share = await asyncio.to_thread(service.share, rt, unique(secrets.token_hex(3), 0), ["cl-a"])
            got = ""
            while share.deliveries[0].id not in got or "delivered" not in got:
                got += await asyncio.wait_for(sub.queue.get(), 20)
            return got
        finally:
            await hub.close()

    assert "event: delivery" in asyncio.run(one_notice())
