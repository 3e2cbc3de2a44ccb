"""WeChat's article body rules and image handling, kept apart from the API client in ``wechat.py``.

The pure half (``wechat_html``, ``trim_to``, ``rewrite_images``) turns an article body into HTML WeChat
accepts: no script/style/iframe/forms/event attributes, links to other sites unwrapped to their text
(``draft/add`` answers 45166 to them), images kept as references to upload at delivery, and the whole
under 20,000 characters and 1 MB. ``download_image`` is the I/O half: a size- and time-capped download
whose type is checked by Content-Type and by magic bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import nh3
from bs4 import BeautifulSoup, Tag

from ..article import ALLOWED_TAGS
from ..errors import PermanentError, TransientError
from ..media import EXTENSIONS, Image, guarded_get, sniff
from ..text import count_chars, count_utf8_bytes, trim

if TYPE_CHECKING:
    from ..fetch import Fetched
    from .base import DeliveryContext

WECHAT_LINK_HOST = "mp.weixin.qq.com"  # the only links WeChat keeps in an article
IMAGE_SRC_RESERVE = 256  # room kept per image for the longer mmbiz.qpic.cn URL it gets at delivery
_ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


@dataclass(frozen=True)
class Body:
    html: str
    images: tuple[str, ...]  # distinct inline image URLs, in order
    first_paragraph: str
    warnings: tuple[str, ...]


def wechat_html(body_html: str, max_chars: int, max_bytes: int) -> Body:
    """The article body as WeChat-safe HTML (strictly under ``max_chars`` and ``max_bytes``).

    Over the limits, trailing top-level blocks are dropped (with a warning; 阅读原文 still leads to the
    full article). Raises ValueError when even the first block does not fit.
    """
    clean = nh3.clean(body_html or "", tags=ALLOWED_TAGS, attributes=_ATTRIBUTES,
                      clean_content_tags={"script", "style"}, url_schemes={"http", "https"}, link_rel=None)
    soup = BeautifulSoup(clean, "html.parser")
    warnings: list[str] = []
    removed = 0
    for a in soup.find_all("a"):
        href = str(a.get("href") or "")
        parts = urlsplit(href)
        if parts.scheme in ("http", "https") and parts.hostname == WECHAT_LINK_HOST:
            a.attrs = {"href": href}
            continue
        removed += bool(href)
        a.unwrap()
    if removed:
        warnings.append(f"{removed} link{'s' if removed != 1 else ''} removed for WeChat")
    for img in soup.find_all("img"):
        if not img.get("src"):
            img.decompose()

    blocks = [n for n in soup.contents if str(n).strip()]
    keep = len(blocks)
    chars = [len(str(b)) + IMAGE_SRC_RESERVE * _count_images(b) for b in blocks]
    sizes = [len(str(b).encode("utf-8")) + IMAGE_SRC_RESERVE * _count_images(b) for b in blocks]
    while keep and (sum(chars[:keep]) >= max_chars or sum(sizes[:keep]) >= max_bytes):
        keep -= 1
    if blocks and not keep:
        raise ValueError(f"the article body's first block alone is over WeChat's content limit "
                         f"({max_chars} characters / {max_bytes} bytes)")
    if keep < len(blocks):
        warnings.append(f"content trimmed to fit WeChat's {max_chars:,}-character / {max_bytes:,}-byte limit: "
                        f"{len(blocks) - keep} trailing block(s) dropped (阅读原文 links to the full article)")
    kept = blocks[:keep]
    html = "".join(str(b) for b in kept)
    images: list[str] = []
    for b in kept:
        found: list[object] = [*(b.find_all("img") if isinstance(b, Tag) else []), *([b] if _is_img(b) else [])]
        for node in found:
            src = str(node["src"]) if isinstance(node, Tag) else ""
            if src and src not in images:
                images.append(src)
    return Body(html, tuple(images), _first_paragraph(kept), tuple(warnings))


def rewrite_images(html: str, urls: dict[str, str | None]) -> str:
    """Point each ``<img src>`` at its uploaded URL; an image mapped to None (not accepted) is removed."""
    soup = BeautifulSoup(html, "html.parser")
    for img in soup.find_all("img"):
        src = str(img.get("src") or "")
        if src in urls:
            new = urls[src]
            if new is None:
                img.decompose()
            else:
                img["src"] = new
    return str(soup)


def trim_to(text: str, max_chars: int, max_bytes: int | None = None) -> str:
    """``text`` if it fits, else trimmed grapheme-safely (``sharer.text.trim``) to ≤ ``max_chars`` code
    points and ≤ ``max_bytes`` UTF-8 bytes, ending in "…"."""
    if max_bytes is None:
        return trim(text, max_chars, count_chars).text
    chars, size = max(1, max_chars), max(1, max_bytes)
    # One counter for both limits: s fits iff len(s) ≤ chars and bytes(s) ≤ size.
    both = lambda s: max(count_chars(s) * size, count_utf8_bytes(s) * chars)
    return trim(text, chars * size, both).text


def _is_img(node: object) -> bool:
    return isinstance(node, Tag) and node.name == "img"


def _count_images(node: object) -> int:
    return (len(node.find_all("img")) + _is_img(node)) if isinstance(node, Tag) else 0


def _first_paragraph(blocks: list) -> str:
    for b in blocks:
        paragraphs = ([b] if isinstance(b, Tag) and b.name == "p" else
                      b.find_all("p") if isinstance(b, Tag) else [])
        for p in paragraphs:
            text = " ".join(p.get_text(" ").split())
            if text:
                return text
    for b in blocks:
        text = " ".join((b.get_text(" ") if isinstance(b, Tag) else str(b)).split())
        if text:
            return text
    return ""


# --- images (I/O) ---------------------------------------------------------------------------------

_DECLARED_OK = {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/gif", "image/bmp", "image/x-ms-bmp",
                "application/octet-stream", "binary/octet-stream", ""}


def download_image(ctx: DeliveryContext, url: str, what: str, max_bytes: int, allowed: tuple[str, ...]) -> Image:
    """GET an image (after ``[media] rewrite``) within ``max_bytes`` and ~2× the account timeout.

    The declared Content-Type and the magic bytes must both say it is one of ``allowed``. A server or
    network failure is transient; a missing, oversized or wrongly typed image is permanent.
    """
    def check(resp: Fetched) -> None:  # before the body is read
        if resp.status != 200:
            cls = TransientError if resp.status >= 500 or resp.status in (408, 429) else PermanentError
            raise cls(ctx.redact(f"{what} {url} could not be downloaded (HTTP {resp.status})"), status=resp.status)
        declared = resp.content_type
        if declared not in _DECLARED_OK:
            raise PermanentError(ctx.redact(f"{what} {url} is not an image WeChat accepts (Content-Type {declared})"))

    # the guarded fetcher (sharer.fetch via media.guarded_get): a body image is a user-supplied URL
    data = guarded_get(ctx, url, max_bytes=max_bytes, deadline=2 * ctx.timeout, on_headers=check, what=what).body
    ctype = sniff(bytes(data))
    if ctype not in allowed:
        kinds = "/".join(EXTENSIONS[a] for a in allowed)
        raise PermanentError(ctx.redact(f"{what} {url} is {EXTENSIONS.get(ctype or '', 'not an image')}; "
                                        f"WeChat accepts {kinds} here"))
    return Image(bytes(data), ctype, url)
