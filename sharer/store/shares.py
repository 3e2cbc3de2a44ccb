"""Listing shares, newest first, with filters: what the dashboard's share list and ``GET /api/shares`` show.

Shares are indexed in one lexicographic sorted set (``"<13-digit created ms>:<share id>"``), so time
order, a date range and the cursor are one ``ZRANGE BYLEX``. A filter starts from the narrowest index
that serves it — the title index (``titles.py``: every candidate of a search, within the date range and
cursor, in one round trip) for a search, the status or account index for those filters (their members
carry the same millisecond prefix) — and checks the rest on the candidates.
Only a filter no index serves (a one-character search, a platform) scans the shares index, at most
``scan_budget`` entries per request; a page cut short that way still hands back a cursor, so an
empty page without one always means "nothing more", never "gave up".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..clock import ms
from . import titles
from .deliveries import Delivery, DeliveryStore, _s

CURSOR = re.compile(r"^\d{13}:[A-Za-z0-9_]{1,64}$")


@dataclass
class ShareSummary:
    """A share and its deliveries (each in the ``Delivery.to_json`` contract)."""

    id: str
    title: str
    url: str
    created_at: str
    deliveries: list[Delivery] = field(default_factory=list)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"share_id": self.id, "title": self.title, "url": self.url, "created_at": self.created_at,
                "deliveries": [d.to_json() for d in self.deliveries]}


@dataclass(frozen=True)
class ShareFilter:
    status: str | None = None
    account: str | None = None
    platform: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    q: str | None = None  # case-insensitive substring of the title

    def matches(self, s: ShareSummary) -> bool:
        if self.q and self.q.casefold() not in s.title.casefold():
            return False
        ds = s.deliveries
        if self.status and not any(d.status == self.status for d in ds):
            return False
        if self.account and not any(d.account == self.account for d in ds):
            return False
        return not (self.platform and not any(d.platform == self.platform for d in ds))


def load_share(store: DeliveryStore, share_id: str, with_events: bool = True) -> ShareSummary | None:
    rec = store.share(share_id)
    if rec is None:
        return None
    return ShareSummary(share_id, rec.title, rec.url, rec.created_at,
                        store.get_many(rec.delivery_ids, with_events=with_events))


def query_shares(store: DeliveryStore, flt: ShareFilter, *, limit: int = 20, cursor: str | None = None,
                 scan_budget: int = 2000) -> tuple[list[ShareSummary], str | None]:
    """Newest first. ``cursor`` is the ``next_cursor`` of the previous page (None: no more pages).

    The walk starts from the narrowest index the filter allows: the title index for a search, the
    status or account index (the smaller) for those filters, else the shares index. A page that
    stops before ``limit`` (the scan budget is spent) still returns a cursor: nothing is left out.
    """
    highs = [cursor] if cursor else []
    if flt.until is not None:
        highs.append(f"{ms(flt.until):013d}")  # exclusive: every member at that ms sorts after it
    high = f"({min(highs)}" if highs else "+"
    low = f"[{ms(flt.since):013d}" if flt.since is not None else "-"
    walk = _Walk(store, flt, limit, cursor, scan_budget)
    toks = titles.query_tokens(flt.q) if flt.q else set()
    deliveries = [store.k.status_index(flt.status)] if flt.status else []
    if flt.account:
        deliveries.append(store.k.account_index(flt.account))
    pipe = store.r.pipeline(transaction=False)
    for key in deliveries:
        pipe.zcard(key)
    smallest = min(zip(pipe.execute(), deliveries)) if deliveries else None
    if toks and titles.ready(store.r, store.k, store.retention, store.share_heads):
        found = titles.search(store.r, store.k, toks, store.retention, high, low)
        # a share has ~3 deliveries: walk whichever index holds fewer shares (the candidates are
        # counted exactly only when a bound does not settle it)
        if smallest is None or found.at_most() * 3 <= smallest[0] or len(found) * 3 <= smallest[0]:
            return walk.candidates(found)
    # a filter most deliveries match (``delivered``) is cheaper checked along the shares index
    if smallest is not None and smallest[0] < store.r.zcard(store.k.shares_index):
        return walk.deliveries(smallest[1], high, low)
    return walk.shares(store.k.shares_index, high, low)


class _Walk:
    """One page of the share list: walk an index newest first, load candidates in batches, keep matches."""

    def __init__(self, store: DeliveryStore, flt: ShareFilter, limit: int, cursor: str | None, budget: int):
        self.store, self.flt, self.limit, self.cursor, self.budget = store, flt, limit, cursor, budget
        self.found: list[tuple[str, ShareSummary]] = []
        self.plain = not (flt.q or flt.status or flt.account or flt.platform)

    def _load(self, members: list[str], cap: int | None = None) -> None:
        """Load these shares and keep the ones that match, at most ``cap`` of them (None: all).

        Title and the delivery filters are checked on a few fields first (one pipelined round trip
        each); only shares that pass are loaded with their deliveries and events."""
        r, k = self.store.r, self.store.k
        heads = self.store.share_heads([m.split(":", 1)[1] for m in members])  # hot or packed
        rows = []
        for m in members:
            head = heads.get(m.split(":", 1)[1])
            if head is None:  # purged meanwhile
                continue
            if self.flt.q and not titles.matches(self.flt.q, head.title):
                continue
            rows.append((m, head))
        f = self.flt
        if rows and (f.status or f.account or f.platform):
            pipe = r.pipeline(transaction=False)
            for _, head in rows:
                for i in head.delivery_ids if head.packed is None else []:
                    pipe.hmget(k.delivery(i), "status", "account", "platform")
            fields = iter(pipe.execute())
            kept = []
            for row in rows:
                head = row[1]
                if head.packed is not None:  # a packed share: its records' fields came with it
                    briefs = head.briefs()
                    ds = [briefs.get(i) or (None, None, None) for i in head.delivery_ids]
                else:
                    ds = [_brief(next(fields)) for _ in head.delivery_ids]
                if ((not f.status or any(d[0] == f.status for d in ds))
                        and (not f.account or any(d[1] == f.account for d in ds))
                        and (not f.platform or any(d[2] == f.platform for d in ds))):
                    kept.append(row)
            rows = kept
        start = len(self.found)
        while rows:
            take = rows if cap is None else rows[:max(1, cap - (len(self.found) - start))]
            rows = rows[len(take):]
            hot = [i for _, head in take if head.packed is None for i in head.delivery_ids]
            by_id = {d.id: d for d in self.store.get_many(hot, with_events=True)}
            for _, head in take:  # a packed share's records came with its head: not read again
                if head.packed is not None:
                    by_id.update((d.id, d) for d in self.store.packed_deliveries(head.packed))
            for m, head in take:
                summary = ShareSummary(m.split(":", 1)[1], head.title, head.url, head.created_at,
                                       [by_id[i] for i in head.delivery_ids if i in by_id])
                if self.flt.matches(summary):  # it may have changed since the first look
                    self.found.append((m, summary))
            if cap is not None and len(self.found) - start >= cap:
                return

    def _page(self, more: bool) -> tuple[list[ShareSummary], str | None]:
        self.found.sort(key=lambda x: x[0], reverse=True)
        page = self.found[:self.limit]
        cursor = page[-1][0] if page and (more or len(self.found) > self.limit) else None
        return [s for _, s in page], cursor

    def _rest(self, cursor: str | None) -> tuple[list[ShareSummary], str | None]:
        """A page cut short by the scan budget: what was found, and where to go on."""
        self.found.sort(key=lambda x: x[0], reverse=True)
        return [s for _, s in self.found], cursor

    def _more(self, index: str, below: str, low: str) -> bool:
        return bool(self.store.r.zrange(index, f"({below}", low, desc=True, bylex=True, offset=0, num=1))

    def shares(self, index: str, high: str, low: str) -> tuple[list[ShareSummary], str | None]:
        """Walk an index of share members (the shares index or a title candidate set)."""
        r = self.store.r
        scanned = rounds = 0
        while True:
            need = self.limit - len(self.found)
            grow = min(max(need * 2, 50) * 4 ** rounds, 2000)
            batch = need if self.plain else max(1, min(grow, self.budget - scanned))
            members = [_s(m) for m in r.zrange(index, high, low, desc=True, bylex=True, offset=0, num=batch)]
            if not members:
                return self._page(False)
            self._load(members, cap=need)
            scanned += len(members)
            rounds += 1
            if len(self.found) >= self.limit:
                last = self.found[self.limit - 1][0]
                return self._page(len(self.found) > self.limit or self._more(index, last, low))
            if len(members) < batch:
                return self._page(False)
            if scanned >= self.budget:
                return self._rest(members[-1] if self._more(index, members[-1], low) else None)
            high = f"({members[-1]}"

    def candidates(self, found: titles.Candidates) -> tuple[list[ShareSummary], str | None]:
        """Walk a title search's candidates (already within the page's bounds), newest first: every
        candidate is checked, so the page is complete, and it has a cursor exactly when candidates
        remain below it."""
        rounds = 0
        while True:
            need = self.limit - len(self.found)
            members = found.take(min(max(need * 2, 50) * 4 ** rounds, 2000))
            if not members:
                return self._page(False)
            self._load(members, cap=need)
            rounds += 1
            if len(self.found) >= self.limit:
                last = self.found[self.limit - 1][0]  # a batch's members past the page were not loaded
                return self._page(members[-1] < last or found.remaining())

    def deliveries(self, index: str, high: str, low: str) -> tuple[list[ShareSummary], str | None]:
        """Walk a delivery index (status or account): each entry names its share. The walk stops on a
        millisecond boundary, so shares created in the same millisecond are never split across pages."""
        r = self.store.r
        seen: set[str] = set()
        scanned = 0
        stop_ms: str | None = None
        batch = self.limit + 5  # most entries name a share of their own; grow when they do not
        while True:
            members = [_s(m) for m in r.zrange(index, high, low, desc=True, bylex=True, offset=0, num=batch)]
            if not members:
                return self._page(False)
            owners = self.store.share_ids_of([m.split(":", 1)[1] for m in members])  # hot or packed
            fresh: list[str] = []
            crossed = False
            for m in members:
                sid = owners.get(m.split(":", 1)[1])
                at = m.split(":", 1)[0]
                if stop_ms is not None and at != stop_ms:
                    crossed = True
                    break
                scanned += 1
                if sid is not None:
                    share = f"{at}:{_s(sid)}"
                    if share not in seen and not (self.cursor and share >= self.cursor):
                        seen.add(share)
                        fresh.append(share)
                if stop_ms is None and scanned >= self.budget:
                    stop_ms = at  # budget spent: finish this millisecond, then stop
            self._load(fresh)
            if stop_ms is None and len(self.found) >= self.limit:
                stop_ms = sorted(m for m, _ in self.found)[-self.limit].split(":", 1)[0]
                crossed = members[-1].split(":", 1)[0] != stop_ms
            if crossed:
                return self._stop(stop_ms, index, low)
            if len(members) < batch:
                return self._page(False)
            high = f"({members[-1]}"
            batch = min(batch * 4, 2000)

    def _stop(self, stop_ms: str | None, index: str, low: str) -> tuple[list[ShareSummary], str | None]:
        if len(self.found) >= self.limit:
            return self._page(True)
        # the budget ran out on a sparse filter: the next page goes on below this millisecond
        return self._rest(f"{stop_ms}:0" if self._more(index, f"{stop_ms}:", low) else None)


def _brief(row: list[Any]) -> tuple[str | None, str | None, str | None]:
    """(status, account, platform) of an HMGET on a hot record."""
    status, account, platform = (_s(x) if x is not None else None for x in row)
    return status, account, platform
