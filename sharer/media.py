"""Downloading an article's images before a platform upload: size and type checked, never trusted.

``[media] rewrite`` in the config maps URL prefixes to others (a CDN mirror, a proxy, or the local
sandbox's stand-in for the newsroom site in the demo), applied before every download.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from .errors import PermanentError, TransientError
from .platforms.base import DeliveryContext, send

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


def fetch_image(ctx: DeliveryContext, url: str, *, max_bytes: int, allowed: tuple[str, ...]) -> Image:
    """GET an image with the account's timeouts, a size cap and a content check (magic bytes)."""
    real_url = rewrite(url, ctx.media_rewrite)
    resp = send(ctx, "GET", real_url, idempotent=True, stream=True)
    started = time.monotonic()
    try:
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientError(f"image {url} could not be downloaded (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise PermanentError(f"image {url} could not be downloaded (HTTP {resp.status_code})")
        declared_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if declared_type and not declared_type.startswith(("image/", "application/octet-stream")):
            raise PermanentError(f"image {url} is served as {declared_type}, not an image")
        declared = int(resp.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            raise PermanentError(f"image {url} is {declared} bytes; the platform accepts at most {max_bytes}")
        chunks, size = [], 0
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError(f"image {url} is larger than {max_bytes} bytes")
            if time.monotonic() - started > ctx.timeout:  # a trickling server must not hold the lease
                raise TransientError(f"image {url} took longer than {ctx.timeout:.0f}s to download")
            chunks.append(chunk)
    except requests.RequestException as e:
        raise TransientError(f"image {url}: download interrupted ({type(e).__name__})") from None
    finally:
        resp.close()
    data = b"".join(chunks)
    ctype = sniff(data)
    if ctype is None or ctype not in allowed:
        kinds = ", ".join(EXTENSIONS[a] for a in allowed)
        raise PermanentError(f"image {url} is not an accepted type ({kinds})")
    return Image(data, ctype, url)
