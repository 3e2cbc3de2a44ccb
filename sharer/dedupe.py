"""Repeat protection for shares: idempotency keys (per caller) and recent duplicates (per article and account).

Two different questions:

* **Idempotency key** — "is this the same trigger again?" A key belongs to one caller (a dashboard
  user, an API token's user, an OS user of the CLI), so two callers can never collide. The same key
  with the same request returns the first share; the same key with a *different* request (article,
  accounts, texts or time) is refused — silently returning the old share would hide a real change.
* **Duplicate** — "did this account already get this article?" Keyed by the article's content (title,
  url, summary, body, image) and the account (plus that account's own text, if any): a corrected
  summary is a new article; an account that already had it within ``duplicate_window_hours`` is
  reported with the earlier delivery, the others go out.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .article import Article
from .errors import InputError
from .runtime import Runtime
from .store.deliveries import Delivery

# An earlier delivery in one of these statuses did not put the post on the account: not a duplicate.
NOT_OUT = ("failed", "cancelled")


@dataclass(frozen=True)
class Earlier:
    """The earlier delivery of the same article to the same account, which a new share skipped."""

    account: str
    delivery: Delivery

    def to_json(self) -> dict[str, Any]:
        d = self.delivery
        return {"share_id": d.share_id, "delivery_id": d.id, "status": d.status, "post_url": d.post_url,
                "created_at": d.created_at}


class IdempotencyConflict(InputError):
    """The key was already used for a different request (HTTP 409, CLI exit 2)."""

    def __init__(self, share_id: str):
        super().__init__("idempotency_key", f"already used for share {share_id} with a different request "
                                            "(article, accounts, texts or time differ); use a new key")
        self.share_id = share_id


def _digest(*parts: Any) -> str:
    material = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def content_digest(article: Article) -> str:
    """What makes two articles "the same" for duplicate detection (a multi-article push: all of them)."""
    parts: list[object] = [article.title, article.url, article.summary, article.body_html, article.image]
    extras = getattr(article, "extra_articles", ())
    if extras:  # a multi-article push is another share than its lead alone
        parts.append([content_digest(a) for a in extras])
    return _digest(*parts)


def request_fingerprint(article: Article, accounts: list[str], overrides: dict[str, str] | None,
                        timing: dict[str, Any]) -> str:
    """Everything a share request asks for: a repeated key must come with the same one."""
    return _digest(article.to_dict() | {"source": None}, sorted(accounts), sorted((overrides or {}).items()),
                   timing)


def claim_key(rt: Runtime, scope: str, key: str, fingerprint: str, share_id: str, ttl: float) -> str | None:
    """Take ``key`` (within ``scope``) for ``share_id``. Returns the first share's id when the same request
    used the key before; raises ``IdempotencyConflict`` when a different one did."""
    redis_key = rt.keys.dedupe("key:" + _digest(scope, key))
    value = json.dumps({"share": share_id, "fp": fingerprint, "at": time.time()})
    if rt.redis.set(redis_key, value, nx=True, ex=int(ttl)):
        return None
    earlier = _read(rt.redis.get(redis_key))
    earlier_id = earlier.get("share")
    if not earlier_id or rt.store.share_delivery_ids(earlier_id) is None:
        if _in_flight(earlier):
            raise InputError("idempotency_key", f"a share with this key ({earlier_id}) is being created right "
                                                "now; repeat the request in a moment")
        rt.redis.set(redis_key, value, ex=int(ttl))  # purged, or its writer died before writing it
        return None
    if earlier.get("fp") != fingerprint:
        raise IdempotencyConflict(earlier_id)
    return earlier_id


def release_key(rt: Runtime, scope: str, key: str, share_id: str) -> None:
    """Give a key back when the share it was taken for was not written."""
    redis_key = rt.keys.dedupe("key:" + _digest(scope, key))
    if _read(rt.redis.get(redis_key)).get("share") == share_id:
        rt.redis.delete(redis_key)


def claim_accounts(rt: Runtime, article: Article, accounts: list[str], overrides: dict[str, str] | None,
                   share_id: str, forced: set[str]) -> tuple[dict[str, Earlier], list[str]]:
    """Mark this article as sent to each account not in ``forced``; returns the accounts that already had
    it (with the earlier delivery) and the Redis keys this call took (to release if the share fails)."""
    window = rt.settings.duplicate_window
    if window <= 0:
        return {}, []
    content = content_digest(article)
    found: dict[str, Earlier] = {}
    taken: list[str] = []
    for name in accounts:
        if name in forced:
            continue
        key = rt.keys.dedupe("acct:" + _digest(content, name, (overrides or {}).get(name)))
        value = json.dumps({"share": share_id, "at": time.time()})
        if not rt.redis.set(key, value, nx=True, ex=int(window)):
            claim = _read(rt.redis.get(key))
            earlier = _earlier_delivery(rt, str(claim.get("share") or ""), name)
            if earlier is not None and earlier.status not in NOT_OUT:
                found[name] = Earlier(name, earlier)
                continue
            if earlier is None and _in_flight(claim):  # another share of it is being written right now
                release_accounts(rt, taken, share_id)
                raise InputError("to", f"account {name!r} is being sent this article by another share right now "
                                       f"({claim.get('share')}); repeat in a moment, or force it")
            rt.redis.set(key, value, ex=int(window))  # the earlier one never went out: this one may
        taken.append(key)
    return found, taken


def release_accounts(rt: Runtime, keys: list[str], share_id: str) -> None:
    for key in keys:
        if _read(rt.redis.get(key)).get("share") == share_id:
            rt.redis.delete(key)


IN_FLIGHT_SECONDS = 60.0  # a claim whose share is not written yet is another request still writing it


def _in_flight(claim: dict[str, Any]) -> bool:
    return time.time() - float(claim.get("at") or 0) < IN_FLIGHT_SECONDS


def _read(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _earlier_delivery(rt: Runtime, share_id: str, account: str) -> Delivery | None:
    ids = rt.store.share_delivery_ids(share_id) if share_id else None
    if not ids:
        return None
    return next((d for d in rt.store.get_many(ids, with_events=False) if d.account == account), None)
