"""How delivery-log values are laid out in Redis, compactly: events, composed posts, articles, long fields.

Pure (no Redis calls). Why each form (issue 15, ≤ 1.5 KB of Redis per delivery):

- A delivery hash keeps Redis's compact listpack encoding only while every value is at most
  ``hash-max-listpack-value`` bytes (64 by default; we never rely on changing it). A longer value
  (an error text, an editor's override, WeChat state) is stored in the delivery's ``long`` hash and the
  record holds ``LONG_MARK`` in its place; the composed post has a key of its own.
- The composed post is compact JSON compressed with zlib using the share's article as the preset
  dictionary: the post is mostly the article's own text, so it shrinks to a few hundred bytes.
- The article (the share hash's ``article_z``) is zlib-compressed compact JSON when that is smaller.
- An event is a positional JSON array with the time in integer milliseconds; trailing defaults
  (message = the status, actor = ``worker``) are left out.

Every reader also decodes the forms written before (``{"at": iso, ...}`` events, ``post`` and
``article`` as plain JSON fields), so records stored by earlier versions keep loading.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from ..clock import iso

LISTPACK_VALUE = 64  # Redis's default hash-max-listpack-value (and zset-max-listpack-value)
LONG_MARK = "\x1f"  # in a delivery hash: "this field's value is in the long hash"
_JSON = b"j"  # a post or article stored as compact JSON
_ZDICT = b"z"  # a post compressed against its share's article
_ZLIB = b"Z"  # compressed without a dictionary (no article to hand)
DEFAULT_ACTOR = "worker"


def as_text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def as_bytes(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def is_long(value: str) -> bool:
    """Whether a hash value must go to the long hash (it would break the listpack encoding)."""
    return len(value.encode()) > LISTPACK_VALUE or value == LONG_MARK


# read straight from the record by scripts that have no long hash to hand (the schedule's): never moved
RAW_FIELDS = frozenset({"slot_label", "timezone"})


def split_long(fields: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(record fields, long fields)``: long values replaced by ``LONG_MARK`` in the first."""
    short, long = {}, {}
    for k, v in fields.items():
        if is_long(v) and k not in RAW_FIELDS:
            short[k], long[k] = LONG_MARK, v
        else:
            short[k] = v
    return short, long


def join_long(h: dict[str, str], long: dict[str, str]) -> dict[str, str]:
    """The record as one dict again (a marked field whose long value is gone reads as empty)."""
    return {k: (long.get(k, "") if v == LONG_MARK else v) for k, v in h.items()}


# --- the composed post --------------------------------------------------------------------------------

def pack_post(post: dict[str, Any], article: bytes | None) -> bytes:
    """The post's stored form: compressed against ``article`` (its share's article JSON) when given."""
    raw = compact_json(post).encode()
    if article:
        co = zlib.compressobj(9, zdict=article)
        z = co.compress(raw) + co.flush()
        if len(z) < len(raw):
            return _ZDICT + z
    else:
        z = zlib.compress(raw, 9)
        if len(z) < len(raw):
            return _ZLIB + z
    return _JSON + raw


def unpack_post(blob: bytes, article: bytes | None) -> dict[str, Any] | None:
    """The post again; None when it was compressed against an article that is no longer stored."""
    kind, body = blob[:1], blob[1:]
    if kind == _ZDICT:
        if not article:
            return None
        do = zlib.decompressobj(zdict=article)
        raw = do.decompress(body) + do.flush()
    elif kind == _ZLIB:
        raw = zlib.decompress(body)
    else:
        raw = body
    value: dict[str, Any] = json.loads(raw)
    return value


# --- the article stored with its share ----------------------------------------------------------------

def pack_article(article: dict[str, Any]) -> bytes:
    return pack_article_raw(compact_json(article).encode())


def pack_article_raw(raw: bytes) -> bytes:
    """``article_z`` for article JSON already encoded (kept byte for byte: posts use it as a dictionary)."""
    z = zlib.compress(raw, 9)
    return _ZLIB + z if len(z) < len(raw) else _JSON + raw


def unpack_article(packed: bytes | None, plain: bytes | str | None) -> bytes | None:
    """The article JSON (bytes, exactly as posts were compressed against it) from ``article_z`` or,
    for a share stored before, the plain ``article`` field."""
    if packed:
        return zlib.decompress(packed[1:]) if packed[:1] == _ZLIB else packed[1:]
    if plain is None:
        return None
    return plain if isinstance(plain, bytes) else plain.encode()


# --- events -------------------------------------------------------------------------------------------

def pack_event(at_ms: int, status: str, attempt: int, message: str, actor: str) -> str:
    """``[ms, status, attempt, message?, actor?]``: the same form the Lua ``move`` writes."""
    ev: list[Any] = [at_ms, status, attempt]
    if actor != DEFAULT_ACTOR:
        ev += [message, actor]
    elif message != status:
        ev.append(message)
    return compact_json(ev)


def unpack_event(raw: str | bytes) -> dict[str, Any]:
    """An event as the ``--json`` contract shows it, from either stored form."""
    value = json.loads(raw)
    if isinstance(value, dict):  # written before issue 15
        value.setdefault("actor", None)  # events written before actors were recorded
        return value
    at, status, attempt = value[0], value[1], value[2]
    message = value[3] if len(value) > 3 else status
    actor = value[4] if len(value) > 4 else DEFAULT_ACTOR
    return {"at": iso(at / 1000), "status": status, "attempt": attempt, "message": message, "actor": actor}
