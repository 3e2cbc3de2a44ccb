"""The delivery log: one hash per delivery (with its post and long values beside it, see ``codec``), its
event list, and the indexes — changed only atomically.

Every status change goes through one Lua script that checks the current status (compare-and-set),
optionally the attempt number (a fencing token), then writes the hash, appends the event, moves the
status index and publishes a notice, all at once: the log and its indexes cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis

from ..clock import iso, ms, now
from . import codec, cold, lua, scripts, titles
from .coldstore import ColdStore
from .keys import Keys
from .records import Delivery, ShareHead, ShareRecord
from .states import CANCELLABLE, EXPLAINED, RETRYABLE, STATUSES, TERMINAL, Status, index_keys
from .verdicts import Claim, ClaimOutcome, Decision, Outcome, Result

__all__ = ["CANCELLABLE", "EXPLAINED", "RETRYABLE", "STATUSES", "TERMINAL", "Claim", "ClaimOutcome", "Decision",
           "Delivery", "DeliveryStore", "Outcome", "Result", "ShareRecord", "Status"]


class DeliveryStore:
    def __init__(self, redis: Redis, keys: Keys, retention_seconds: float = 90 * 86400):
        self.r = redis
        self.k = keys
        self.retention = int(retention_seconds)
        self._transition = scripts.register(redis, lua.TRANSITION)
        self._claim = scripts.register(redis, lua.CLAIM)
        self._decide = scripts.register(redis, lua.DECIDE)
        self._seal = scripts.register(redis, titles.SEAL)
        self._indexes = index_keys(keys)
        self._articles: dict[str, bytes | None] = {}  # share id -> article JSON (immutable once written)
        self.cold = ColdStore(redis, keys)  # settled shares, packed (``cold.py``)

    # --- writing ---------------------------------------------------------------------------------

    def create_share(self, share: dict[str, Any], deliveries: list[dict[str, Any]], status: str = "queued",
                     message: str = "queued", *, actor: str = "worker",
                     also: Callable[[Any], None] | None = None, at: float | None = None,
                     pipe: Any = None) -> list[Delivery]:
        """Write a share and its deliveries in one MULTI/EXEC: all of it exists, or none.

        A delivery dict may carry its own ``status`` and ``message`` (a share to several accounts waits
        for sign-off only on the accounts that need it). ``also(pipe)`` adds writes that belong with it
        (the audit entry). Records get their Redis TTL (retention + 1 day, a backstop for the purge) when
        they settle. ``at`` backdates the creation (imports and benchmarks); default now — the millisecond in
        a share id made by ``new_id`` (a few ms ago), so its title-index entry is the packed id. With ``pipe``
        (bulk imports) the commands are queued on the caller's pipeline, which executes them.
        """
        created_records: list[Delivery] = []
        t = now() if at is None else at
        t_ms = ms(t)
        id_ms = titles.id_ms(str(share["id"])) if at is None else None
        if id_ms is not None and abs(id_ms - t_ms) < 3_600_000:  # a new id: created at its own
            t, t_ms = id_ms / 1000, id_ms  # millisecond, so the title index derives the member from the id
        created = iso(t)
        member_ms = f"{t_ms:013d}"
        ttl = self.retention + 86400  # backstop; `purge` removes index entries on time
        own = pipe is None
        if own:
            pipe = self.r.pipeline(transaction=True)
        share_key = self.k.share(share["id"])
        share = dict(share)
        article = share.pop("article", None)
        article_raw = None if article is None else codec.compact_json(article).encode()
        share_fields: dict[str, Any] = {**{k: _enc(v) for k, v in share.items()}, "created_at": created}
        if article is not None:
            share_fields["article_z"] = codec.pack_article(article)
        pipe.hset(share_key, mapping=share_fields)
        pipe.expire(share_key, ttl)
        pipe.zadd(self.k.shares_index, {f"{member_ms}:{share['id']}": 0})
        titles.add(pipe, self.k, f"{member_ms}:{share['id']}", str(share.get("title") or ""), self.retention)
        scheduled = False
        for d in deliveries:
            d = dict(d)
            text = d.pop("message", message)
            st = Status(d.pop("status", status))
            member = f"{member_ms}:{d['id']}"
            ev = codec.pack_event(t_ms, st, 0, text, actor)
            post = d.pop("post", None)
            fields: dict[str, str] = {**{k: _enc(v) for k, v in d.items()}, "share_id": share["id"], "status": st,
                                      "attempts": "0", "created_at": created, "updated_at": created, "idx": member}
            fields = {k: v for k, v in fields.items() if v != ""}
            record, long = codec.split_long(fields)
            pipe.hset(self.k.delivery(d["id"]), mapping=record)
            if long:
                pipe.hset(self.k.delivery_long(d["id"]), mapping=long)
            if post is not None:
                pipe.set(self.k.delivery_post(d["id"]), codec.pack_post(post, article_raw))
            created_records.append(Delivery.from_hash(fields, [ev], post=post))
            # the dispatcher's queue (score = due time); one still waiting for sign-off is in it too, so
            # that its due time passing unapproved is noticed
            if d.get("scheduled_for") not in (None, "") and st in (Status.SCHEDULED, Status.AWAITING_APPROVAL):
                pipe.zadd(self.k.schedule, {d["id"]: float(d["scheduled_for"])})
                scheduled = True
            pipe.rpush(self.k.events(d["id"]), ev)
            if st in TERMINAL:  # a delivery may start settled (``failed``: it cannot compose)
                for key in self.k.delivery_keys(d["id"]):
                    pipe.expire(key, ttl)
            pipe.zadd(self.k.status_index(st), {member: 0})
            pipe.zadd(self.k.account_index(d["account"]), {member: 0})
        if also is not None:
            also(pipe)
        if scheduled:  # a dispatcher asleep until a later entry wakes up and looks again
            pipe.lpush(self.k.schedule_wake, "1")
            pipe.ltrim(self.k.schedule_wake, 0, 0)
        if own:
            pipe.execute()
        return created_records

    def transition(self, delivery_id: str, allowed: Iterable[str] | str, new: str | None, message: str,
                   *, token: int | None = None, fields: dict[str, Any] | None = None,
                   bump: bool = False, actor: str = "worker") -> Result:
        """Compare-and-set: move from one of ``allowed`` to ``new`` (None: keep) if the table allows it.

        ``actor`` is who caused it (recorded on the event): the worker unless a caller says otherwise.
        """
        allowed_s = allowed if isinstance(allowed, str) else ",".join(allowed)
        fields = dict(fields or {})
        post = fields.pop("post", None)
        for _ in range(3):  # a packed (settled) record is unpacked first; packing may race once
            res = self._transition(
                keys=[*self.k.delivery_keys(delivery_id), *self._indexes],
                args=[allowed_s, new or "", iso(), message,
                      "" if token is None else str(token), json.dumps(_fields(fields)),
                      "1" if bump else "0", self.k.events_channel, str(self.retention + 86400), actor,
                      b"" if post is None else self._pack_post(delivery_id, post)],
            )
            if _s(res[0]) != Outcome.MISSING or not self.cold.thaw_delivery(delivery_id):
                break
        outcome, detail = Outcome(_s(res[0])), _s(res[1])
        if outcome is Outcome.OK:
            return Result(outcome, None, int(detail))
        return Result(outcome, Status(detail) if detail else None)

    def claim(self, delivery_id: str, lease_seconds: float, *, rate_key: str = "",
              rate: tuple[int, float] | None = None, version: int | None = None) -> Claim:
        """queued/retrying -> sending with a lease; on success also returns the record and article JSON.

        The other outcomes (``ClaimOutcome``) say why not, each with its own typed field. The article is
        read after the claim (another record, so not the script's to touch; it never changes once written).
        """
        count, period = rate or (0, 0.0)
        t = now()
        own = [self.k.delivery(delivery_id), self.k.events(delivery_id), self.k.delivery_long(delivery_id)]
        own += [rate_key] if rate and rate_key else []
        res = self._claim(
            keys=[*own, *self._indexes],
            args=[repr(t), iso(t), repr(float(lease_seconds)), self.k.events_channel,
                  str(count), repr(float(period)), f"{t!r}:{delivery_id}",
                  "" if version is None else str(version)],
        )
        article = None
        if _s(res[0]) == ClaimOutcome.OK:
            flat = [_s(x) for x in res[2]]
            share_id = dict(zip(flat[::2], flat[1::2])).get("share_id", "")
            article = self._article(share_id) if share_id else None
        return Claim.decode(res, article)

    def decide(self, delivery_ids: list[str], action: str, *, actor: str, user: str, four_eyes: bool,
               version: int | None = None, fields: dict[str, dict[str, Any]] | None = None,
               reason: str = "") -> Decision:
        """Approve, reject or resubmit every eligible delivery of a share in one script (all or none)."""
        keys = [self.k.schedule]
        posts: list[bytes] = []
        for did in delivery_ids:
            keys += [self.k.delivery(did), self.k.events(did), self.k.delivery_post(did), self.k.delivery_long(did)]
            post = ((fields or {}).get(did) or {}).get("post")
            posts.append(b"" if post is None else self._pack_post(did, post))
        fields = {did: {k: v for k, v in f.items() if k != "post"} for did, f in (fields or {}).items()}
        t = now()
        res = self._decide(keys=[*keys, *self._indexes], args=[
            self.k.events_channel, iso(t), actor, user, action,
            "" if version is None else str(version),
            json.dumps({k: _fields(v) for k, v in (fields or {}).items()}) if fields else "{}",
            reason, repr(t), str(self.retention + 86400), "1" if four_eyes else "0", *posts])
        outcome = Outcome(_s(res[0]))
        if outcome is Outcome.OK:
            moved = [(_s(r[0]), Status(_s(r[1])), _s(r[2]), int(_s(r[3]))) for r in res[1]]
            return Decision(outcome, moved)
        if outcome is Outcome.STALE:
            return Decision(outcome, version=int(_s(res[1])))
        return Decision(outcome, statuses=[x for x in _s(res[1]).split(",") if x])

    # --- reading ---------------------------------------------------------------------------------

    def get(self, delivery_id: str, with_events: bool = True) -> Delivery | None:
        found = self.get_many([delivery_id], with_events=with_events)
        return found[0] if found else None

    def load(self, delivery_id: str) -> tuple[Delivery | None, str | None]:
        """The record and its share's article JSON (two round trips: the share is named by the record)."""
        found = self.get_many([delivery_id], with_events=False, with_post=False)
        if not found:
            return None, None
        article = self._article(found[0].share_id)
        return found[0], article.decode() if article is not None else None

    def get_many(self, ids: list[str], with_events: bool = True, with_post: bool = True) -> list[Delivery]:
        """The records in ``ids`` order (missing ones left out): one round trip for the records, their
        long values, events and posts, one more for the articles the posts were compressed against."""
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k.delivery(i))
            pipe.hgetall(self.k.delivery_long(i))
            if with_events:
                pipe.lrange(self.k.events(i), 0, -1)
            if with_post:
                pipe.get(self.k.delivery_post(i))
        out = iter(pipe.execute())
        rows: dict[str, tuple[dict[str, str], list[str] | None, bytes | None]] = {}
        for i in ids:
            h, long = _dec(next(out)), _dec(next(out))
            evs = [_s(e) for e in next(out)] if with_events else None
            blob = next(out) if with_post else None
            if h:
                rows[i] = (codec.join_long(h, long), evs, blob)
        if with_post:
            self._articles_for({h["share_id"] for h, _, blob in rows.values() if blob and blob[:1] == b"z"})
        packed = self.cold.records(i for i in ids if i not in rows)
        result = []
        for i in ids:
            if i in rows:
                h, evs, blob = rows[i]
                post = codec.unpack_post(blob, self._articles.get(h["share_id"])) if blob else None
                result.append(Delivery.from_hash(h, evs, post=post))
            elif i in packed:
                result.append(_from_packed(packed[i], with_events, with_post))
        return result

    def packed_deliveries(self, p: cold.Packed, with_events: bool = True) -> list[Delivery]:
        """A packed share's deliveries (as ``get_many`` reads them), from a form already read."""
        return [_from_packed(row, with_events, True) for row in p.records()]

    def share_delivery_ids(self, share_id: str) -> list[str] | None:
        """The share's delivery ids (None: no such share, hot or packed), without loading its article."""
        raw = self.r.hget(self.k.share(share_id), "delivery_ids")
        if raw is None:
            head = self.share_heads([share_id]).get(share_id)
            return None if head is None else head.delivery_ids
        return json.loads(_s(raw))

    def share(self, share_id: str) -> ShareRecord | None:
        raw = self.r.hgetall(self.k.share(share_id))
        if not raw:
            p = self.cold.packed([share_id]).get(share_id)
            if p is None:
                return None
            h = dict(p.share)
            if p.article is not None:
                h["article"] = p.article.decode()
            return ShareRecord.from_hash(share_id, h)
        packed = raw.pop(b"article_z", None)
        article = codec.unpack_article(packed if isinstance(packed, bytes) else None, raw.pop(b"article", None))
        h = _dec(raw)
        if article is not None:
            h["article"] = article.decode()
        return ShareRecord.from_hash(share_id, h)

    def share_heads(self, share_ids: list[str]) -> dict[str, ShareHead]:
        """The small fields of each share that exists, hot (one HMGET) or packed (with its packed form,
        so its records need no second read)."""
        small = ("title", "url", "created_at", "delivery_ids", "shared_by")
        pipe = self.r.pipeline(transaction=False)
        for sid in share_ids:
            pipe.hmget(self.k.share(sid), *small)
        found: dict[str, tuple[dict[str, str], cold.Packed | None]] = {}
        missing = []
        for sid, row in zip(share_ids, pipe.execute()):
            if row[3] is None:
                missing.append(sid)
            else:
                found[sid] = ({k: _s(v) for k, v in zip(small, row) if v is not None}, None)
        for sid, p in self.cold.packed(missing).items():
            found[sid] = (p.share, p)
        return {sid: ShareHead(h.get("title", ""), h.get("url", ""), h.get("created_at", ""),
                               json.loads(h.get("delivery_ids") or "[]"), h.get("shared_by") or None, p)
                for sid, (h, p) in found.items()}

    def share_ids_of(self, delivery_ids: list[str]) -> dict[str, str]:
        """Delivery id -> its share id, hot or packed (ids of no delivery are left out)."""
        pipe = self.r.pipeline(transaction=False)
        for did in delivery_ids:
            pipe.hget(self.k.delivery(did), "share_id")
        found = {did: _s(sid) for did, sid in zip(delivery_ids, pipe.execute()) if sid is not None}
        found.update(self.cold.share_ids_of(d for d in delivery_ids if d not in found))
        return found

    def compact(self, settled_before: float | None = None, limit: int | None = None) -> int:
        """Pack the shares settled before ``settled_before`` (default: ``COLD_AFTER`` ago); see ``cold.py``."""
        packed = self.cold.compact(now() - cold.COLD_AFTER if settled_before is None else settled_before, limit=limit)
        titles.seal(self.r, self.k, self._seal)  # and the title index's finished weeks at their exact size
        return packed

    # --- the article a post is compressed against ------------------------------------------------

    def _remember(self, share_id: str, article: bytes | None) -> None:
        if len(self._articles) >= 512:  # a small cache: articles never change once written
            self._articles.pop(next(iter(self._articles)))
        self._articles[share_id] = article

    def _articles_for(self, share_ids: set[str]) -> None:
        wanted = [s for s in share_ids if self._articles.get(s) is None]
        if not wanted:
            return
        pipe = self.r.pipeline(transaction=False)
        for sid in wanted:
            pipe.hmget(self.k.share(sid), "article_z", "article")
        missing = []
        for sid, (packed, plain) in zip(wanted, pipe.execute()):
            if packed is None and plain is None:
                missing.append(sid)
            self._remember(sid, codec.unpack_article(packed, plain))
        for sid, p in self.cold.packed(missing).items():
            self._remember(sid, p.article)

    def _article(self, share_id: str) -> bytes | None:
        self._articles_for({share_id})
        return self._articles.get(share_id)

    def _pack_post(self, delivery_id: str, post: dict[str, Any]) -> bytes:
        """The post's stored form, compressed against its share's article (read once, then cached)."""
        share_id = self.r.hget(self.k.delivery(delivery_id), "share_id")
        return codec.pack_post(post, self._article(_s(share_id)) if share_id is not None else None)

    def query(self, *, status: str | None = None, account: str | None = None, since: float | None = None,
              limit: int = 50, cursor: str | None = None, with_events: bool = True, with_post: bool = True
              ) -> tuple[list[Delivery], str | None]:
        """Newest first. ``cursor`` is the opaque ``next_cursor`` of the previous page."""
        if status:
            index = self.k.status_index(status)
        elif account:
            index = self.k.account_index(account)
        else:
            return self._query_all(since, limit, cursor, with_events, with_post)
        high = f"({cursor}" if cursor else "+"
        low = f"[{ms(since):013d}" if since else "-"
        found: list[Delivery] = []
        next_cursor = None
        batch = max(limit * 2, 100)
        while len(found) < limit:
            members = [_s(m) for m in self.r.zrange(index, high, low, desc=True, bylex=True, offset=0, num=batch)]
            if not members:
                next_cursor = None
                break
            ids = [m.split(":", 1)[1] for m in members]
            records = {d.id: d for d in self.get_many(ids, with_events=with_events, with_post=with_post)}
            for member, did in zip(members, ids):
                d = records.get(did)
                next_cursor = member
                if d is None or (account and d.account != account) or (status and d.status != status):
                    continue
                found.append(d)
                if len(found) == limit:
                    break
            if len(members) < batch and len(found) < limit:
                next_cursor = None
                break
            high = f"({members[-1]}" if len(found) < limit else high
        if len(found) < limit:
            next_cursor = None
        return found, next_cursor

    def _query_all(self, since: float | None, limit: int, cursor: str | None, with_events: bool,
                   with_post: bool) -> tuple[list[Delivery], str | None]:
        """Every delivery newest first, walking the shares index: a share's deliveries carry its
        millisecond, so their members (``"<ms>:<delivery id>"``) are the shares' with the ids swapped.
        Whole milliseconds are taken at a time so the order across shares stays exact."""
        low = f"[{ms(since):013d}" if since else "-"
        high = f"({cursor.split(':', 1)[0]}:~" if cursor else "+"
        members: list[str] = []
        while True:
            got = [_s(m) for m in self.r.zrange(self.k.shares_index, high, low, desc=True, bylex=True, offset=0,
                                                 num=max(limit, 50))]
            if got:  # finish the last millisecond, so no share of it waits for the next page
                last_ms = got[-1].split(":", 1)[0]
                got += [_s(m) for m in self.r.zrange(self.k.shares_index, f"({got[-1]}", f"[{last_ms}:",
                                                      desc=True, bylex=True)]
            heads = self.share_heads([m.split(":", 1)[1] for m in got])
            for m in got:
                at, sid = m.split(":", 1)
                for did in heads[sid].delivery_ids if sid in heads else []:
                    member = f"{at}:{did}"
                    if cursor is None or member < cursor:
                        members.append(member)
            if len(members) > limit or not got:
                break
            high = f"({got[-1].split(':', 1)[0]}:"
        members.sort(reverse=True)
        page = members[:limit]
        records = {d.id: d for d in self.get_many([m.split(":", 1)[1] for m in page], with_events=with_events,
                                                  with_post=with_post)}
        found = [records[m.split(":", 1)[1]] for m in page if m.split(":", 1)[1] in records]
        return found, (page[-1] if len(members) > limit else None)

    def ids_in_status(self, status: str, limit: int = 1000) -> list[str]:
        members = self.r.zrange(self.k.status_index(status), "-", "+", bylex=True, offset=0, num=limit)
        return [_s(m).split(":", 1)[1] for m in members]

    def count_by_status(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for s in STATUSES:
            pipe.zcard(self.k.status_index(s))
        return dict(zip(STATUSES, pipe.execute()))

    # --- retention -------------------------------------------------------------------------------

    def purge(self, older_than: float, batch: int = 500) -> int:
        """Delete deliveries and shares created before ``older_than`` (epoch seconds), indexes included."""
        cutoff = f"({ms(older_than):013d}"
        removed = 0
        if titles.version(self.r, self.k) != titles.INDEX_VERSION:  # a log older than this title index
            titles.backfill(self.r, self.k, self.retention, self.share_heads)
        titles.retire_version_1(self.r, self.k)
        while True:  # the all-deliveries index of a log written before it went away (issue 15)
            members = [_s(m) for m in self.r.zrange(self.k.all_index, "-", cutoff, bylex=True, offset=0, num=batch)]
            if not members:
                break
            ids = [m.split(":", 1)[1] for m in members]
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.k.delivery(i), "status", "account")
            info = pipe.execute()
            pipe = self.r.pipeline(transaction=True)
            for member, did, (status, account) in zip(members, ids, info):
                pipe.delete(*self.k.delivery_keys(did))
                pipe.zrem(self.k.all_index, member)
                for s in STATUSES:
                    if status is None or _s(status) == s:
                        pipe.zrem(self.k.status_index(s), member)
                if account is not None:
                    pipe.zrem(self.k.account_index(_s(account)), member)
            pipe.execute()  # counted below, with their shares
        while True:  # each share with its deliveries, hot or packed
            members = [_s(m) for m in self.r.zrange(self.k.shares_index, "-", cutoff, bylex=True, offset=0, num=batch)]
            if not members:
                break
            heads = self.share_heads([m.split(":", 1)[1] for m in members])
            hot_ids = [did for h in heads.values() if h.packed is None for did in h.delivery_ids]
            pipe = self.r.pipeline(transaction=False)
            for did in hot_ids:
                pipe.hmget(self.k.delivery(did), "status", "account")
            fields = {did: tuple(_s(x) if x is not None else None for x in row)
                      for did, row in zip(hot_ids, pipe.execute())}
            pipe = self.r.pipeline(transaction=True)
            for m in members:
                at, sid = m.split(":", 1)
                head = heads.get(sid)
                briefs = head.briefs() if head is not None else {}
                for did in head.delivery_ids if head is not None else []:
                    status, account = fields.get(did) or (None, None)
                    if did in briefs:
                        status, account = briefs[did][0], briefs[did][1]
                        pipe.hdel(self.k.cold_map(cold.bucket(did)), cold.pack_id(did))
                    pipe.delete(*self.k.delivery_keys(did))
                    dm = f"{at}:{did}"
                    for st in STATUSES:
                        if status is None or status == st:
                            pipe.zrem(self.k.status_index(st), dm)
                    if account is not None:
                        pipe.zrem(self.k.account_index(account), dm)
                    removed += 1
                pipe.delete(self.k.share(sid), self.k.cold(sid))
                pipe.zrem(self.k.shares_index, m)
                pipe.zrem(self.k.cold_pending, m)
                if head is not None:  # only odd-set entries: the posting strings expire by themselves
                    titles.remove(pipe, self.k, m, head.title)
            pipe.execute()
        return removed

def _from_packed(row: tuple[dict[str, str], list[str], dict[str, Any] | None], with_events: bool,
                 with_post: bool) -> Delivery:
    h, events, post = row
    return Delivery.from_hash(h, events if with_events else None, post=post if with_post else None)


def _enc(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return codec.compact_json(v)
    return str(v)


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    """None deletes a field (sent as false to Lua); containers are JSON-encoded."""
    return {k: (False if v is None else _enc(v)) for k, v in fields.items()}


_s = codec.as_text  # shares.py and titles' callers import it from here


def _dec(h: dict) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in h.items()}
