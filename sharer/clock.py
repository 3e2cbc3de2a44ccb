"""Time in one place: UTC instants, ISO 8601 with a ``Z``. Never the machine's local zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-25T21:40:00.123Z``."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch_of(value: object) -> float | None:
    """An ISO 8601 time (a platform's ``created_at``) as epoch seconds; None when it is not one."""
    try:
        when = parse_iso(str(value))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def ms(ts: float) -> int:
    return int(ts * 1000)
