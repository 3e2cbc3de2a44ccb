"""X's images for one post: each uploaded on its own (``POST /2/media/upload``), the ids kept in the
delivery state while X holds them, and part 1 posted with them. Split from ``x.py``, which calls
``first_post``; the URLs come from the composed post (``images_of``).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import DeliveryError, PermanentError
from ..media import fetch_image
from ._x_api import Uploaded, _Api
from .base import DeliveryContext

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")  # GIFs need the chunked upload (not implemented)
MAX_IMAGES = 4  # photos per post (fact sheet §3.3; a GIF or a video would go alone)
MEDIA_MARGIN = 600.0  # an uploaded id is reused only while it has this long left (X keeps it ~24 h)
GONE = "media ids are invalid"  # X's 400 for ids it does not (or no longer) hold


def images_of(payload: dict[str, Any]) -> list[str]:
    """The image URLs a post attaches, in order (a post stored before ``more_images`` has ``image`` only)."""
    return [u for u in [payload.get("image"), *payload.get("more_images", ())] if u][:MAX_IMAGES]


def first_post(api: _Api, ctx: DeliveryContext, text: str, urls: list[str], max_bytes: int) -> str:
    """Post part 1 with its images. Should X refuse ids an earlier attempt saved (dropped before their
    expiry), they are forgotten and uploaded again, once: a 400 made no post, so posting again is safe."""
    ids, reused = _attach(api, ctx, urls, max_bytes)
    try:
        return api.create(text, ids or None, None)
    except PermanentError as e:
        if not reused or GONE not in str(e).lower():
            raise
    ctx.step("X no longer holds the images uploaded earlier: uploading them again")
    ctx.state.pop("media", None)
    ids, _ = _attach(api, ctx, urls, max_bytes)
    return api.create(text, ids or None, None)


def _attach(api: _Api, ctx: DeliveryContext, urls: list[str], max_bytes: int) -> tuple[list[str], bool]:
    """The media ids in the images' order, and whether any came from an earlier attempt.

    Each upload is saved to the delivery state at once (url, id, until when it may be reused), so a
    retry after a failed post or a crash uploads only the images it has no live id for.
    """
    saved = {m["url"]: m for m in ctx.state.get("media", []) if isinstance(m, dict) and m.get("url")}
    ids: list[str] = []
    reused = False
    for url in urls:
        kept = saved.get(url)
        if kept and float(kept.get("until") or 0) > time.time():
            ctx.step(f"image ready (media {kept['id']})")
            ids.append(str(kept["id"]))
            reused = True
            continue
        started = time.time()
        uploaded = _upload(api, ctx, url, max_bytes)
        if uploaded is None:
            continue
        ids.append(uploaded.media_id)
        saved[url] = {"url": url, "id": uploaded.media_id, "until": started + uploaded.expires_after - MEDIA_MARGIN}
        ctx.state["media"] = list(saved.values())
        ctx.save_state()
    return ids, reused


def _upload(api: _Api, ctx: DeliveryContext, url: str, max_bytes: int) -> Uploaded | None:
    """Upload one image. One we cannot fetch or would not send is left out (noted in the log); an upload
    X refuses is an error like any other."""
    try:
        image = fetch_image(ctx, url, max_bytes=max_bytes, allowed=IMAGE_TYPES)
    except DeliveryError as e:
        ctx.step(f"image not attached ({e}); posting without it")
        return None
    uploaded = api.upload(image)
    ctx.step(f"image uploaded ({image.content_type}, {len(image.data)} bytes): media {uploaded.media_id}")
    return uploaded
