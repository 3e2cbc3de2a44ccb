"""Editors' times: parsing in a named zone (never the machine's), DST checks, posting slots. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InputError

GRACE_SECONDS = 60.0  # "now-ish" times a moment in the past are still accepted
_LOCAL = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str, field: str = "tz") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(field, f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)") from None


@dataclass(frozen=True)
class When:
    """A due time: the UTC instant plus the zone it was given in (shown back in that zone)."""

    utc: datetime
    zone: str

    @property
    def epoch(self) -> float:
        return self.utc.timestamp()

    def label(self) -> str:
        """E.g. ``2026-11-26 09:00 Asia/Shanghai`` — how editors wrote it."""
        return f"{local_text(self.utc, self.zone)} {self.zone}"


def local_text(instant: datetime, zone_name: str) -> str:
    tz = _tzinfo(zone_name)
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _tzinfo(zone_name: str) -> tzinfo:
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", zone_name)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return ZoneInfo(zone_name)


def parse_when(text: str, tz_name: str, now: float, field: str = "at") -> When:
    """``"2026-11-26 09:00"`` in ``tz_name``, or ISO 8601 with an offset. Errors name the problem."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(field, "give a date and time, e.g. \"2026-11-26 09:00\"")
    m = _LOCAL.match(text)
    if m:
        tz = zone(tz_name)
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        try:
            naive = datetime(y, mo, d, h, mi, s)
        except ValueError as e:
            raise InputError(field, f"{text!r} is not a valid date-time: {e}") from None
        first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset():
            # fold=0 and fold=1 disagree: the wall time either happens twice or never
            round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
            if round_trip != naive:
                raise InputError(field, f"{text} does not exist in {tz_name} (clocks skip it at a DST change)")
            raise InputError(field, f"{text} happens twice in {tz_name} (DST change): give an ISO time with "
                                    "its offset, e.g. 2026-11-01T01:30-04:00")
        instant, zone_name = first.astimezone(UTC), tz_name
    else:
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(field, f"cannot read {text!r}: use \"YYYY-MM-DD HH:MM\" or ISO 8601 with an "
                                    "offset") from None
        if parsed.tzinfo is None:
            return parse_when(parsed.strftime("%Y-%m-%d %H:%M:%S"), tz_name, now, field)
        instant = parsed.astimezone(UTC)
        off = parsed.utcoffset() or timedelta(0)
        minutes = int(off.total_seconds() // 60)
        zone_name = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        if tz_name and tz_name != "UTC":
            zone_name = tz_name if _same_offset(instant, tz_name, off) else zone_name
    if instant.timestamp() < now - GRACE_SECONDS:
        shown = local_text(instant, zone_name)
        raise InputError(field, f"{shown} {zone_name} is in the past")
    return When(instant, zone_name)


def _same_offset(instant: datetime, tz_name: str, offset: timedelta) -> bool:
    try:
        return instant.astimezone(ZoneInfo(tz_name)).utcoffset() == offset
    except (ZoneInfoNotFoundError, ValueError):
        return False


@dataclass(frozen=True)
class Slots:
    """Posting slots of an account: weekdays and local times, in the account's zone."""

    days: tuple[int, ...]  # 0 = Monday
    times: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, raw: dict, where: str) -> Slots:
        days_raw = raw.get("days", "mon-sun")
        if isinstance(days_raw, str):
            days_raw = _expand_days(days_raw, where)
        if not isinstance(days_raw, list) or not days_raw:
            raise ValueError(f"{where}.days: a list of day names or a range like \"mon-fri\"")
        days = []
        for d in days_raw:
            if not isinstance(d, str) or d.lower()[:3] not in DAYS:
                raise ValueError(f"{where}.days: unknown day {d!r}")
            days.append(DAYS.index(d.lower()[:3]))
        times = []
        for t in raw.get("times", []):
            m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(t))
            if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
                raise ValueError(f"{where}.times: {t!r} is not HH:MM")
            times.append((int(m.group(1)), int(m.group(2))))
        if not times:
            raise ValueError(f"{where}.times: give at least one time")
        return cls(tuple(sorted(set(days))), tuple(sorted(set(times))))

    def upcoming(self, zone_name: str, after: float, count: int = 200, horizon_days: int = 90) -> list[float]:
        """The next ``count`` slot instants (epoch) after ``after``; nonexistent DST times skipped."""
        tz = ZoneInfo(zone_name)
        day = datetime.fromtimestamp(after, tz).date()
        out: list[float] = []
        for _ in range(horizon_days):
            if day.weekday() in self.days:
                for h, m in self.times:
                    local = datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
                    back = local.astimezone(UTC).astimezone(tz)
                    if (back.hour, back.minute) != (h, m):
                        continue  # skipped by a DST change
                    ts = local.timestamp()
                    if ts > after:
                        out.append(ts)
                        if len(out) >= count:
                            return out
            day += timedelta(days=1)
        return out


def _expand_days(text: str, where: str) -> list[str]:
    out: list[str] = []
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a[:3] not in DAYS or b[:3] not in DAYS:
                raise ValueError(f"{where}.days: bad range {part!r}")
            i, j = DAYS.index(a[:3]), DAYS.index(b[:3])
            out += [DAYS[(i + k) % 7] for k in range((j - i) % 7 + 1)]
        elif part:
            out.append(part)
    return out
