"""Downloading an article's images before a platform upload: size and type checked, never trusted.

``[media] rewrite`` in the config maps URL prefixes to others (a CDN mirror, a proxy, or the local
sandbox's stand-in for the newsroom site in the demo), applied before every download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .article import check_http_url
from .errors import ArticleError, FetchError, PermanentError, TransientError
from .fetch import Fetched, FetchPolicy, fetch
from .platforms.base import DeliveryContext

MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/bmp": (b"BM",),
    "image/webp": (b"RIFF",),
}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp", "image/webp": "webp"}


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    url: str

    @property
    def filename(self) -> str:
        stem = urlsplit(self.url).path.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "image"
        return f"{stem[:40]}.{EXTENSIONS.get(self.content_type, 'bin')}"


def sniff(data: bytes) -> str | None:
    for ctype, prefixes in MAGIC.items():
        if any(data.startswith(p) for p in prefixes):
            if ctype == "image/webp" and data[8:12] != b"WEBP":
                continue
            return ctype
    return None


def rewrite(url: str, rules: dict[str, str]) -> str:
    for prefix in sorted(rules, key=len, reverse=True):
        if url.startswith(prefix):
            return rules[prefix] + url[len(prefix):]
    return url


def guarded_get(ctx: DeliveryContext, url: str, *, max_bytes: int, deadline: float | None = None,
                on_headers: Callable[[Fetched], None] | None = None, what: str = "image") -> Fetched:
    """GET a user-supplied media URL (after ``[media] rewrite``) through the guarded fetcher
    (sharer.fetch): the address vetted, one deadline (default: the account's timeout), a size cap.

    A URL that can never work (relative, another scheme, a refused address, too big) is a
    ``PermanentError`` at once with a readable reason; only network trouble is worth retrying.
    """
    try:
        check_http_url(url, what, what)
    except ArticleError:
        raise PermanentError(f"{what} {url!r} is not an absolute http(s) URL") from None
    real_url = rewrite(url, ctx.media_rewrite)
    policy = ctx.fetch_policy if ctx.fetch_policy is not None else FetchPolicy.build(
        origins=[*ctx.media_rewrite.values()])
    policy = policy.with_origins([ctx.account.api_base])  # the account's own API host serves its media
    deadline = deadline or ctx.timeout
    try:
        return fetch(real_url, policy, max_bytes=max_bytes, deadline=deadline, on_headers=on_headers,
                     headers={"Accept": "image/*"})
    except FetchError as e:
        if e.problem.startswith("is larger than"):
            raise PermanentError(ctx.redact(f"{what} {url} is over the {max_bytes:,}-byte limit")) from None
        if "deadline" in e.problem:
            raise TransientError(ctx.redact(f"{what} {url}: not downloaded before the timeout ({deadline:g} s)")
                                 ) from None
        cls = TransientError if e.transient else PermanentError
        raise cls(ctx.redact(f"{what} {url}: {e.problem}")) from None


def fetch_image(ctx: DeliveryContext, url: str, *, max_bytes: int, allowed: tuple[str, ...]) -> Image:
    """An image through ``guarded_get``, its declared type and magic bytes checked."""

    def check(resp: Fetched) -> None:
        if resp.status >= 500 or resp.status == 429:
            raise TransientError(f"image {url} could not be downloaded (HTTP {resp.status})")
        if resp.status != 200:
            raise PermanentError(f"image {url} could not be downloaded (HTTP {resp.status})")
        declared_type = resp.content_type
        if declared_type and not declared_type.startswith(("image/", "application/octet-stream")):
            raise PermanentError(f"image {url} is served as {declared_type}, not an image")

    resp = guarded_get(ctx, url, max_bytes=max_bytes, on_headers=check)
    ctype = sniff(resp.body)
    if ctype is None or ctype not in allowed:
        kinds = ", ".join(EXTENSIONS[a] for a in allowed)
        raise PermanentError(f"image {url} is not an accepted type ({kinds})")
    return Image(resp.body, ctype, url)
