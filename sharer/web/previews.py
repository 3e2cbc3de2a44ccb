"""Each post drawn the way its platform will show it, from the composer's own ``Post`` (what is sent).

The view models are built here from ``Post.payload``; ``templates/_look.html`` draws them. Anything that
is HTML on the wire (WeChat's article body, Telegram's ``parse_mode=HTML`` text) is sanitised again
with an allow-list before it reaches the page: it was restricted by the composer already, but the page
must not trust that. Image addresses go through ``[media] rewrite`` like at delivery, so the preview
shows the very file the platform will receive.

A platform without a drawing here gets one by adding ``templates/looks/<platform id>.html``: it is found
by id and receives the payload as sent (``l.p``), an ``l.img(url)`` that applies the same image rules,
and the text-format filters of ``sharer.web.richtext``. Without either, the post shows as its JSON.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import nh3

from ..media import rewrite

# Telegram's HTML subset (core.telegram.org/bots/api#html-style)
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
                 "tg-spoiler", "span", "tg-emoji"}
TELEGRAM_ATTRS = {"a": {"href"}, "span": {"class"}, "code": {"class"}, "blockquote": {"expandable"}}
WECHAT_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "strong", "b",
               "em", "i", "u", "s", "del", "ins", "sub", "sup", "mark", "small", "ul", "ol", "li", "a", "img",
               "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td", "caption", "span", "section"}
LAYOUTS = Path(__file__).resolve().parent / "templates" / "looks"
PLATFORM_ID = re.compile(r"[a-z][a-z0-9]*")  # never a path: ids are plain words (and _partials stay private)
WECHAT_ATTRS = {"a": {"href"}, "img": {"src", "alt"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def image(url: str | None, rules: dict[str, str]) -> str | None:
    if not url or not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return rewrite(url, rules)


def safe_html(markup: str, tags: set[str], attributes: dict[str, set[str]], rules: dict[str, str],
              classes: frozenset[str] | set[str] = frozenset({"tg-spoiler"})) -> str:
    def attr(tag: str, name: str, value: str) -> str | None:
        if tag == "img" and name == "src":
            return image(value, rules)
        if tag == "span" and name == "class":
            return value if value in classes else None
        return value

    return nh3.clean(markup or "", tags=tags, attributes=attributes, attribute_filter=attr,
                     url_schemes={"http", "https", "tg"}, link_rel="noopener noreferrer",
                     clean_content_tags={"script", "style"})


def crop_box(value: Any) -> tuple[float, float, float, float] | None:
    """WeChat's ``pic_crop_235_1`` (``"X1_Y1_X2_Y2"`` in 0..1 of the cover), when the composer set one."""
    if not isinstance(value, str):
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value.split("_"))
    except ValueError:
        return None
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        return None
    return x1, y1, x2 - x1, y2 - y1


def look(post: dict[str, Any], rules: dict[str, str], options: Any = None) -> dict[str, Any]:
    """The view model for one post: ``kind`` picks the drawing in ``_look.html``."""
    p, platform = post.get("payload") or {}, post.get("platform")
    if platform == "wechat":
        return {"kind": "wechat", "title": p.get("title", ""), "digest": p.get("digest", ""),
                "author": p.get("author", ""), "cover": image(p.get("cover"), rules),
                "crop": crop_box(p.get("pic_crop_235_1")),
                "body": safe_html(p.get("content", ""), WECHAT_TAGS, WECHAT_ATTRS, rules),
                "source": p.get("content_source_url", ""),
                "mode": getattr(options, "publish_mode", "publish")}
    if platform == "weibo":
        return {"kind": "weibo", "text": p.get("status", ""), "image": image(p.get("pic"), rules)}
    if platform == "x":  # every attached image (up to 4) on the first post, as X shows them
        parts = p.get("parts") or [post.get("text", "")]
        pictures = [u for u in (image(v, rules) for v in [p.get("image"), *(p.get("more_images") or [])]) if u]
        return {"kind": "x", "parts": parts, "image": pictures[0] if pictures else None, "images": pictures}
    if platform == "mastodon":  # up to four attachments, each with its description
        media = [m for m in [p.get("media"), *(p.get("more_media") or [])] if isinstance(m, dict)]
        shown = [(image(m.get("url"), rules), m.get("description", "")) for m in media]
        return {"kind": "mastodon", "text": p.get("status", ""), "images": [(u, alt) for u, alt in shown if u],
                "visibility": p.get("visibility", "")}
    if platform == "telegram":  # sendMessage, sendPhoto, or an album whose caption rides on the first photo
        album = [m for m in p.get("media") or [] if isinstance(m, dict)] if p.get("method") == "sendMediaGroup" else []
        if album:
            markup, photos = album[0].get("caption"), [m.get("media") for m in album]
        elif p.get("method") == "sendPhoto":
            markup, photos = p.get("caption"), [p.get("photo")]
        else:
            markup, photos = p.get("text"), []
        pictures = [u for u in (image(v, rules) for v in photos) if u]
        return {"kind": "telegram", "html": safe_html(markup or "", TELEGRAM_TAGS, TELEGRAM_ATTRS, rules),
                "images": pictures, "silent": bool(p.get("disable_notification"))}
    if platform == "wecom":
        if p.get("msgtype") == "news":
            item = (p.get("news", {}).get("articles") or [{}])[0]
            return {"kind": "card", "title": item.get("title", ""), "text": item.get("description", ""),
                    "image": image(item.get("picurl"), rules), "link": item.get("url", "")}
        return {"kind": "bot", "text": (p.get(p.get("msgtype", "text")) or {}).get("content", ""),
                "markdown": p.get("msgtype") == "markdown"}
    if platform == "dingtalk":
        if p.get("msgtype") == "link":
            c = p.get("link", {})
            return {"kind": "card", "title": c.get("title", ""), "text": c.get("text", ""),
                    "image": image(c.get("picUrl"), rules), "link": c.get("messageUrl", "")}
        md = p.get("markdown", {})
        return {"kind": "bot", "title": md.get("title", ""), "text": md.get("text", ""), "markdown": True}
    if platform == "feishu":
        posts = (p.get("content") or {}).get("post") or {}
        body: dict[str, Any] = next(iter(posts.values()), {}) if posts else {}
        lines = []
        for line in body.get("content", []):
            lines.append([{"text": el.get("text", ""), "href": el.get("href") if el.get("tag") == "a" else None}
                          for el in line])
        return {"kind": "feishu", "title": body.get("title", ""), "lines": lines}
    template = layout(platform)
    if template:
        return drawn(post, template, rules, options)
    return {"kind": "json", "json": json.dumps(p, ensure_ascii=False, indent=2)}


def layout(platform: Any) -> str | None:
    """``looks/<platform id>.html`` when that platform has a drawing of its own."""
    if not isinstance(platform, str) or not PLATFORM_ID.fullmatch(platform):
        return None
    return _layout(platform)


@functools.cache
def _layout(platform: str) -> str | None:
    return f"looks/{platform}.html" if (LAYOUTS / f"{platform}.html").is_file() else None


def drawn(post: dict[str, Any], template: str, rules: dict[str, str], options: Any) -> dict[str, Any]:
    """The view model of a ``looks/`` drawing: the payload as sent, and the images as the platform gets them."""
    return {"kind": post.get("platform"), "template": template, "p": post.get("payload") or {},
            "text": post.get("text", ""), "img": functools.partial(image, rules=rules),
            "media": [u for u in (image(m, rules) for m in post.get("media") or []) if u],
            "offered": len(post.get("media_offered") or []), "options": options or {}}
