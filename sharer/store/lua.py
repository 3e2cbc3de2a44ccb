"""The delivery log's Lua scripts. Each starts with ``MOVE_PRELUDE`` (generated from ``TRANSITIONS``),
so every status change any script makes goes through the same checked ``move``.

Every key a script touches is passed in ``KEYS`` (``scripts.GUARD`` refuses any other): the record's
hash and event list, then the script's own keys, then the status indexes (``states.index_keys``), so
the scripts run unchanged on a Redis Cluster, where a deployment's keys share one hash tag.

Scripts are data here; ``deliveries.py`` registers them and decodes their answers into typed results.
"""

from __future__ import annotations

from .states import MOVE_PRELUDE

# One compare-and-set status change (or a field update when the status stays).
# KEYS: 1 delivery hash, 2 its event list, 3 its post, 4 its long values, then the status indexes
# ARGV: 1 allowed current statuses ("a,b", or "*": any, and the table is not consulted — a repair
#       hatch for tests and operators), 2 new status ("" = keep), 3 now iso, 4 message, 5 fencing token
#       ("" = none), 6 fields json, 7 "1" to bump attempts, 8 events channel,
#       9 TTL seconds for a settled record, 10 actor, 11 the packed post ("" = keep it)
TRANSITION = MOVE_PRELUDE + """
local c = {chan = ARGV[8], now = ARGV[3], ttl = ARGV[9], actor = ARGV[10], side = {KEYS[3], KEYS[4]}}
local h = KEYS[1]
local cur = redis.call('HGET', h, 'status')
if not cur then return {'missing', ''} end
local forced = ARGV[1] == '*'
if not forced then
  local ok = false
  for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then ok = true end end
  if not ok then return {'conflict', cur} end
end
if ARGV[5] ~= '' and redis.call('HGET', h, 'attempts') ~= ARGV[5] then return {'stale', cur} end
local new = ARGV[2]
if new == '' then new = cur end
if not forced and not can_move(cur, new) then return {'illegal', cur} end
local fields = cjson.decode(ARGV[6])
for k, v in pairs(fields) do
  if v == false then put(h, KEYS[4], k, false) else put(h, KEYS[4], k, tostring(v)) end
end
if ARGV[11] ~= '' then redis.call('SET', KEYS[3], ARGV[11]) end
local attempts = move(c, h, KEYS[2], cur, new, ARGV[4], ARGV[7] == '1', forced)
return {'ok', tostring(attempts)}
"""

# Claim a delivery for sending: queued/retrying -> sending with a lease and a new attempt number.
# KEYS: 1 delivery hash, 2 its event list, 3 its long values, 4 the account's rate-limit log (left out:
#       no limit), then the status indexes
# ARGV: 1 now epoch, 2 now iso, 3 lease seconds, 4 channel, 5 rate count, 6 rate period seconds,
#       7 a unique member for this send, 8 the schedule version the task was sent for ("" = any)
CLAIM = MOVE_PRELUDE + """
local c = {chan = ARGV[4], now = ARGV[2], actor = 'worker'}
local h = KEYS[1]
local rate = OWN >= 4 and KEYS[4] or nil
local cur = redis.call('HGET', h, 'status')
if not cur then return {'missing', ''} end
local now = tonumber(ARGV[1])
if ARGV[8] ~= '' and (redis.call('HGET', h, 'version') or '0') ~= ARGV[8] then return {'stale', cur} end
-- belt and braces: a post waiting for (or refused) sign-off is never sent, whatever its status says
local approval = redis.call('HGET', h, 'approval_state')
if approval == 'pending' or approval == 'rejected' then return {'unapproved', approval} end
if cur == 'queued' or cur == 'retrying' then
  local not_before = tonumber(redis.call('HGET', h, 'not_before') or '0')
  if not_before > now then return {'early', tostring(not_before)} end
  -- the account's shared rate limit: a sliding-window log of send times (exact: never more than
  -- ARGV[5] sends in any ARGV[6] seconds, whatever the number of workers)
  if rate then
    local limit, period = tonumber(ARGV[5]), tonumber(ARGV[6])
    redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - period)
    if redis.call('ZCARD', rate) >= limit then
      local oldest = tonumber(redis.call('ZRANGE', rate, 0, 0, 'WITHSCORES')[2])
      local wait_until = oldest + period
      redis.call('HSET', h, 'not_before', tostring(wait_until))
      return {'limited', tostring(wait_until - now)}
    end
    redis.call('ZADD', rate, now, ARGV[7])
    redis.call('EXPIRE', rate, math.ceil(period) + 60)
  end
  local attempts = move(c, h, KEYS[2], cur, 'sending', 'sending', true)
  redis.call('HSET', h, 'lease_until', tostring(now + tonumber(ARGV[3])))
  -- hand back the record with its long values (its share's article is another record: the caller
  -- reads it next, or has it cached)
  return {'ok', tostring(attempts), redis.call('HGETALL', h), redis.call('HGETALL', KEYS[3])}
end
if cur == 'sending' then
  local lease = tonumber(redis.call('HGET', h, 'lease_until') or '0')
  if lease > now then return {'busy', tostring(lease)} end
  move(c, h, KEYS[2], cur, 'unknown',
       'the worker sending this post stopped answering (lease expired); checking the platform', false)
  return {'expired', ''}
end
return {'skip', cur}
"""

# A sign-off decision over all of a share's deliveries at once, so two approvers (or an approver and a
# cancel) can never split a share between them: approve, reject, or resubmit (after a rejection).
# KEYS: 1 the schedule, then per delivery: hash, event list, post, long values; then the status indexes
# ARGV: 1 channel, 2 now iso, 3 actor (shown), 4 actor's user, 5 action,
#       6 expected approval version ("" = the current one), 7 fields json {delivery id: {field: value}},
#       8 reason / note, 9 now epoch, 10 TTL, 11 "1" = four-eyes (nobody approves their own share),
#       11 + n the n-th delivery's packed post ("" = keep it)
DECIDE = MOVE_PRELUDE + """
local c = {chan = ARGV[1], now = ARGV[2], actor = ARGV[3], ttl = ARGV[10]}
local action, now = ARGV[5], tonumber(ARGV[9])
local extra = cjson.decode(ARGV[7])
local eligible, seen = {}, {}
for i = 2, OWN, 4 do
  local h = KEYS[i]
  local cur = redis.call('HGET', h, 'status')
  local ap = redis.call('HGET', h, 'approval_state')
  if cur then
    table.insert(seen, cur)
    local ok
    if action == 'resubmit' then ok = cur == 'rejected'
    else ok = ap == 'pending' and (cur == 'awaiting_approval' or cur == 'needs_review') end
    if ok and ARGV[6] ~= '' and (redis.call('HGET', h, 'approval_version') or '1') ~= ARGV[6] then
      return {'stale', redis.call('HGET', h, 'approval_version') or '1'}
    end
    if ok and action ~= 'resubmit' and ARGV[11] == '1' and get(h, KEYS[i + 3], 'submitted_by') == ARGV[4] then
      return {'self', ARGV[4]}
    end
    if ok then table.insert(eligible, {i, cur}) end
  end
end
if #eligible == 0 then return {'conflict', table.concat(seen, ',')} end
local out = {}
for _, e in ipairs(eligible) do
  local i, cur = e[1], e[2]
  local h, ev, long = KEYS[i], KEYS[i + 1], KEYS[i + 3]
  local id = redis.call('HGET', h, 'id')
  for k, v in pairs(extra[id] or {}) do
    if v == false then put(h, long, k, false) else put(h, long, k, tostring(v)) end
  end
  local post = ARGV[11 + (i + 2) / 4]
  if post ~= '' then redis.call('SET', KEYS[i + 2], post) end
  local version = redis.call('HGET', h, 'approval_version') or '1'
  local edited = extra[id] and extra[id]['override'] ~= nil
  local new, msg
  if action == 'approve' then
    local due = tonumber(redis.call('HGET', h, 'scheduled_for') or '')
    redis.call('HSET', h, 'approval_state', 'approved', 'decided_at', ARGV[2])
    put(h, long, 'decided_by', ARGV[3])
    put(h, long, 'approval_reason', false)
    msg = 'approved by ' .. ARGV[3] .. ' (version ' .. version .. ')'
    if edited then msg = msg .. ' with the text edited' end
    if cur == 'awaiting_approval' and due then
      new = 'scheduled'
      redis.call('ZADD', KEYS[1], due, id)
    else
      new = 'queued'
      if cur == 'needs_review' then msg = msg .. ' after its slot had passed; sending now' end
    end
  elseif action == 'reject' then
    new = 'rejected'
    redis.call('HSET', h, 'approval_state', 'rejected', 'decided_at', ARGV[2])
    put(h, long, 'decided_by', ARGV[3])
    put(h, long, 'approval_reason', ARGV[8])
    msg = 'rejected by ' .. ARGV[3] .. ': ' .. ARGV[8]
  else
    new = 'awaiting_approval'
    version = tostring(tonumber(version) + 1)
    redis.call('HSET', h, 'approval_state', 'pending', 'approval_version', version, 'submitted_at', ARGV[2])
    put(h, long, 'submitted_by', ARGV[4])
    put(h, long, 'submitted_by_name', ARGV[3])
    redis.call('HDEL', h, 'decided_at', 'error_kind')
    put(h, long, 'decided_by', false)
    put(h, long, 'approval_reason', false)
    put(h, long, 'error', false)
    msg = 'resubmitted by ' .. ARGV[3] .. ' as version ' .. version .. '; waiting for approval'
    local due = tonumber(redis.call('HGET', h, 'scheduled_for') or '')
    if due and due > now then
      redis.call('ZADD', KEYS[1], due, id)
    elseif due then  -- its slot passed while it was rejected: it goes out when approved
      redis.call('HDEL', h, 'scheduled_for')
      msg = msg .. ' (its slot has passed: it will be sent when approved)'
    end
    if ARGV[8] ~= '' then msg = msg .. ': ' .. ARGV[8] end
  end
  move(c, h, ev, cur, new, msg, false)
  table.insert(out, {id, new, redis.call('HGET', h, 'account') or '', version})
end
return {'ok', out}
"""
