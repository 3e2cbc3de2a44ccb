"""Per-user dashboard preferences (language, time zone), kept in Redis under ``<prefix>:web:prefs:<user>``.

Users live in the config, but a preference is the user's own choice, made on the settings page: it is
not worth a config review, and it must follow the user to any browser they sign in from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis import Redis

from ..errors import InputError
from .i18n import LANGUAGES


@dataclass(frozen=True)
class Prefs:
    language: str | None = None  # None: the browser's Accept-Language, else [web] language
    timezone: str | None = None  # None: [defaults] timezone


class PrefsStore:
    def __init__(self, redis: Redis, prefix: str):
        self.r, self.prefix = redis, prefix

    def _key(self, user: str) -> str:
        return f"{self.prefix}:web:prefs:{user}"

    def get(self, user: str) -> Prefs:
        raw = self.r.hgetall(self._key(user))
        h = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in raw.items()}
        lang = h.get("language") if h.get("language") in LANGUAGES else None
        tz = h.get("timezone") or None
        if tz:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                tz = None
        return Prefs(lang, tz)

    def set(self, user: str, language: str | None, timezone: str | None) -> Prefs:
        """Validate and store; an empty value means "automatic" (the field is removed)."""
        if language and language not in LANGUAGES:
            raise InputError("language", f"unknown language {language!r} (one of: {', '.join(LANGUAGES)})")
        if timezone:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError("timezone", f"unknown time zone {timezone!r}") from None
        key = self._key(user)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(key)
        fields: dict[Any, Any] = {k: v for k, v in (("language", language), ("timezone", timezone)) if v}
        if fields:
            pipe.hset(key, mapping=fields)
        pipe.execute()
        return Prefs(language or None, timezone or None)
