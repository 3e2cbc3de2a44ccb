"""WeChat things an editor does outside a delivery: send the preview to a phone, read the mass quota.

Used by ``sharer preview --send-to`` and the dashboard's "send to my phone" button. Plain Python over a
``Runtime`` (blocking HTTP: web routes call it from a plain ``def`` route, i.e. the threadpool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .article import Article
from .errors import InputError
from .platforms.base import DeliveryContext
from .platforms.wechat import PhonePreview, WeChat
from .runtime import Runtime

if TYPE_CHECKING:
    from .platforms._wechat_quota import Quota

MAX_SEND_TO = 200  # a WeChat ID is at most 20 characters, an openid 28; anything this long is a mistake


def wechat_accounts(rt: Runtime, accounts: list[str]) -> list[str]:
    return [a for a in accounts if rt.settings.account(a).platform == WeChat.id]


def send_to_phone(rt: Runtime, article: Article, accounts: list[str], send_to: str,
                  overrides: dict[str, str] | None = None) -> list[PhonePreview]:
    """Create each WeChat account's real draft and send it to ``send_to``'s phone (``message/mass/preview``).

    ``send_to`` is a WeChat ID, or ``openid:OPENID``. Raises ``InputError`` when no account is a WeChat
    account or ``send_to`` is empty; a platform refusal is a ``DeliveryError`` with WeChat's reason.
    """
    send_to = (send_to or "").strip()
    if not send_to or send_to == "openid:" or len(send_to) > MAX_SEND_TO or any(c.isspace() for c in send_to):
        raise InputError("--send-to", "give the previewer's WeChat ID, or openid:OPENID")
    targets = wechat_accounts(rt, accounts)
    if not targets:
        raise InputError("--send-to", "a preview can be sent to a phone only from a WeChat account: name one in --to")
    sent = []
    for name in targets:
        account = rt.settings.account(name)
        platform = WeChat(account)
        post = platform.compose(article, (overrides or {}).get(name))
        ctx = DeliveryContext(delivery_id=f"preview-{name}", account=account, session=rt.session,
                              timeout=rt.settings.http_timeout, redis=rt.redis, keys=rt.keys,
                              media_rewrite=rt.settings.media_rewrite)
        sent.append(platform.send_preview(post, ctx, send_to))
    return sent


def mass_quota(rt: Runtime, account_name: str) -> Quota | None:
    """The account's mass-send quota now (``_wechat_quota.Quota``), or None if it does not mass-send."""
    from .platforms import _wechat_quota as quota

    account = rt.settings.account(account_name)
    if account.platform != WeChat.id or account.options.publish_mode != "mass":
        return None
    return quota.status(rt.redis, rt.keys, account)


def handle_event(rt: Runtime, account_name: str, query: dict[str, str], body: bytes, method: str) -> str:
    """WeChat calling the account's server URL: the ``echostr`` handshake (GET) or a result event (POST).

    A ``MASSSENDJOBFINISH`` / ``PUBLISHJOBFINISH`` for a delivery that is waiting for its next poll makes
    it poll now (the poll stays the truth). Raises ``EventError`` for an unknown account, an account with
    no ``callback_token``, a bad signature or a bad body.
    """
    import time

    from .platforms import _wechat_events as events

    account = rt.settings.accounts.get(account_name)
    if account is None or account.platform != WeChat.id or not account.has_secret("callback_token"):
        raise events.EventError("no WeChat callback is configured for this account", 404)
    events.verify(account.secret("callback_token"), query)
    if method == "GET":
        return query.get("echostr", "")
    event = events.parse(body)
    if event.kind not in events.EVENTS or not event.job_id:
        return "success"
    kind = "msg" if event.kind == "MASSSENDJOBFINISH" else "job"
    found = rt.redis.get(rt.keys.cache(account_name, f"wechat-{kind}:{event.job_id}"))
    if found:
        did = found.decode() if isinstance(found, bytes) else found
        note = f"WeChat reported {event.kind} for {event.job_id} ({event.status or 'no status'}): checking now"
        if rt.store.transition(did, "retrying", None, note, fields={"not_before": time.time()}).ok:
            rt.queue.enqueue(did, account=account_name)
    return "success"
