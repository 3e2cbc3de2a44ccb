"""The log's compact form for settled shares: one compressed key per share instead of ~4 keys per delivery.

A share whose every delivery has settled (``delivered``, ``failed``, ``cancelled``) for ``COLD_AFTER``
seconds is packed by the hourly purge task into ``cold:<share id>``: its share hash (article included),
every delivery's record, long values, events and composed post, as one deflate-compressed JSON
document. The posts are stored decoded, so the one stream compresses them against the article it
already holds. Measured on the dashboard bench (3 deliveries a share): the hot keys of a settled
delivery take ~2.3 KB of Redis, packed ~0.9 KB (``bench/dashboard.py``; the indexes come on top).

Nothing else changes: the status, account and shares indexes keep their members, so every list and
filter finds a packed share as before; the readers (``DeliveryStore.get_many``, ``share``,
``share_heads``, ``share_ids_of``) look in the packed form for what the hot keys do not hold. A
delivery id alone finds its share through ``cold-map:<n>`` (small hashes, delivery id -> share id, in
listpack encoding).

Packed records are read-only. The one change a settled delivery can still take (an editor retries a
failed one, or forces a repair) unpacks its share first (``THAW``), atomically: the hot keys are written
back and the packed key removed only if it is still there, so two unpackers never overwrite a change.
Packing is atomic too (``COMPACT``): it checks that nothing changed since it read the hot keys.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from . import codec

COLD_AFTER = 3600.0  # seconds a share's last delivery must have been settled before it is packed
MAP_BUCKETS = 8192  # cold-map hashes: ~120 entries each at a million deliveries (listpack up to 512)
_MAGIC = b"C1"
_STANDARD = re.compile(r"^(sh|dl)_[0-9a-f]{21}$")  # ``new_id``'s form: 21 hex digits pack into 11 bytes


def bucket(delivery_id: str) -> int:
    return zlib.crc32(delivery_id.encode()) % MAP_BUCKETS


def pack_id(any_id: str) -> bytes:
    """An id as a cold-map field or value: 11 bytes for ``new_id``'s form (the prefix is known from the
    role: fields are delivery ids, values share ids), else the id itself (it never starts below 0x10)."""
    return bytes.fromhex("0" + any_id[3:]) if _STANDARD.match(any_id) else any_id.encode()


def unpack_id(raw: bytes, prefix: str) -> str:
    return f"{prefix}_{raw.hex()[1:]}" if len(raw) == 11 and raw[0] < 0x10 else raw.decode()


def _derived(share: dict[str, str], member_ms: str, did: str) -> dict[str, str]:
    """Record fields a packed record leaves out because the share gives them (restored on unpacking)."""
    return {"id": did, "share_id": share.get("id", ""), "idx": f"{member_ms}:{did}",
            "created_at": share.get("created_at", "")}


@dataclass
class HotDelivery:
    """One delivery's hot keys as read: record hash, long values, raw events, post blob, and when each
    key (record, events, post, long values) expires, epoch ms (-1: no expiry, or no such key)."""

    id: str
    record: dict[str, str]
    long: dict[str, str]
    events: list[str]
    post_blob: bytes | None
    ttls: tuple[int, int, int, int] = (-1, -1, -1, -1)


@dataclass
class Packed:
    """A share in its packed form, decoded."""

    share: dict[str, str]  # the share hash's text fields (no article)
    article: bytes | None  # the article JSON, exactly the bytes posts were compressed against
    deliveries: list[HotDelivery] = field(default_factory=list)
    posts: list[dict[str, Any] | None] = field(default_factory=list)

    def records(self) -> list[tuple[dict[str, str], list[str], dict[str, Any] | None]]:
        """``(record with long values joined, events, post)`` per delivery, as ``Delivery.from_hash`` takes."""
        return [(codec.join_long(d.record, d.long), d.events, p) for d, p in zip(self.deliveries, self.posts)]


def pack(share: dict[str, str], article: bytes | None, deliveries: list[HotDelivery]) -> bytes:
    """The packed key's value. Posts are decoded (the stream compresses them against the article); a
    post that cannot be decoded (its article is gone) is kept as its raw blob."""
    ds = []
    member_ms = next((d.record["idx"].split(":", 1)[0] for d in deliveries if ":" in d.record.get("idx", "")), "")
    for d in deliveries:
        same = {k for k, v in _derived(share, member_ms, d.id).items() if d.record.get(k) == v}
        record = {k: v for k, v in d.record.items() if k not in same}
        item: dict[str, Any] = {"id": d.id, "h": record, "e": d.events, "x": sorted(same)}
        if d.long:
            item["l"] = d.long
        if d.post_blob:
            post = codec.unpack_post(d.post_blob, article)
            if post is None:
                item["pb"] = base64.b64encode(d.post_blob).decode()
            else:
                item["p"] = post
        ds.append(item)
    doc = {"s": share, "a": None if article is None else article.decode(), "d": ds, "m": member_ms}
    co = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the key is ours, no header or checksum
    return _MAGIC + co.compress(codec.compact_json(doc).encode()) + co.flush()


def unpack(blob: bytes) -> Packed:
    if blob[:2] != _MAGIC:
        raise ValueError("not a packed share")
    doc = json.loads(zlib.decompress(blob[2:], -15))
    article = None if doc["a"] is None else doc["a"].encode()
    out = Packed(doc["s"], article)
    for item in doc["d"]:
        raw = base64.b64decode(item["pb"]) if "pb" in item else None
        derived = _derived(doc["s"], doc.get("m", ""), item["id"])
        record = {**{k: derived[k] for k in item.get("x", ())}, **item["h"]}
        out.deliveries.append(HotDelivery(item["id"], record, item.get("l") or {}, item["e"], raw))
        out.posts.append(item.get("p") if raw is None else codec.unpack_post(raw, article))
    return out


def thaw_args(p: Packed, expire_at: int) -> list[Any]:
    """``THAW``'s ARGV: the text parts as one JSON document, then the binary ones (article, posts).
    Every key unpacked expires when the packed key would have (epoch ms; -1 never): the latest of the
    keys packed into it, so nothing goes before its time and purge removes them on time anyway."""
    at = str(expire_at)
    spec = {"s": p.share, "st": at,
            "d": [{"id": d.id, "h": d.record, "l": d.long, "e": d.events, "t": [at] * 4} for d in p.deliveries]}
    posts: list[bytes] = []
    for d, post in zip(p.deliveries, p.posts):
        if d.post_blob is not None:
            posts.append(d.post_blob)
        elif post is not None:
            posts.append(codec.pack_post(post, p.article))
        else:
            posts.append(b"")
    article = b"" if p.article is None else codec.pack_article_raw(p.article)
    return [codec.compact_json(spec), article, *[x for d, post in zip(p.deliveries, posts)
                                                 for x in (post, pack_id(d.id))]]


# KEYS: 1 the packed key, 2 the share hash, then per delivery 5: record, events, post, long, its cold-map
# ARGV: 1 the packed value, 2 its PEXPIREAT ms ("" none), 3 the share hash's field count as read,
#       4 the share id (``pack_id``), then per delivery 6: id (``pack_id``), status, updated_at, event count,
#       post length, long count
# Returns 1 packed, 0 already packed, -1 something changed since it was read (left hot).
COMPACT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[2]) ~= tonumber(ARGV[3]) then return -1 end
local n = (#KEYS - 2) / 5
for i = 0, n - 1 do
  local k, a = 3 + i * 5, 5 + i * 6
  if (redis.call('HGET', KEYS[k], 'status') or '') ~= ARGV[a + 1]
      or (redis.call('HGET', KEYS[k], 'updated_at') or '') ~= ARGV[a + 2]
      or redis.call('LLEN', KEYS[k + 1]) ~= tonumber(ARGV[a + 3])
      or redis.call('STRLEN', KEYS[k + 2]) ~= tonumber(ARGV[a + 4])
      or redis.call('HLEN', KEYS[k + 3]) ~= tonumber(ARGV[a + 5]) then
    return -1
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
for i = 0, n - 1 do
  local k, a = 3 + i * 5, 5 + i * 6
  redis.call('HSET', KEYS[k + 4], ARGV[a], ARGV[4])
  redis.call('DEL', KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3])
end
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: as COMPACT's. ARGV: 1 JSON {s = share fields, st = its expiry, d = [{id, h, l, e, t = 4 expiries}]}
# (expiries: epoch ms as strings, "-1" none), 2 the share's article_z ("" none), then per delivery 2: its
# post blob ("" none), its cold-map field (``pack_id``).
# Returns 1 unpacked, 0 not packed (someone else unpacked it first: the hot keys are the truth).
THAW = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local spec = cjson.decode(ARGV[1])
local function hset(key, t)
  local flat = {}
  for k, v in pairs(t) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end
local function expire(key, at)  -- epoch ms, as a string; "-1": none
  if at ~= '-1' and redis.call('EXISTS', key) == 1 then redis.call('PEXPIREAT', key, at) end
end
hset(KEYS[2], spec.s)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'article_z', ARGV[2]) end
expire(KEYS[2], spec.st)
for i, d in ipairs(spec.d) do
  local k = 3 + (i - 1) * 5
  hset(KEYS[k], d.h)
  if #d.e > 0 then redis.call('RPUSH', KEYS[k + 1], unpack(d.e)) end
  if ARGV[1 + 2 * i] ~= '' then redis.call('SET', KEYS[k + 2], ARGV[1 + 2 * i]) end
  hset(KEYS[k + 3], d.l)
  for j = 1, 4 do expire(KEYS[k + j - 1], d.t[j]) end
  redis.call('HDEL', KEYS[k + 4], ARGV[2 + 2 * i])
end
redis.call('DEL', KEYS[1])
return 1
"""
