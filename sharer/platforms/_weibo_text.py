"""Weibo's pure text helpers: the status composer, public status URLs (base62 mids), ``#话题#``
topics, safe domains, and what the timeline keeps of a status (for reconciliation). No I/O;
``weibo.py`` is the platform.
"""

from __future__ import annotations

import html
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import regex

from ..compose import fit, render_template
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
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-7:])
        digits = digits[:-7]
    out: list[str] = []
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
    pieces: list[tuple[int, int, bool]] = []
    pos = 0
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
    out: list[str] = []
    for s, e, is_url in _outside_urls(text):
        piece = text[s:e]
        while not is_url and TOPIC_RE.search(piece):
            piece = TOPIC_RE.sub(lambda m: m.group()[1:-1], piece)
        out.append(piece)
    return "".join(out)


def render_lines(template: str, values: Mapping[str, str]) -> str:
    """``render_template``, minus the lines left empty by empty fields (no blank line for no summary)."""
    def empty(line: str) -> bool:
        has_field = any(f for _, f, _, _ in string.Formatter().parse(line))
        return has_field and not line.format_map(values).strip()

    return render_template("\n".join(ln for ln in template.split("\n") if not empty(ln)), values)


def host_allowed(url: str, domains: Sequence[str]) -> bool:
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


# --- composing a status ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Composed:
    """A status text, or the reason there is none (``problem``, for a ``ComposeError``)."""

    text: str = ""
    warnings: tuple[str, ...] = ()
    problem: str = ""


def generate(template: str, values: Mapping[str, str], count: Callable[[str], int], limit: int,
             unit: str) -> Composed:
    """The template's status: ``#`` marks of topics removed; the summary trimmed to fit, then dropped,
    then the title trimmed (``fit``). The link is never cut."""
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if "url" not in fields:
        return Composed(problem="the template has no {url}: Weibo's share API needs the article link")
    clean = {k: strip_topics(v) for k, v in values.items() if k not in ("url", "image")}
    warnings: list[str] = []
    if any(clean[k] != values[k] for k in clean):
        warnings.append("# marks of #topic# removed (Weibo's share API forbids topics)")
    merged = {**values, **clean}
    for name in ("summary", "title"):  # a field the template lacks gives nothing back when cut
        if name not in fields:
            merged[name] = ""
    fitted = fit(lambda v: render_lines(template, v), merged, count=count, limit=limit,
                 drop_order=("summary", "title"))
    if fitted.changed("summary"):
        warnings.append("summary trimmed" if "summary" in fitted.cut else "summary dropped")
    if fitted.changed("title"):
        if "title" in fitted.dropped or not fitted.fits:
            return Composed(problem=f"the template's fixed text and link alone exceed {limit} {unit}")
        warnings.append("title trimmed")
    elif not fitted.fits:
        return Composed(problem=f"the template's fixed text and link alone exceed {limit} {unit}")
    topics = find_topics(fitted.text)
    if topics:
        return Composed(problem=f"the template produces the topic {topics[0]}: Weibo's share API rejects #话题# topics")
    return Composed(fitted.text, tuple(warnings))


def tag_link(text: str, article_url: str, tagged_url: str) -> Composed:
    """An editor's text with its bare article link replaced by the tagged one (or the problem)."""
    links = [text[s:e] for s, e in find_urls(text)]
    warnings: tuple[str, ...] = ()
    if tagged_url not in links:
        if article_url not in links:
            return Composed(problem=f"the text must contain the article link {tagged_url} "
                                    "(Weibo's share API needs a link on the safe domain)")
        text = "".join(tagged_url if is_url and text[s:e] == article_url else text[s:e]
                       for s, e, is_url in _outside_urls(text))
        warnings = ("article link tagged",)
    topics = find_topics(text)
    if topics:
        return Composed(problem=f"the text contains the topic {topics[0]}: Weibo's share API rejects #话题# topics "
                                "(remove the # marks)")
    return Composed(text, warnings)
