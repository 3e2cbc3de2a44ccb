"""群发 (mass send) of the WeChat draft to followers, with the quota checked first.

Every send of a delivery carries the same ``clientmsgid`` (made from the delivery id, ≤ 64 bytes);
WeChat answers a repeat with ``45065`` and the earlier ``msg_id``, so a retry after a lost answer or
a killed worker is safe. ``mass_at`` is saved before the send (a send may have happened) and ``msg_id``
the moment the answer is read. If the earlier send consumed our draft (``40007``: a mass-sent draft
leaves the draft box), one fresh draft is made and the same ``clientmsgid`` sent again to learn that
``msg_id``; a second 40007 cannot be explained → ``needs_review``. Completion: ``message/mass/get``,
polled (bounded, resumed by a later attempt like a publish job).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from ..errors import Ambiguous, PermanentError, RateLimited, TransientError
from . import _wechat_quota as quota
from ._wechat_api import WxApi, errcode, error_for_code, need
from ._wechat_draft import ensure_draft
from ._wechat_flows import remember_job
from ._wechat_options import WeChatOptions
from .base import DeliveryContext, Post, Receipt


def clientmsgid(delivery_id: str) -> str:
    """The same for every send of one delivery, ≤ 64 bytes (45067 otherwise)."""
    cid = f"sharer-{delivery_id}"
    return cid if len(cid.encode()) <= 64 else "sharer-" + hashlib.sha256(delivery_id.encode()).hexdigest()[:48]


def _target(o: WeChatOptions) -> tuple[dict[str, Any], str]:
    tag = o.tag_id
    if tag is None:
        return {"is_to_all": True}, "all followers"
    return {"is_to_all": False, "tag_id": int(tag)}, f"followers with tag {tag}"


def mass_send(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> Receipt:
    st = ctx.state
    account = api.account
    if st.get("msg_id"):
        ctx.step(f"resuming mass send {st['msg_id']}")
        return wait_mass(api, ctx, o)
    earlier = st.get("mass_at")  # an earlier attempt sent this mass send; its answer was never read
    if not earlier and ctx.redis is not None and ctx.keys is not None:
        q = quota.take(ctx.redis, ctx.keys, account, ctx.delivery_id)
        ctx.step(f"mass-send quota: {q.describe()}")
    try:
        media_id = ensure_draft(api, post, ctx, o)
    except BaseException:
        if not earlier:
            _give_back(ctx)
        raise
    cid = clientmsgid(ctx.delivery_id)
    if not earlier:
        st["mass_at"], st["clientmsgid"] = time.time(), cid
        ctx.save_state()
    data = _sendall(api, ctx, media_id, cid, o)
    code = errcode(data)
    if code == 40007 and earlier and not st.get("redrafted"):
        # The earlier send consumed our draft. A fresh draft + the same clientmsgid: WeChat answers
        # 45065 with the earlier msg_id (or, if the earlier send never happened, this one goes out once).
        ctx.step("the draft was consumed by an earlier send (errcode 40007): asking again with a fresh draft "
                 "and the same clientmsgid")
        st.pop("draft_media_id", None)
        st["redrafted"] = True
        ctx.save_state()
        data = _sendall(api, ctx, ensure_draft(api, post, ctx, o), cid, o)
        code = errcode(data)
    note = None
    if code == 45065:
        if not data.get("msg_id"):
            raise Ambiguous(ctx.redact("WeChat says this mass send was already made (45065) but gave no msg_id"),
                            code=code)
        note = f"WeChat already had this mass send (clientmsgid {cid})"
        ctx.step(f"{note}: msg_id {data['msg_id']}")
    elif code == 40007 and earlier:
        st["mass_unconfirmed"] = True
        ctx.save_state()
        raise Ambiguous(ctx.redact("WeChat refused the mass send's draft twice (40007): an earlier send may "
                                   "have gone out and cannot be confirmed"), code=code)
    elif code:
        if not earlier:
            _give_back(ctx)
        if code == 45028:
            raise RateLimited(ctx.redact(f"WeChat mass send failed: no mass-send quota left (errcode 45028) on "
                                         f"account {account.name}"), retry_after=quota.seconds_to_reset(account),
                              code=code)
        raise error_for_code(ctx, code, data, "mass send")
    st["msg_id"] = data["msg_id"] if code == 45065 else need(ctx, data, "msg_id", "mass send")
    if data.get("msg_data_id"):
        st["msg_data_id"] = data["msg_data_id"]
    if note:
        st["mass_note"] = note
    ctx.save_state()
    remember_job(ctx, "msg", st["msg_id"])
    if not note:
        ctx.step(f"mass send {st['msg_id']} submitted to {_target(o)[1]}")
    return wait_mass(api, ctx, o)


def _sendall(api: WxApi, ctx: DeliveryContext, media_id: str, cid: str, o: WeChatOptions) -> dict[str, Any]:
    body = {"filter": _target(o)[0], "mpnews": {"media_id": media_id}, "msgtype": "mpnews",
            "send_ignore_reprint": int(bool(o.send_ignore_reprint)), "clientmsgid": cid}
    return api.call(ctx, "/cgi-bin/message/mass/sendall", "mass send", body, write=True, raw=True)


def _give_back(ctx: DeliveryContext) -> None:
    if ctx.redis is not None and ctx.keys is not None:
        quota.give_back(ctx.redis, ctx.keys, ctx.account, ctx.delivery_id)


def wait_mass(api: WxApi, ctx: DeliveryContext, o: WeChatOptions) -> Receipt:
    """Poll ``message/mass/get`` (bounded, resumed by a later attempt like a publish job)."""
    st = ctx.state
    msg_id = st["msg_id"]
    bound = float(o.publish_poll_seconds)
    deadline = time.monotonic() + bound
    interval = max(0.01, float(o.publish_poll_interval))
    told = False
    while True:
        status = _mass_status(api, ctx, msg_id)
        if status == "SEND_SUCCESS":
            to = _target(o)[1]
            note = st.get("mass_note") or f"mass send to {to}"
            return Receipt(str(msg_id), None, f"{note}: msg_id {msg_id}, SEND_SUCCESS (a mass send has no public URL)")
        if status == "SENDING":
            if not told:
                ctx.step(f"mass send {msg_id}: SENDING")
                told = True
            if time.monotonic() + interval > deadline:
                raise TransientError(f"still sending: WeChat mass send {msg_id} is not finished after {bound:g} s; "
                                     "a later attempt resumes polling it")
            time.sleep(interval)
            interval = min(interval * 2, 10.0)
            continue
        if status in ("SEND_FAIL", "DELETE"):
            ctx.step(f"mass send {msg_id}: {status}")
            what = "failed" if status == "SEND_FAIL" else "was deleted"
            raise PermanentError(f"WeChat mass send {msg_id} {what} ({status})", code=f"msg_status {status}")
        raise TransientError(f"WeChat mass send {msg_id}: unexpected msg_status {status!r}")


def _mass_status(api: WxApi, ctx: DeliveryContext, msg_id: Any) -> str:
    data = api.call(ctx, "/cgi-bin/message/mass/get", "mass send status", {"msg_id": msg_id})
    return str(data.get("msg_status") or "")


def find_mass(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> Receipt | None:
    """Reconciliation in mass mode. Without a msg_id, a retry is safe: it carries the same clientmsgid."""
    st = ctx.state
    if st.get("mass_unconfirmed"):
        raise Ambiguous("an earlier mass send of this delivery may have gone out and WeChat cannot confirm it")
    if not st.get("msg_id"):
        return None
    if _mass_status(api, ctx, st["msg_id"]) == "SEND_SUCCESS":
        return Receipt(str(st["msg_id"]), None, f"mass send to {_target(o)[1]}: msg_id {st['msg_id']}, SEND_SUCCESS")
    return None  # sending or failed: a retry resumes polling this msg_id, it never sends again


