"""The X emulator's media upload (``POST /2/media/upload``, one shot) and its test images (a mixin of
``XEmulator``; state lives there: ``media``, ``lock``).

From the fact sheet (§3.3): multipart ``media`` + ``media_category``; the answer is
``{"data": {"id", "media_key", "size", "expires_after_secs", "image"}}``; images over 5 MB are refused.
A post's ``media.media_ids`` takes 1 to 4 ids, each the poster's own and not yet expired
(``media_ttl`` seconds, 86400 as on X); otherwise X's 400 invalid-request body. Each upload keeps the
SHA-256 of its bytes, so a test can tell which image a post carries.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import threading
import time
import zlib
from typing import Any

from ._x_wire import invalid, unauthorized
from .server import JSON, Request, Response, route

MAX_IMAGE = 5 * 1024 * 1024
MAX_PER_POST = 4  # photos; a GIF or a video goes alone (not emulated: we send neither)
CATEGORIES = ("tweet_image", "tweet_gif", "tweet_video", "dm_image", "dm_gif", "dm_video", "subtitles")


def _png(w: int = 4, h: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x80\x00" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


FILES = {
    "sample.png": (_png(), "image/png"),
    "sample.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9",
                   "image/jpeg"),
    "big.png": (_png() + b"\x00" * (MAX_IMAGE + 1), "image/png"),
    "anim.gif": (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,"
                 b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", "image/gif"),
    "not-an-image.png": (b"<html>not found</html>", "image/png"),
}


def named_image(name: str) -> tuple[bytes, str]:
    """``/_sandbox/images/<name>``: a small valid PNG (JPEG for ``*.jpg``) whose bytes differ per name."""
    seed = hashlib.sha256(name.encode()).digest()
    if name.endswith((".jpg", ".jpeg")):
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + seed + b"\x00" * 32 + b"\xff\xd9", "image/jpeg"
    return _png(2 + seed[0] % 40, 2 + seed[1] % 40), "image/png"


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/gif" if data[:6] in (b"GIF87a", b"GIF89a") else None


class XMediaMixin:
    ids: itertools.count[int]
    media: dict[str, JSON]
    media_ttl: float
    lock: threading.RLock

    def _user(self, req: Request) -> str | None:  # XEmulator's (OAuth 1.0a or 2.0)
        raise NotImplementedError

    @route("POST", r"/2/media/upload")
    def upload(self, req: Request) -> Response:
        with self.lock:
            user = self._user(req)
        if user is None:
            return unauthorized()
        files = req.files()
        if "media" not in files:
            return invalid("$.media: media is required")
        data = files["media"][2]
        category = req.form().get("media_category", "tweet_image")
        if category not in CATEGORIES:
            return invalid(f"$.media_category: {category} is not a valid media category")
        ctype = sniff(data)
        if ctype is None:
            return invalid("media type unrecognized.")
        if len(data) > MAX_IMAGE and category == "tweet_image":
            return invalid(f"File size exceeds {MAX_IMAGE} bytes.")
        with self.lock:
            media_id = str(next(self.ids))
            self.media[media_id] = {"owner": user, "size": len(data), "type": ctype, "category": category,
                                    "sha256": hashlib.sha256(data).hexdigest(),
                                    "expires_at": time.time() + self.media_ttl}
        image: JSON = {"image_type": ctype}
        if ctype == "image/png":
            image["w"], image["h"] = struct.unpack(">II", data[16:24])
        return Response(200, {"data": {"id": media_id, "media_key": f"3_{media_id}", "size": len(data),
                                       "expires_after_secs": int(self.media_ttl), "image": image}})

    def check_media(self, media: Any, user: str) -> Response | None:
        """X's refusal of a post's ``media`` object, or None when its ids may be attached."""
        ids = media.get("media_ids") if isinstance(media, dict) else None
        if not isinstance(ids, list) or not all(isinstance(m, str) for m in ids):
            return invalid("$.media.media_ids: expected an array of strings")
        if not ids:
            return invalid("$.media.media_ids: there must be a minimum of 1 item in the array")
        if len(ids) > MAX_PER_POST:
            return invalid(f"$.media.media_ids: there must be a maximum of {MAX_PER_POST} items in the array")
        now = time.time()
        if any(self.media.get(m, {}).get("owner") != user or self.media[m]["expires_at"] <= now for m in ids):
            return invalid("Your media IDs are invalid.", parameters={"media.media_ids": ids})
        return None

    def attached(self, ids: list[str]) -> list[JSON]:
        """What the emulator records of a post's media, in order."""
        return [{"id": m, **{k: self.media[m][k] for k in ("type", "size", "sha256")}} for m in ids]

    def sandbox_file(self, name: str, named: bool = False) -> Response:
        """``GET /_sandbox/files/<name>`` (one of ``FILES``) or ``/_sandbox/images/<name>`` (``named_image``)."""
        if named:
            data, ctype = named_image(name)
            return Response(200, data, {"Content-Type": ctype})
        if name not in FILES:
            return Response(404, {"error": f"no file {name}"})
        data, ctype = FILES[name]
        return Response(200, data, {"Content-Type": ctype})
