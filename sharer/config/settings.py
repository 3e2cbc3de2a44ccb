"""The typed settings the rest of sharer reads: ``Settings``, ``Account``, ``RetryPolicy``, ``Workflow``.

Frozen dataclasses only; reading them from TOML is ``sharer.config.parse``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .credentials import Secret

if TYPE_CHECKING:
    from ..fetch import FetchPolicy


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


DEFAULT_MAX_ARTICLE_BYTES = 5 * 1024 * 1024


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
        from ..fetch import FetchPolicy

        return FetchPolicy.build(self.fetch_allow_hosts, self.fetch_allow_networks,
                                 [*self.media_rewrite.values(), *extra_origins])

    def account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none configured"
            raise ConfigError(f"{self.path}: unknown account {name!r} (known: {known})") from None
