"""Finding URLs, hashtags and mentions: the spans a trim or a thread split must never cut into.

Three recognisers live here:

* ``find_urls`` - explicit http(s) URLs.  Platforms that shorten links (Weibo, Mastodon, X) weigh these
  as a fixed number of characters, and a cut URL is a broken link, so they are atoms.  A URL stops at
  whitespace, at CJK text or full-width punctuation (Chinese prose often follows a link with no space),
  and trailing sentence punctuation (and an unbalanced closing bracket) is left out.
* ``find_x_urls`` - what twitter-text calls a URL: explicit URLs *and* bare domains such as
  ``example.com/path``, with twitter-text's character classes for paths and queries and its rules for
  which bare domains count (see the function).  Used by ``count_x``.
* ``find_hashtags`` / ``find_mentions`` - ``#tag``, Weibo's ``#话题#``, ``@name`` and ``@user@domain``.

``find_atoms`` merges all of them into the protected spans used by trimming and splitting.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from .tlds import COUNTRY_TLDS, GENERIC_TLDS

Span = tuple[int, int]

# --- explicit http(s) URLs -------------------------------------------------------------------------

# CJK ideographs, kana, Hangul, CJK symbols and punctuation, full-width forms: never part of a URL here.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\u3000-\u303F\uFF00-\uFFEF"
# General punctuation from the em dash on (… “ ” ‘ ’ — and invisible format characters) ends a URL too,
# as do emoji.  Hyphen-like U+2010-U+2013 may appear in paths.
_URL_CHAR = (
    r"[^\s\p{C}\p{Z}<>\"`{}|\\^" + _CJK + r"\u2014-\u206F\p{Extended_Pictographic}\p{Regional_Indicator}]"
)
URL_RE = regex.compile(r"(?<![A-Za-z0-9@＠$#＃])https?://" + _URL_CHAR + "+", regex.IGNORECASE)
"""Candidate explicit URLs; ``find_urls`` then drops trailing punctuation that belongs to the sentence."""

_TRAILING_PUNCT = frozenset(".,;:!?'\"*")
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}
_ALNUM_RE = regex.compile(r"[\p{L}\p{N}]")


def _strip_url_tail(url: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a URL candidate."""
    while url:
        last = url[-1]
        if last in _TRAILING_PUNCT:
            url = url[:-1]
        elif last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last]):
            url = url[:-1]
        else:
            break
    return url


def find_urls(text: str) -> list[Span]:
    """Spans ``(start, end)`` of explicit http(s) URLs in ``text``, in order, non-overlapping."""
    spans: list[Span] = []
    for m in URL_RE.finditer(text):
        url = _strip_url_tail(m.group())
        host = url[url.index("://") + 3:]
        if _ALNUM_RE.search(host):
            spans.append((m.start(), m.start() + len(url)))
    return spans


# --- twitter-text URLs (explicit and bare domains) ----------------------------------------------------

# Longest first, so that an alternation never settles for a prefix of the real TLD.
_TLD_ALTERNATION = "|".join(sorted(GENERIC_TLDS | COUNTRY_TLDS, key=len, reverse=True))
_CCTLD_ALTERNATION = "|".join(sorted(COUNTRY_TLDS, key=len, reverse=True))

_LATIN_ACCENTS = r"\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF\u0100-\u024F\u0253\u0254\u0256\u0257\u0259\u025B" \
    r"\u0263\u0268\u026F\u0272\u0289\u028B\u02BB\u0300-\u036F\u1E00-\u1EFF"
_CYRILLIC = r"\u0400-\u04FF"
_PATH_CHAR = r"[a-z" + _CYRILLIC + r"0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&" + _LATIN_ACCENTS + "]"
_PATH_END = r"[+\-a-z" + _CYRILLIC + r"0-9=_#/" + _LATIN_ACCENTS + "]"
_PARENS = rf"\((?:{_PATH_CHAR}+|{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*)\)"
_PATH = rf"(?P<path>/(?:(?:{_PATH_CHAR}|{_PARENS})*(?:{_PATH_END}|{_PARENS}))?)?"
_QUERY = r"(?:\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/])?"
_PORT = r"(?::[0-9]+)?"
_INVALID = r"\uFFFE\uFEFF\uFFFF"
_DIRECTIONAL = r"\u202A-\u202E\u061C\u200E\u200F\u2066-\u2069"
_SPACES = r"\x09-\x0D\x20\x85\xA0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
# twitter-text's domain character: anything but its ASCII punctuation list (which omits " and `),
# its spaces, the invalid characters and the directional marks.  CJK text and emoji qualify.
_DOMAIN_CHAR = r"[^!#-/:-@\[-_{-~" + _SPACES + _INVALID + _DIRECTIONAL + "]"
# Labels are matched atomically: a label runs to the next "." or it is not a label, so there is
# nothing to backtrack into (twitter-text's own pattern backtracks quadratically on long CJK runs).
_SUBDOMAIN = rf"(?>{_DOMAIN_CHAR}(?:{_DOMAIN_CHAR}|[_\-])*)(?<![_\-])\."
_DOMAIN_NAME = rf"(?>{_DOMAIN_CHAR}(?:{_DOMAIN_CHAR}|-)*)(?<!-)\."
_TLD = rf"(?:{_TLD_ALTERNATION}|xn--[\-0-9a-z]+)(?![0-9a-z@+\-])"
# twitter-text's extractUrl: a consumed "preceding" character, then an optional protocol, a domain of any
# script, port, path and query.  A match that is then rejected still consumes its text, as there.
#
# twitter-text tries every position; inside a run of domain characters (a CJK sentence, say) a domain
# starting mid-run ends where one starting at the run's first valid position does, so it fails or
# succeeds the same way.  Only four kinds of start are therefore tried, which keeps the scan linear:
# an explicit "http(s)://", the start of a run (the preceding character is not a domain character), the
# position after one whose preceding character was not allowed ("@abc中文example.com"), and the first
# position after the previous match (whose last character it consumed).  As in twitter-text, a
# preceding character is preferred to the start of the text.
_BAD_BEFORE = rf"A-Za-z0-9@＠$#＃{_INVALID}"
_NOT_DOMAIN = r"!#-/:-@\[-_{-~" + _SPACES + _INVALID + _DIRECTIONAL
_X_URL_RE = regex.compile(
    rf"(?:(?P<before>[^{_BAD_BEFORE}])(?=https?://)"
    rf"|(?![{_BAD_BEFORE}])(?P<before_run>[{_NOT_DOMAIN}])"
    rf"|(?<=[{_BAD_BEFORE}])(?P<before_shift>[^{_BAD_BEFORE}])"
    rf"|\G(?P<before_resume>[^{_BAD_BEFORE}])"
    rf"|^)"
    rf"(?P<url>(?P<proto>https?://)?"
    rf"(?P<domain>(?:{_SUBDOMAIN})*{_DOMAIN_NAME}{_TLD})"
    rf"{_PORT}{_PATH}{_QUERY})",
    regex.IGNORECASE,
)
# A URL never contains whitespace and always has a dot followed by a letter (the TLD), so only the
# whitespace-free chunks that have one are scanned: prose costs next to nothing.
_URLISH_CHUNK_RE = regex.compile(
    rf"(?<![^{_SPACES}])(?:[^{_SPACES}.]++|\.(?![^\W\d_]))*+\.(?=[^\W\d_])[^{_SPACES}]*+"
)
# The ASCII domains twitter-text picks out of a protocol-less match ("中文example.com" -> "example.com").
_ASCII_DOMAIN_RE = regex.compile(rf"(?:[\-a-z0-9{_LATIN_ACCENTS}]+\.)+{_TLD}", regex.IGNORECASE)
# A single label on a country TLD, e.g. "foo.cn": not a URL without a path, except on .co and .tv.
_SHORT_DOMAIN_RE = regex.compile(rf"^{_DOMAIN_NAME}(?:{_CCTLD_ALTERNATION})$", regex.IGNORECASE)
_SPECIAL_SHORT_DOMAIN_RE = regex.compile(rf"^{_DOMAIN_NAME}(?:co|tv)$", regex.IGNORECASE)
_IDEOGRAPHIC_DOTS_RE = regex.compile(r"[\u3002\uFF0E\uFF61]")
_TCO_RE = regex.compile(
    r"^https?://t\.co/([a-z0-9]+)(?:\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/])?", regex.IGNORECASE
)
_MAX_LABEL = 63
_MAX_URL = 4096
_MAX_TCO_SLUG = 40


def _to_ascii(domain: str) -> str | None:
    """twitter-text's ``idna.toAscii``: punycode each label; ``None`` if a label is empty or over 63.

    Like the punycode.js library twitter-text uses, 。．｡ inside a label act as dots when encoding
    (and no nameprep is applied), so "中文。example" is one label of "xn--fiq228c.example", not an error.
    """
    if domain[:4].lower() == "xn--" and not _ASCII_DOMAIN_RE.search(domain):
        return None
    labels = []
    for label in domain.split("."):
        parts = []
        for part in _IDEOGRAPHIC_DOTS_RE.split(label):
            if part.isascii():
                parts.append(part)
            else:
                try:
                    parts.append("xn--" + part.encode("punycode").decode("ascii"))
                except UnicodeError:
                    return None
        encoded = ".".join(parts)
        if not 1 <= len(encoded) <= _MAX_LABEL:
            return None
        labels.append(encoded)
    return ".".join(labels)


def find_x_urls(text: str) -> list[Span]:
    """Spans of what twitter-text counts as a URL (23 weighted characters each on X).

    A port of twitter-text's ``extractUrlsWithIndices``: explicit ``http(s)://`` URLs, and bare domains
    such as ``example.com`` or ``www.example.cn/path`` - only on a TLD twitter-text knows (``tlds.py``).

    * A protocol-less match is a domain of any script; only its ASCII domains are URLs, so CJK text glued
      to ``example.com`` belongs to the first label - and if that label punycodes to more than 63
      characters (a long CJK sentence with no space before the domain) there is no URL at all.
    * A bare single label on a country TLD without a path (``foo.cn``, ``setup.py``) is not a URL, except
      on ``.co`` and ``.tv`` (``t.co``); neither is a bare domain after ``- _ . /``, an ASCII letter or
      digit, or ``@`` (e-mail addresses).
    * Paths end on twitter-text's path-ending characters (``https://a.com/x.`` excludes the full stop;
      CJK text after a URL is not part of it); ``t.co`` links take no path.
    """
    spans: list[Span] = []
    for chunk in _URLISH_CHUNK_RE.finditer(text):
        # Start on the whitespace before the chunk: the "preceding" character of a URL at its start.
        spans.extend(_x_urls_in(text, max(chunk.start() - 1, 0), chunk.end()))
    return spans


def _x_urls_in(text: str, pos: int, endpos: int) -> list[Span]:
    """``find_x_urls`` between ``pos`` and ``endpos``."""
    spans: list[Span] = []
    for m in _X_URL_RE.finditer(text, pos, endpos):
        start, end = m.span("url")
        domain = m.group("domain")
        ascii_domain = _to_ascii(domain)
        protocol = m.group("proto") or "https://"
        if ascii_domain is None or len(protocol) + (end - start) + len(ascii_domain) - len(domain) > _MAX_URL:
            continue
        if m.group("proto"):
            tco = _TCO_RE.match(m.group("url"))
            if tco and len(tco.group(1)) > _MAX_TCO_SLUG:
                continue
            spans.append((start, start + tco.end() if tco else end))
            continue
        before = m.group("before_run") or m.group("before_shift") or m.group("before_resume") or ""
        if before in ("-", "_", ".", "/"):
            continue
        path = m.group("path")
        found: list[Span] = []
        for am in _ASCII_DOMAIN_RE.finditer(domain):
            name = am.group()
            if path or _SPECIAL_SHORT_DOMAIN_RE.match(name) or not _SHORT_DOMAIN_RE.match(name):
                found.append((start + am.start(), start + am.end()))
        if found and path:
            found[-1] = (found[-1][0], end)
        spans.extend(found)
    return spans


# --- hashtags and mentions ----------------------------------------------------------------------------

# Weibo topics: ``#话题#`` - no whitespace inside, at most 64 characters.
_WEIBO_TOPIC_RE = regex.compile(r"(?<![\w&])[#＃][^#＃\s]{1,64}[#＃]")
# ``#tag``: word characters (any script) and marks; longer than 50 it is prose, not a tag.
_HASHTAG_RE = regex.compile(r"(?<![\w&#＃])[#＃][\w\p{M}\u200C\u200D]{1,50}(?![\w\p{M}])")
# ``@name`` (any script, Weibo nicknames included) and Mastodon's ``@user@example.social``.
_MENTION_RE = regex.compile(
    r"(?<![\w@＠.])[@＠][\w\-]{1,30}(?:@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)?(?![\w\-@＠])"
)


def find_hashtags(text: str) -> list[Span]:
    """Spans of hashtags: Weibo ``#话题#`` (tried first) and ``#tag``."""
    spans = [m.span() for m in _WEIBO_TOPIC_RE.finditer(text)]
    taken = _Spans(spans)
    spans.extend(m.span() for m in _HASHTAG_RE.finditer(text) if not taken.overlaps(*m.span()))
    return sorted(spans)


def find_mentions(text: str) -> list[Span]:
    """Spans of ``@name`` and ``@user@domain`` mentions (not e-mail addresses)."""
    return [m.span() for m in _MENTION_RE.finditer(text)]


def find_atoms(text: str) -> list[Span]:
    """Protected spans - URLs (explicit and bare), hashtags, mentions - sorted and merged.

    A trim or split may keep or drop an atom, never cut inside one.  Overlapping spans (a ``#fragment``
    inside a URL) are merged into one.
    """
    return merge_spans([*find_urls(text), *find_x_urls(text), *find_hashtags(text), *find_mentions(text)])


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sort spans and merge the ones that overlap (touching spans stay separate)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Spans:
    """A small sorted-span set answering "does [start, end) overlap anything taken?"."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self._spans = merge_spans(spans)

    def overlaps(self, start: int, end: int) -> bool:
        return any(s < end and start < e for s, e in self._spans)
