"""The dashboard's languages: message catalogs (Babel + Jinja2's i18n extension) and localised dates.

The catalog sources (``translations/<locale>/LC_MESSAGES/messages.po``) are the only copy in the
repository: they are compiled in memory when first used, so a fresh clone, an installed wheel and a
just-edited ``.po`` all serve the same strings and there is no stale ``.mo`` to forget. English is the
source language (msgids), so it needs no catalog.

A request's language: the user's own setting (``sharer.web.prefs``), else the browser's
``Accept-Language``, else ``[web] language``. It is kept in a context variable while a page renders.
"""

from __future__ import annotations

import functools
import io
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

HERE = Path(__file__).resolve().parent / "translations"
LANGUAGES = {"zh-CN": "简体中文", "en": "English"}  # code -> its own name (shown in the language menu)
DEFAULT = "en"  # when [web] language is absent (configs written before it existed keep their behaviour)
_BABEL = {"zh-CN": "zh_Hans_CN", "en": "en_GB"}
_CATALOG = {"zh-CN": "zh_CN"}
# date-time patterns per language: 2026年12月1日 周二 09:00 / Tue 1 Dec 2026 09:00
_PATTERNS = {"zh-CN": ("y年M月d日 EEE HH:mm", "M月d日 EEE", "y年M月", "HH:mm"),
             "en": ("EEE d MMM y HH:mm", "EEE d MMM", "MMMM y", "HH:mm")}

_current: ContextVar[str] = ContextVar("sharer_web_language", default=DEFAULT)


def N_(message: str) -> str:
    """Marks a module-level string for extraction; it is translated where it is shown."""
    return message


@functools.cache
def translations(lang: str) -> NullTranslations:
    name = _CATALOG.get(lang)
    if name is None:
        return NullTranslations()
    with open(HERE / name / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=name)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


def normalise(code: str | None) -> str | None:
    """``zh``, ``zh-Hans``, ``zh_CN``, ``zh-TW`` → ``zh-CN``; ``en-US`` → ``en``; anything else → None."""
    if not code:
        return None
    c = code.strip().replace("_", "-").lower()
    if c.startswith("zh"):
        return "zh-CN"
    if c == "en" or c.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first language we have among the browser's, by q-value (RFC 9110 §12.5.4)."""
    ranked = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        found = normalise(tag)
        if found:
            return found
    return None


def use(lang: str) -> None:
    _current.set(lang if lang in LANGUAGES else DEFAULT)


def current() -> str:
    return _current.get()


def locale() -> Locale:
    return Locale.parse(_BABEL[current()])


def gettext(message: str) -> str:
    return translations(current()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ungettext(singular, plural, n)


_ = gettext


# --- dates and durations ------------------------------------------------------------------------

def _dt(ts: float | str | datetime | None, tz: tzinfo) -> datetime | None:
    if ts in (None, ""):
        return None
    if isinstance(ts, datetime):
        value = ts
    elif isinstance(ts, str):
        try:
            value = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        value = datetime.fromtimestamp(float(ts), UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz)


def when(ts: float | str | datetime | None, tz: tzinfo, part: int = 0) -> str:
    """``2026年12月1日 周二 09:00`` (part 0), the day (1), the month (2) or the time (3), in ``tz``."""
    value = _dt(ts, tz)
    if value is None:
        return ""
    return format_datetime(value, _PATTERNS[current()][part], tzinfo=tz, locale=locale())


def relative(ts: float | str | datetime | None, now: float | None = None) -> str:
    """``3 分钟前`` / ``in 2 hours``."""
    value = _dt(ts, UTC)
    if value is None:
        return ""
    ref = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    return format_timedelta(value - ref, add_direction=True, locale=locale(), )


def duration(seconds: float | int) -> str:
    """``5 年``, ``2 hours`` — a human length of time instead of raw seconds."""
    return format_timedelta(timedelta(seconds=float(seconds)), locale=locale(), )
