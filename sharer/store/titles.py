"""The title index: find a share by title from any day of the retention window in one request.

RediSearch is not available, so the index is plain lexicographic sorted sets, one per token, whose
members are the shares index's own ``"<13-digit created ms>:<share id>"`` (time order, date ranges and
cursors work exactly as on the share list):

- Chinese/Japanese/Korean text: every pair of adjacent characters (a bigram). Any substring of two or
  more characters contains only bigrams the title has, so intersecting the query's bigram sets gives
  every candidate; candidates are then checked against the stored title.
- Other words (Latin, digits): casefolded prefixes of each word, 2 to ``PREFIX_MAX`` characters, so a
  query matches from the start of any word, in any case ("catl", "Batt").

A query with no token (a single character) cannot use the index; the share list then walks the shares
index with a scan budget and hands back a cursor, never an empty page that pretends to be the end.
Entries are written with the share and removed when retention purges it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from redis import Redis
from redis.client import Pipeline

from .keys import Keys

PREFIX_MAX = 10  # longer query words are looked up by their first 10 characters, then verified
_CJK = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
        r"\U00020000-\U0002ffff")
_RUNS = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
INDEX_VERSION = "1"


def tokens(text: str) -> set[str]:
    """The index tokens of a title (``b:`` bigrams, ``w:`` word prefixes)."""
    out: set[str] = set()
    for run in _RUNS.findall(text.casefold()):
        if _IS_CJK.match(run):
            out.update(f"b:{run[i:i + 2]}" for i in range(len(run) - 1))
        else:
            out.update(f"w:{run[:n]}" for n in range(2, min(len(run), PREFIX_MAX) + 1))
    return out


def query_tokens(q: str) -> set[str]:
    """The tokens every matching title must have (empty: the query is too short for the index)."""
    out: set[str] = set()
    for run in _RUNS.findall(q.casefold()):
        if _IS_CJK.match(run):
            out.update(f"b:{run[i:i + 2]}" for i in range(len(run) - 1))
        elif len(run) >= 2:
            out.add(f"w:{run[:PREFIX_MAX]}")
    return out


def matches(q: str, title: str) -> bool:
    """The verdict on a candidate: the title contains the query, ignoring case."""
    return q.casefold() in title.casefold()


def add(pipe: Pipeline, keys: Keys, member: str, title: str) -> None:
    for t in tokens(title):
        pipe.zadd(keys.title_index(t), {member: 0})


def remove(pipe: Pipeline, keys: Keys, member: str, title: str) -> None:
    for t in tokens(title):
        pipe.zrem(keys.title_index(t), member)


def candidates_key(r: Redis, keys: Keys, toks: set[str], fresh: bool, dense: int = 20000) -> str:
    """The sorted set to walk for a query: every share having all ``toks`` is in it.

    One token: its own set. Several: their intersection, kept for 60 s (recomputed for a first page,
    reused by its next pages) — unless even the smallest set is larger than ``dense``, where the
    intersection would cost more than it saves: then the smallest set itself is walked (matches are
    dense there; each candidate's title is checked anyway)."""
    ordered = sorted(toks)
    if len(ordered) == 1:
        return keys.title_index(ordered[0])
    pipe = r.pipeline(transaction=False)
    for t in ordered:
        pipe.zcard(keys.title_index(t))
    size, smallest = min(zip(pipe.execute(), ordered))
    if size == 0 or size > dense:
        return keys.title_index(smallest)
    digest = hashlib.sha1("\x00".join(ordered).encode()).hexdigest()[:20]
    tmp = keys.title_query(digest)
    if fresh or not r.exists(tmp):
        pipe = r.pipeline(transaction=True)
        pipe.zinterstore(tmp, [keys.title_index(t) for t in ordered], aggregate="MIN")
        pipe.expire(tmp, 60)
        pipe.execute()
    return tmp


def backfill(r: Redis, keys: Keys, batch: int = 1000) -> int:
    """Index every share already in the log (a log written before the index existed), then mark the
    index complete. Shares written meanwhile index themselves. Returns how many were looked at."""
    high, seen = "+", 0
    while True:
        raw: list[Any] = r.zrange(keys.shares_index, high, "-", desc=True, bylex=True, offset=0, num=batch)
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        if not members:
            break
        pipe = r.pipeline(transaction=False)
        for m in members:
            pipe.hget(keys.share(m.split(":", 1)[1]), "title")
        names = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for m, title in zip(members, names):
            if title is not None:
                add(pipe, keys, m, title.decode() if isinstance(title, bytes) else title)
        pipe.execute()
        seen += len(members)
        high = f"({members[-1]}"
    r.set(keys.title_index_version, INDEX_VERSION)
    return seen


def ready(r: Redis, keys: Keys, small: int = 5000) -> bool:
    """Whether title search may use the index; a small log without it is indexed on the spot (a large
    one by the hourly purge task or ``sharer purge``; until then search walks the log with a cursor)."""
    if r.exists(keys.title_index_version):
        return True
    if r.zcard(keys.shares_index) <= small:
        backfill(r, keys)
        return True
    return False
