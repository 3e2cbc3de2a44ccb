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
# {chan = pub/sub channel, now = iso time, actor = who, ttl = seconds}. The status indexes are the
# script's last #STATUSES keys (``index_keys``); ``OWN`` is how many keys the script passed before them.
# Returns the attempt number, or nil (and writes nothing) when the table does not allow the move
# (``force``: the caller's explicit repair hatch, see ``TRANSITION``).
MOVE_PRELUDE = """
local ALLOWED = """ + _lua_table() + """
local TERMINAL = {delivered = true, failed = true, cancelled = true}
local STATUSES = """ + "{" + ", ".join(json.dumps(str(x)) for x in STATUSES) + "}" + """
local OWN = #KEYS - #STATUSES
local INDEX = {}
for i, s in ipairs(STATUSES) do INDEX[s] = KEYS[OWN + i] end
local function can_move(cur, new)
  return cur == new or (ALLOWED[cur] ~= nil and ALLOWED[cur][new] == true)
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
  redis.call('RPUSH', evkey, cjson.encode({at = c.now, status = new, attempt = attempts, message = msg,
    actor = c.actor}))
  if TERMINAL[new] and c.ttl then
    redis.call('EXPIRE', h, c.ttl)
    redis.call('EXPIRE', evkey, c.ttl)
  end
  redis.call('PUBLISH', c.chan, cjson.encode({delivery = redis.call('HGET', h, 'id'),
    share = redis.call('HGET', h, 'share_id'), status = new, attempt = attempts, at = c.now}))
  return attempts
end
"""
