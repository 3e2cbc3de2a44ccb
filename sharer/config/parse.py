"""The config file to ``Settings``: read the TOML, check every table and key, apply the environment.

Every problem fails at start with the file, the key and the reason (``ConfigError``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..connections import UrlError, check_broker_url, check_data_url, is_cluster, is_sentinel, safe_url
from ..errors import ConfigError
from .accounts import ACCOUNT_NAME, parse_account, parse_alerts, parse_retry
from .credentials import CredentialResolver
from .fields import check_zone, get_num, get_str, get_str_list, get_table, no_unknown, not_one_of
from .settings import (
    BOT_PLATFORMS,
    DEFAULT_MAX_ARTICLE_BYTES,
    DEFAULT_REDIS_URL,
    Account,
    RetryPolicy,
    Settings,
    Workflow,
)

DEFAULT_CONFIG = Path("config/sharer.toml")


_TOP_KEYS = {"redis", "celery", "log", "defaults", "secrets", "delivery", "alerts", "accounts", "media", "web",
             "users", "workflow", "sandbox", "fetch", "articles", "metrics"}


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("SHARER_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read and validate the config. Environment overrides: SHARER_REDIS_URL, SHARER_BROKER_URL,
    SHARER_METRICS_PORT."""
    env = dict(os.environ if env is None else env)
    p = config_path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (set SHARER_CONFIG or create {DEFAULT_CONFIG})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    if not raw:
        raise ConfigError(f"{p}: the config is empty (see config/sharer.example.toml for every key)")
    return parse_settings(raw, p, env)


def parse_settings(raw: dict[str, Any], p: Path, env: dict[str, str]) -> Settings:
    no_unknown(raw, _TOP_KEYS, p, "")
    redis = get_table(raw, "redis", p)
    no_unknown(redis, {"url", "prefix", "min_replica_acks", "replica_ack_timeout_ms"}, p, "redis")
    celery = get_table(raw, "celery", p)
    no_unknown(celery, {"broker_url", "queue", "visibility_timeout", "queue_per_platform"}, p, "celery")
    log = get_table(raw, "log", p)
    no_unknown(log, {"retention_days", "format"}, p, "log")
    metrics = get_table(raw, "metrics", p)
    no_unknown(metrics, {"worker_port", "worker_host", "token"}, p, "metrics")
    defaults = get_table(raw, "defaults", p)
    no_unknown(defaults, {"timezone", "max_lateness_minutes"}, p, "defaults")
    delivery = get_table(raw, "delivery", p)
    no_unknown(delivery, {"lease_seconds", "http_timeout", "retry", "overdue_minutes", "duplicate_window_hours"},
                p, "delivery")
    alerts = get_table(raw, "alerts", p)
    secrets_tbl = get_table(raw, "secrets", p)
    media = get_table(raw, "media", p)
    no_unknown(media, {"rewrite"}, p, "media")
    media_rewrite = media.get("rewrite", {})
    if not isinstance(media_rewrite, dict) or not all(
        isinstance(v, str) and urlsplit(k).scheme in ("http", "https") and urlsplit(v).scheme in ("http", "https")
        for k, v in media_rewrite.items()
    ):
        raise ConfigError(f"{p}: media.rewrite: must map http(s) URL prefixes to http(s) URL prefixes")
    no_unknown(secrets_tbl, {"file"}, p, "secrets")
    fetch_limits = _fetch_limits(raw, p)

    redis_url = env.get("SHARER_REDIS_URL") or get_str(redis, "url", p, "redis", DEFAULT_REDIS_URL)
    broker_url = env.get("SHARER_BROKER_URL") or get_str(celery, "broker_url", p, "celery", redis_url)
    for key, url, check in (("redis.url", redis_url, check_data_url),
                            ("celery.broker_url", broker_url, check_broker_url)):
        try:
            check(url)
        except UrlError as e:
            raise ConfigError(f"{p}: {key}: {e} (got {safe_url(url)!r})") from None
        if urlsplit(url).scheme.lower() in ("redis", "rediss", "unix"):
            _check_redis_url(url, p, key)  # /abc silently meant db 0
    scale = _scale_options(redis, celery, log, metrics, env, redis_url, p)
    tz = get_str(defaults, "timezone", p, "defaults", "UTC")
    check_zone(tz, p, "defaults.timezone")

    secrets_file = secrets_tbl.get("file")
    resolver = CredentialResolver(p, env, Path(os.path.expanduser(secrets_file)) if secrets_file else None)

    lease = get_num(delivery, "lease_seconds", p, "delivery", 120.0)
    http_timeout = get_num(delivery, "http_timeout", p, "delivery", 30.0)
    if http_timeout >= lease:
        raise ConfigError(f"{p}: delivery.http_timeout ({http_timeout}) must be shorter than lease_seconds ({lease})")
    default_retry = parse_retry(delivery.get("retry", {}), p, "delivery.retry", RetryPolicy())

    accounts_tbl = {**_demo_accounts(raw, p), **get_table(raw, "accounts", p)}  # the config's own tables win
    accounts = {}
    for name, acc in accounts_tbl.items():
        if not ACCOUNT_NAME.match(name):
            raise ConfigError(f"{p}: accounts.{name}: an account name is letters, digits, '_', '.' or '-' "
                              "(at most 64)")
        accounts[name] = parse_account(name, acc, p, resolver, default_retry)
    retention = get_num(log, "retention_days", p, "log", 90.0)
    if retention < 1:
        raise ConfigError(f"{p}: log.retention_days: must be at least 1 (the purge would delete queued deliveries)")

    alert_webhook, alert_secret = parse_alerts(alerts, p, "alerts", resolver)
    metrics_token = None
    if "token" in metrics:
        metrics_token = resolver.resolve(metrics["token"], "metrics.token", "https://metrics.invalid/")
    web = get_table(raw, "web", p)
    workflow = _workflow(get_table(raw, "workflow", p), web, accounts, p)
    return Settings(
        path=p,
        redis_url=redis_url,
        broker_url=broker_url,
        prefix=get_str(redis, "prefix", p, "redis", "sharer"),
        queue=get_str(celery, "queue", p, "celery", "sharer"),
        visibility_timeout=int(get_num(celery, "visibility_timeout", p, "celery", 3600)),
        metrics_token=metrics_token,
        **scale,
        retention_days=retention,
        timezone=tz,
        lease_seconds=lease,
        http_timeout=http_timeout,
        overdue_seconds=get_num(delivery, "overdue_minutes", p, "delivery", 60.0) * 60,
        max_lateness=get_num(defaults, "max_lateness_minutes", p, "defaults", 15.0) * 60,
        duplicate_window=get_num(delivery, "duplicate_window_hours", p, "delivery", 24.0) * 3600,
        accounts=accounts,
        alert_webhook=alert_webhook,
        alert_secret=alert_secret,
        media_rewrite=dict(media_rewrite),
        **fetch_limits,
        web=web,
        users=get_table(raw, "users", p),
        workflow=workflow,
    )


def _fetch_limits(raw: dict[str, Any], p: Path) -> dict[str, Any]:
    """``[fetch]`` and ``[articles]``: what the guarded fetcher may reach and how much an article may weigh."""
    fetch = get_table(raw, "fetch", p)
    no_unknown(fetch, {"allow_hosts", "allow_networks", "deadline_seconds"}, p, "fetch")
    allow_hosts = get_str_list(fetch, "allow_hosts", p, "fetch")
    allow_networks = get_str_list(fetch, "allow_networks", p, "fetch")
    for net in allow_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"{p}: fetch.allow_networks: {net!r} is not a network (e.g. \"10.0.0.0/8\")") from None
    fetch_deadline = get_num(fetch, "deadline_seconds", p, "fetch", 20.0)
    if not 1 <= fetch_deadline <= 600:
        raise ConfigError(f"{p}: fetch.deadline_seconds: must be between 1 and 600")
    articles = get_table(raw, "articles", p)
    no_unknown(articles, {"max_bytes"}, p, "articles")
    max_article_bytes = int(get_num(articles, "max_bytes", p, "articles", DEFAULT_MAX_ARTICLE_BYTES))
    if max_article_bytes < 1024:
        raise ConfigError(f"{p}: articles.max_bytes: must be at least 1024")
    return {"fetch_allow_hosts": tuple(allow_hosts), "fetch_allow_networks": tuple(allow_networks),
            "fetch_deadline": fetch_deadline, "max_article_bytes": max_article_bytes}


def _scale_options(redis: dict[str, Any], celery: dict[str, Any], log: dict[str, Any], metrics: dict[str, Any],
                   env: dict[str, str], redis_url: str, p: Path) -> dict[str, Any]:
    """Replica acknowledgements, log format, per-platform queues and the worker's metrics port."""
    # Behind Sentinel a write is acknowledged before the replica has it: a share created, or a claim
    # taken, just before a failover could vanish and the post be sent twice. WAIT for one replica then.
    replica_acks = int(get_num(redis, "min_replica_acks", p, "redis", 1 if is_sentinel(redis_url) else 0))
    replica_timeout = int(get_num(redis, "replica_ack_timeout_ms", p, "redis", 250))
    if is_cluster(redis_url):
        # WAIT counts the replicas of the connection that wrote; a cluster client writes over one
        # connection per node and cannot ask that (cluster replicas are for reads and failover)
        if replica_acks > 0:
            raise ConfigError(f"{p}: redis.min_replica_acks: must be 0 with a Redis Cluster data store "
                              "(WAIT is not available through a cluster client)")
        if re.search(r"[{}]", str(redis.get("prefix", ""))):
            raise ConfigError(f"{p}: redis.prefix: must not contain {{ or }} with a Redis Cluster data store "
                              "(sharer writes it as the keys' hash tag)")
    log_format = get_str(log, "format", p, "log", "text")
    if problem := not_one_of(log_format, ("text", "json"), quoted=True):
        raise ConfigError(f"{p}: log.format: {problem}")
    per_platform = celery.get("queue_per_platform", False)
    if not isinstance(per_platform, bool):
        raise ConfigError(f"{p}: celery.queue_per_platform: must be true or false")
    worker_port = metrics.get("worker_port")
    if env.get("SHARER_METRICS_PORT"):  # several workers on one box: each its own port
        worker_port = int(env["SHARER_METRICS_PORT"]) if env["SHARER_METRICS_PORT"].isdigit() else -1
    if worker_port is not None and (isinstance(worker_port, bool) or not isinstance(worker_port, int)
                                    or not 0 < worker_port < 65536):
        raise ConfigError(f"{p}: metrics.worker_port (or SHARER_METRICS_PORT): must be a TCP port number (1-65535)")
    return {"queue_per_platform": per_platform, "metrics_worker_port": worker_port,
            "metrics_worker_host": get_str(metrics, "worker_host", p, "metrics", "127.0.0.1"),
            "log_format": log_format, "min_replica_acks": replica_acks, "replica_ack_timeout_ms": replica_timeout}


def _workflow(table: dict, web: dict, accounts: dict[str, Account], p: Path) -> Workflow:
    no_unknown(table, {"requires_approval", "allow_self_approval", "notify"}, p, "workflow")
    for key in ("requires_approval", "allow_self_approval"):
        if key in table and not isinstance(table[key], bool):
            raise ConfigError(f"{p}: workflow.{key}: must be true or false")
    notify = table.get("notify")
    if notify is not None:
        if not isinstance(notify, str) or notify not in accounts:
            known = ", ".join(sorted(accounts)) or "none configured"
            raise ConfigError(f"{p}: workflow.notify: must name a configured account (known: {known})")
        if accounts[notify].platform not in BOT_PLATFORMS:
            raise ConfigError(f"{p}: workflow.notify: account {notify!r} is a {accounts[notify].platform} "
                              f"account; notices go to a group bot ({', '.join(BOT_PLATFORMS)})")
    public_url = web.get("public_url")
    if public_url is not None and (not isinstance(public_url, str)
                                   or urlsplit(public_url).scheme not in ("http", "https")):
        raise ConfigError(f"{p}: web.public_url: must be the dashboard's http(s) URL")
    return Workflow(bool(table.get("requires_approval", False)), bool(table.get("allow_self_approval", False)),
                    notify, public_url.rstrip("/") if public_url else None)


def _demo_accounts(raw: dict[str, Any], p: Path) -> dict[str, Any]:
    """``[sandbox] demo_accounts = true``: every registered platform's demo account(s) on the sandbox."""
    sandbox = get_table(raw, "sandbox", p)
    no_unknown(sandbox, {"demo_accounts"}, p, "sandbox")
    wanted = sandbox.get("demo_accounts", False)
    if not isinstance(wanted, bool):
        raise ConfigError(f"{p}: sandbox.demo_accounts: must be true or false")
    if not wanted:
        return {}
    from ..platforms import demo_accounts

    return demo_accounts()


def _check_redis_url(url: str, p: Path, key: str) -> None:
    """A Redis URL whose database is really the one meant: ``/abc`` silently meant db 0."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{p}: {key}: not a valid URL: {url!r}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{p}: {key}: must be a redis:// URL, got {url!r}")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ConfigError(f"{p}: {key}: has no host: {url!r}")
        db = parts.path.strip("/")
        if db and not (db.isdigit() and int(db) < 10000):
            raise ConfigError(f"{p}: {key}: the database index must be a number (redis://host:6379/0), "
                              f"got {db!r}")
    for pair in parts.query.split("&") if parts.query else []:
        name, _, value = pair.partition("=")
        if name == "db" and not value.isdigit():
            raise ConfigError(f"{p}: {key}: the db parameter must be a number, got {value!r}")
