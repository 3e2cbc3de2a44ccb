"""The WeChat draft: cover and inline images uploaded once (their ids saved in ``ctx.state`` the
moment each answer is read), the ``draft/add`` made once per delivery; and the draft-only mode and the
phone preview, which stop there. ``_wechat_flows`` publishes it, ``_wechat_mass`` mass-sends it.
"""

from __future__ import annotations

from typing import Any

from ..errors import PermanentError
from ._wechat_api import WxApi, errcode, error_for_code, media, need
from ._wechat_html import download_image, rewrite_images
from ._wechat_image import crops_for
from ._wechat_options import WeChatOptions
from .base import DeliveryContext, Post, Receipt

COVER_MAX_BYTES = 10 * 1024 * 1024  # add_material: image ≤ 10 MB, bmp/png/jpeg/gif
INLINE_MAX_BYTES = 1024 * 1024 - 1  # uploadimg: jpg/png < 1 MB
COVER_KINDS = ("image/jpeg", "image/png", "image/gif", "image/bmp")
INLINE_KINDS = ("image/jpeg", "image/png")
LOCAL_KEYS = ("publish_mode", "cover", "images", "more")  # payload keys that are ours, never sent


# --- the draft ------------------------------------------------------------------------------------

def articles_of(post: Post) -> list[dict[str, Any]]:
    """The lead article then the others, as composed."""
    p = post.payload
    lead = {k: v for k, v in p.items() if k not in ("publish_mode", "more")}
    return [lead, *(p.get("more") or [])]


def ensure_draft(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> str:
    """The saved draft, or a new one (covers and inline images uploaded first, each saved as it goes)."""
    st = ctx.state
    if st.get("draft_media_id"):
        return str(st["draft_media_id"])
    items = articles_of(post)
    multi = len(items) > 1
    draft = []
    for item in items:
        fields = {k: v for k, v in item.items() if k not in LOCAL_KEYS}
        if multi:
            fields.pop("digest", None)  # WeChat uses the digest only for single-article drafts
        fields["thumb_media_id"], crops = _cover(api, ctx, item.get("cover"), o, lead=item is items[0])
        if o.crop_cover:
            fields.update(crops)
        draft.append(fields)
    done = _inline_images(api, ctx, [src for item in items for src in item.get("images", [])])
    for fields in draft:
        fields["content"] = rewrite_images(fields["content"], done)
    data = api.call(ctx, "/cgi-bin/draft/add", "draft/add", {"articles": draft}, write=True)
    st["draft_media_id"] = need(ctx, data, "media_id", "draft/add")
    ctx.save_state()
    ctx.step("draft created" if not multi else f"draft created ({len(draft)} articles)")
    return str(st["draft_media_id"])


def _cover(api: WxApi, ctx: DeliveryContext, cover: str | None, o: WeChatOptions, *,
           lead: bool) -> tuple[str, dict[str, str]]:
    """(thumb_media_id, crop fields) for one article's cover; uploaded once per cover URL."""
    st = ctx.state
    covers: dict[str, Any] = st.setdefault("covers", {})
    key = cover or ""
    if key in covers:
        return covers[key]["media_id"], covers[key].get("crops", {})
    if lead and st.get("thumb_media_id"):  # saved by an attempt made before multi-article support
        return str(st["thumb_media_id"]), {}
    if cover:
        img = download_image(ctx, cover, "cover image", COVER_MAX_BYTES, COVER_KINDS)
        data = api.call(ctx, "/cgi-bin/material/add_material", "cover upload", None, params={"type": "image"},
                        files=media(img), write=True)
        covers[key] = {"media_id": need(ctx, data, "media_id", "cover upload"), "crops": crops_for(img.data)}
        ctx.step("cover uploaded")
    elif o.default_cover_media_id:
        covers[key] = {"media_id": o.default_cover_media_id, "crops": {}}
        ctx.step("using the account's default cover")
    else:
        raise PermanentError("WeChat news needs a cover image")
    ctx.save_state()
    return covers[key]["media_id"], covers[key]["crops"]


def _inline_images(api: WxApi, ctx: DeliveryContext, srcs: list[str]) -> dict[str, str | None]:
    done: dict[str, str | None] = ctx.state.setdefault("images", {})
    uploaded = dropped = 0
    try:
        for src in dict.fromkeys(srcs):
            if src in done:
                continue
            try:
                img = download_image(ctx, src, "inline image", INLINE_MAX_BYTES, INLINE_KINDS)
            except PermanentError as e:  # a broken/unsupported inline image is left out, not fatal
                done[src] = None
                dropped += 1
                ctx.step(f"inline image dropped: {e.message}")
                continue
            data = api.call(ctx, "/cgi-bin/media/uploadimg", "inline image upload", None, files=media(img),
                            write=True)
            done[src] = need(ctx, data, "url", "inline image upload")
            uploaded += 1
    finally:
        if uploaded or dropped:
            ctx.save_state()
    if uploaded:
        ctx.step(f"{uploaded} inline image{'s' if uploaded != 1 else ''} uploaded")
    return done


def draft_exists(api: WxApi, ctx: DeliveryContext, media_id: str) -> dict[str, Any] | None:
    """``draft/get``: the draft's answer, or None when WeChat does not show it (40007, or any refusal:
    only a draft WeChat really shows counts as "still in the draft box", which allows a submit)."""
    data = api.call(ctx, "/cgi-bin/draft/get", "draft lookup", {"media_id": media_id}, raw=True)
    code = errcode(data)
    if code == -1:
        raise error_for_code(ctx, code, data, "draft lookup")
    return None if code or not data.get("news_item") else data


# --- draft only, and the preview to a phone --------------------------------------------------------

def draft_only(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions) -> Receipt:
    media_id = ensure_draft(api, post, ctx, o)
    return _draft_receipt(api, ctx, media_id, len(articles_of(post)))


def _draft_receipt(api: WxApi, ctx: DeliveryContext, media_id: str, count: int) -> Receipt:
    data = draft_exists(api, ctx, media_id)
    items = (data or {}).get("news_item") or [{}]
    url = items[0].get("url")
    what = "draft saved" if count == 1 else f"draft of {count} articles saved"
    if data is None:
        return Receipt(media_id, None, f"{what}; it has left the draft box (published or deleted in the console)")
    ctx.state["draft_url"] = url
    return Receipt(media_id, url, f"{what} in the WeChat draft box for an editor to finish and publish in the "
                                  "console (the link is a temporary preview)")


def find_draft(api: WxApi, post: Post, ctx: DeliveryContext) -> Receipt | None:
    media_id = ctx.state.get("draft_media_id")
    if not media_id:
        return None  # a lost draft/add leaves at most a private draft; a retry makes the one we report
    return _draft_receipt(api, ctx, str(media_id), len(articles_of(post)))


def preview_to_phone(api: WxApi, post: Post, ctx: DeliveryContext, o: WeChatOptions,
                     target: dict[str, str]) -> tuple[str | None, str]:
    media_id = ensure_draft(api, post, ctx, o)
    body = {**target, "mpnews": {"media_id": media_id}, "msgtype": "mpnews"}
    data = api.call(ctx, "/cgi-bin/message/mass/preview", "phone preview", body, write=True)
    msg_id = data.get("msg_id")
    return (None if msg_id is None else str(msg_id)), media_id
