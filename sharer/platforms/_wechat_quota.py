"""The mass-send (群发) quota of a WeChat account, kept in Redis and checked before every send.

WeChat allows a subscription account 1 successful mass send a day and a service account 4 a month
(fact sheet §1.5; console sends count too, so the platform's own 45028 stays the last word). We count
per period in the account's time zone: a set of delivery ids, so a send that is confirmed twice (a
reconciled one) counts once. A send takes its place before it goes out — two workers cannot both take
the last one — and gives it back when WeChat refused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..errors import RateLimited
from ..store import scripts

if TYPE_CHECKING:
    from redis import Redis

    from ..config.settings import Account
    from ..store.keys import Keys
    from ._wechat_options import WeChatOptions

DEFAULT_ZONE = "Asia/Shanghai"  # WeChat's own reset zone, when the account names none
DEFAULTS = {"subscription": (1, "day"), "service": (4, "month")}

# KEYS[1] the period's set; ARGV 1 delivery id, 2 quota, 3 TTL seconds
_TAKE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int
    period: str  # "day" or "month"
    label: str  # "2026-12-01" / "2026-12" in ``zone``
    zone: str
    resets_at: datetime

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def describe(self) -> str:
        when = "today" if self.period == "day" else "this month"
        return (f"{self.used} of {self.limit} mass send{'s' if self.limit != 1 else ''} used {when} "
                f"({self.zone}); resets {self.resets_at:%Y-%m-%d %H:%M}")

    def to_json(self) -> dict:
        return {"used": self.used, "limit": self.limit, "period": self.period, "label": self.label,
                "timezone": self.zone, "resets_at": self.resets_at.isoformat()}


def rule(account: Account) -> tuple[int, str]:
    """(sends per period, "day"|"month") from ``account_type``, ``mass_quota`` and ``mass_quota_period``."""
    o: WeChatOptions = account.options
    limit, period = DEFAULTS[o.account_type]
    return (int(o.mass_quota) or limit), (o.mass_quota_period or period)


def _period(account: Account, now: datetime | None = None) -> tuple[str, str, str, datetime]:
    zone = account.timezone or DEFAULT_ZONE
    local = (now or datetime.now(ZoneInfo(zone))).astimezone(ZoneInfo(zone))
    _, period = rule(account)
    if period == "day":
        label = local.strftime("%Y-%m-%d")
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = (start + timedelta(days=1, hours=3)).replace(hour=0)  # DST-safe: the next calendar day
    else:
        label = local.strftime("%Y-%m")
        nxt = (local.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    return zone, period, label, nxt


def _key(keys: Keys, account: Account, label: str) -> str:
    return keys.cache(account.name, f"mass-quota:{label}")


def status(redis: Redis, keys: Keys, account: Account) -> Quota:
    zone, period, label, nxt = _period(account)
    limit, _ = rule(account)
    return Quota(int(redis.scard(_key(keys, account, label))), limit, period, label, zone, nxt)


def take(redis: Redis, keys: Keys, account: Account, delivery_id: str) -> Quota:
    """Take this delivery's place in the period's quota, or raise ``RateLimited`` until it resets."""
    zone, period, label, nxt = _period(account)
    limit, _ = rule(account)
    ok = scripts.register(redis, _TAKE)(keys=[_key(keys, account, label)], args=[delivery_id, limit, 40 * 86400])
    q = status(redis, keys, account)
    if not int(ok):
        wait = seconds_to_reset(account)
        raise RateLimited(f"mass-send quota of account {account.name} used up: {q.describe()}", retry_after=wait,
                          code="quota")
    return q


def give_back(redis: Redis, keys: Keys, account: Account, delivery_id: str) -> None:
    """WeChat refused the send (it did not go out): its place is free again."""
    _, _, label, _ = _period(account)
    redis.srem(_key(keys, account, label), delivery_id)


def seconds_to_reset(account: Account) -> float:
    """Seconds until the account's mass-send period starts again (at least a minute)."""
    zone, _, _, nxt = _period(account)
    return max(60.0, (nxt - datetime.now(ZoneInfo(zone))).total_seconds())
