"""Broker and data-store URLs: Sentinel and RabbitMQ accepted, a Redis Cluster only as the data store,
errors clear."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli

from sharer.config import parse_settings
from sharer.connections import celery_broker, parse_cluster, parse_sentinel, safe_url
from sharer.errors import ConfigError
from sharer.queue import celery_settings, queue_for
from sharer.store.keys import Keys

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


def test_a_cluster_data_store_is_redis_cluster_with_one_hash_tag_and_a_separate_broker():
    s = settings(redis={"url": "redis+cluster://:pw@h1:7000,h2:7001", "prefix": "brand-a"},
                 celery={"broker_url": "redis://127.0.0.1:6379/1"})
    assert s.min_replica_acks == 0
    assert parse_cluster(s.redis_url).nodes == (("h1", 7000), ("h2", 7001))
    keys = Keys(s.prefix, cluster=True)
    assert keys.delivery("d1") == "{brand-a}:dlv:d1" and keys.status_index("queued") == "{brand-a}:idx:status:queued"
    assert Keys(s.prefix).delivery("d1") == "brand-a:dlv:d1"  # one Redis / Sentinel: names as before
    # the broker defaults to the data store's URL: a cluster there is refused, naming the broker key
    with pytest.raises(ConfigError, match="celery.broker_url: Celery's broker cannot be a Redis Cluster"):
        settings(redis={"url": "redis+cluster://h1:7000"})


@pytest.mark.parametrize("extra, problem", [
    ({"redis": {"url": "rediscluster://h1:7000"}}, "write a Redis Cluster as redis+cluster://"),
    ({"redis": {"url": "redis://h1:7000/0?cluster=true"}}, "write a Redis Cluster as redis+cluster://"),
    ({"redis": {"url": "redis+cluster://h1:7000/3"}}, "only database 0"),
    ({"redis": {"url": "redis+cluster:///"}}, "at least one host:port"),
    ({"redis": {"url": "redis+cluster://h1:7000?readonly=1"}}, "unknown Redis Cluster URL option"),
    ({"redis": {"url": "redis+cluster://h1:7000", "min_replica_acks": 1}}, "redis.min_replica_acks: must be 0"),
    ({"redis": {"url": "redis+cluster://h1:7000", "prefix": "a{b}"}}, "redis.prefix: must not contain"),
])
def test_bad_cluster_settings_name_the_key_and_the_problem(extra, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        settings(**{"celery": {"broker_url": "redis://127.0.0.1:6379/1"}, **extra})


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
