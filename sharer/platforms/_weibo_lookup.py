"""Weibo reconciliation, kept apart from the wire calls: which timeline status is ours (pure), and
the account's uid remembered in Redis (so a lookup ignores anyone else's statuses).

``match_timeline`` reads one ``statuses/user_timeline`` page: newest first, t.cn links instead of
ours, ``created_at`` in Weibo's own format and clock.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..errors import Ambiguous
from ._lookup import Age, age
from ._weibo_text import comparable, parse_created_at

if TYPE_CHECKING:
    from .base import DeliveryContext

LOOKUP_COUNT = 100  # user_timeline's largest page: one call (of the 100 a day) sees the most
UID_CACHE = "weibo-uid"


def owner_of(status: dict[str, Any]) -> str:
    user = status.get("user") or {}
    return str(user.get("idstr") or user.get("id") or status.get("uid") or "")


def match_timeline(page: dict[str, Any], text: str, uid: str | None, *, window_start: float | None,
                   since: float | None, duplicate: bool) -> tuple[dict[str, Any] | None, bool]:
    """(the status that is ours, whether it is an earlier one Weibo already had), or (None, False) when
    the page proves there is none. Raises ``Ambiguous`` when it cannot tell.

    Ours: the account's own (its uid when known; not a repost), the same text once links and
    whitespace are removed, made after the first attempt began (``_lookup.age``). ``since`` is the
    earliest moment a lookup must reach back to (``window_start - CLOCK_SLACK``).
    """
    needle = comparable(text)
    if not needle:
        raise Ambiguous("the status has no text besides its link, so it cannot be told apart on the timeline")
    statuses = [s for s in page.get("statuses") or [] if isinstance(s, dict)]
    found: dict[Age, list[dict[str, Any]]] = {a: [] for a in Age}
    for status in statuses:
        owner = owner_of(status)
        if (uid and owner and owner != uid) or status.get("retweeted_status"):
            continue
        if comparable(str(status.get("text") or "")) == needle:
            found[age(parse_created_at(status.get("created_at")), window_start, duplicate)].append(status)
    if found[Age.OURS]:
        return found[Age.OURS][-1], False  # newest first: the oldest match is the first made
    if duplicate and found[Age.EARLIER]:
        return found[Age.EARLIER][0], True
    if found[Age.NEAR]:
        near = found[Age.NEAR][0]
        raise Ambiguous(f"a status with the same text ({near.get('idstr') or near.get('id')}, "
                        f"{near.get('created_at')}) was made just before the first attempt: ours if Weibo's "
                        "clock runs behind, or an earlier share")
    oldest = parse_created_at(statuses[-1].get("created_at")) if statuses else None
    # the whole timeline was seen: a short page, and the total (when Weibo says it) no larger — a
    # short page alone could be a server that caps ``count`` below what we asked for
    total = page.get("total_number")
    whole = len(statuses) < LOOKUP_COUNT and (not isinstance(total, int) or total <= len(statuses))
    if whole or (since is not None and oldest is not None and oldest < since):
        return None, False
    reach = "the account's start" if since is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(since))
    raise Ambiguous(f"the newest {len(statuses)} statuses on the timeline do not reach back to {reach}, "
                    "so the status may be further down")


def remember_uid(status: dict[str, Any], ctx: DeliveryContext) -> None:
    """The account's uid, from a status it made: lookups then ignore anyone else's statuses."""
    user = status.get("user") or {}
    uid = user.get("idstr") or user.get("id")
    if uid and ctx.redis is not None and ctx.keys is not None:
        try:
            ctx.redis.set(ctx.keys.cache(ctx.account.name, UID_CACHE), json.dumps(str(uid)))
        except Exception:  # a cache: never worth failing a delivery over
            pass


def known_uid(ctx: DeliveryContext) -> str | None:
    if ctx.redis is None or ctx.keys is None:
        return None
    try:
        raw = ctx.redis.get(ctx.keys.cache(ctx.account.name, UID_CACHE))
        return str(json.loads(raw)) if raw else None
    except Exception:  # a cache: without it the timeline is simply not filtered by uid
        return None
