"""Weibo's pure text helpers: public status URLs (base62 mids), ``#话题#`` topics, safe domains, and
what the timeline keeps of a status (for reconciliation). No I/O; ``weibo.py`` is the platform.
"""

from __future__ import annotations

import html
import string
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import regex

from ..compose import render_template
from ..text import find_urls

BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# A Weibo topic: "#话题#" (or full-width ＃), no whitespace inside. Weibo links it even right after CJK
# text ("今天#天气#"), so unlike sharer.text's recogniser there is no look-behind.
TOPIC_RE = regex.compile(r"[#＃][^#＃\s]+[#＃]")
MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
T_CN = regex.compile(r"https?://t\.cn/[0-9A-Za-z]+")


def mid_to_base62(mid: str | int) -> str:
    """The id in a status's public URL: 7-digit groups from the right, each base62, inner ones 4 wide."""
    digits = str(int(mid))
    groups = []
    while digits:
        groups.insert(0, digits[-7:])
        digits = digits[:-7]
    out = []
    for i, group in enumerate(groups):
        n, enc = int(group), ""
        while True:
            n, r = divmod(n, 62)
            enc = BASE62[r] + enc
            if not n:
                break
        out.append(enc.rjust(4, "0") if i else enc)
    return "".join(out)


def status_url(uid: str, mid: str | int) -> str:
    return f"https://weibo.com/{uid}/{mid_to_base62(mid)}"


def _outside_urls(text: str) -> list[tuple[int, int, bool]]:
    """``text`` cut into (start, end, is_url) pieces."""
    pieces, pos = [], 0
    for start, end in find_urls(text):
        pieces.append((pos, start, False))
        pieces.append((start, end, True))
        pos = end
    pieces.append((pos, len(text), False))
    return pieces


def find_topics(text: str) -> list[str]:
    """``#话题#`` topics outside links (a ``#fragment`` in a URL is not a topic)."""
    return [m.group() for s, e, is_url in _outside_urls(text) if not is_url for m in TOPIC_RE.finditer(text[s:e])]


def strip_topics(text: str) -> str:
    """Remove the ``#`` marks of every topic, keeping its words: "#新能源#汽车" -> "新能源汽车"."""
    out = []
    for s, e, is_url in _outside_urls(text):
        piece = text[s:e]
        while not is_url and TOPIC_RE.search(piece):
            piece = TOPIC_RE.sub(lambda m: m.group()[1:-1], piece)
        out.append(piece)
    return "".join(out)


def render_lines(template: str, values: dict[str, str]) -> str:
    """``render_template``, minus the lines left empty by empty fields (no blank line for no summary)."""
    def empty(line: str) -> bool:
        has_field = any(f for _, f, _, _ in string.Formatter().parse(line))
        return has_field and not line.format_map(values).strip()

    return render_template("\n".join(ln for ln in template.split("\n") if not empty(ln)), values)


def host_allowed(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _normal_domain(d: str) -> str:
    return d.strip().lower().removeprefix("*.").lstrip(".").rstrip(".")


def comparable(text: str) -> str:
    """What Weibo keeps of a status's text: links removed (they come back as t.cn links), entities
    decoded, NFC, no whitespace at all (Weibo may move it around a link)."""
    text = unicodedata.normalize("NFC", html.unescape(text or ""))
    for start, end in reversed(find_urls(text)):
        text = text[:start] + text[end:]
    return "".join(T_CN.sub("", text).split())


def parse_created_at(value: Any) -> float | None:
    """``"Tue May 31 17:46:55 +0800 2011"`` -> epoch seconds (read by hand: ``%a``/``%b`` are locale-bound)."""
    try:
        _, mon, day, hms, offset, year = str(value).split()
        hh, mm, ss = (int(x) for x in hms.split(":"))
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return datetime(int(year), MONTHS[mon], int(day), hh, mm, ss, tzinfo=zone).timestamp()
    except (ValueError, KeyError, IndexError):
        return None


def seconds_to_next_hour(now: float) -> float:
    """Weibo's posting windows are clock hours (UTC+8 is a whole-hour offset, so UTC hours match)."""
    return 3600.0 - (now % 3600.0) or 3600.0
