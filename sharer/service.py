"""The core API used by the CLI, the web app and tests: preview, share, status, log.

Everything here is plain Python over a ``Runtime``; no Celery, no HTTP framework.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from .article import Article
from .errors import InputError, NotFound
from .platforms import get_platform
from .platforms.base import Post
from .runtime import Runtime
from .store.deliveries import STATUSES, TERMINAL, Delivery


def new_id(prefix: str) -> str:
    """Time-ordered, unguessable ids: ``sh_``/``dl_`` + hex milliseconds + random hex."""
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def preview(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
            ) -> list[Post]:
    """Compose each account's post exactly as delivery will (same pure function)."""
    overrides = overrides or {}
    posts = []
    for name in accounts:
        account = rt.settings.account(name)
        platform = get_platform(account.platform)(account)
        posts.append(platform.compose(article, overrides.get(name)))
    return posts


@dataclass(frozen=True)
class ShareResult:
    share_id: str
    deliveries: list[Delivery]


def share(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None = None
          ) -> ShareResult:
    """Create a share with one queued delivery per account, then enqueue one task per delivery.

    Every post is composed first, so a bad override fails here and nothing is stored.
    """
    accounts = _unique_accounts(accounts)
    unknown_override = set(overrides or {}) - set(accounts)
    if unknown_override:
        raise InputError("text", f"override for account {sorted(unknown_override)[0]!r} which is not in --to")
    posts = preview(rt, article, accounts, overrides)
    share_id = new_id("sh")
    deliveries = []
    for name, post in zip(accounts, posts):
        deliveries.append({
            "id": new_id("dl"), "account": name, "platform": post.platform, "post": post.to_dict(),
            "override": (overrides or {}).get(name),
        })
    rt.store.create_share(
        {"id": share_id, "article": article.to_dict(), "title": article.title, "url": article.url,
         "delivery_ids": [d["id"] for d in deliveries]},
        deliveries,
    )
    for d in deliveries:
        rt.queue.enqueue(d["id"], account=d["account"])
    return ShareResult(share_id, rt.store.get_many([d["id"] for d in deliveries]))


def status(rt: Runtime, share_id: str) -> list[Delivery]:
    share = rt.store.share(share_id)
    if share is None:
        raise NotFound(f"no share with id {share_id!r}")
    return rt.store.get_many(share["delivery_ids"])


def delivery(rt: Runtime, delivery_id: str) -> Delivery:
    d = rt.store.get(delivery_id)
    if d is None:
        raise NotFound(f"no delivery with id {delivery_id!r}")
    return d


def log(rt: Runtime, *, status: str | None = None, account: str | None = None, since: float | None = None,
        limit: int = 50, cursor: str | None = None) -> tuple[list[Delivery], str | None]:
    if status and status not in STATUSES:
        raise InputError("status", f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    if account:
        rt.settings.account(account)
    if not 1 <= limit <= 1000:
        raise InputError("limit", "must be between 1 and 1000")
    return rt.store.query(status=status, account=account, since=since, limit=limit, cursor=cursor)


def wait(rt: Runtime, share_id: str, timeout: float = 600.0, on_update=None, poll: float = 0.2) -> list[Delivery]:
    """Block until every delivery of the share is terminal (or needs an editor), or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        ds = status(rt, share_id)
        if on_update:
            on_update(ds)
        if all(is_settled(d) for d in ds) or time.monotonic() > deadline:
            return ds
        time.sleep(poll)


def is_settled(d: Delivery) -> bool:
    return d.status in TERMINAL or d.status == "needs_review"


def purge(rt: Runtime) -> int:
    return rt.store.purge(time.time() - rt.settings.retention_days * 86400)


def _unique_accounts(accounts: list[str]) -> list[str]:
    out: list[str] = []
    for a in accounts:
        a = a.strip()
        if a and a not in out:
            out.append(a)
    if not out:
        raise InputError("to", "name at least one account")
    return out
