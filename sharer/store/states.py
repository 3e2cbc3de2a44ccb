"""The delivery state machine: every status, every allowed move, and the one Lua "move a record" prelude.

``TRANSITIONS`` is the only place that says which status may follow which. The Lua scripts in this
package embed it (``MOVE_PRELUDE`` is generated from it), so a script asked to make a move the table
does not allow refuses (``illegal``) instead of writing it: the Python and Lua sides cannot disagree.
``Status`` is a ``StrEnum``, so ``d.status == "queued"`` keeps working everywhere.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .keys import Keys

from .codec import LISTPACK_VALUE


class Status(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # an approver must sign off before it can be sent
    REJECTED = "rejected"  # an approver said no (with a reason); the editor may revise and resubmit
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a request may have reached the platform; being checked
    NEEDS_REVIEW = "needs_review"  # a person decides


S = Status
TERMINAL: tuple[Status, ...] = (S.DELIVERED, S.FAILED, S.CANCELLED)
STATUSES: tuple[Status, ...] = (S.QUEUED, S.SCHEDULED, S.SENDING, S.RETRYING, S.DELIVERED, S.FAILED, S.CANCELLED,
                                S.UNKNOWN, S.NEEDS_REVIEW, S.AWAITING_APPROVAL, S.REJECTED)
CANCELLABLE: tuple[Status, ...] = (S.QUEUED, S.SCHEDULED, S.RETRYING, S.AWAITING_APPROVAL, S.REJECTED)
RETRYABLE: tuple[Status, ...] = (S.FAILED, S.NEEDS_REVIEW)
# statuses that always carry a reason (``error`` or ``note``) in the JSON and the tables
EXPLAINED: tuple[Status, ...] = (S.FAILED, S.CANCELLED, S.NEEDS_REVIEW, S.UNKNOWN, S.RETRYING, S.REJECTED)

# current -> the statuses it may move to. A move to the same status (a field update, an event, a
# reschedule) is always allowed and not listed.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.AWAITING_APPROVAL: frozenset({S.QUEUED, S.SCHEDULED, S.REJECTED, S.CANCELLED, S.NEEDS_REVIEW}),
    S.REJECTED: frozenset({S.AWAITING_APPROVAL, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.QUEUED, S.NEEDS_REVIEW, S.CANCELLED}),
    S.QUEUED: frozenset({S.SENDING, S.CANCELLED}),
    S.RETRYING: frozenset({S.SENDING, S.CANCELLED}),
    S.SENDING: frozenset({S.DELIVERED, S.FAILED, S.RETRYING, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.DELIVERED, S.FAILED, S.RETRYING, S.NEEDS_REVIEW}),
    # needs_review: retried (queued), confirmed posted (delivered); one that was never approved (its
    # slot passed while it waited) is approved (queued) or rejected by an approver
    S.NEEDS_REVIEW: frozenset({S.QUEUED, S.DELIVERED, S.REJECTED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
}


def allowed(current: str, new: str) -> bool:
    return current == new or Status(new) in TRANSITIONS[Status(current)]


class Approval(StrEnum):
    """A delivery's sign-off state (``approval_state`` on the record; absent = no sign-off needed)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def _lua_table() -> str:
    rows = []
    for cur, targets in TRANSITIONS.items():
        inner = ", ".join(f"[{json.dumps(str(t))}] = true" for t in sorted(targets))
        rows.append(f"[{json.dumps(str(cur))}] = {{{inner}}}")
    return "{" + ", ".join(rows) + "}"


def index_keys(keys: Keys) -> list[str]:
    """The status-index keys, in ``STATUSES`` order: every script using ``move`` takes them as its last
    ``KEYS`` (a script touches only keys passed to it — the rule a Redis Cluster enforces)."""
    return [keys.status_index(s) for s in STATUSES]


# The one "move a record" routine every script shares. ``c`` is the call's context:
# {chan = pub/sub channel, now = iso time, actor = who, ttl = seconds, side = the record's other keys
# (post, long values) that expire with it}. The status indexes are the script's last #STATUSES keys
# (``index_keys``); ``OWN`` is how many keys the script passed before them.
# Returns the attempt number, or nil (and writes nothing) when the table does not allow the move
# (``force``: the caller's explicit repair hatch, see ``TRANSITION``).
# ``put`` writes a record field the way ``codec.split_long`` does: a value longer than the listpack
# limit goes to the long hash and the record keeps the mark. Events are ``codec.pack_event`` arrays.
MOVE_PRELUDE = """
local ALLOWED = """ + _lua_table() + """
local TERMINAL = {delivered = true, failed = true, cancelled = true}
local STATUSES = """ + "{" + ", ".join(json.dumps(str(x)) for x in STATUSES) + "}" + """
local OWN = #KEYS - #STATUSES
local INDEX = {}
for i, s in ipairs(STATUSES) do INDEX[s] = KEYS[OWN + i] end
local LONG_LIMIT, LONG_MARK = """ + str(LISTPACK_VALUE) + """, '\\031'
local function can_move(cur, new)
  return cur == new or (ALLOWED[cur] ~= nil and ALLOWED[cur][new] == true)
end
local function put(h, long, k, v)
  if v == false then
    redis.call('HDEL', h, k)
    if long then redis.call('HDEL', long, k) end
  elseif long and (#v > LONG_LIMIT or v == LONG_MARK) then
    redis.call('HSET', long, k, v)
    redis.call('HSET', h, k, LONG_MARK)
  else
    if long and redis.call('HGET', h, k) == LONG_MARK then redis.call('HDEL', long, k) end
    redis.call('HSET', h, k, v)
  end
end
local function get(h, long, k)  -- a record field, read through the long hash when it holds the value
  local v = redis.call('HGET', h, k)
  if v == LONG_MARK then return redis.call('HGET', long, k) end
  return v
end
local function iso_ms(s)  -- "2026-11-25T21:40:00.123Z" -> epoch milliseconds (days from civil)
  local y, mo, d, hh, mi, ss, frac = string.match(s, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)')
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
  local msec = tonumber(string.sub(frac .. '000', 1, 3))
  return ((days * 24 + tonumber(hh)) * 60 + tonumber(mi)) * 60000 + tonumber(ss) * 1000 + msec
end
local function event(c, new, attempts, msg)
  local ev = {iso_ms(c.now), new, attempts}
  if c.actor ~= 'worker' then ev[4] = msg; ev[5] = c.actor
  elseif msg ~= new then ev[4] = msg end
  return cjson.encode(ev)
end
local function move(c, h, evkey, cur, new, msg, bump, force)
  if not force and not can_move(cur, new) then return nil end
  local attempts = tonumber(redis.call('HGET', h, 'attempts') or '0')
  if bump then attempts = attempts + 1 end
  redis.call('HSET', h, 'status', new, 'attempts', attempts, 'updated_at', c.now)
  if new ~= cur then
    local member = redis.call('HGET', h, 'idx')
    redis.call('ZREM', INDEX[cur], member)
    redis.call('ZADD', INDEX[new], 0, member)
  end
  if msg == '' and new == cur then return attempts end  -- a silent field update
  redis.call('RPUSH', evkey, event(c, new, attempts, msg))
  if TERMINAL[new] and c.ttl then
    redis.call('EXPIRE', h, c.ttl)
    redis.call('EXPIRE', evkey, c.ttl)
    for _, k in ipairs(c.side or {}) do redis.call('EXPIRE', k, c.ttl) end
  end
  redis.call('PUBLISH', c.chan, cjson.encode({delivery = redis.call('HGET', h, 'id'),
    share = redis.call('HGET', h, 'share_id'), status = new, attempt = attempts, at = c.now}))
  return attempts
end
"""
