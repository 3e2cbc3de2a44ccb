"""The "tell me when a post failed" webhook: a signed JSON notice when a delivery settles.

Sent by its own Celery task (``sharer.alert``) so a slow alert receiver never delays a post; retried
on failure. Same signature scheme as the webhook platform: ``X-Sharer-Signature: sha256=<hmac>``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .errors import TransientError
from .platforms.webhook import sign
from .redact import redact
from .runtime import Runtime

if TYPE_CHECKING:
    from .config import Secret


def send_alert(rt: Runtime, delivery_id: str, target: str = "global") -> bool:
    """Notify ``[alerts]`` (target "global") or the delivery's account's own ``alerts`` ("account")."""
    d = rt.store.get(delivery_id, with_events=False)
    if d is None:
        return False
    if target == "account":
        account = rt.settings.accounts.get(d.account)
        url, secret = (account.alert_webhook, account.alert_secret) if account else (None, None)
    else:
        url, secret = rt.settings.alert_webhook, rt.settings.alert_secret
    if not url:
        return False
    share = rt.store.share(d.share_id)
    notice = {
        "event": f"delivery.{d.status}", "delivery_id": d.id, "share_id": d.share_id, "account": d.account,
        "platform": d.platform, "status": d.status, "attempts": d.attempts, "post_url": d.post_url,
        "error": d.error, "title": share.title if share else None, "article_url": share.url if share else None,
        "updated_at": d.updated_at,
    }
    body = json.dumps(notice, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Sharer-Delivery": d.id}
    return post_signed(rt, url, secret, body, headers)


def post_signed(rt: Runtime, url: str, secret: Secret | None, body: bytes, headers: dict[str, str]) -> bool:
    """POST a notice to an alert receiver, signed when it has a secret; a failure is worth a retry."""
    if secret:
        headers["X-Sharer-Signature"] = sign(secret.reveal(), body)
    try:
        resp = rt.session.post(url, data=body, headers=headers, timeout=(5, 15))
    except Exception as e:  # requests errors carry the URL; keep only the kind
        raise TransientError(f"alert webhook unreachable: {type(e).__name__}") from None
    if resp.status_code >= 300:
        raise TransientError(redact(f"alert webhook answered HTTP {resp.status_code}"))
    return True
