"""Registering sharer's Lua scripts, each behind a guard that refuses a key not passed in ``KEYS``.

On a Redis Cluster a script may only touch the keys it declares (they decide which node runs it); a
key name built inside Lua works on one Redis and breaks on a cluster, often only under load. The guard
makes that mistake fail everywhere — in every test, against a plain Redis too — with the key named.
Every script in sharer is registered here (``tests/test_cluster.py`` checks no module goes around it).
"""

from __future__ import annotations

from typing import Any

# Shadows the global ``redis`` for the rest of the chunk, so the scripts below stay plain Lua.
# Commands whose every argument is a key are checked whole; others by their first argument; PUBLISH
# names a channel (cluster-wide on Redis 7), not a key.
GUARD = """
local redis = (function(real)
  local declared = {}
  for _, k in ipairs(KEYS) do declared[k] = true end
  local keyless = {PUBLISH = true, TIME = true}
  local all_keys = {DEL = true, UNLINK = true, EXISTS = true, MGET = true, TOUCH = true}
  local function check(cmd, ...)
    local name = string.upper(cmd)
    if keyless[name] then return end
    local n = all_keys[name] and select('#', ...) or 1
    for i = 1, n do
      local key = select(i, ...)
      if not declared[key] then
        error('sharer: ' .. name .. ' on a key not passed in KEYS: ' .. tostring(key))
      end
    end
  end
  return setmetatable({
    call = function(cmd, ...) check(cmd, ...) return real.call(cmd, ...) end,
    pcall = function(cmd, ...) check(cmd, ...) return real.pcall(cmd, ...) end,
  }, {__index = real})
end)(redis)
"""


def register(client: Any, source: str) -> Any:
    """``client.register_script`` with the guard in front (a ``Redis`` or a ``RedisCluster``)."""
    return client.register_script(GUARD + source)
