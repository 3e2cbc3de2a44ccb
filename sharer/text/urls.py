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
_SCHEME_RE = regex.compile(r"https?://", regex.IGNORECASE)


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
        host = url[_SCHEME_RE.match(url).end():]  # type: ignore[union-attr]
        if regex.search(r"[\p{L}\p{N}]", host):
            spans.append((m.start(), m.start() + len(url)))
    return spans


# --- twitter-text URLs (explicit and bare domains) ----------------------------------------------------

# ccTLDs (ASCII) as listed by IANA and used by twitter-text.
_CCTLDS = (
    "ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq br bs bt "
    "bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg eh er es "
    "et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie "
    "il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma "
    "mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om "
    "pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr "
    "ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tp tr tt tv tw tz ua ug uk um us uy uz va vc ve vg "
    "vi vn vu wf ws ye yt za zm zw"
).split()
# The common generic TLDs.  twitter-text knows ~1250; a bare domain on a rarer one (``foo.dentist``) is
# not treated as a URL here, which only matters for text that is not a link on a common TLD anyway.
_GTLDS = (
    "academy agency app art asia biz blog center click cloud club codes com company coop design dev digital "
    "edu email fun fyi gov group guru icu info ink int jobs link live ltd media mil mobi museum name net "
    "network news one online org page pro run services shop site social solutions space store studio "
    "systems tech tel today tools top travel video vip website wiki win world xyz zone"
).split()
_SPECIAL_SHORT_CCTLDS = ("co", "tv")  # ``t.co`` and ``foo.tv`` count even without a path.

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
# twitter-text: a domain character is anything but ASCII punctuation, spaces and invisible marks.
_DOMAIN_CHAR = r"[^!-/:-@\[-`{-~\s\p{Z}\p{Cc}" + _INVALID + _DIRECTIONAL + "]"
_TLD_END = r"(?![0-9a-z@+\-])"

_X_EXPLICIT_RE = regex.compile(
    rf"(?<![A-Za-z0-9@＠$#＃{_INVALID}])"
    rf"(?P<url>https?://"
    rf"(?P<domain>(?:{_DOMAIN_CHAR}(?:(?:[_\-]|{_DOMAIN_CHAR})*{_DOMAIN_CHAR})?\.)*"
    rf"{_DOMAIN_CHAR}(?:(?:\-|{_DOMAIN_CHAR})*{_DOMAIN_CHAR})?\."
    rf"(?:[a-z]{{2,63}}{_TLD_END}|xn--[\-0-9a-z]+{_TLD_END}|[^\x00-\x7F\W\d_]{{2,}}))"
    rf"{_PORT}{_PATH}{_QUERY})",
    regex.IGNORECASE,
)
_TLDS = sorted(_GTLDS + _CCTLDS, key=len, reverse=True)
_ASCII_LABEL = r"[\-a-z0-9" + _LATIN_ACCENTS + "]+"
_X_BARE_RE = regex.compile(
    rf"(?<![A-Za-z0-9@＠$#＃\-_./{_INVALID}])"
    rf"(?P<url>(?P<domain>(?:{_ASCII_LABEL}\.)+(?:{'|'.join(_TLDS)}|xn--[\-0-9a-z]+){_TLD_END})"
    rf"{_PORT}{_PATH}{_QUERY})",
    regex.IGNORECASE,
)
_SHORT_DOMAIN_RE = regex.compile(rf"^{_ASCII_LABEL}\.(?P<tld>{'|'.join(_CCTLDS)})$", regex.IGNORECASE)
_MAX_LABEL = 63
_MAX_URL = 4096


def _idna_ok(domain: str) -> bool:
    """twitter-text's check: every label, punycode-encoded, is 1..63 characters long."""
    for label in domain.split("."):
        if label.isascii():
            encoded_len = len(label)
        else:
            try:
                encoded_len = 4 + len(label.encode("punycode"))
            except UnicodeError:
                return False
        if not 1 <= encoded_len <= _MAX_LABEL:
            return False
    return True


def find_x_urls(text: str) -> list[Span]:
    """Spans of what twitter-text counts as a URL (23 weighted characters each on X).

    Explicit ``http(s)://`` URLs, plus bare ASCII domains on a known TLD such as ``example.com`` or
    ``www.example.cn/path``.  As in twitter-text, a bare *single label* on a country TLD without a path
    (``foo.cn``, ``setup.py``) is not a URL, except on ``.co`` and ``.tv`` (``t.co``); a bare domain
    right after ``- _ . /`` or an ASCII letter/digit is not one either (file paths, e-mail addresses).
    Paths end on twitter-text's path-ending characters, so ``https://a.com/x.`` excludes the full stop
    and CJK text after a URL is not part of it.
    """
    spans: list[Span] = []
    for m in _X_EXPLICIT_RE.finditer(text):
        if _idna_ok(m.group("domain")) and len(m.group("url")) <= _MAX_URL:
            spans.append(m.span("url"))
    taken = _Spans(spans)
    for m in _X_BARE_RE.finditer(text):
        start, end = m.span("url")
        if taken.overlaps(start, end) or not _idna_ok(m.group("domain")):
            continue
        short = _SHORT_DOMAIN_RE.match(m.group("domain"))
        if short and not m.group("path") and short.group("tld").lower() not in _SPECIAL_SHORT_CCTLDS:
            continue
        spans.append((start, end))
    return sorted(spans)


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
