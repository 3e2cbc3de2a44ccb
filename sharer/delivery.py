"""One delivery attempt, start to finish: claim the record, compose, publish, record the verdict.

The record in Redis is the truth; a Celery message only nudges it forward. What happens per error class:

* transient (5xx, connect errors, "system busy"): ``retrying`` after full-jitter exponential backoff,
  until ``max_attempts`` or the delivery's deadline, then ``failed``;
* rate-limited: ``retrying`` not before the platform's reset time; not counted as an attempt;
* auth: platform clients refresh their token once themselves; one that still fails is ``failed``
  with "re-authorise account X";
* permanent: ``failed`` at once with the platform's message;
* ambiguous (the request may have reached the platform: read timeout, dropped connection, 502/504,
  a worker that died mid-call, a "duplicate" answer): ``unknown``, then reconcile — never a blind
  retry. A platform with an idempotency key is simply retried with the same key; otherwise we look
  for the post: found -> ``delivered``; proven absent (the lookup covered the whole window since the
  first attempt) -> retry; can't tell -> ``needs_review``. After "duplicate" the earlier post found
  is ``delivered`` with ``already_posted`` and a note naming it, else ``needs_review``; a post the
  platform said it accepted but has not shown yet (Weibo 20032) is looked for later, never resent.

Countdowns never exceed ``MAX_COUNTDOWN``; longer waits are left to the sweeper, which re-nudges
records whose ``not_before`` has passed (long countdowns on a Redis broker get redelivered).
No Celery here: the task is a thin wrapper around ``run_delivery``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from . import logs, metrics
from .article import Article
from .config import Account, RetryPolicy
from .errors import Ambiguous, AuthExpired, DeliveryError, Duplicate, RateLimited, SharerError, TransientError
from .platforms import get_platform
from .platforms.base import DeliveryContext, Platform, Post, Receipt
from .runtime import Runtime
from .store import codec
from .store.deliveries import ClaimOutcome, Delivery, Status

log = logging.getLogger("sharer.delivery")
MAX_COUNTDOWN = 300.0
_platform: ContextVar[str] = ContextVar("sharer_platform", default="unknown")  # for metrics labels


@dataclass(frozen=True)
class Next:
    """What the task does after an attempt: nothing (``countdown`` None) or run again later."""

    countdown: float | None = None


DONE = Next()


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))] (AWS architecture blog)."""
    ceiling = min(policy.cap, policy.base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def rate_for(account: Account) -> tuple[int, float] | None:
    """The account's configured limit, else its platform's documented default (None = unlimited)."""
    if account.rate_limit:
        return account.rate_limit
    return getattr(get_platform(account.platform), "rate_limit", None)


def later(rt: Runtime, delivery_id: str, seconds: float) -> Next:
    """Run again after ``seconds``; a longer wait than a safe countdown goes to the schedule."""
    if seconds <= MAX_COUNTDOWN:
        return Next(max(0.05, seconds))
    rt.schedule.defer(delivery_id, time.time() + seconds)
    return DONE


def run_delivery(rt: Runtime, delivery_id: str, account_name: str | None = None,
                 version: int | None = None) -> Next:
    store = rt.store
    rate = rate_key = None
    if account_name and account_name in rt.settings.accounts:
        _platform.set(rt.settings.accounts[account_name].platform)
        rate = rate_for(rt.settings.accounts[account_name])
        rate_key = rt.keys.rate(account_name) if rate else None
    claim = store.claim(delivery_id, rt.settings.lease_seconds, rate_key=rate_key or "", rate=rate,
                        version=version)
    if claim.outcome is ClaimOutcome.LIMITED:
        metrics.limiter_deferred(_platform.get())
        log.info("delivery %s deferred %.1fs by the account's rate limit", delivery_id, claim.wait_seconds)
        return later(rt, delivery_id, claim.wait_seconds or 0.0)
    if claim.outcome is ClaimOutcome.EARLY:
        return later(rt, delivery_id, (claim.not_before or 0.0) - time.time())
    if claim.outcome is ClaimOutcome.EXPIRED or (claim.outcome is ClaimOutcome.SKIP
                                                 and claim.status is Status.UNKNOWN):
        # a worker died holding it (or an earlier check was interrupted): find out what happened
        return reconcile(rt, delivery_id)
    if not claim.ok:
        log.info("delivery %s not sent now: %s %s", delivery_id, claim.outcome, claim.status or "")
        return DONE
    token, record = claim.token, claim.record
    assert record is not None and token is not None
    _platform.set(record.platform)
    logs.bind(share=record.share_id, platform=record.platform)
    metrics.attempt_started(record.platform)
    rt.replicated()  # behind Sentinel: the claim must outlive a failover, or the post could go out twice
    try:
        if claim.article_json is None:
            raise SharerError(f"share {record.share_id} is gone")
        platform, post = _compose(rt, record, claim.article_json)
    except SharerError as e:
        _fail(rt, record, token, f"cannot compose: {e}", "compose")
        return DONE

    ctx = _context(rt, record, platform.account, token)
    try:
        receipt = platform.publish(post, ctx)
    except DeliveryError as e:
        return _on_error(rt, record, token, platform, post, ctx, e)
    except Exception as e:  # a bug in a client: the post may or may not be out — don't guess
        log.exception("delivery %s: unexpected error", delivery_id)
        err = Ambiguous(ctx.redact(f"internal error: {type(e).__name__}: {e}"))
        return _on_error(rt, record, token, platform, post, ctx, err)
    _delivered(rt, delivery_id, token, post, receipt)
    return DONE


def _compose(rt: Runtime, record: Delivery, article_json: str) -> tuple[Platform, Post]:
    article = Article.from_stored(json.loads(article_json))
    account = rt.settings.account(record.account)
    platform = get_platform(account.platform)(account)
    return platform, platform.compose(article, record.override)


def _context(rt: Runtime, record: Delivery, account: Account, token: int | None) -> DeliveryContext:
    store, did = rt.store, record.id
    allowed = "sending" if token is not None else "unknown"
    return DeliveryContext(
        delivery_id=did, account=account, session=rt.session, timeout=rt.settings.http_timeout,
        redis=rt.redis, keys=rt.keys, state=dict(record.state), media_rewrite=rt.settings.media_rewrite,
        fetch_policy=rt.settings.fetch_policy(),
        on_step=lambda msg: store.transition(did, allowed, None, msg, token=token),
        on_state=lambda state: store.transition(did, allowed, None, "", token=token, fields={"state": state}),
    )


def _on_error(rt: Runtime, record: Delivery, token: int, platform: Platform, post: Post,
              ctx: DeliveryContext, err: DeliveryError) -> Next:
    did = record.id
    message = ctx.redact(str(err))
    account = platform.account
    metrics.attempt_failed(account.platform, err.kind)
    if isinstance(err, RateLimited):
        wait = max(err.retry_after, 0.5)
        _to(rt, did, "sending", "retrying", f"rate-limited; next try in {wait:.0f}s: {message}",
                         token=token, fields={"error": message, "error_kind": err.kind,
                                              "not_before": time.time() + wait, "post": post.to_dict(),
                                              "rate_waits": record.rate_waits + 1})
        return later(rt, did, wait)
    if isinstance(err, Ambiguous) and err.accepted and not platform.idempotent:
        wait = err.check_after
        _to(rt, did, "sending", "unknown", f"{message}; looking for the post now and for {wait:.0f}s more, "
            "never resending", token=token, fields={"error": message, "error_kind": err.kind,
                                                    "post": post.to_dict(), "accepted": "1",
                                                    "not_before": time.time() + wait})
        return reconcile(rt, did)
    if isinstance(err, (Ambiguous, Duplicate)):
        if platform.idempotent and not isinstance(err, Duplicate):
            return _retry_or_fail(rt, record, token, account.retry, post, message, err.kind,
                                  note="safe to resend: the platform de-duplicates by idempotency key")
        _to(rt, did, "sending", "unknown", f"{message}; checking whether the post went out",
                         token=token, fields={"error": message, "error_kind": err.kind, "post": post.to_dict()})
        return reconcile(rt, did)
    if isinstance(err, TransientError):
        return _retry_or_fail(rt, record, token, account.retry, post, message, err.kind)
    if isinstance(err, AuthExpired):
        message = f"re-authorise account {account.name}: {message}"
    _fail(rt, record, token, message, err.kind, post)
    return DONE


def _retry_or_fail(rt: Runtime, record: Delivery, token: int | None, policy: RetryPolicy, post: Post,
                   message: str, kind: str, note: str = "") -> Next:
    """Schedule another attempt with backoff, unless attempts or the deadline are used up."""
    did = record.id
    allowed = "sending" if token is not None else "unknown"
    counted = token if token is not None else record.attempts
    counted -= record.rate_waits + record.attempt_base
    age = time.time() - (record.retried_at or _epoch(record.created_at))
    if counted >= policy.max_attempts or age >= policy.deadline:
        why = f"gave up after {counted} attempts" if counted >= policy.max_attempts else "deadline passed"
        _to(rt, did, allowed, "failed", f"{why}: {message}", token=token,
                            fields={"error": message, "error_kind": kind, "post": post.to_dict()})
        return DONE
    wait = backoff(policy, counted)
    text = f"{message}; retry in {wait:.1f}s" + (f" ({note})" if note else "")
    _to(rt, did, allowed, "retrying", text, token=token,
                        fields={"error": message, "error_kind": kind, "not_before": time.time() + wait,
                                "post": post.to_dict()})
    return later(rt, did, wait)


def reconcile(rt: Runtime, delivery_id: str) -> Next:
    """An ``unknown`` delivery: look for the post on the platform before anything is sent again.

    ``find_existing`` answers found (a receipt), proven absent (None: its lookup covered every post
    since the first attempt began, see ``Platform.find_existing``) or cannot tell (it raises). Only a
    proof of absence leads to another send; a post the platform called a duplicate, or said it had
    accepted, is never sent again: not found then means an editor decides.
    """
    record, article_json = rt.store.load(delivery_id)
    if record is None or record.status != "unknown":
        return DONE
    _platform.set(record.platform)
    try:
        platform, post = _compose(rt, record, article_json or "{}")
    except SharerError as e:
        _to(rt, delivery_id, "unknown", "needs_review", f"cannot check: {e}")
        return DONE
    if platform.idempotent:
        return _retry_or_fail(rt, record, None, platform.account.retry, post, record.error or "interrupted",
                              "ambiguous", note="safe to resend: the platform de-duplicates by idempotency key")
    ctx = _context(rt, record, platform.account, None)
    ctx.window_start = first_attempt_at(rt, record)
    ctx.duplicate = record.error_kind == "duplicate"
    title = platform.title
    try:
        found = platform.find_existing(post, ctx)
    except DeliveryError as e:
        reason = ctx.redact(str(e))
        what = (f"{title} says it already has this post, but we cannot find it" if ctx.duplicate
                else "the post may or may not have been published and we cannot tell")
        _to(rt, delivery_id, "unknown", "needs_review",
            f"{what} ({reason}); check the account, then mark it posted or send it again",
            fields={"error": record.error or reason, "error_kind": record.error_kind or "ambiguous",
                    "accepted": None})
        return DONE
    if found is not None:
        where = found.url or found.note or "no public URL"
        note = found.note
        if found.already_posted and not note:
            note = f"{title} already had this post: {where}"
        message = f"{note}; nothing new was published" if found.already_posted else f"found on the platform: {where}"
        _to(rt, delivery_id, "unknown", "delivered", message,
            fields={"post_id": found.post_id, "post_url": found.url, "note": note, "error": None,
                    "error_kind": None, "post": post.to_dict(), "accepted": None,
                    "already_posted": "1" if found.already_posted else None})
        return DONE
    if record.accepted and (record.not_before or 0) > time.time():
        return later(rt, delivery_id, (record.not_before or 0) - time.time())  # not shown yet: look again later
    if ctx.duplicate or record.accepted:
        why = (f"{title} says it already has this post" if ctx.duplicate
               else f"{title} said it accepted the post ({record.error or 'verify later'})")
        _to(rt, delivery_id, "unknown", "needs_review",
            f"{why}, but it is not among the account's recent posts; it is not sent again: check the "
            "account, then mark it posted or send it again", fields={"accepted": None})
        return DONE
    return _retry_or_fail(rt, record, None, platform.account.retry, post,
                          (record.error or "interrupted") + "; not found on the platform (the lookup covered "
                          "every post since the first attempt)", "transient")


def first_attempt_at(rt: Runtime, record: Delivery) -> float:
    """When the first attempt began (its first ``sending`` event): no post of this delivery is older.

    After an editor's retry (they checked: the post was not there) the window starts at that retry.
    """
    from .clock import parse_iso

    since = record.retried_at or 0.0
    for raw in rt.redis.lrange(rt.keys.events(record.id), 0, -1):
        event = codec.unpack_event(raw)
        if event.get("status") == "sending" and parse_iso(event["at"]).timestamp() >= since:
            return parse_iso(event["at"]).timestamp()
    return max(since, _epoch(record.created_at))


def _fail(rt: Runtime, record: Delivery, token: int, message: str, kind: str, post: Post | None = None) -> None:
    fields: dict[str, Any] = {"error": message, "error_kind": kind}
    if post is not None:
        fields["post"] = post.to_dict()
    _to(rt, record.id, "sending", "failed", message, token=token, fields=fields)


def _delivered(rt: Runtime, delivery_id: str, token: int, post: Post, receipt: Receipt) -> None:
    """Record the receipt. The post is out: if Redis is briefly unreachable, keep trying for the rest
    of the lease rather than lose the receipt (which would leave an editor to check by hand)."""
    where = receipt.url or receipt.note or "no public URL"
    fields = {"post_id": receipt.post_id, "post_url": receipt.url, "note": receipt.note, "error": None,
              "error_kind": None, "post": post.to_dict(), "lease_until": None,
              "already_posted": "1" if receipt.already_posted else None}
    deadline = time.monotonic() + rt.settings.lease_seconds * 0.9
    pause = 0.2
    while True:
        try:
            _to(rt, delivery_id, "sending", "delivered", f"delivered: {where}", token=token, fields=fields)
            return
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            if time.monotonic() + pause > deadline:
                raise
            log.warning("delivery %s: Redis unreachable while recording the receipt; retrying", delivery_id)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


ALERT_ON = ("delivered", "failed", "needs_review")


def _to(rt: Runtime, delivery_id: str, allowed: Iterable[str] | str, new: str | None, message: str,
        **kw: Any) -> bool:
    """A status change; a settled one also triggers the configured alert webhook."""
    result = rt.store.transition(delivery_id, allowed, new, message, **kw)
    if result.ok and new is not None:
        metrics.status_changed(_platform.get(), new)
        log.info("delivery %s -> %s: %s", delivery_id, new, message)
    if result.ok and new in ALERT_ON and rt.settings.alerts_configured:
        rt.queue.send_alert(delivery_id)
    return result.ok


def _epoch(iso_text: str) -> float:
    from .clock import parse_iso

    return parse_iso(iso_text).timestamp()
