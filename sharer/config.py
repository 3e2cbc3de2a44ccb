"""Typed settings read once from TOML (``config/sharer.toml`` or ``$SHARER_CONFIG``).

Secrets are never written in the config itself: a credential is a *reference*:

* ``"env:NAME"``      – the value of environment variable NAME;
* ``"file:KEY"``      – KEY in the secrets file (``[secrets] file = ...``, kept outside the repo);
* ``"sandbox:"``      – the public, non-secret credential of the local emulators; only accepted when the
  account's ``api_base`` is a loopback address, so it can never reach a real platform.

Every problem fails at start with the file, the key and the reason (``ConfigError``).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .connections import UrlError, check_broker_url, check_data_url, is_cluster, is_sentinel, safe_url
from .errors import ConfigError

if TYPE_CHECKING:
    from .fetch import FetchPolicy

DEFAULT_CONFIG = Path("config/sharer.toml")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # names are joined with commas in --to and used in keys
DEFAULT_MAX_ARTICLE_BYTES = 5 * 1024 * 1024


class Secret:
    """A credential value whose repr/str never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient errors: full jitter between 0 and min(cap, base * 2**n)."""

    base: float = 2.0
    cap: float = 300.0
    max_attempts: int = 6
    deadline: float = 6 * 3600.0  # seconds after creation; past it a delivery fails


@dataclass(frozen=True)
class Account:
    """One configured destination. ``options`` are already validated by the platform class."""

    name: str
    platform: str
    api_base: str
    credentials: dict[str, Secret] = field(default_factory=dict)
    options: Any = field(default_factory=dict)  # the platform's typed Options (older platforms: a dict)
    template: str | None = None
    utm: dict[str, str] | None = None  # None = tagging off
    rate_limit: tuple[int, float] | None = None  # (count, per seconds); None = platform default
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timezone: str | None = None
    slots: Any = None  # sharer.timeparse.Slots, or None when the account has no posting slots
    min_spacing: float = 0.0  # seconds between two scheduled posts of this account
    max_lateness: float | None = None  # seconds; None = [defaults] max_lateness_minutes
    alert_webhook: str | None = None  # this account's own "tell me" webhook, besides [alerts]
    alert_secret: Secret | None = None
    requires_approval: bool | None = None  # None: [workflow] requires_approval decides

    def secret(self, key: str) -> str:
        return self.credentials[key].reveal()

    def has_secret(self, key: str) -> bool:
        return key in self.credentials


@dataclass(frozen=True)
class Workflow:
    """``[workflow]``: sign-off before publishing (see README, "Approval workflow")."""

    requires_approval: bool = False  # the default for accounts that do not say
    allow_self_approval: bool = False  # four-eyes by default: nobody approves their own share
    notify: str | None = None  # a wecom/feishu/dingtalk account told of requests and decisions
    public_url: str | None = None  # the dashboard's address, for links in notices ([web] public_url)


BOT_PLATFORMS = ("wecom", "feishu", "dingtalk")


@dataclass(frozen=True)
class Settings:
    path: Path
    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = DEFAULT_REDIS_URL
    prefix: str = "sharer"
    queue: str = "sharer"
    retention_days: float = 90.0
    timezone: str = "UTC"
    lease_seconds: float = 120.0
    http_timeout: float = 30.0
    overdue_seconds: float = 3600.0
    max_lateness: float = 900.0
    duplicate_window: float = 86400.0
    visibility_timeout: int = 3600
    queue_per_platform: bool = False  # one delivery queue per platform: <queue>.<platform id>
    metrics_worker_port: int | None = None  # [metrics] worker_port: each worker's /metrics (None = off)
    metrics_worker_host: str = "127.0.0.1"
    metrics_token: Secret | None = None  # [metrics] token: the web app's /metrics wants this bearer token
    min_replica_acks: int = 0  # [redis] WAIT for this many replicas after a share and a claim
    replica_ack_timeout_ms: int = 250
    log_format: str = "text"  # [log] format: "text" or "json" (one JSON object per line)
    accounts: dict[str, Account] = field(default_factory=dict)
    alert_webhook: str | None = None
    alert_secret: Secret | None = None
    media_rewrite: dict[str, str] = field(default_factory=dict)
    fetch_allow_hosts: tuple[str, ...] = ()  # [fetch] allow_hosts: "host" or "host:port"
    fetch_allow_networks: tuple[str, ...] = ()  # [fetch] allow_networks: CIDR blocks
    fetch_deadline: float = 20.0  # [fetch] deadline_seconds: wall clock for one fetch, redirects included
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES  # [articles] max_bytes: files, uploads, fetched pages
    # [web] and [users] tables, validated by sharer.web (which owns their keys)
    web: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    workflow: Workflow = field(default_factory=Workflow)

    def needs_approval(self, account: str) -> bool:
        acc = self.account(account)
        return self.workflow.requires_approval if acc.requires_approval is None else acc.requires_approval

    @property
    def alerts_configured(self) -> bool:
        return bool(self.alert_webhook) or any(a.alert_webhook for a in self.accounts.values())

    def fetch_policy(self, *extra_origins: str) -> FetchPolicy:
        """What the guarded fetcher may reach besides public addresses: the allow-lists, the ``[media]
        rewrite`` targets (the operator's own mirrors) and any ``extra_origins`` (e.g. an account's API)."""
        from .fetch import FetchPolicy

        return FetchPolicy.build(self.fetch_allow_hosts, self.fetch_allow_networks,
                                 [*self.media_rewrite.values(), *extra_origins])

    def account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none configured"
            raise ConfigError(f"{self.path}: unknown account {name!r} (known: {known})") from None


# --- loading -------------------------------------------------------------------------------------

_TOP_KEYS = {"redis", "celery", "log", "defaults", "secrets", "delivery", "alerts", "accounts", "media", "web",
             "users", "workflow", "sandbox", "fetch", "articles", "metrics"}
_ACCOUNT_KEYS = {
    "platform", "api_base", "credentials", "options", "template", "utm", "rate_limit", "retry",
    "timezone", "slots", "min_spacing_minutes", "max_lateness_minutes", "alerts", "requires_approval",
}
SANDBOX_SECRET_PREFIX = "sandbox-"


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
    _no_unknown(raw, _TOP_KEYS, p, "")
    redis = _table(raw, "redis", p)
    _no_unknown(redis, {"url", "prefix", "min_replica_acks", "replica_ack_timeout_ms"}, p, "redis")
    celery = _table(raw, "celery", p)
    _no_unknown(celery, {"broker_url", "queue", "visibility_timeout", "queue_per_platform"}, p, "celery")
    log = _table(raw, "log", p)
    _no_unknown(log, {"retention_days", "format"}, p, "log")
    metrics = _table(raw, "metrics", p)
    _no_unknown(metrics, {"worker_port", "worker_host", "token"}, p, "metrics")
    defaults = _table(raw, "defaults", p)
    _no_unknown(defaults, {"timezone", "max_lateness_minutes"}, p, "defaults")
    delivery = _table(raw, "delivery", p)
    _no_unknown(delivery, {"lease_seconds", "http_timeout", "retry", "overdue_minutes", "duplicate_window_hours"},
                p, "delivery")
    alerts = _table(raw, "alerts", p)
    secrets_tbl = _table(raw, "secrets", p)
    media = _table(raw, "media", p)
    _no_unknown(media, {"rewrite"}, p, "media")
    media_rewrite = media.get("rewrite", {})
    if not isinstance(media_rewrite, dict) or not all(
        isinstance(v, str) and urlsplit(k).scheme in ("http", "https") and urlsplit(v).scheme in ("http", "https")
        for k, v in media_rewrite.items()
    ):
        raise ConfigError(f"{p}: media.rewrite: must map http(s) URL prefixes to http(s) URL prefixes")
    _no_unknown(secrets_tbl, {"file"}, p, "secrets")
    fetch_limits = _fetch_limits(raw, p)

    redis_url = env.get("SHARER_REDIS_URL") or _str(redis, "url", p, "redis", DEFAULT_REDIS_URL)
    broker_url = env.get("SHARER_BROKER_URL") or _str(celery, "broker_url", p, "celery", redis_url)
    for key, url, check in (("redis.url", redis_url, check_data_url),
                            ("celery.broker_url", broker_url, check_broker_url)):
        try:
            check(url)
        except UrlError as e:
            raise ConfigError(f"{p}: {key}: {e} (got {safe_url(url)!r})") from None
        if urlsplit(url).scheme.lower() in ("redis", "rediss", "unix"):
            _check_redis_url(url, p, key)  # /abc silently meant db 0
    scale = _scale_options(redis, celery, log, metrics, env, redis_url, p)
    tz = _str(defaults, "timezone", p, "defaults", "UTC")
    _check_zone(tz, p, "defaults.timezone")

    secrets_file = secrets_tbl.get("file")
    resolver = _CredentialResolver(p, env, Path(os.path.expanduser(secrets_file)) if secrets_file else None)

    lease = _num(delivery, "lease_seconds", p, "delivery", 120.0)
    http_timeout = _num(delivery, "http_timeout", p, "delivery", 30.0)
    if http_timeout >= lease:
        raise ConfigError(f"{p}: delivery.http_timeout ({http_timeout}) must be shorter than lease_seconds ({lease})")
    default_retry = _retry(delivery.get("retry", {}), p, "delivery.retry", RetryPolicy())

    accounts_tbl = {**_demo_accounts(raw, p), **_table(raw, "accounts", p)}  # the config's own tables win
    accounts = {}
    for name, acc in accounts_tbl.items():
        if not ACCOUNT_NAME.match(name):
            raise ConfigError(f"{p}: accounts.{name}: an account name is letters, digits, '_', '.' or '-' "
                              "(at most 64)")
        accounts[name] = _account(name, acc, p, resolver, default_retry)
    retention = _num(log, "retention_days", p, "log", 90.0)
    if retention < 1:
        raise ConfigError(f"{p}: log.retention_days: must be at least 1 (the purge would delete queued deliveries)")

    alert_webhook, alert_secret = _alerts(alerts, p, "alerts", resolver)
    metrics_token = None
    if "token" in metrics:
        metrics_token = resolver.resolve(metrics["token"], "metrics.token", "https://metrics.invalid/")
    web = _table(raw, "web", p)
    workflow = _workflow(_table(raw, "workflow", p), web, accounts, p)
    return Settings(
        path=p,
        redis_url=redis_url,
        broker_url=broker_url,
        prefix=_str(redis, "prefix", p, "redis", "sharer"),
        queue=_str(celery, "queue", p, "celery", "sharer"),
        visibility_timeout=int(_num(celery, "visibility_timeout", p, "celery", 3600)),
        metrics_token=metrics_token,
        **scale,
        retention_days=retention,
        timezone=tz,
        lease_seconds=lease,
        http_timeout=http_timeout,
        overdue_seconds=_num(delivery, "overdue_minutes", p, "delivery", 60.0) * 60,
        max_lateness=_num(defaults, "max_lateness_minutes", p, "defaults", 15.0) * 60,
        duplicate_window=_num(delivery, "duplicate_window_hours", p, "delivery", 24.0) * 3600,
        accounts=accounts,
        alert_webhook=alert_webhook,
        alert_secret=alert_secret,
        media_rewrite=dict(media_rewrite),
        **fetch_limits,
        web=web,
        users=_table(raw, "users", p),
        workflow=workflow,
    )


def _fetch_limits(raw: dict[str, Any], p: Path) -> dict[str, Any]:
    """``[fetch]`` and ``[articles]``: what the guarded fetcher may reach and how much an article may weigh."""
    fetch = _table(raw, "fetch", p)
    _no_unknown(fetch, {"allow_hosts", "allow_networks", "deadline_seconds"}, p, "fetch")
    allow_hosts = _str_list(fetch, "allow_hosts", p, "fetch")
    allow_networks = _str_list(fetch, "allow_networks", p, "fetch")
    for net in allow_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"{p}: fetch.allow_networks: {net!r} is not a network (e.g. \"10.0.0.0/8\")") from None
    fetch_deadline = _num(fetch, "deadline_seconds", p, "fetch", 20.0)
    if not 1 <= fetch_deadline <= 600:
        raise ConfigError(f"{p}: fetch.deadline_seconds: must be between 1 and 600")
    articles = _table(raw, "articles", p)
    _no_unknown(articles, {"max_bytes"}, p, "articles")
    max_article_bytes = int(_num(articles, "max_bytes", p, "articles", DEFAULT_MAX_ARTICLE_BYTES))
    if max_article_bytes < 1024:
        raise ConfigError(f"{p}: articles.max_bytes: must be at least 1024")
    return {"fetch_allow_hosts": tuple(allow_hosts), "fetch_allow_networks": tuple(allow_networks),
            "fetch_deadline": fetch_deadline, "max_article_bytes": max_article_bytes}


def _scale_options(redis: dict[str, Any], celery: dict[str, Any], log: dict[str, Any], metrics: dict[str, Any],
                   env: dict[str, str], redis_url: str, p: Path) -> dict[str, Any]:
    """Replica acknowledgements, log format, per-platform queues and the worker's metrics port."""
    # Behind Sentinel a write is acknowledged before the replica has it: a share created, or a claim
    # taken, just before a failover could vanish and the post be sent twice. WAIT for one replica then.
    replica_acks = int(_num(redis, "min_replica_acks", p, "redis", 1 if is_sentinel(redis_url) else 0))
    replica_timeout = int(_num(redis, "replica_ack_timeout_ms", p, "redis", 250))
    if is_cluster(redis_url):
        # WAIT counts the replicas of the connection that wrote; a cluster client writes over one
        # connection per node and cannot ask that (cluster replicas are for reads and failover)
        if replica_acks > 0:
            raise ConfigError(f"{p}: redis.min_replica_acks: must be 0 with a Redis Cluster data store "
                              "(WAIT is not available through a cluster client)")
        if re.search(r"[{}]", str(redis.get("prefix", ""))):
            raise ConfigError(f"{p}: redis.prefix: must not contain {{ or }} with a Redis Cluster data store "
                              "(sharer writes it as the keys' hash tag)")
    log_format = _str(log, "format", p, "log", "text")
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
            "metrics_worker_host": _str(metrics, "worker_host", p, "metrics", "127.0.0.1"),
            "log_format": log_format, "min_replica_acks": replica_acks, "replica_ack_timeout_ms": replica_timeout}


def _workflow(table: dict, web: dict, accounts: dict[str, Account], p: Path) -> Workflow:
    _no_unknown(table, {"requires_approval", "allow_self_approval", "notify"}, p, "workflow")
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
    sandbox = _table(raw, "sandbox", p)
    _no_unknown(sandbox, {"demo_accounts"}, p, "sandbox")
    wanted = sandbox.get("demo_accounts", False)
    if not isinstance(wanted, bool):
        raise ConfigError(f"{p}: sandbox.demo_accounts: must be true or false")
    if not wanted:
        return {}
    from .platforms import demo_accounts

    return demo_accounts()


def _account(name: str, acc: Any, p: Path, resolver: _CredentialResolver, default_retry: RetryPolicy) -> Account:
    from .platforms import get_platform  # late: platforms import config types

    where = f"accounts.{name}"
    if not isinstance(acc, dict):
        raise ConfigError(f"{p}: {where}: must be a table")
    _no_unknown(acc, _ACCOUNT_KEYS, p, where)
    platform_id = acc.get("platform")
    if not platform_id:
        raise ConfigError(f"{p}: {where}.platform: is required")
    platform_cls = get_platform(platform_id, where=f"{p}: {where}.platform")
    api_base = _str(acc, "api_base", p, where, platform_cls.default_api_base)
    if not api_base or urlsplit(api_base).scheme not in ("http", "https"):
        raise ConfigError(f"{p}: {where}.api_base: must be an http(s) URL, got {api_base!r}")
    creds_raw = acc.get("credentials", {})
    if not isinstance(creds_raw, dict):
        raise ConfigError(f"{p}: {where}.credentials: must be a table of references")
    known_creds = set(platform_cls.required_credentials) | set(platform_cls.optional_credentials)
    _no_unknown(creds_raw, known_creds, p, f"{where}.credentials")
    credentials = {}
    for key in platform_cls.required_credentials:
        if key not in creds_raw:
            raise ConfigError(f"{p}: {where}.credentials.{key}: is required for platform {platform_id!r}")
    for key, ref in creds_raw.items():
        credentials[key] = resolver.resolve(ref, f"{where}.credentials.{key}", api_base)
    options = _options(platform_cls, acc.get("options", {}), p, where)
    template = acc.get("template")
    if template is not None:
        from .compose import check_template

        try:
            check_template(template)
        except ValueError as e:
            raise ConfigError(f"{p}: {where}.template: {e}") from None
    utm = _utm(acc.get("utm", True), platform_id, p, where)
    rate = acc.get("rate_limit")
    rate_limit = None
    if rate is not None:
        if not (isinstance(rate, dict) and set(rate) <= {"count", "per_seconds"} and "count" in rate):
            raise ConfigError(f"{p}: {where}.rate_limit: must be {{count = N, per_seconds = S}}")
        count, per = rate["count"], rate.get("per_seconds", 60)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (count, per)):
            raise ConfigError(f"{p}: {where}.rate_limit: count and per_seconds must be finite numbers")
        rate_limit = (int(count), float(per))
        if rate_limit[0] <= 0 or rate_limit[1] <= 0:
            raise ConfigError(f"{p}: {where}.rate_limit: count and per_seconds must be positive")
    tz = acc.get("timezone")
    if tz is not None:
        _check_zone(tz, p, f"{where}.timezone")
    slots = None
    if "slots" in acc:
        from .timeparse import Slots

        if not isinstance(acc["slots"], dict) or set(acc["slots"]) - {"days", "times"}:
            raise ConfigError(f"{p}: {where}.slots: must be {{days = \"mon-fri\", times = [\"09:00\", ...]}}")
        try:
            slots = Slots.parse(acc["slots"], f"{where}.slots")
        except ValueError as e:
            raise ConfigError(f"{p}: {e}") from None
    max_late = acc.get("max_lateness_minutes")
    needs = acc.get("requires_approval")
    if needs is not None and not isinstance(needs, bool):
        raise ConfigError(f"{p}: {where}.requires_approval: must be true or false")
    alert_webhook, alert_secret = _alerts(acc.get("alerts", {}), p, f"{where}.alerts", resolver)
    return Account(
        name=name,
        platform=platform_id,
        api_base=api_base.rstrip("/"),
        credentials=credentials,
        options=options,
        template=template,
        utm=utm,
        rate_limit=rate_limit,
        retry=_retry(acc.get("retry", {}), p, f"{where}.retry", default_retry),
        timezone=tz,
        slots=slots,
        min_spacing=_num(acc, "min_spacing_minutes", p, where, 0.0) * 60,
        max_lateness=None if max_late is None else _num(acc, "max_lateness_minutes", p, where, 15.0) * 60,
        alert_webhook=alert_webhook,
        alert_secret=alert_secret,
        requires_approval=needs,
    )


def _options(platform_cls: Any, raw: Any, p: Path, where: str) -> Any:
    """The account's options parsed by its platform; a bad one names ``accounts.NAME.options.KEY``."""
    from .platforms.spec import OptionError

    try:
        return platform_cls.parse_options(raw)
    except OptionError as e:
        raise ConfigError(f"{p}: {where}.options.{e.key}: {e.problem}") from None
    except ValueError as e:
        raise ConfigError(f"{p}: {where}.options: {e}") from None


class _CredentialResolver:
    def __init__(self, p: Path, env: dict[str, str], secrets_file: Path | None):
        self.p, self.env, self.secrets_file = p, env, secrets_file
        self._file_values: dict[str, Any] | None = None

    def resolve(self, ref: Any, where: str, api_base: str) -> Secret:
        p = self.p
        if not isinstance(ref, str) or ":" not in ref:
            raise ConfigError(
                f"{p}: {where}: must be a reference like \"env:VAR\", \"file:KEY\" or \"sandbox:\" "
                "(never the secret itself)"
            )
        kind, _, name = ref.partition(":")
        if kind == "env":
            if not name:
                raise ConfigError(f"{p}: {where}: env: reference needs a variable name")
            if not self.env.get(name):
                raise ConfigError(f"{p}: {where}: environment variable {name} is not set")
            return Secret(self.env[name])
        if kind == "file":
            values = self._load_file(where)
            if name not in values or not isinstance(values[name], str):
                raise ConfigError(f"{p}: {where}: key {name!r} not found in secrets file {self.secrets_file}")
            return Secret(values[name])
        if kind == "sandbox":
            if not is_loopback_url(api_base):
                raise ConfigError(f"{p}: {where}: sandbox: credentials only work with a loopback api_base")
            key = where.rsplit(".", 1)[-1]
            return Secret(SANDBOX_SECRET_PREFIX + key)
        raise ConfigError(f"{p}: {where}: unknown reference kind {kind!r} (use env:, file: or sandbox:)")

    def _load_file(self, where: str) -> dict[str, Any]:
        if self._file_values is None:
            if self.secrets_file is None:
                raise ConfigError(f"{self.p}: {where}: file: reference but no [secrets] file is configured")
            try:
                self._file_values = tomllib.loads(self.secrets_file.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{self.p}: secrets.file: cannot read {self.secrets_file}: {e}") from None
        return self._file_values


def _alerts(table: Any, p: Path, where: str, resolver: _CredentialResolver) -> tuple[str | None, Secret | None]:
    """``{webhook = URL, secret = REF}``: where to send signed delivery notices, and the signing key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{p}: {where}: must be {{webhook = \"https://…\", secret = \"env:VAR\"}}")
    _no_unknown(table, {"webhook", "secret"}, p, where)
    url = table.get("webhook")
    if url is None:
        if "secret" in table:
            raise ConfigError(f"{p}: {where}.secret: given without a webhook")
        return None, None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{p}: {where}.webhook: must be an http(s) URL")
    secret = resolver.resolve(table["secret"], f"{where}.secret", url) if "secret" in table else None
    return url, secret


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _utm(value: Any, platform_id: str, p: Path, where: str) -> dict[str, str] | None:
    if value is False:
        return None
    base = {"utm_source": platform_id, "utm_medium": "social", "utm_campaign": "sharer"}
    if value is True:
        return base
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: {where}.utm: must be true, false or a table")
    _no_unknown(value, {"enabled", "source", "medium", "campaign"}, p, f"{where}.utm")
    if value.get("enabled", True) is False:
        return None
    for k in ("source", "medium", "campaign"):
        if k in value:
            if not isinstance(value[k], str) or not value[k]:
                raise ConfigError(f"{p}: {where}.utm.{k}: must be a non-empty string")
            base[f"utm_{k}"] = value[k]
    return base


def _retry(value: Any, p: Path, where: str, default: RetryPolicy) -> RetryPolicy:
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: {where}: must be a table")
    _no_unknown(value, {"base", "cap", "max_attempts", "deadline"}, p, where)
    return RetryPolicy(
        base=_num(value, "base", p, where, default.base),
        cap=_num(value, "cap", p, where, default.cap),
        max_attempts=int(_num(value, "max_attempts", p, where, default.max_attempts)),
        deadline=_num(value, "deadline", p, where, default.deadline),
    )


def not_one_of(value: object, allowed: tuple[str, ...], *, quoted: bool = False) -> str | None:
    """Why ``value`` is not among ``allowed`` (None when it is), in the one wording config errors use:
    ``must be one of a, b, got 'x'``, or ``quoted``: ``must be "a" or "b", got 'x'`` (an allowed "" is
    the unset default and not shown). Shared by this module and the platforms' option checks."""
    if value in allowed:
        return None
    if not quoted:
        return f"must be one of {', '.join(allowed)}, got {value!r}"
    shown = [f'"{a}"' for a in allowed if a]
    listed = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
    return f"must be {listed}, got {value!r}"


def _check_zone(name: str, p: Path, where: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{p}: {where}: unknown time zone {name!r}") from None


def _table(raw: dict, key: str, p: Path) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: [{key}]: must be a table")
    return value


def _no_unknown(table: dict, known: set[str], p: Path, where: str) -> None:
    for key in table:
        if key not in known:
            name = f"{where}.{key}" if where else key
            raise ConfigError(f"{p}: {name}: unknown key (expected one of: {', '.join(sorted(known))})")


def _str(table: dict, key: str, p: Path, where: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{p}: {where}.{key}: must be a string")
    return value


def _num(table: dict, key: str, p: Path, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{p}: {where}.{key}: must be a finite, non-negative number")
    return float(value)


def _str_list(table: dict, key: str, p: Path, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise ConfigError(f"{p}: {where}.{key}: must be a list of non-empty strings")
    return [x.strip() for x in value]


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
