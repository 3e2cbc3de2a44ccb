"""One account's access token shared by every worker through Redis (``SharedToken``).

Written once for every platform whose token is fetched rather than configured — WeChat's
``stable_token``, X's OAuth 2.0 refresh, and the refreshing platforms to come (Bluesky, LinkedIn,
Facebook). What it guarantees:

* **cache**: one record per account (``Keys.token``): the access token, when it expires, the current
  refresh token and a ``seed`` (a digest of the configured credential, so re-authorising in the config
  retires an older record);
* **single refresh**: a worker that needs a fresh token takes ``Keys.token_lock`` (``SET NX PX`` with
  an owner id), looks again (another may just have refreshed), fetches, writes, and releases only its
  own lock; the others wait for the new record instead of fetching too;
* **compare-and-swap invalidation**: when the platform answers "token expired", ``refresh(failed=…)``
  retires the token only if the record still holds *that* token — a token another worker already
  replaced is never thrown away;
* **rotating refresh tokens**: a grant's new refresh token is written to Redis before the access token
  is handed out (the old one is spent the moment the platform answered).

The platform supplies ``fetch(refresh_token) -> Grant``: the one call to its token endpoint, raising
``sharer.errors`` classes. No platform code here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TransientError
from . import scripts

if TYPE_CHECKING:
    from redis import Redis

# Retire the token in ARGV[1] if the record still holds it; a refresh token stays for the next refresh.
_INVALIDATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec['access_token'] ~= ARGV[1] then return 0 end
if rec['refresh_token'] then
  rec['access_token'] = ''
  rec['expires_at'] = 0
  redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
else
  redis.call('DEL', KEYS[1])
end
return 1
"""
# Release a lock only if we still own it (it may have expired and been taken by another worker).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Grant:
    """What the platform's token endpoint answered."""

    access_token: str
    expires_in: float
    refresh_token: str | None = None  # a rotated refresh token (None: the current one stays valid)


@dataclass(frozen=True)
class TokenRecord:
    access_token: str
    expires_at: float
    lifetime: float  # the grant's expires_in: a token is renewed ``min(margin, lifetime / 2)`` early
    refresh_token: str | None
    seed: str

    def usable(self, now: float, margin: float, failed: str | None = None) -> bool:
        early = min(margin, self.lifetime / 2)
        return bool(self.access_token) and self.access_token != failed and now < self.expires_at - early


def seed_of(*credentials: str) -> str:
    """A short digest of the configured credentials (never the value): the record's generation."""
    return hashlib.sha256("\x00".join(credentials).encode()).hexdigest()[:16]


class SharedToken:
    """The access token of one account, cached in Redis and refreshed by one worker at a time."""

    def __init__(self, redis: Redis, key: str, lock_key: str, fetch: Callable[[str | None], Grant], *,
                 seed: str = "", refresh_token: str | None = None, margin: float = 300.0,
                 lock_seconds: float = 35.0, wait_seconds: float = 40.0,
                 on_refresh: Callable[[str], None] | None = None, poll: float = 0.05):
        self.redis, self.key, self.lock_key, self.fetch = redis, key, lock_key, fetch
        self.seed, self.configured_refresh = seed, refresh_token
        self.margin, self.lock_seconds, self.wait_seconds, self.poll = margin, lock_seconds, wait_seconds, poll
        self.on_refresh = on_refresh
        self._invalidate = scripts.register(redis, _INVALIDATE)
        self._release = scripts.register(redis, _RELEASE)

    def get(self) -> str:
        """A token valid for at least ``margin`` seconds more (half its lifetime, if shorter)."""
        record = self.load()
        if record and record.usable(time.time(), self.margin):
            return record.access_token
        return self.refresh()

    def refresh(self, failed: str | None = None) -> str:
        """A fresh token. ``failed``: the token the platform just rejected (retired only if still cached)."""
        if failed:
            self._invalidate(keys=[self.key], args=[failed])
        me = secrets.token_hex(8)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            record = self.load()
            if record and record.usable(time.time(), self.margin, failed):
                return record.access_token  # another worker refreshed meanwhile
            if self.redis.set(self.lock_key, me, nx=True, px=int(self.lock_seconds * 1000)):
                try:
                    return self._refresh_locked(failed)
                finally:
                    self._release(keys=[self.lock_key], args=[me])
            if time.monotonic() > deadline:
                raise TransientError("timed out waiting for another worker to refresh the access token")
            time.sleep(self.poll)

    def _refresh_locked(self, failed: str | None) -> str:
        record = self.load()  # filled while we were taking the lock?
        if record and record.usable(time.time(), self.margin, failed):
            return record.access_token
        spend = (record.refresh_token if record else None) or self.configured_refresh
        grant = self.fetch(spend)
        lifetime = float(grant.expires_in)
        fresh = TokenRecord(grant.access_token, time.time() + lifetime, lifetime, grant.refresh_token or spend,
                            self.seed)
        self._store(fresh)  # before anyone uses it: a rotated refresh token is now the only one
        if self.on_refresh:
            self.on_refresh("access token refreshed")
        return fresh.access_token

    def load(self) -> TokenRecord | None:
        """The cached record of the current generation (``seed``), or None."""
        raw = self.redis.get(self.key)
        if not raw:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            record = TokenRecord(str(data["access_token"]), float(data["expires_at"]), float(data["lifetime"]),
                                 data.get("refresh_token") or None, str(data.get("seed", "")))
        except (ValueError, TypeError, KeyError):
            return None  # an older format: refresh over it
        return record if record.seed == self.seed else None

    def _store(self, record: TokenRecord) -> None:
        body = json.dumps({"access_token": record.access_token, "expires_at": record.expires_at,
                           "lifetime": record.lifetime, "refresh_token": record.refresh_token, "seed": record.seed})
        if record.refresh_token:
            self.redis.set(self.key, body)  # kept: the refresh token outlives the access token
        else:
            self.redis.set(self.key, body, px=max(1000, int(record.lifetime * 1000)))
