"""Glue shared by the API and the pages: input parsing and read models built from ``sharer.service``.

Nothing here decides what a share or a delivery does; it only turns web input into the core's
arguments and the core's results into JSON-ready dicts.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import service
from ..article import Article
from ..clock import iso
from ..errors import InputError
from ..platforms import get_platform
from ..runtime import Runtime
from ..store.deliveries import Delivery

CHECK_TTL = 60  # seconds a credential check result is reused (the checks cost platform API quota)
CHECK_TIMEOUT = 5.0


def article_from(data: dict[str, Any], source: str = "article") -> Article:
    """The core's Article (validated and sanitised there); ArticleError names the bad field."""
    return Article.from_dict({k: v for k, v in data.items() if v is not None}, source=source)


def known_accounts(rt: Runtime, names: list[str], field: str = "accounts") -> list[str]:
    """Reject unknown names here, so the message names the field and not the config file path."""
    for name in names:
        if name not in rt.settings.accounts:
            known = ", ".join(sorted(rt.settings.accounts))
            raise InputError(field, f"unknown account {name!r} (known: {known})")
    return names


def preview_json(items: list[service.PreviewItem]) -> list[dict[str, Any]]:
    out = []
    for it in items:
        if it.post is not None:
            out.append({**it.post.to_dict(), "error": None})
        else:
            out.append({"platform": it.platform, "account": it.account, "text": None, "payload": None,
                        "length": it.length, "limit": it.limit, "unit": it.unit, "warnings": [],
                        "error": it.error})
    return out


def zone(name: str | None, default: str, field: str = "tz") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(field, f"unknown time zone {name!r}") from None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_bound(value: str | None, tz: str, field: str, *, end: bool = False) -> float | None:
    """A date (whole day in ``tz``; an end date includes its day) or ISO 8601 date-time with offset."""
    if not value:
        return None
    value = value.strip()
    try:
        if _DATE.match(value):
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, f"expected YYYY-MM-DD or an ISO 8601 date-time, got {value!r}") from None
    except (OverflowError, OSError):  # 9999-12-31 as an inclusive end: the next day does not exist
        raise InputError(field, f"{value!r} is out of range") from None
    if dt.tzinfo is None:
        raise InputError(field, "a date-time needs a time zone offset (e.g. +08:00) or Z")
    try:
        return dt.astimezone(UTC).timestamp()
    except (OverflowError, OSError):
        raise InputError(field, "out of range") from None


def to_local_input(ts: float | None, tz: str) -> str:
    """An epoch as a ``datetime-local`` input value in ``tz``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def from_local_input(value: str) -> str:
    """``2026-11-26T09:00`` (a datetime-local input) -> ``2026-11-26 09:00`` (the core's local form)."""
    value = value.strip()
    return value.replace("T", " ", 1) if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$", value) else value


# --- accounts ----------------------------------------------------------------------------------------

def account_rows(rt: Runtime, check: bool) -> list[dict[str, Any]]:
    """Each configured account with its limits, last success/failure and (with ``check``) credentials."""
    accounts = list(rt.settings.accounts.values())
    checks = check_all(rt, [a.name for a in accounts]) if check else {}
    rows = []
    for a in accounts:
        cls = get_platform(a.platform)
        ok, bad = service.account_activity(rt, a.name)
        rate = a.rate_limit or getattr(cls, "rate_limit", None)
        rows.append({
            "name": a.name, "platform": a.platform, "platform_title": cls.title,
            "limit": int(cls.limit), "unit": cls.unit,
            "rate_limit": {"count": rate[0], "per_seconds": rate[1]} if rate else None,
            "timezone": a.timezone, "last_success": _outcome(ok), "last_failure": _outcome(bad),
            "credentials": checks.get(a.name), "requires_approval": rt.settings.needs_approval(a.name),
        })
    return rows


def _outcome(d: Delivery | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"delivery_id": d.id, "share_id": d.share_id, "at": d.updated_at, "status": d.status,
            "post_url": d.post_url, "error": d.error}


def check_all(rt: Runtime, names: list[str]) -> dict[str, dict[str, Any]]:
    """Credential checks in parallel, each bounded, results cached briefly in Redis."""
    out: dict[str, dict[str, Any]] = {}
    keys = {n: rt.keys.cache(n, "web-credential-check") for n in names}
    cached = rt.redis.mget(list(keys.values())) if names else []
    todo = []
    for name, raw in zip(names, cached):
        if raw is not None:
            out[name] = json.loads(raw)
        else:
            todo.append(name)
    if todo:
        pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="credcheck")
        futures = {pool.submit(service.check_credentials, rt, n, CHECK_TIMEOUT): n for n in todo}
        done, _ = wait(futures, timeout=CHECK_TIMEOUT + 2)
        pool.shutdown(wait=False, cancel_futures=True)
        for fut, name in futures.items():
            if fut in done and fut.exception() is None:
                res = fut.result()
                out[name] = {"ok": res.ok, "message": res.message, "checked_at": iso()}
                rt.redis.set(keys[name], json.dumps(out[name]), ex=CHECK_TTL)
            else:
                out[name] = {"ok": False, "message": "the check did not finish in time", "checked_at": iso()}
    return out


def platform_groups(rt: Runtime) -> list[dict[str, Any]]:
    """Accounts grouped by platform, for the compose page's account chooser."""
    groups: dict[str, dict[str, Any]] = {}
    for a in rt.settings.accounts.values():
        cls = get_platform(a.platform)
        g = groups.setdefault(a.platform, {"platform": a.platform, "title": cls.title, "accounts": []})
        g["accounts"].append({"name": a.name, "limit": cls.limit, "unit": cls.unit})
    return sorted(groups.values(), key=lambda g: g["title"])
