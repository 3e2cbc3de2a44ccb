"""The title index: find a share by title from any day of the retention window in one request.

RediSearch is not available, so the index is built from plain keys. A title's tokens:

- Chinese/Japanese/Korean text: every pair of adjacent characters (a bigram). Any substring of two or
  more characters contains only bigrams the title has, so intersecting the query's bigram sets gives
  every candidate; candidates are then checked against the stored title.
- Other words (Latin, digits): casefolded prefixes of each word, 2 to ``PREFIX_MAX`` characters, so a
  query matches from the start of any word, in any case ("catl", "Batt").

Where a share is listed (version 2 of the index; ~11 bytes per token instead of a ~130-byte sorted-set
entry): a share id made by ``new_id`` is ``sh_`` + 11 hex digits of milliseconds + 10 random ones, and
a share written at its id's own millisecond has a shares-index member, ``"<ms>:<id>"``, derivable from
the id. Such a share's entry is the id packed into 11 bytes (``pack``: byte order = time order = the
member order), appended to one string per token and week of creation, ``idx:title-w:<week>:<token>``,
which expires by itself when its week has left the retention window (the purge never touches it; an
entry whose share is gone is dropped when the candidates are verified). Any other share (a backdated
``at``, an id of another form, one written by an older version a few ms after its id) goes to a small
sorted set per token, ``idx:title-odd:<token>``, with its shares-index member; the purge removes those.
A search reads every (token, week) string of its date range and the odd sets in one round trip,
intersects them in Python and walks the candidates newest first, checking each against its title.

A query with no token (a single character) cannot use the index, nor can any query before the index
is built (a log written by an older version: ``backfill``); the share list then walks the shares index
with a scan budget and hands back a cursor, never an empty page that pretends to be the end.
"""

from __future__ import annotations

import operator
import re
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from redis import Redis
from redis.client import Pipeline

from ..clock import now
from .keys import Keys
from .records import ShareHead

PREFIX_MAX = 10  # longer query words are looked up by their first 10 characters, then verified
_CJK = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
        r"\U00020000-\U0002ffff")
_RUNS = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
INDEX_VERSION = "2"
WEEK_MS = 7 * 86400 * 1000  # a posting string holds one week of shares (by creation)
ENTRY = 11  # bytes per entry: "0" + the id's 21 hex digits
_STANDARD = re.compile(r"sh_[0-9a-f]{21}")
_ENTRIES = struct.Struct(f"{ENTRY}s")
_FIRST = operator.itemgetter(0)


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


def id_ms(share_id: str) -> int | None:
    """The millisecond in a standard share id (``new_id("sh")``); None for an id of another form."""
    return int(share_id[3:14], 16) if _STANDARD.fullmatch(share_id) else None


def pack(member: str) -> bytes | None:
    """A shares-index member's 11-byte entry, or None when the member is not derivable from its id
    (the share goes to the odd sets)."""
    at, _, share_id = member.partition(":")
    if len(at) != 13 or id_ms(share_id) != _ms_of(at):
        return None
    return bytes.fromhex("0" + share_id[3:])


def unpack(entry: bytes) -> str:
    """The shares-index member of an 11-byte entry."""
    h = entry.hex()
    return f"{int(h[:12], 16):013d}:sh_{h[1:]}"


def week_of(at_ms: int) -> int:
    return at_ms // WEEK_MS


def _ms_of(member: str) -> int | None:
    """The created ms a member (or a bound: its first 13 characters) starts with."""
    at = member[:13]
    return int(at) if len(at) == 13 and at.isascii() and at.isdigit() else None


def add(pipe: Pipeline, keys: Keys, member: str, title: str, retention: int) -> None:
    """Index a share (``member`` as in the shares index) kept ``retention`` seconds."""
    toks = tokens(title)
    entry = pack(member)
    if entry is None:
        for t in toks:
            pipe.zadd(keys.title_odd(t), {member: 0})
        return
    week = week_of(int(member[:13]))
    expires = (week + 1) * WEEK_MS // 1000 + retention + 86400  # the week's end has left the window
    for t in toks:
        key = keys.title_postings(week, t)
        pipe.append(key, entry)
        pipe.expireat(key, expires)


def remove(pipe: Pipeline, keys: Keys, member: str, title: str) -> None:
    """What the purge removes: a share's odd-set entries (posting strings expire by themselves)."""
    if pack(member) is None:
        for t in tokens(title):
            pipe.zrem(keys.title_odd(t), member)


class Candidates:
    """Every share a query's tokens select within its bounds, handed out newest first by ``take``.

    The packed entries are intersected a week at a time, newest week first, when a page gets that far
    (a first page usually needs one week); ``len`` intersects them all. The odd members (already
    intersected, oldest first) are merged in by member order."""

    def __init__(self, weeks: list[list[bytes]], odd: list[str], upper: str | None, lower: str | None):
        self._pending = weeks  # per week, newest first: each token's entries of that week
        self._ready: list[list[bytes]] = []  # intersected weeks, oldest first within; taken from the end
        self._bounds = upper, lower
        self.odd, self._j = odd, len(odd)

    def __len__(self) -> int:
        while self._pending:
            self._ready.append(self._week(self._pending.pop(0)))
        return sum(map(len, self._ready)) + self._j

    def at_most(self) -> int:
        """An upper bound of ``len`` without intersecting: each week's smallest token counts whole."""
        return (sum(map(len, self._ready)) + sum(min(map(len, b)) // ENTRY for b in self._pending)
                + self._j)

    def _head(self) -> bytes | None:
        """The newest entry not taken yet."""
        while self._ready and not self._ready[0]:
            self._ready.pop(0)
        while not self._ready and self._pending:
            got = self._week(self._pending.pop(0))
            if got:
                self._ready.append(got)
        return self._ready[0][-1] if self._ready else None

    def take(self, n: int) -> list[str]:
        """The next ``n`` candidates (members), newest first; only these entries are decoded."""
        out: list[str] = []
        while len(out) < n:
            e = self._head()
            head = unpack(e) if e is not None else None
            if head is not None and (not self._j or head > self.odd[self._j - 1]):
                self._ready[0].pop()
                out.append(head)
            elif self._j:
                self._j -= 1
                out.append(self.odd[self._j])
            else:
                break
        return out

    def remaining(self) -> bool:
        """Whether any candidate is left (each sorts below every one taken)."""
        return self._j > 0 or self._head() is not None

    def _week(self, blobs: list[bytes]) -> list[bytes]:
        """One week's entries in every token's blob, sorted, within the bounds."""
        blobs = sorted(blobs, key=len)
        if not blobs[0]:
            return []
        # appended in about time order, so the sort is a few merges; dict.fromkeys drops duplicates
        # (a backfill run twice) and keeps the order
        base = list(dict.fromkeys(sorted(_entries(blobs[0]))))
        if len(blobs) > 1:
            keep = set(base)
            for blob in blobs[1:]:
                keep.intersection_update(_entries(blob))
                if not keep:
                    return []
            base = list(filter(keep.__contains__, base))
        upper, lower = self._bounds
        lo = bisect_left(base, lower, key=unpack) if lower is not None else 0
        hi = bisect_left(base, upper, key=unpack) if upper is not None else len(base)
        return base[lo:hi]


def search(r: Redis, keys: Keys, toks: set[str], retention: int, high: str = "+", low: str = "-") -> Candidates:
    """The candidates of a query's tokens between ``high`` (``"+"`` or ``"(<member>"``, exclusive) and
    ``low`` (``"-"`` or ``"[<member>"``, inclusive), the bounds of a ``ZRANGE BYLEX`` on the shares
    index. One pipelined round trip reads every (token, week) string and each token's odd set."""
    upper = high[1:] if high != "+" else None
    lower = low[1:] if low != "-" else None
    t = int(now() * 1000)
    first = week_of(t - retention * 1000) - 1  # the oldest week a string can still exist for, and a margin
    since, until = _ms_of(lower or ""), _ms_of(upper or "")
    if since is not None:
        first = max(first, week_of(since))
    last = week_of(until if until is not None else t + WEEK_MS)
    weeks = range(last, first - 1, -1)  # newest first
    ordered = sorted(toks)
    pipe = r.pipeline(transaction=False)
    for tok in ordered:
        for w in weeks:
            pipe.get(keys.title_postings(w, tok))
        pipe.zrange(keys.title_odd(tok), high, low, desc=True, bylex=True)
    out = iter(pipe.execute())
    by_week: list[list[bytes]] = [[] for _ in weeks]
    odd: set[str] | None = None
    for _ in ordered:
        for blobs in by_week:
            blobs.append(next(out) or b"")
        members = {m.decode() if isinstance(m, bytes) else str(m) for m in next(out)}
        odd = members if odd is None else odd & members
    return Candidates([b for b in by_week if all(b)], sorted(odd or ()), upper, lower)


def _entries(blob: bytes) -> Iterator[bytes]:
    usable = len(blob) - len(blob) % ENTRY  # a torn write never leaves one, but never misalign
    return map(_FIRST, _ENTRIES.iter_unpack(memoryview(blob)[:usable]))


# A string grown by APPEND keeps spare room (up to as much again as it holds); SET with its own value
# stores it at its exact size. Atomic, so no APPEND in between is lost. KEYS: 1 a posting string.
SEAL = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('SET', KEYS[1], v, 'KEEPTTL') end
return v and #v or 0
"""


def seal(r: Redis, keys: Keys, script: Any) -> int:
    """Rewrite the posting strings of every week that has ended since the last call at their exact size
    (a week's strings only grow while it is the current one: shares are created now). Run by the hourly
    packing; one SCAN of the keyspace when a week has ended, nothing otherwise. Returns keys sealed."""
    current = week_of(int(now() * 1000))
    raw = r.get(keys.title_sealed)
    done = int(raw) if raw is not None else None
    if done is not None and done >= current - 1:
        return 0
    stem = keys.title_postings(0, "")[:-len("0:")]
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", stem) + "*"
    cluster = keys.cluster
    pipe = r.pipeline(transaction=False)
    n = 0
    for key in r.scan_iter(match=pattern, count=1000, _type="string"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        week = name[len(stem):].split(":", 1)[0]
        if not week.isdigit() or int(week) >= current or (done is not None and int(week) <= done):
            continue
        if cluster:  # redis-py's cluster pipeline refuses scripts
            script(keys=[name])
        else:
            script(keys=[name], client=pipe)
        n += 1
        if n % 1000 == 0 and not cluster:
            pipe.execute()
    pipe.execute()
    r.set(keys.title_sealed, current - 1)
    return n


def version(r: Redis, keys: Keys) -> str | None:
    """The complete index this log has: "2", "1" (an earlier version's, until it is rebuilt), or None."""
    if r.exists(keys.title_index_ready):
        return INDEX_VERSION
    raw = r.get(keys.title_index_version)
    return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)


UPGRADE_GRACE = 86400.0  # version 1's keys outlive the rebuild by a day (processes not restarted yet)


def retire_version_1(r: Redis, keys: Keys, grace: float = UPGRADE_GRACE) -> bool:
    """Delete version 1's sorted sets and marker once version 2 has been complete for ``grace`` seconds.
    Until then a process of the earlier version, still running during a rolling upgrade, keeps finding
    what it searches for in them. Called by the hourly purge; True when it deleted them."""
    raw = r.get(keys.title_index_ready)
    if raw is None or not r.exists(keys.title_index_version) or now() - float(raw) < grace:
        return False
    _drop_version_1(r, keys)
    r.delete(keys.title_index_version)
    return True


Heads = Callable[[list[str]], dict[str, ShareHead]]  # ``DeliveryStore.share_heads``: hot or packed


def backfill(r: Redis, keys: Keys, retention: int, heads: Heads, batch: int = 1000) -> int:
    """Build the index from the shares index (titles from ``heads``, the shares hot or packed; created
    ms from the members) — a log written before the index or by version 1 of it — then mark the index
    complete (version 1's sorted sets go a day later, ``retire_version_1``). Shares written meanwhile
    index themselves (an entry written twice is read once). Returns how many shares were looked at."""
    high, seen = "+", 0
    while True:
        raw: list[Any] = r.zrange(keys.shares_index, high, "-", desc=True, bylex=True, offset=0, num=batch)
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        if not members:
            break
        found = heads([m.split(":", 1)[1] for m in members])
        pipe = r.pipeline(transaction=False)
        for m in members:
            head = found.get(m.split(":", 1)[1])
            if head is not None:
                add(pipe, keys, m, head.title, retention)
        pipe.execute()
        seen += len(members)
        high = f"({members[-1]}"
    r.set(keys.title_index_ready, int(now()))
    return seen


def _drop_version_1(r: Redis, keys: Keys) -> None:
    """UNLINK version 1's sorted sets, ``idx:title:<token>`` (never the version 2 keys beside them)."""
    stem = keys.title_index("")
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", stem) + "*"
    pipe = r.pipeline(transaction=False)
    for n, key in enumerate(r.scan_iter(match=pattern, count=1000, _type="zset")):
        pipe.unlink(key)
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def ready(r: Redis, keys: Keys, retention: int, heads: Heads, small: int = 5000) -> bool:
    """Whether title search may use the index; a small log without it is indexed on the spot (a large
    one by the hourly purge task or ``sharer purge``; until then search walks the log with a cursor)."""
    if version(r, keys) == INDEX_VERSION:
        return True
    if r.zcard(keys.shares_index) <= small:
        backfill(r, keys, retention, heads)
        return True
    return False
