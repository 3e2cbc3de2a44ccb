"""RabbitMQ as the broker (quorum queues), the data in Redis: the pipeline proof end to end.

RabbitMQ at 127.0.0.1:5672 (guest/guest; ``.ci/run`` starts ``rabbitmq-server`` when none answers).
The worker is a real ``celery -A tasks worker``; the data store is the test Redis (db 13, own prefix).
Its queues are declared as quorum queues, and a countdown retry (503, then 200) travels through
Celery's native delayed delivery, which is what carries countdowns on quorum queues.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess

import pytest
from conftest import EXAMPLES, REDIS_URL, Worker, account_tables, inject, run_cli, sandbox_posts, wait_settled
from test_chaos import env_for

from sharer import service
from sharer.config import load_settings
from sharer.loaders import load_article
from sharer.runtime import Runtime

AMQP_URL = os.environ.get("SHARER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory, emulators):
    if not _rabbit_up():
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not running at 127.0.0.1:5672 (.ci/run should have started it)")
        pytest.skip("RabbitMQ is not running at 127.0.0.1:5672")
    tag = secrets.token_hex(4)
    tmp = tmp_path_factory.mktemp("rabbit")
    config = tmp / "sharer-rabbit.toml"
    config.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "sharer-rmq-{tag}"\n\n'
        f'[celery]\nbroker_url = "{AMQP_URL}"\nqueue = "sharer-rmq-{tag}"\n\n'
        '[delivery]\nlease_seconds = 30\nhttp_timeout = 5\nretry = { base = 0.2, cap = 1.0, max_attempts = 4 }\n'
        'duplicate_window_hours = 0\n\n' + account_tables(emulators))
    env = env_for(config, tmp)
    env["SHARER_TEST_WRONG_SECRET"] = "x"
    os.environ.setdefault("SHARER_TEST_WRONG_SECRET", "x")
    rt = Runtime(load_settings(config))
    worker = Worker(env, concurrency=2)
    yield rt, env, worker
    worker.stop()
    _delete_queues(rt)
    for key in rt.redis.scan_iter(match=f"{rt.settings.prefix}*", count=1000):
        rt.redis.delete(key)
    rt.queue.close()


def _delete_queues(rt: Runtime) -> None:
    from kombu import Connection

    from sharer.queue import control_queue, delivery_queues

    with Connection(AMQP_URL, connect_timeout=3) as conn:
        for name in delivery_queues(rt.settings) + [control_queue(rt.settings)]:
            channel = conn.channel()
            try:
                channel.queue_delete(name)
                channel.exchange_delete(name)
            except Exception:
                pass
            finally:
                channel.close()


def test_pipeline_with_rabbitmq_broker_delivers_once_each_on_quorum_queues(rabbit, emulators):
    rt, env, worker = rabbit
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a,hook-b", "--wait", "--json"], env)
    assert proc.returncode == 0, proc.stderr + proc.stdout + worker.output()[-3000:]
    out = json.loads(proc.stdout)
    assert sorted(d["status"] for d in out["deliveries"]) == ["delivered", "delivered"]
    posts = sandbox_posts(emulators["webhook"])
    assert sorted(p["path"] for p in posts) == ["/hooks/a", "/hooks/b"]
    assert {json.loads(p["raw"])["delivery_id"] for p in posts} == {d["id"] for d in out["deliveries"]}

    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "type"], capture_output=True, text=True,
                            timeout=60)
    types = dict(line.split("\t")[:2] for line in listed.stdout.splitlines() if "\t" in line)
    assert types.get(rt.settings.queue) == "quorum", listed.stdout + listed.stderr


def test_rabbitmq_countdown_retry_503_then_200_is_delivered_on_attempt_two(rabbit, emulators):
    rt, _, worker = rabbit
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=503, count=1, body={"error": "busy"})
    result = service.share(rt, load_article(str(EXAMPLES / "baic-catl.json")), ["hook-a"])
    [d] = wait_settled(rt, result.share_id, timeout=30)
    assert d.status == "delivered", (d.status, d.error, worker.output()[-3000:])
    assert d.attempts == 2 and [e["status"] for e in d.events] == ["queued", "sending", "retrying", "sending",
                                                                   "delivered"]
    assert len(sandbox_posts(emulators["webhook"])) == 1
