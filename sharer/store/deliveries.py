"""The delivery log: one hash per delivery, its event list, and the indexes — changed only atomically.

Every status change goes through one Lua script that checks the current status (compare-and-set),
optionally the attempt number (a fencing token), then writes the hash, appends the event, moves the
status index and publishes a notice, all at once: the log and its indexes cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from ..clock import iso, ms, now
from . import titles
from .keys import Keys

TERMINAL = ("delivered", "failed", "cancelled")
# statuses that always carry a reason (``error`` or ``note``) in the JSON and the tables
EXPLAINED = ("failed", "cancelled", "needs_review", "unknown", "retrying")
STATUSES = ("queued", "scheduled", "sending", "retrying", "delivered", "failed", "cancelled",
            "unknown", "needs_review")

# KEYS[1] delivery hash, KEYS[2] its event list
# ARGV: 1 status-index prefix, 2 allowed current statuses ("a,b" or "*"), 3 new status ("" = keep),
#       4 now iso, 5 message, 6 fencing token ("" = none), 7 fields json, 8 "1" to bump attempts,
#       9 events channel, 10 TTL seconds for a settled record (retention + 1 day)
_TRANSITION = """
local h = KEYS[1]
local cur = redis.call('HGET', h, 'status')
if not cur then return {'missing', ''} end
if ARGV[2] ~= '*' then
  local ok = false
  for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then ok = true end end
  if not ok then return {'conflict', cur} end
end
if ARGV[6] ~= '' and redis.call('HGET', h, 'attempts') ~= ARGV[6] then return {'stale', cur} end
local new = ARGV[3]
if new == '' then new = cur end
local attempts = tonumber(redis.call('HGET', h, 'attempts') or '0')
if ARGV[8] == '1' then attempts = attempts + 1 end
local fields = cjson.decode(ARGV[7])
for k, v in pairs(fields) do
  if v == false then redis.call('HDEL', h, k) else redis.call('HSET', h, k, tostring(v)) end
end
redis.call('HSET', h, 'status', new, 'attempts', attempts, 'updated_at', ARGV[4])
if new ~= cur then
  local member = redis.call('HGET', h, 'idx')
  redis.call('ZREM', ARGV[1] .. cur, member)
  redis.call('ZADD', ARGV[1] .. new, 0, member)
end
if ARGV[5] == '' and new == cur then return {'ok', tostring(attempts)} end  -- a silent field update
local ev = cjson.encode({at = ARGV[4], status = new, attempt = attempts, message = ARGV[5]})
redis.call('RPUSH', KEYS[2], ev)
if new == 'delivered' or new == 'failed' or new == 'cancelled' then
  redis.call('EXPIRE', h, ARGV[10])
  redis.call('EXPIRE', KEYS[2], ARGV[10])
end
redis.call('PUBLISH', ARGV[9], cjson.encode({delivery = redis.call('HGET', h, 'id'),
  share = redis.call('HGET', h, 'share_id'), status = new, attempt = attempts, at = ARGV[4]}))
return {'ok', tostring(attempts)}
"""

# Claim a delivery for sending: queued/retrying -> sending with a lease and a new attempt number.
# KEYS[3] the account's rate-limit log ("" = no limit)
# ARGV: 1 status-index prefix, 2 now epoch, 3 now iso, 4 lease seconds, 5 channel, 6 share key prefix,
#       7 rate count, 8 rate period seconds, 9 a unique member for this send,
#       10 the schedule version the task was sent for ("" = any)
_CLAIM = """
local h = KEYS[1]
local cur = redis.call('HGET', h, 'status')
if not cur then return {'missing', ''} end
local now = tonumber(ARGV[2])
local function move(new, msg, bump)
  local attempts = tonumber(redis.call('HGET', h, 'attempts') or '0')
  if bump then attempts = attempts + 1 end
  redis.call('HSET', h, 'status', new, 'attempts', attempts, 'updated_at', ARGV[3])
  local member = redis.call('HGET', h, 'idx')
  redis.call('ZREM', ARGV[1] .. cur, member)
  redis.call('ZADD', ARGV[1] .. new, 0, member)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = ARGV[3], status = new, attempt = attempts, message = msg}))
  redis.call('PUBLISH', ARGV[5], cjson.encode({delivery = redis.call('HGET', h, 'id'),
    share = redis.call('HGET', h, 'share_id'), status = new, attempt = attempts, at = ARGV[3]}))
  return attempts
end
if ARGV[10] ~= '' and (redis.call('HGET', h, 'version') or '0') ~= ARGV[10] then return {'stale', cur} end
if cur == 'queued' or cur == 'retrying' then
  local not_before = tonumber(redis.call('HGET', h, 'not_before') or '0')
  if not_before > now then return {'early', tostring(not_before)} end
  -- the account's shared rate limit: a sliding-window log of send times (exact: never more than
  -- ARGV[7] sends in any ARGV[8] seconds, whatever the number of workers)
  if KEYS[3] ~= '' then
    local limit, period = tonumber(ARGV[7]), tonumber(ARGV[8])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - period)
    if redis.call('ZCARD', KEYS[3]) >= limit then
      local oldest = tonumber(redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2])
      local wait_until = oldest + period
      redis.call('HSET', h, 'not_before', tostring(wait_until))
      return {'limited', tostring(wait_until - now)}
    end
    redis.call('ZADD', KEYS[3], now, ARGV[9])
    redis.call('EXPIRE', KEYS[3], math.ceil(period) + 60)
  end
  local attempts = move('sending', 'sending', true)
  redis.call('HSET', h, 'lease_until', tostring(now + tonumber(ARGV[4])))
  -- hand back the record and its share's article: the worker needs nothing else to compose
  local article = redis.call('HGET', ARGV[6] .. redis.call('HGET', h, 'share_id'), 'article') or ''
  return {'ok', tostring(attempts), redis.call('HGETALL', h), article}
end
if cur == 'sending' then
  local lease = tonumber(redis.call('HGET', h, 'lease_until') or '0')
  if lease > now then return {'busy', tostring(lease)} end
  move('unknown', 'the worker sending this post stopped answering (lease expired); checking the platform', false)
  return {'expired', ''}
end
return {'skip', cur}
"""


@dataclass
class Delivery:
    """A delivery record as stored (also the ``--json`` delivery object, see ``to_json``)."""

    id: str
    share_id: str
    account: str
    platform: str
    status: str
    attempts: int
    created_at: str
    updated_at: str
    post: dict[str, Any] | None = None
    post_id: str | None = None
    post_url: str | None = None
    error: str | None = None
    error_kind: str | None = None
    note: str | None = None
    override: str | None = None
    not_before: float | None = None
    lease_until: float | None = None
    rate_waits: int = 0  # rate-limited attempts, which do not count against max_attempts
    attempt_base: int = 0  # attempts before an editor's retry (each retry gets a fresh budget)
    retried_at: float | None = None
    scheduled_for: float | None = None  # UTC epoch of the due time
    timezone: str | None = None  # the zone the time was given in; shown back in it
    version: int = 0  # bumped by every reschedule; a stale task carrying an older one exits
    max_lateness: float | None = None
    lag_seconds: float | None = None  # how late the dispatcher released it
    overdue: bool = False
    already_posted: bool = False  # delivered as a post the platform already had (nothing new published)
    accepted: bool = False  # the platform said it took the post (e.g. Weibo 20032): verify, never resend
    state: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_hash(cls, h: dict[str, str], events: list[str] | None = None) -> Delivery:
        def opt(k: str) -> str | None:
            v = h.get(k)
            return v if v not in (None, "") else None

        d = cls(
            id=h["id"], share_id=h["share_id"], account=h["account"], platform=h["platform"],
            status=h["status"], attempts=int(h.get("attempts", 0)), created_at=h["created_at"],
            updated_at=h.get("updated_at", h["created_at"]),
            post=json.loads(h["post"]) if opt("post") else None,
            post_id=opt("post_id"), post_url=opt("post_url"), error=opt("error"),
            error_kind=opt("error_kind"), note=opt("note"), override=opt("override"),
            not_before=float(h["not_before"]) if opt("not_before") else None,
            lease_until=float(h["lease_until"]) if opt("lease_until") else None,
            rate_waits=int(h.get("rate_waits") or 0), overdue=h.get("overdue") == "1",
            already_posted=h.get("already_posted") == "1", accepted=h.get("accepted") == "1",
            attempt_base=int(h.get("attempt_base") or 0),
            retried_at=float(h["retried_at"]) if opt("retried_at") else None,
            scheduled_for=float(h["scheduled_for"]) if opt("scheduled_for") else None,
            timezone=opt("timezone"), version=int(h.get("version") or 0),
            max_lateness=float(h["max_lateness"]) if opt("max_lateness") else None,
            lag_seconds=float(h["lag_seconds"]) if opt("lag_seconds") else None,
            state=json.loads(h["state"]) if opt("state") else {},
            events=[json.loads(e) for e in events or []],
        )
        if d.events:  # read for showing (CLI, API, dashboard): every non-delivered status says why
            d.error, d.note = d.explained()
        return d

    def status_message(self) -> str | None:
        """The message of the event that set the current status (e.g. why it needs review)."""
        found = None
        for ev in reversed(self.events):
            if ev.get("status") != self.status:
                break
            found = ev.get("message") or found
        return found

    def explained(self) -> tuple[str | None, str | None]:
        """``(error, note)`` as shown to a user: a status other than delivered always says why. Where the
        record holds neither (lateness, an editor's cancel), the event that set the status does."""
        error, note = self.error, self.note
        if self.status in EXPLAINED and not error and not note:
            message = self.status_message()
            if self.status in ("failed", "unknown", "retrying"):
                error = message
            else:
                note = message
        return error, note

    def reason(self) -> str:
        """One line for the WHERE / WHY column: where it landed, or why not (yet)."""
        error, note = self.explained()
        if self.status == "delivered":
            if self.already_posted and note:  # nothing new was published: say so, with the earlier post
                return f"{note} (nothing new published)"
            return self.post_url or note or ""
        if self.status in ("queued", "sending"):  # in flight: the latest step ("waiting for ...")
            latest = self.events[-1].get("message") if self.events else None
            return "" if latest in (None, self.status) else str(latest)
        return error or note or ""

    def to_json(self) -> dict[str, Any]:
        error, note = self.explained()
        return {
            "id": self.id, "share_id": self.share_id, "account": self.account, "platform": self.platform,
            "status": self.status, "attempts": self.attempts, "post_id": self.post_id,
            "post_url": self.post_url, "error": error, "error_kind": self.error_kind,
            "note": note, "already_posted": self.already_posted, "overdue": self.overdue,
            "scheduled_for": iso(self.scheduled_for) if self.scheduled_for is not None else None,
            "timezone": self.timezone, "lag_seconds": self.lag_seconds,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "post": self.post, "events": self.events,
            # WeChat: how the article went out (publish / mass / draft) and a mass send's msg_id
            "publish_mode": ((self.post or {}).get("payload") or {}).get("publish_mode"),
            "msg_id": None if self.state.get("msg_id") is None else str(self.state["msg_id"]),
        }


@dataclass(frozen=True)
class Result:
    """Outcome of a scripted change: ``ok`` or why not (missing / conflict / stale / busy / ...)."""

    outcome: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class Claim(Result):
    """A successful claim carries the record (``detail`` is the attempt number) and the article JSON."""

    record: Delivery | None = None
    article_json: str | None = None

    @property
    def token(self) -> int:
        return int(self.detail)


class DeliveryStore:
    def __init__(self, redis: Redis, keys: Keys, retention_seconds: float = 90 * 86400):
        self.r = redis
        self.k = keys
        self.retention = int(retention_seconds)
        self._transition = redis.register_script(_TRANSITION)
        self._claim = redis.register_script(_CLAIM)

    # --- writing ---------------------------------------------------------------------------------

    def create_share(self, share: dict[str, Any], deliveries: list[dict[str, Any]], status: str = "queued",
                     message: str = "queued", *, at: float | None = None, pipe: Any = None) -> list[Delivery]:
        """Write a share and its deliveries in one MULTI/EXEC: all of it exists, or none.

        Records get their Redis TTL (retention + 1 day, a backstop for the purge) when they settle.
        ``at`` backdates the creation (imports and benchmarks); default now. With ``pipe`` (bulk
        imports) the commands are queued on the caller's pipeline, which executes them.
        """
        created_records: list[Delivery] = []
        t = now() if at is None else at
        created = iso(t)
        member_ms = f"{ms(t):013d}"
        ttl = self.retention + 86400  # backstop; `purge` removes index entries on time
        own = pipe is None
        if own:
            pipe = self.r.pipeline(transaction=True)
        share_key = self.k.share(share["id"])
        pipe.hset(share_key, mapping={**{k: _enc(v) for k, v in share.items()}, "created_at": created})
        pipe.expire(share_key, ttl)
        pipe.zadd(self.k.shares_index, {f"{member_ms}:{share['id']}": 0})
        titles.add(pipe, self.k, f"{member_ms}:{share['id']}", str(share.get("title") or ""))
        scheduled = False
        for d in deliveries:
            d = dict(d)
            text = d.pop("message", message)
            st = d.pop("status", status)  # a delivery may start settled (``failed``: it cannot compose)
            member = f"{member_ms}:{d['id']}"
            ev = json.dumps({"at": created, "status": st, "attempt": 0, "message": text})
            fields: dict[Any, Any] = {**{k: _enc(v) for k, v in d.items()}, "share_id": share["id"], "status": st,
                      "attempts": 0, "created_at": created, "updated_at": created, "idx": member}
            pipe.hset(self.k.delivery(d["id"]), mapping=fields)
            created_records.append(Delivery.from_hash({k: str(v) for k, v in fields.items()}, [ev]))
            if st == "scheduled":  # the dispatcher's queue: score = due time
                pipe.zadd(self.k.schedule, {d["id"]: float(d["scheduled_for"])})
                scheduled = True
            pipe.rpush(self.k.events(d["id"]), ev)
            if st in TERMINAL:
                pipe.expire(self.k.delivery(d["id"]), ttl)
                pipe.expire(self.k.events(d["id"]), ttl)
            pipe.zadd(self.k.all_index, {member: 0})
            pipe.zadd(self.k.status_index(st), {member: 0})
            pipe.zadd(self.k.account_index(d["account"]), {member: 0})
        if scheduled:  # a dispatcher asleep until a later entry wakes up and looks again
            pipe.lpush(self.k.schedule_wake, "1")
            pipe.ltrim(self.k.schedule_wake, 0, 0)
        if own:
            pipe.execute()
        return created_records

    def transition(self, delivery_id: str, allowed: Iterable[str] | str, new: str | None, message: str,
                   *, token: int | None = None, fields: dict[str, Any] | None = None,
                   bump: bool = False) -> Result:
        allowed_s = allowed if isinstance(allowed, str) else ",".join(allowed)
        res = self._transition(
            keys=[self.k.delivery(delivery_id), self.k.events(delivery_id)],
            args=[self.k.status_prefix, allowed_s, new or "", iso(), message,
                  "" if token is None else str(token), json.dumps(_fields(fields or {})),
                  "1" if bump else "0", self.k.events_channel, str(self.retention + 86400)],
        )
        return Result(_s(res[0]), _s(res[1]))

    def claim(self, delivery_id: str, lease_seconds: float, *, rate_key: str = "",
              rate: tuple[int, float] | None = None, version: int | None = None) -> Claim:
        """queued/retrying -> sending with a lease; on success also returns the record and article JSON.

        Other outcomes: ``early`` (not before ``detail``), ``limited`` (rate limit: wait ``detail`` s),
        ``busy`` (another worker holds a live lease), ``expired`` (lease ran out: now ``unknown``),
        ``skip`` (status ``detail`` is not sendable), ``missing``.
        """
        count, period = rate or (0, 0.0)
        t = now()
        res = self._claim(
            keys=[self.k.delivery(delivery_id), self.k.events(delivery_id), rate_key if rate else ""],
            args=[self.k.status_prefix, repr(t), iso(t), repr(float(lease_seconds)), self.k.events_channel,
                  self.k.share(""), str(count), repr(float(period)), f"{t!r}:{delivery_id}",
                  "" if version is None else str(version)],
        )
        outcome, detail = _s(res[0]), _s(res[1])
        if outcome != "ok":
            return Claim(outcome, detail)
        flat = [_s(x) for x in res[2]]
        record = Delivery.from_hash(dict(zip(flat[::2], flat[1::2])))
        return Claim(outcome, detail, record, _s(res[3]) or None)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, delivery_id: str, with_events: bool = True) -> Delivery | None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.k.delivery(delivery_id))
        if with_events:
            pipe.lrange(self.k.events(delivery_id), 0, -1)
        out = pipe.execute()
        if not out[0]:
            return None
        return Delivery.from_hash(_dec(out[0]), [_s(e) for e in out[1]] if with_events else None)

    def load(self, delivery_id: str) -> tuple[Delivery | None, str | None]:
        """The record and its share's article JSON, in one round trip."""
        h = _dec(self.r.hgetall(self.k.delivery(delivery_id)))
        if not h:
            return None, None
        article = self.r.hget(self.k.share(h["share_id"]), "article")
        return Delivery.from_hash(h), _s(article) if article is not None else None

    def get_many(self, ids: list[str], with_events: bool = True) -> list[Delivery]:
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k.delivery(i))
            if with_events:
                pipe.lrange(self.k.events(i), 0, -1)
        out = pipe.execute()
        step = 2 if with_events else 1
        result = []
        for n in range(len(ids)):
            h = out[n * step]
            if h:
                evs = [_s(e) for e in out[n * step + 1]] if with_events else None
                result.append(Delivery.from_hash(_dec(h), evs))
        return result

    def share_delivery_ids(self, share_id: str) -> list[str] | None:
        """The share's delivery ids (None: no such share), without loading its article."""
        raw = self.r.hget(self.k.share(share_id), "delivery_ids")
        return None if raw is None else json.loads(_s(raw))

    def share(self, share_id: str) -> dict[str, Any] | None:
        h = _dec(self.r.hgetall(self.k.share(share_id)))
        if not h:
            return None
        h["delivery_ids"] = json.loads(h.get("delivery_ids", "[]"))
        return h

    def query(self, *, status: str | None = None, account: str | None = None, since: float | None = None,
              limit: int = 50, cursor: str | None = None, with_events: bool = True
              ) -> tuple[list[Delivery], str | None]:
        """Newest first. ``cursor`` is the opaque ``next_cursor`` of the previous page."""
        if status:
            index = self.k.status_index(status)
        elif account:
            index = self.k.account_index(account)
        else:
            index = self.k.all_index
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
            records = {d.id: d for d in self.get_many(ids, with_events=with_events)}
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
        if not self.r.exists(self.k.title_index_version):  # a log older than the title index
            titles.backfill(self.r, self.k)
        while True:
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
                pipe.delete(self.k.delivery(did), self.k.events(did))
                pipe.zrem(self.k.all_index, member)
                for s in STATUSES:
                    if status is None or _s(status) == s:
                        pipe.zrem(self.k.status_index(s), member)
                if account is not None:
                    pipe.zrem(self.k.account_index(_s(account)), member)
            pipe.execute()
            removed += len(ids)
        while True:
            members = [_s(m) for m in self.r.zrange(self.k.shares_index, "-", cutoff, bylex=True, offset=0, num=batch)]
            if not members:
                break
            pipe = self.r.pipeline(transaction=False)
            for m in members:
                pipe.hget(self.k.share(m.split(":", 1)[1]), "title")
            names = pipe.execute()
            pipe = self.r.pipeline(transaction=True)
            for m, title in zip(members, names):
                pipe.delete(self.k.share(m.split(":", 1)[1]))
                pipe.zrem(self.k.shares_index, m)
                if title is not None:
                    titles.remove(pipe, self.k, m, _s(title))
            pipe.execute()
        return removed

def _enc(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    """None deletes a field (sent as false to Lua); containers are JSON-encoded."""
    return {k: (False if v is None else _enc(v)) for k, v in fields.items()}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _dec(h: dict) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in h.items()}
