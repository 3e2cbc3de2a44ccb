"""The schedule: a sorted set of delivery ids scored by due time, released by one atomic script.

Any number of dispatchers (beats) may run: the dispatch script takes due entries, moves each record
``scheduled -> queued`` (or ``needs_review`` when it is later than its ``max_lateness``, or when it
is still waiting for sign-off) and puts it
in a "claimed" set with a lease. The dispatcher confirms after sending the Celery message; claims
whose lease ran out (a dispatcher died in between) are released again. Rescheduling is a compare-and-
set on the record's status that also bumps its version and moves the entry, all in one script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from ..clock import iso, now
from . import scripts
from .keys import Keys
from .states import MOVE_PRELUDE, index_keys

# The caller first reads the candidates (claims whose lease ran out, then due entries, ``_candidates``);
# the script re-checks each one, so two dispatchers racing never release the same entry twice.
# KEYS: 1 schedule, 2 claimed, then per candidate: delivery hash, its event list; then the status indexes
# ARGV: 1 now, 2 now iso, 3 claim lease, 4 events channel, 5 default max lateness,
#       6 how many candidates are expired claims (they come first), 7.. the candidates' delivery ids
_DISPATCH = MOVE_PRELUDE + """
local c = {chan = ARGV[4], now = ARGV[2], actor = 'scheduler'}
local now, lease, expired = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[6])
local out = {}
local function entry(h, id, action, lag)
  return {id, redis.call('HGET', h, 'account') or '', redis.call('HGET', h, 'version') or '0', action,
          string.format('%.3f', lag)}
end
for n = 1, (OWN - 2) / 2 do
  local id, h, ev = ARGV[6 + n], KEYS[1 + 2 * n], KEYS[2 + 2 * n]
  if n <= expired then
    local until_ = tonumber(redis.call('ZSCORE', KEYS[2], id) or '')
    if until_ and until_ <= now then  -- still claimed, lease run out: release it again
      redis.call('ZADD', KEYS[2], now + lease, id)
      table.insert(out, entry(h, id, 'again', 0))
    end
  else
    local score = tonumber(redis.call('ZSCORE', KEYS[1], id) or '')
    if score and score <= now then  -- still due (no other dispatcher took it meanwhile)
      redis.call('ZREM', KEYS[1], id)
      local cur = redis.call('HGET', h, 'status')
      local lag = now - score
      if cur == 'scheduled' then
        local maxl = tonumber(redis.call('HGET', h, 'max_lateness') or ARGV[5])
        redis.call('HSET', h, 'lag_seconds', string.format('%.3f', lag))
        if lag > maxl then
          local label = redis.call('HGET', h, 'slot_label') or 'scheduled'
          move(c, h, ev, cur, 'needs_review', 'missed its ' .. label .. ' slot by ' ..
            string.format('%.0f', lag / 60) .. ' min (the scheduler or workers were down) - publish now?')
          table.insert(out, entry(h, id, 'missed', lag))
        else
          move(c, h, ev, cur, 'queued', 'released by the scheduler ' .. string.format('%.2f', lag) ..
            ' s after its due time')
          redis.call('ZADD', KEYS[2], now + lease, id)
          table.insert(out, entry(h, id, 'queued', lag))
        end
      elseif cur == 'awaiting_approval' then
        -- due but never signed off: not sent; an approver decides (approve sends it now, or reject)
        local label = redis.call('HGET', h, 'slot_label') or 'scheduled'
        redis.call('HSET', h, 'lag_seconds', string.format('%.3f', lag))
        move(c, h, ev, cur, 'needs_review', 'not approved by its ' .. label .. ' slot; not sent')
        table.insert(out, entry(h, id, 'unapproved', lag))
      elseif cur == 'retrying' or cur == 'queued' then
        redis.call('ZADD', KEYS[2], now + lease, id)
        table.insert(out, entry(h, id, 'nudge', 0))
      end
    end
  end
end
return out
"""

# KEYS: 1 delivery hash, 2 schedule, 3 account slots, 4 the dispatcher's wake list, 5 the event list,
#       then the status indexes
# ARGV: 1 new due epoch, 2 now iso, 3 zone, 4 slot label, 5 channel, 6 message,
#       7 actor. A post still waiting for sign-off may be moved too (its approval stands as it is).
_RESCHEDULE = MOVE_PRELUDE + """
local c = {chan = ARGV[5], now = ARGV[2], actor = ARGV[7]}
local h = KEYS[1]
local cur = redis.call('HGET', h, 'status')
if not cur then return {'missing', ''} end
if cur ~= 'scheduled' and cur ~= 'awaiting_approval' then return {'conflict', cur} end
local version = tonumber(redis.call('HGET', h, 'version') or '0') + 1
redis.call('HSET', h, 'scheduled_for', ARGV[1], 'timezone', ARGV[3], 'slot_label', ARGV[4], 'version', version)
local id = redis.call('HGET', h, 'id')
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), id)
redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), id)
move(c, h, KEYS[5], cur, cur, ARGV[6])
redis.call('LPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], 0, 0)
return {'ok', tostring(version)}
"""

# KEYS: 1 account slots. ARGV: 1 spacing seconds, 2 member, 3 "1" = the time must be free of others
# even with no spacing (a slot), 4.. candidate due times, earliest first. Returns the one taken.
_TAKE = """
local sp = tonumber(ARGV[1])
for i = 4, #ARGV do
  local c = tonumber(ARGV[i])
  local n = 0
  if sp > 0 then
    n = redis.call('ZCOUNT', KEYS[1], '(' .. tostring(c - sp), '(' .. tostring(c + sp))
  elseif ARGV[3] == '1' then
    n = redis.call('ZCOUNT', KEYS[1], c, c)
  end
  if n == 0 then
    redis.call('ZADD', KEYS[1], c, ARGV[2])
    return ARGV[i]
  end
end
return false
"""


@dataclass(frozen=True)
class Released:
    delivery_id: str
    account: str
    version: int
    action: str  # queued | nudge | again | missed | unapproved
    lag: float


class ScheduleStore:
    def __init__(self, redis: Redis, keys: Keys):
        self.r, self.k = redis, keys
        self._dispatch = scripts.register(redis, _DISPATCH)
        self._reschedule = scripts.register(redis, _RESCHEDULE)
        self._take = scripts.register(redis, _TAKE)
        self._indexes = index_keys(keys)

    def take(self, account: str, member: str, candidates: list[float], spacing: float, exclusive: bool
             ) -> float | None:
        """Reserve the first candidate time that keeps ``spacing`` from the account's other posts."""
        got = self._take(keys=[self.k.account_slots(account)],
                         args=[repr(float(spacing)), member, "1" if exclusive else "0",
                               *[repr(float(c)) for c in candidates]])
        return float(got) if got is not None else None

    def release_slot(self, account: str, member: str) -> None:
        self.r.zrem(self.k.account_slots(account), member)

    def dispatch(self, batch: int = 500, claim_lease: float = 30.0, default_max_lateness: float = 900.0,
                 at: float | None = None) -> list[Released]:
        t = now() if at is None else at
        expired, due = self._candidates(t, batch)
        if not expired and not due:
            return []
        ids = expired + due
        keys = [self.k.schedule, self.k.schedule_claimed]
        for did in ids:
            keys += [self.k.delivery(did), self.k.events(did)]
        rows = self._dispatch(
            keys=[*keys, *self._indexes],
            args=[repr(t), iso(t), repr(claim_lease), self.k.events_channel, repr(default_max_lateness),
                  str(len(expired)), *ids],
        )
        return [Released(_s(r[0]), _s(r[1]), int(_s(r[2])), _s(r[3]), float(_s(r[4]))) for r in rows]

    def _candidates(self, t: float, batch: int) -> tuple[list[str], list[str]]:
        """Claims whose lease ran out and entries due at ``t`` (at most ``batch`` each), read before the
        script: which records it touches must be known up front (it re-checks every one)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(self.k.schedule_claimed, "-inf", t, start=0, num=batch)
        pipe.zrangebyscore(self.k.schedule, "-inf", t, start=0, num=batch)
        expired, due = pipe.execute()
        return [_s(m) for m in expired], [_s(m) for m in due]

    def confirm(self, delivery_ids: list[str]) -> None:
        if delivery_ids:
            self.r.zrem(self.k.schedule_claimed, *delivery_ids)

    def reschedule(self, delivery_id: str, account: str, due: float, zone: str, label: str,
                   actor: str = "worker") -> tuple[str, str]:
        res = self._reschedule(
            keys=[self.k.delivery(delivery_id), self.k.schedule, self.k.account_slots(account),
                  self.k.schedule_wake, self.k.events(delivery_id), *self._indexes],
            args=[repr(due), iso(), zone, label, self.k.events_channel,
                  f"rescheduled to {label}", actor],
        )
        return _s(res[0]), _s(res[1])

    def defer(self, delivery_id: str, until: float) -> None:
        """A wait too long for a Celery countdown: the dispatcher nudges it when due."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.k.schedule, {delivery_id: until})
        self.wake(pipe)
        pipe.execute()

    def wake(self, pipe: Pipeline | None = None) -> None:
        """Tell a dispatcher waiting for a later entry to look again (one token is enough)."""
        p = pipe if pipe is not None else self.r.pipeline(transaction=False)
        p.lpush(self.k.schedule_wake, "1")
        p.ltrim(self.k.schedule_wake, 0, 0)
        if pipe is None:
            p.execute()

    def next_due(self) -> float | None:
        """When the dispatcher next has work: the earliest due entry or expiring claim (None: nothing)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrange(self.k.schedule, 0, 0, withscores=True)
        pipe.zrange(self.k.schedule_claimed, 0, 0, withscores=True)
        firsts = [rows[0][1] for rows in pipe.execute() if rows]
        return min(firsts) if firsts else None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a wake-up; True when one came."""
        if timeout <= 0:
            return False
        return self.r.blpop([self.k.schedule_wake], timeout=timeout) is not None

    def entries(self, start: float | None = None, end: float | None = None, cursor: str | None = None,
                batch: int = 500) -> tuple[list[tuple[str, float]], str | None]:
        """One batch of schedule entries (delivery id, due) by due time from ``cursor`` (``"<due>:<id>"``,
        exclusive); the second value is the cursor after it (None: the end)."""
        low: float | str = "-inf" if start is None else start
        after: tuple[float, str] | None = None
        if cursor:
            due, _, did = cursor.partition(":")
            after = (float(due), did)
            low = after[0]
        high: float | str = "+inf" if end is None else end
        out: list[tuple[str, float]] = []
        offset = 0
        while True:
            rows: list[Any] = self.r.zrangebyscore(self.k.schedule, low, high, start=offset, num=batch,
                                                   withscores=True)
            for member, score in rows:
                did = _s(member)
                if after is None or (float(score), did) > after:
                    out.append((did, float(score)))
            if len(out) >= batch or len(rows) < batch:
                break
            offset += len(rows)  # a run of entries at the cursor's own due time: skip past it
        out = out[:batch]
        more = len(out) == batch
        return out, (f"{out[-1][1]!r}:{out[-1][0]}" if more and out else None)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["ScheduleStore", "Released"]
