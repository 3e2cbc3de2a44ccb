"""Broker and data-store URLs: Sentinel and RabbitMQ accepted, Redis Cluster refused, errors clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from sharer.config import parse_settings
from sharer.connections import celery_broker, parse_sentinel, safe_url
from sharer.errors import ConfigError
from sharer.queue import celery_settings, queue_for

P = Path("sharer.toml")


def settings(**tables):
    return parse_settings(tables, P, {})


def test_sentinel_url_our_form_and_kombus_form_mean_the_same_group():
    ours = parse_sentinel("sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/2?master_name=main"
                          "&sentinel_password=sp")
    assert ours.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (ours.master_name, ours.db, ours.password, ours.sentinel_password) == ("main", 2, "s3cret", "sp")
    kombu_form = parse_sentinel("sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26379/2;"
                                "sentinel://:s3cret@[::1]:26380/2?master_name=main&sentinel_password=sp")
    assert kombu_form == ours


def test_sentinel_broker_becomes_kombus_url_and_transport_options():
    s = settings(redis={"url": "sentinel://:pw@h1:26379,h2:26380/0?master_name=m&sentinel_password=sp"})
    assert s.broker_url == s.redis_url and s.min_replica_acks == 1
    conf = celery_settings(s)
    assert conf["broker_url"] == "sentinel://:pw@h1:26379/0;sentinel://:pw@h2:26380/0"
    opts = conf["broker_transport_options"]
    assert opts["master_name"] == "m" and opts["sentinel_kwargs"] == {"password": "sp"}
    assert opts["visibility_timeout"] == 3600
    assert celery_broker("redis://h:6379/1") == ("redis://h:6379/1", {})


@pytest.mark.parametrize("url, problem", [
    ("sentinel://h1:26379,h2:26379/0", "master_name"),
    ("sentinel://h1:26379/x?master_name=m", "database"),
    ("sentinel://h1:26379/0?master_name=m&bogus=1", "unknown Sentinel URL option 'bogus'"),
    ("sentinel://h1:port/0?master_name=m", "bad port"),
    ("http://h1:6379/0", "must be a redis://"),
])
def test_bad_sentinel_or_redis_urls_name_the_key_and_the_problem(url, problem):
    with pytest.raises(ConfigError) as e:
        settings(redis={"url": url})
    assert "redis.url" in str(e.value) and problem in str(e.value)


@pytest.mark.parametrize("url", ["redis+cluster://h1:7000,h2:7001/0", "rediscluster://h1:7000",
                                 "redis://h1:7000/0?cluster=true"])
def test_a_redis_cluster_broker_is_refused_with_the_reason(url):
    with pytest.raises(ConfigError) as e:
        settings(celery={"broker_url": url})
    msg = str(e.value)
    assert "celery.broker_url" in msg and "cannot be a Redis Cluster" in msg and "RabbitMQ" in msg
    with pytest.raises(ConfigError, match="redis.url: a Redis Cluster cannot hold"):
        settings(redis={"url": url})


def test_passwords_never_appear_in_url_errors():
    with pytest.raises(ConfigError) as e:
        settings(celery={"broker_url": "redis+cluster://:hunter2@h1:7000"})
    assert "hunter2" not in str(e.value)
    assert "hunter2" not in safe_url("sentinel://:hunter2@h:1/0?master_name=m&sentinel_password=hunter2")


def test_cli_refuses_a_cluster_broker_with_one_line_and_exit_2(base_env):
    env = {**base_env, "SHARER_BROKER_URL": "redis+cluster://127.0.0.1:7000/0"}
    proc = run_cli(["accounts"], env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "celery.broker_url" in lines[0] and "Traceback" not in proc.stderr


def test_rabbitmq_broker_declares_quorum_queues_behind_topic_exchanges():
    s = settings(celery={"broker_url": "amqp://u:p@rabbit:5672/v", "queue": "q", "queue_per_platform": True})
    conf = celery_settings(s)
    assert conf["worker_detect_quorum_queues"] is True
    assert conf["broker_transport_options"]["confirm_publish"] is True
    queues = {q.name: q for q in conf["task_queues"]}
    assert {"q", "q.control", "q.webhook", "q.mastodon"} <= set(queues)
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} and q.exchange.type == "topic"
               for q in queues.values())


def test_queue_per_platform_routes_each_account_to_its_platform_queue():
    accounts = {"hook": {"platform": "webhook", "api_base": "http://127.0.0.1:9/h",
                         "credentials": {"secret": "sandbox:"}}}
    on = settings(celery={"queue": "q", "queue_per_platform": True}, accounts=accounts)
    off = settings(celery={"queue": "q"}, accounts=accounts)
    assert queue_for(on, "hook") == "q.webhook" and queue_for(on, None) == "q"
    assert queue_for(off, "hook") == "q"
    with pytest.raises(ConfigError, match="celery.queue_per_platform: must be true or false"):
        settings(celery={"queue_per_platform": "yes"})


@pytest.mark.parametrize("tables, problem", [
    ({"log": {"format": "xml"}}, "log.format"),
    ({"metrics": {"worker_port": 70000}}, "metrics.worker_port"),
    ({"metrics": {"worker_port": "9808"}}, "metrics.worker_port"),
    ({"metrics": {"bogus": 1}}, "metrics.bogus: unknown key"),
])
def test_log_and_metrics_keys_are_checked(tables, problem):
    with pytest.raises(ConfigError, match=problem):
        settings(**tables)
