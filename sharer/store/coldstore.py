"""Reading, packing and unpacking settled shares in Redis (the form itself: ``cold.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from ..clock import iso, ms, now
from . import codec, cold, scripts
from .keys import Keys
from .states import TERMINAL

_TERMINAL = {str(s) for s in TERMINAL}


def _s(v: Any) -> str:
    return codec.as_text(v)


def _dec(h: dict) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in h.items()}


def _expiry(pttl: int, at_ms: int) -> int:
    return at_ms + pttl if pttl is not None and pttl >= 0 else -1


@dataclass
class _HotShare:
    """A share's hot keys as read for packing."""

    id: str
    fields: dict[str, str]  # the share hash without its article
    article: bytes | None
    expires: int  # epoch ms, -1 never
    ids: list[str]
    deliveries: list[cold.HotDelivery] = field(default_factory=list)
    incomplete: bool = False  # a delivery it lists has no record


class ColdStore:
    def __init__(self, redis: Redis, keys: Keys):
        self.r, self.k = redis, keys
        self._compact = scripts.register(redis, cold.COMPACT)
        self._thaw = scripts.register(redis, cold.THAW)

    # --- reading ---------------------------------------------------------------------------------

    def packed(self, share_ids: Iterable[str]) -> dict[str, cold.Packed]:
        """The packed shares among ``share_ids`` (a share that is hot or gone is left out)."""
        ids = list(dict.fromkeys(share_ids))
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.get(self.k.cold(sid))
        return {sid: cold.unpack(blob) for sid, blob in zip(ids, pipe.execute()) if blob}

    def share_ids_of(self, delivery_ids: Iterable[str]) -> dict[str, str]:
        """Packed delivery id -> its share id (the ids not packed are left out)."""
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for did in ids:
            pipe.hget(self.k.cold_map(cold.bucket(did)), cold.pack_id(did))
        return {did: cold.unpack_id(codec.as_bytes(sid), "sh") for did, sid in zip(ids, pipe.execute())
                if sid is not None}

    def records(self, delivery_ids: Iterable[str]
                ) -> dict[str, tuple[dict[str, str], list[str], dict[str, Any] | None]]:
        """Packed deliveries: id -> (record with long values joined, events, post)."""
        owners = self.share_ids_of(delivery_ids)
        found: dict[str, tuple[dict[str, str], list[str], dict[str, Any] | None]] = {}
        for p in self.packed(owners.values()).values():
            for d, row in zip(p.deliveries, p.records()):
                if d.id in owners:
                    found[d.id] = row
        return found

    # --- packing ---------------------------------------------------------------------------------

    def compact(self, settled_before: float, batch: int = 200, limit: int | None = None) -> int:
        """Pack every share created and settled before ``settled_before`` (epoch seconds): the shares the
        walk has not reached yet (from ``cold-cursor``) and those it passed unsettled (``cold-pending``).
        ``limit`` caps how many shares one call looks at (the walk goes on from there next time).
        Returns how many shares were packed."""
        high = f"({ms(settled_before):013d}"
        packed = looked = 0
        low = "-"
        while limit is None or looked < limit:  # those passed before, unsettled then
            raw = self.r.zrange(self.k.cold_pending, low, high, bylex=True, offset=0, num=batch)
            members = [_s(m) for m in raw]
            if not members:
                break
            packed += self._pack(members, settled_before)
            looked += len(members)
            low = f"({members[-1]}"
        cursor = self.r.get(self.k.cold_cursor)
        low = f"({_s(cursor)}" if cursor else "-"
        while limit is None or looked < limit:
            members = [_s(m) for m in self.r.zrange(self.k.shares_index, low, high, bylex=True, offset=0, num=batch)]
            if not members:
                break
            packed += self._pack(members, settled_before)
            looked += len(members)
            self.r.set(self.k.cold_cursor, members[-1])
            low = f"({members[-1]}"
        return packed

    def _pack(self, members: list[str], settled_before: float) -> int:
        """Pack these shares where every delivery is settled since before ``settled_before``; those not
        ready go (or stay) in ``cold-pending``. One round trip for the shares, one for their deliveries,
        one for the scripts."""
        ready_before = iso(settled_before)
        calls: list[tuple[str, list[str], list[Any]]] = []
        waiting: list[str] = []
        for m, share in self._read(members):
            if share.incomplete:
                continue  # a record missing from its share: leave the share as it is
            if not all(d.record.get("status") in _TERMINAL
                       and (d.record.get("updated_at") or d.record.get("created_at") or "") < ready_before
                       for d in share.deliveries):
                waiting.append(m)
                continue
            calls.append((m, *self._compact_call(share)))
        if self.k.cluster:  # redis-py's cluster pipeline refuses scripts: one call each
            results = [self._compact(keys=keys, args=args) for _, keys, args in calls]
        else:
            pipe = self.r.pipeline(transaction=False)
            for _, keys, args in calls:
                self._compact(keys=keys, args=args, client=pipe)
            results = pipe.execute() if calls else []
        done = 0
        pipe = self.r.pipeline(transaction=False)
        for (m, _, _), res in zip(calls, results):
            if int(res) == -1:
                waiting.append(m)  # changed while we read it: next time
            else:
                done += int(res)
                pipe.zrem(self.k.cold_pending, m)
        for m in waiting:
            pipe.zadd(self.k.cold_pending, {m: 0})
        pipe.execute()
        return done

    def _read(self, members: list[str]) -> list[tuple[str, _HotShare]]:
        """The hot keys of these shares and their deliveries, in two pipelined round trips (a share that
        is gone or packed already is left out)."""
        sids = [m.split(":", 1)[1] for m in members]
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self.k.share(sid))
            pipe.pttl(self.k.share(sid))
        got = pipe.execute()
        at = ms(now())
        shares: list[tuple[str, _HotShare]] = []
        for i, (m, sid) in enumerate(zip(members, sids)):
            raw: dict[bytes, bytes] = got[2 * i]
            if raw:
                article = codec.unpack_article(raw.pop(b"article_z", None), raw.pop(b"article", None))
                h = _dec(raw)
                shares.append((m, _HotShare(sid, h, article, _expiry(got[2 * i + 1], at),
                                            json.loads(h.get("delivery_ids") or "[]"))))
        pipe = self.r.pipeline(transaction=False)
        for _, share in shares:
            for did in share.ids:
                pipe.hgetall(self.k.delivery(did))
                pipe.hgetall(self.k.delivery_long(did))
                pipe.lrange(self.k.events(did), 0, -1)
                pipe.get(self.k.delivery_post(did))
                for key in self.k.delivery_keys(did):
                    pipe.pttl(key)
        rows = iter(pipe.execute())
        for _, share in shares:
            for did in share.ids:
                rec, long, evs, post = _dec(next(rows)), _dec(next(rows)), next(rows), next(rows)
                ttls = (_expiry(next(rows), at), _expiry(next(rows), at), _expiry(next(rows), at),
                        _expiry(next(rows), at))
                if rec:
                    share.deliveries.append(cold.HotDelivery(did, rec, long, [_s(e) for e in evs], post, ttls))
                else:
                    share.incomplete = True
        return shares

    def _compact_call(self, share: _HotShare) -> tuple[list[str], list[Any]]:
        """``COMPACT``'s keys and arguments for one share (see the script for their order)."""
        blob = cold.pack(share.fields, share.article, share.deliveries)
        latest = max([share.expires] + [t for d in share.deliveries for t in d.ttls])
        keys = [self.k.cold(share.id), self.k.share(share.id)]
        args: list[Any] = [blob, str(latest) if latest > 0 else "",
                           str(len(share.fields) + (share.article is not None)), cold.pack_id(share.id)]
        for d in share.deliveries:
            keys += [self.k.delivery(d.id), self.k.events(d.id), self.k.delivery_post(d.id),
                     self.k.delivery_long(d.id), self.k.cold_map(cold.bucket(d.id))]
            args += [cold.pack_id(d.id), d.record.get("status", ""), d.record.get("updated_at", ""),
                     str(len(d.events)), str(len(d.post_blob or b"")), str(len(d.long))]
        return keys, args

    # --- unpacking -------------------------------------------------------------------------------

    def thaw(self, share_id: str) -> bool:
        """Unpack a share into its hot keys. True: it is hot now (by us or someone first); False: it was
        not packed."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self.k.cold(share_id))
        pipe.pttl(self.k.cold(share_id))
        blob, pttl = pipe.execute()
        if not blob:
            return False
        p = cold.unpack(codec.as_bytes(blob))
        keys = [self.k.cold(share_id), self.k.share(share_id)]
        for d in p.deliveries:
            keys += [self.k.delivery(d.id), self.k.events(d.id), self.k.delivery_post(d.id),
                     self.k.delivery_long(d.id), self.k.cold_map(cold.bucket(d.id))]
        self._thaw(keys=keys, args=cold.thaw_args(p, _expiry(pttl, ms(now()))))
        idx = p.deliveries[0].record.get("idx", "") if p.deliveries else ""
        if ":" in idx:  # once it settles again, pack it again: the walk has passed it
            self.r.zadd(self.k.cold_pending, {f"{idx.split(':', 1)[0]}:{share_id}": 0})
        return True

    def thaw_delivery(self, delivery_id: str) -> bool:
        sid = self.share_ids_of([delivery_id]).get(delivery_id)
        return self.thaw(sid) if sid else False
