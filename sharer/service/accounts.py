"""What the dashboard shows about one account: its latest delivered and failed posts, and a check
that its credentials work (one cheap read on the platform, never a post, never a secret shown).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..platforms import get_platform
from ..runtime import Runtime
from ..store.deliveries import Delivery


def account_activity(rt: Runtime, account: str, scan: int = 200) -> tuple[Delivery | None, Delivery | None]:
    """The account's most recent delivered and most recent failed delivery among its last ``scan``,
    read newest first a page at a time until both are found (usually the first page)."""
    rt.settings.account(account)
    ok = bad = None
    cursor: str | None = None
    seen = 0
    while seen < scan:
        recent, cursor = rt.store.query(account=account, limit=min(25, scan - seen), cursor=cursor,
                                        with_events=False, with_post=False)
        seen += len(recent)
        ok = ok or next((d for d in recent if d.status == "delivered"), None)
        bad = bad or next((d for d in recent if d.status in ("failed", "needs_review")), None)
        if (ok and bad) or cursor is None:
            break
    return ok, bad


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool | None  # None: the platform has no way to check without posting
    message: str


def check_credentials(rt: Runtime, account: str, timeout: float = 5.0) -> CredentialCheck:
    """One cheap read on the platform proving the account's credentials work (never posts)."""
    from ..errors import DeliveryError
    from ..platforms.base import DeliveryContext

    acc = rt.settings.account(account)
    platform = get_platform(acc.platform)(acc)
    ctx = DeliveryContext(delivery_id=f"check-{account}", account=acc, session=rt.session,
                          timeout=min(timeout, rt.settings.http_timeout), redis=rt.redis, keys=rt.keys,
                          media_rewrite=rt.settings.media_rewrite, fetch_policy=rt.settings.fetch_policy())
    try:
        return CredentialCheck(True, ctx.redact(platform.check_credentials(ctx)))
    except NotImplementedError:
        return CredentialCheck(None, "cannot check without posting")
    except DeliveryError as e:
        return CredentialCheck(False, ctx.redact(str(e)))
    except Exception as e:  # a check must never take the page down, nor leak a secret in a message
        return CredentialCheck(False, ctx.redact(f"check failed: {type(e).__name__}"))
