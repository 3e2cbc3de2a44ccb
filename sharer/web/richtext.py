"""Platform text formats drawn as the app shows them: Slack mrkdwn, LinkedIn's "little" text, Bluesky's
facets; plus the small URL helpers the ``looks/<platform>.html`` drawings use. Jinja filters (``FILTERS``).

Pure: no I/O. Every piece of text is HTML-escaped first, the markup we add around it is ours, and the
result still goes through the nh3 allow-list (``previews.safe_html``), so a hostile title or a
``javascript:`` link in a payload can only ever show as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from .previews import safe_html

INLINE = {"b", "i", "s", "code", "a", "span"}
LINK_ATTRS = {"a": {"href"}}
CLASSES = {"tag", "mention"}  # the only classes our markup may keep

# Slack mrkdwn: <url|label>, <url>, <!here>, <@U123>; *bold* _italic_ ~strike~ `code` (Slack "formatting" docs)
SLACK_LINK = re.compile(r"<([^<>|\n]*)(?:\|([^<>\n]*))?>")
SLACK_STYLES = [(re.compile(r"`([^`\n]+)`"), "code"),
                (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "b"),
                (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
                (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s")]
HOLE = re.compile(r"\x00(\d+)\x00")
# LinkedIn little text: \X is a literal X; #tag (may hold escaped underscores); @[Name](urn:li:…)
LITTLE = re.compile(r"\\(.)|(?<!\S)#((?:\w|\\_)+)|@\[((?:[^\]\\]|\\.)*)\]\((urn:li:[^)\s]+)\)", re.S)
FACET = "app.bsky.richtext.facet#"


def clean(html: str) -> Markup:
    return Markup(safe_html(html, INLINE, {**LINK_ATTRS, "span": {"class"}}, {}, classes=CLASSES))


def _unentity(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_text(obj: Any) -> Markup:
    """A Slack text object (``{"type": "mrkdwn"|"plain_text", "text"}``) as the client formats it."""
    kind, text = (obj.get("type"), obj.get("text")) if isinstance(obj, dict) else ("plain_text", obj)
    if not isinstance(text, str):
        return Markup("")
    if kind != "mrkdwn":
        return Markup(escape(text))
    holes: list[str] = []

    def link(m: re.Match[str]) -> str:
        target, label = _unentity(m.group(1)), _unentity(m.group(2) or "")
        if target.startswith("!date^"):  # a date Slack formats for each reader: its fallback text
            holes.append(str(escape(label or target)))
        elif target.startswith(("!", "@", "#")):  # <!here>, <@U123|ann>, <#C123|general>: a highlighted name
            holes.append(f'<span class="mention">{escape(_mention(target, label))}</span>')
        else:
            holes.append(f'<a href="{escape(target)}">{escape(label or target)}</a>')
        return f"\x00{len(holes) - 1}\x00"

    html = str(escape(_unentity(SLACK_LINK.sub(link, text.replace("\x00", "")))))
    for pattern, tag in SLACK_STYLES:
        html = pattern.sub(f"<{tag}>\\1</{tag}>", html)
    return clean(HOLE.sub(lambda m: holes[int(m.group(1))], html))


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.S)


def _mention(target: str, label: str) -> str:
    sigil = "#" if target[0] == "#" else "@"
    name = label or (target[1:].split("^")[0] if target[0] == "!" else target[1:])
    return name if name.startswith(sigil) else sigil + name


def little_text(commentary: Any) -> Markup:
    """LinkedIn commentary as sent (backslash-escaped) as members read it: escapes undone, #tags marked."""
    if not isinstance(commentary, str):
        return Markup("")
    out, pos = [], 0
    for m in LITTLE.finditer(commentary):
        out.append(str(escape(commentary[pos:m.start()])))
        if m.group(1) is not None:
            out.append(str(escape(m.group(1))))
        elif m.group(2) is not None:
            out.append(f'<span class="tag">#{escape(_unescape(m.group(2)))}</span>')
        else:
            out.append(f'<span class="mention">{escape(_unescape(m.group(3)))}</span>')
        pos = m.end()
    out.append(str(escape(commentary[pos:])))
    return clean("".join(out))


def facet_text(record: Any) -> Markup:
    """A Bluesky post record's ``text`` with its facets (UTF-8 byte ranges): links, #tags, @mentions."""
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        return Markup("")
    data, out, pos = text.encode(), [], 0
    for start, end, feature in _spans(record.get("facets"), len(data)):
        if start < pos:
            continue  # overlapping facets are invalid: the app ignores the later one, so do we
        out.append(str(escape(data[pos:start].decode(errors="replace"))))
        shown = escape(data[start:end].decode(errors="replace"))
        kind = str(feature.get("$type", "")).removeprefix(FACET)
        if kind == "link":
            out.append(f'<a href="{escape(str(feature.get("uri", "")))}">{shown}</a>')
        else:
            out.append(f'<span class="{"tag" if kind == "tag" else "mention"}">{shown}</span>')
        pos = end
    out.append(str(escape(data[pos:].decode(errors="replace"))))
    return clean("".join(out))


def _spans(facets: Any, size: int) -> list[tuple[int, int, dict[str, Any]]]:
    spans = []
    for f in facets if isinstance(facets, list) else []:
        index = f.get("index") if isinstance(f, dict) else None
        features = f.get("features") if isinstance(f, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list) or not features or \
                not isinstance(features[0], dict):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size:
            spans.append((start, end, features[0]))
    return sorted(spans, key=lambda s: s[0])


def safe_url(url: Any) -> str:
    """``url`` when it is an http(s) address a link may point to, else "" (no ``javascript:``)."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) and "\n" not in url else ""


def host(url: Any) -> str:
    """``https://www.news.example.com/a`` → ``news.example.com`` (what link cards print)."""
    try:
        name = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        return ""
    return (name or "").removeprefix("www.")


def colour(value: Any, default: str = "#1e1f22") -> str:
    """A Discord embed colour (an int, 0xRRGGBB) as ``#rrggbb``; none: the app's own dark bar."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFF:
        return default
    return f"#{value:06x}"


FILTERS: dict[str, Callable[..., Any]] = {"slack_text": slack_text, "little_text": little_text,
                                          "facet_text": facet_text, "host": host, "colour": colour,
                                          "safe_url": safe_url}
