"""The WeChat delivery flows: build the draft, then publish (发布) or stop at the draft (群发: ``_wechat_mass``).

Progress is saved in ``ctx.state`` the moment each answer is read (cover ids, image URLs, the draft
``media_id``, ``publish_id``, mass ``msg_id``), and a marker is saved *before* each call that makes
something public (``submit_at``, ``mass_at``), so a later attempt — or reconciliation after a worker
died — knows whether a submit or a send may already have happened:

* publish: a saved ``publish_id`` is only polled again. A ``40007`` on re-submitting our own draft is
  evidence the earlier submit went out (a published draft leaves the draft box): it is confirmed in
  ``freepublish/batchget``, never re-submitted; can't confirm → ``Ambiguous`` → ``needs_review``.
* mass (群发): in ``_wechat_mass``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import Ambiguous, PermanentError, TransientError
from ._wechat_api import WxApi, need
from ._wechat_draft import draft_exists, ensure_draft
from ._wechat_options import WeChatOptions
from .base import DeliveryContext, Post, Receipt
from .http import short

PAGE = 20  # freepublish/batchget: count ≤ 20
MAX_PAGES = 10  # a lookup reads at most 200 published articles before it says it cannot tell
CLOCK_SLACK = 300.0  # WeChat's update_time vs our clock
RECONCILE_PATIENCE = 30.0  # seconds a reconciliation waits for a consumed draft's article to be listed
PUBLISH_STATUS = {
    2: "originality check failed (原创校验失败)", 3: "publishing failed (常规失败)",
    4: "rejected by platform review (平台审核不通过)", 5: "published, then every article was deleted by the user",
    6: "published, then every article was banned by the system",
}


# --- publish (发布) --------------------------------------------------------------------------------

def publish(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> Receipt:
    st = ctx.state
    if st.get("publish_id"):  # an earlier attempt read the job id: only look at that job again
        ctx.step(f"resuming publish job {st['publish_id']}")
        return wait_publish(api, ctx, str(st["publish_id"]), o)
    media_id = ensure_draft(api, post, ctx, o)
    earlier = st.get("submit_at")  # an earlier attempt sent a submit whose answer was never read
    if not earlier:
        st["submit_at"] = time.time()
        ctx.save_state()
    try:
        data = api.call(ctx, "/cgi-bin/freepublish/submit", "publish submit", {"media_id": media_id}, write=True)
    except PermanentError as e:
        if not earlier:
            raise
        # 40007: the draft left the draft box, so the earlier submit went through. (Another refusal of a
        # draft an earlier submit may have consumed is no proof of anything either.) Confirm, never re-submit.
        ctx.step(f"the draft was already submitted by an earlier attempt (errcode {e.code}): looking it up")
        found = find_published(api, post, ctx, o, since=float(earlier), patience=float(o.publish_poll_seconds))
        if found is None:
            what = "was consumed by" if e.code == "40007" else f"was refused ({e.message}) after"
            raise Ambiguous(ctx.redact(f"WeChat draft {media_id} {what} an earlier submit whose answer was lost, "
                                       "and its article is not in the published list"), code=e.code) from None
        return Receipt(found.post_id, found.url, "WeChat had already published this draft (an earlier "
                                                 "attempt's answer was lost)")
    st["publish_id"] = str(need(ctx, data, "publish_id", "publish submit"))
    ctx.save_state()
    remember_job(ctx, "job", st["publish_id"])
    ctx.step(f"publish job {st['publish_id']} submitted")
    return wait_publish(api, ctx, st["publish_id"], o)


def wait_publish(api: WxApi, ctx: DeliveryContext, publish_id: str, o: WeChatOptions) -> Receipt:
    """Poll the job, bounded: a job still running after the bound is resumed by a later attempt."""
    bound = float(o.publish_poll_seconds)
    deadline = time.monotonic() + bound
    interval = max(0.01, float(o.publish_poll_interval))
    told = False
    while True:
        data = api.call(ctx, "/cgi-bin/freepublish/get", "publish status", {"publish_id": publish_id})
        status = data.get("publish_status")
        if status == 0:
            items = (data.get("article_detail") or {}).get("item") or [{}]
            url = items[0].get("article_url")
            article_id = str(data.get("article_id") or "") or None
            _own(ctx, article_id)
            return Receipt(article_id, url, None if url else "published; WeChat returned no article URL")
        if status == 1:
            if not told:
                ctx.step("publish status 1 (publishing)")
                told = True
            if time.monotonic() + interval > deadline:
                raise TransientError(f"still publishing: WeChat publish job {publish_id} is not final after "
                                     f"{bound:g} s; a later attempt resumes polling it")
            time.sleep(interval)
            interval = min(interval * 2, 10.0)
            continue
        if status not in PUBLISH_STATUS:
            raise TransientError(ctx.redact(f"WeChat publish job {publish_id}: unexpected answer "
                                            f"{short(json.dumps(data, ensure_ascii=False), 200)}"))
        meaning = PUBLISH_STATUS[status]
        ctx.step(f"publish status {status} ({meaning})")
        fail_idx = data.get("fail_idx") or []
        where = f" (failed articles: {', '.join(map(str, fail_idx))})" if fail_idx else ""
        raise PermanentError(f"WeChat publish job {publish_id}: {meaning}{where}", code=f"publish_status {status}")


def find_published_post(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> Receipt | None:
    """Reconciliation in publish mode (the worker's ``find_existing``)."""
    st = ctx.state
    publish_id = st.get("publish_id")
    if publish_id:
        data = api.call(ctx, "/cgi-bin/freepublish/get", "publish status", {"publish_id": publish_id})
        if data.get("publish_status") == 0:
            items = (data.get("article_detail") or {}).get("item") or [{}]
            return Receipt(str(data.get("article_id") or "") or None, items[0].get("article_url"))
        return None  # running: a retry resumes this job; failed: a retry reports it — neither re-submits
    submitted = st.get("submit_at")
    if not submitted:
        return None  # no submit was ever sent: nothing can be public (a lost draft/add is private)
    found = find_published(api, post, ctx, o, since=float(submitted), patience=0.0)
    if found is not None:
        return found
    media_id = st.get("draft_media_id")
    if media_id and draft_exists(api, ctx, str(media_id)) is not None:
        return None  # our draft is still in the draft box: no submit consumed it
    # reconciliation holds no lease: look again for a while (the job may still be publishing), not for long
    patience = min(float(o.publish_poll_seconds), RECONCILE_PATIENCE)
    found = find_published(api, post, ctx, o, since=float(submitted), patience=patience)
    if found is not None:
        return found
    raise Ambiguous(ctx.redact(f"a publish submit of WeChat draft {media_id} may have gone through (the draft "
                               "left the draft box) but its article is not in the published list"))


def find_published(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions, *, since: float,
                   patience: float) -> Receipt | None:
    """Our article in ``freepublish/batchget`` (newest first) among those published since ``since``.

    Matched on the lead article's 阅读原文 URL (the tagged URL) and title. None only when the list was
    read back past ``since``; raises ``Ambiguous`` when it could not be (too long) or two articles
    match. With ``patience``, a miss is looked up again until then (a job may still be publishing).
    """
    lead = post.payload
    deadline = time.monotonic() + patience
    pause = max(0.05, float(o.publish_poll_interval))
    while True:
        matches, covered = _scan(api, ctx, lead["content_source_url"], lead["title"], since - CLOCK_SLACK)
        if len(matches) > 1:
            raise Ambiguous(f"{len(matches)} published WeChat articles match this post since the submit; "
                            f"cannot tell which is ours ({', '.join(m.post_id or '?' for m in matches)})")
        if matches:
            _own(ctx, matches[0].post_id)
            return matches[0]
        if not covered:
            raise Ambiguous(f"the WeChat published list has more than {PAGE * MAX_PAGES} articles since the "
                            "submit; cannot tell whether ours is among them")
        if time.monotonic() + pause > deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def _scan(api: WxApi, ctx: DeliveryContext, url: str, title: str, since: float) -> tuple[list[Receipt], bool]:
    matches: list[Receipt] = []
    last = float("inf")
    descending = True  # newest first, as WeChat lists them: only then does an old page end the window
    for page in range(MAX_PAGES):
        data = api.call(ctx, "/cgi-bin/freepublish/batchget", "published list",
                        {"offset": page * PAGE, "count": PAGE, "no_content": 1})
        items = data.get("item") or []
        older = 0
        for item in items:
            stamp = float(item.get("update_time") or (item.get("content") or {}).get("update_time") or 0)
            descending = descending and bool(stamp) and stamp <= last
            last = stamp or last
            if stamp and stamp < since:
                older += 1
                continue
            news = ((item.get("content") or {}).get("news_item") or [{}])[0]
            if news.get("content_source_url") == url and news.get("title") == title and not news.get("is_deleted"):
                owner = _owner(ctx, str(item.get("article_id")))
                if owner in (None, ctx.delivery_id):  # another delivery's receipt is not ours
                    matches.append(Receipt(str(item.get("article_id")), news.get("url"),
                                           "confirmed in WeChat's published list (the submit's answer was lost)"))
        total = int(data.get("total_count") or 0)
        if len(items) < PAGE or (page + 1) * PAGE >= total or (items and older == len(items) and descending):
            return matches, True  # the end of the list, or a whole page older than the window
    return matches, False


def remember_job(ctx: DeliveryContext, kind: str, job_id: Any) -> None:
    """publish_id / msg_id -> this delivery, for WeChat's result events (``_wechat_events``)."""
    if ctx.redis is not None and ctx.keys is not None:
        ctx.redis.set(ctx.keys.cache(ctx.account.name, f"wechat-{kind}:{job_id}"), ctx.delivery_id, ex=7 * 86400)


def _own(ctx: DeliveryContext, article_id: str | None) -> None:
    """Remember which delivery an article is the receipt of, so another delivery's reconciliation of
    the same article (shared twice) does not take it for its own."""
    if article_id and ctx.redis is not None and ctx.keys is not None:
        key = ctx.keys.cache(ctx.account.name, "wechat-article-owners")
        ctx.redis.hsetnx(key, article_id, ctx.delivery_id)
        ctx.redis.expire(key, 30 * 86400)


def _owner(ctx: DeliveryContext, article_id: str) -> str | None:
    if ctx.redis is None or ctx.keys is None:
        return None
    value = ctx.redis.hget(ctx.keys.cache(ctx.account.name, "wechat-article-owners"), article_id)
    return value.decode() if isinstance(value, bytes) else value
