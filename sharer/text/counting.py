"""Length counters, one per platform rule.  Each is a plain function ``(text) -> int``.

Platforms disagree on what "a character" is - grapheme clusters (Mastodon), UTF-16 code units
(Telegram), UTF-8 bytes (WeCom), half-width-is-half (Weibo) or twitter-text's weighted length (X) - and
a post that is one unit too long is rejected, so each rule is implemented exactly and trimming/splitting
take the counter as a parameter.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Protocol

import regex

from .graphemes import grapheme_len
from .urls import Span, find_urls, find_x_urls


class Counter(Protocol):
    """A length rule: how long a platform considers ``text`` to be."""

    def __call__(self, text: str, /) -> int: ...


def _outside(text: str, spans: Iterable[Span]) -> list[str]:
    """The pieces of ``text`` between ``spans`` (sorted, non-overlapping)."""
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return pieces


_LATIN1_RE = regex.compile(r"[\x00-\xFF]")
_ASTRAL_RE = regex.compile(r"[\U00010000-\U0010FFFF]")


def count_chars(text: str) -> int:
    """Unicode code points (Python's ``len``)."""
    return len(text)


def count_utf16(text: str) -> int:
    """UTF-16 code units: Telegram's message and caption limits (an astral emoji is 2)."""
    return len(text) + len(_ASTRAL_RE.findall(text))


def count_utf8_bytes(text: str) -> int:
    """UTF-8 bytes: WeCom (企业微信) robot messages are limited in bytes (a CJK character is 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


def count_graphemes(text: str, url_weight: int | None = None) -> int:
    """Grapheme clusters; with ``url_weight`` each http(s) URL counts that much instead (Mastodon: 23)."""
    if url_weight is None:
        return grapheme_len(text)
    spans = find_urls(text)
    return len(spans) * url_weight + sum(grapheme_len(piece) for piece in _outside(text, spans))


# Mastodon's MENTION_RE: ``@user@domain`` is counted as ``@user`` (the domain is free).
_REMOTE_MENTION_RE = regex.compile(r"(?<![=/\w])@(\w+(?:[\w.-]+\w+)?)@[\w.-]+\w+", regex.IGNORECASE)


def count_mastodon(text: str, url_weight: int = 23) -> int:
    """Mastodon's StatusLengthValidator: graphemes, each URL = ``url_weight``, mentions without domain."""
    return count_graphemes(_REMOTE_MENTION_RE.sub(r"@\1", text), url_weight=url_weight)


def count_weibo(text: str, url_weight: int = 11) -> int:
    """Weibo units: ``ceil`` of half a unit per Latin-1 UTF-16 unit, one per other unit, URLs fixed.

    Leading and trailing whitespace is not counted; every http(s) URL becomes a t.cn link worth
    ``url_weight`` whatever its length.  So 140 CJK characters = 140, 280 ASCII = 140, 281 ASCII = 141.
    """
    text = text.strip()
    spans = find_urls(text)
    halves = 2 * url_weight * len(spans)
    for piece in _outside(text, spans):
        # Two halves per code point, one fewer for Latin-1, two more for a surrogate pair.
        halves += 2 * len(piece) - len(_LATIN1_RE.findall(piece)) + 2 * len(_ASTRAL_RE.findall(piece))
    return (halves + 1) // 2


# --- X (twitter-text v3) -----------------------------------------------------------------------------

X_URL_WEIGHT = 23
X_LIMIT = 280
_X_INVALID = frozenset("\uFFFE\uFEFF\uFFFF")
# twitter-text v3 config: U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037 weigh 1, others 2.
_X_HEAVY_RE = regex.compile(r"[^\u0000-\u10FF\u2000-\u200D\u2010-\u201F\u2032-\u2037]")

# One emoji as twitter-text (via twemoji-parser) sees it, written from UTS #51 rather than from a list,
# so emoji newer than a vendored list still count as one:
#   flags (a regional-indicator pair), keycaps ("1⃣", "#️⃣"), © and ® only with VS16 (twemoji leaves the
#   bare text symbols alone, so "©" weighs 1), a modifier base with a skin tone, an emoji-presentation
#   character, or a text-presentation emoji (optionally followed by VS16, not followed by VS15).  Tag
#   sequences (subdivision flags) attach to their base; elements joined by ZWJ form one emoji.
_EMOJI_ELEMENT = (
    r"(?:\p{Regional_Indicator}{2}"
    r"|[#*0-9]\uFE0F?\u20E3"
    r"|[\u00A9\u00AE]\uFE0F"
    r"|\p{Emoji_Modifier_Base}\p{Emoji_Modifier}"
    r"|\p{Emoji_Presentation}(?:[\U000E0020-\U000E007E]+\U000E007F)?"
    r"|(?![#*0-9\u00A9\u00AE])\p{Emoji}(?:\uFE0F|(?!\uFE0E)))"
)
EMOJI_RE = regex.compile(_EMOJI_ELEMENT + r"(?:\u200D" + _EMOJI_ELEMENT + r")*")
"""One emoji sequence (counted as 2 on X whatever its number of code points)."""


def _x_weight(piece: str) -> int:
    """Weighted length of URL-free text: per code point 1 or 2, each emoji sequence 2."""
    total = len(piece) + len(_X_HEAVY_RE.findall(piece))
    for m in EMOJI_RE.finditer(piece):
        emoji = m.group()
        total += 2 - len(emoji) - len(_X_HEAVY_RE.findall(emoji))
    return total


def count_x(text: str) -> int:
    """X's weighted length (twitter-text v3, as ``parseTweet(text).weightedLength``).

    NFC-normalised; each URL (``find_x_urls``) weighs 23; each emoji sequence - ZWJ family, skin-tone
    modified, flag, keycap - weighs 2; other code points weigh 1 in U+0000-U+10FF, U+2000-U+200D,
    U+2010-U+201F and U+2032-U+2037 and 2 elsewhere (CJK: 2 each).
    """
    text = unicodedata.normalize("NFC", text)
    spans = find_x_urls(text)
    return X_URL_WEIGHT * len(spans) + sum(_x_weight(piece) for piece in _outside(text, spans))


def x_is_valid(text: str, limit: int = X_LIMIT) -> bool:
    """Whether X accepts ``text``: non-empty, at most ``limit``, and free of U+FFFE, U+FEFF, U+FFFF."""
    if _X_INVALID.intersection(text):
        return False
    return 0 < count_x(text) <= limit
