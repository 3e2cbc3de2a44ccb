"""Composition helpers every platform shares: per-account templates, campaign (UTM) tagging, and
``fit`` — one way to fill a template within a limit.

Pure: no I/O, no clock. A template is a ``str.format``-style string with named placeholders only.
"""

from __future__ import annotations

import copy
import html
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import regex

from .article import Article
from .text import Counter, trim

PLACEHOLDERS = ("title", "summary", "url", "tags", "hashtags", "author", "image", "lang")


def check_template(template: str) -> None:
    """Raise ValueError naming the first unknown or malformed placeholder."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError("must be a non-empty string")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ValueError(f"malformed template: {e}") from None
    for f in fields:
        if f not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{f}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill placeholders; blank lines left by empty fields are collapsed."""
    text = template.format_map({k: values.get(k, "") for k in PLACEHOLDERS})
    lines = text.splitlines()
    out: list[str] = []
    for line in lines:
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        out.append(line.rstrip())
    return "\n".join(out).strip()


def tag_url(url: str, utm: Mapping[str, str] | None) -> str:
    """Merge utm_* parameters into ``url``'s query (existing utm_* values are replaced), keep the fragment."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in utm]
    query.extend(utm.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def article_values(article: Article, url: str, hashtags: str = "") -> dict[str, str]:
    """The placeholder values for ``article`` with its (possibly tagged) ``url``."""
    return {
        "title": article.title,
        "summary": article.summary,
        "url": url,
        "tags": ", ".join(article.tags),
        "hashtags": hashtags,
        "author": article.author or "",
        "image": article.image or "",
        "lang": article.lang or "",
    }


def hashtag(tag: str) -> str | None:
    """``power battery`` → ``#PowerBattery``; None when the tag has symbols a hashtag cannot hold (C++)."""
    words = re.split(r"[\s\-_.·/]+", tag.strip())
    if not all(regex.fullmatch(r"[\w\p{M}]+", w) for w in words if w):
        return None
    body = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not body or body.isdigit():
        return None
    return "#" + body


# --- the article's images -----------------------------------------------------------------------

@dataclass(frozen=True)
class ArticleImage:
    url: str
    alt: str


class _ImgCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            a = dict(attrs)
            self.found.append(((a.get("src") or "").strip(), (a.get("alt") or "").strip()))


def article_images(article: Article, limit: int) -> tuple[ArticleImage, ...]:
    """The lead image, then the body's images (absolute http(s) URLs, each once), at most ``limit``.

    Alt text: the image's own, else the article title. Pure: the body is parsed, nothing fetched.
    """
    seen: set[str] = set()
    out: list[ArticleImage] = []
    collector = _ImgCollector()
    collector.feed(article.body_html or "")
    for url, alt in [(article.image or "", ""), *collector.found]:
        if len(out) >= limit:
            break
        if url and url not in seen and urlsplit(url).scheme in ("http", "https"):
            seen.add(url)
            out.append(ArticleImage(url, alt or article.title))
    return tuple(out)


def choose_images(article: Article, wanted: int, limit: int) -> tuple[tuple[ArticleImage, ...], tuple[str, ...]]:
    """(attached, offered): up to ``wanted`` images (the lead first), and the rest the platform could take.

    ``wanted == 1`` attaches the lead image only (none when the article has no lead image), so an
    account that does not ask for more images posts exactly as before.
    """
    pool = article_images(article, limit)
    has_lead = bool(pool) and pool[0].url == article.image
    take = 0 if wanted <= 0 else wanted if wanted > 1 else (1 if has_lead else 0)
    attached = pool[:take]
    return attached, tuple(i.url for i in pool[len(attached):])


# --- filling a template within a limit -----------------------------------------------------------

@dataclass(frozen=True)
class Fitted:
    """A filled template and what had to give way: ``cut`` fields were trimmed, ``dropped`` emptied."""

    text: str
    values: dict[str, str]
    length: int
    limit: int
    cut: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.length <= self.limit

    def changed(self, name: str) -> bool:
        return name in self.cut or name in self.dropped


def fit(template: str | Callable[[Mapping[str, str]], str], values: Mapping[str, str], *, count: Counter,
        limit: int, drop_order: Sequence[str], field_count: Counter | None = None) -> Fitted:
    """Fill ``template`` with ``values`` so that ``count(text) <= limit``.

    Fields named in ``drop_order`` give way in that order: each is trimmed grapheme-safe (an ellipsis
    marks the cut) just enough, and emptied when nothing of it fits; the others stay whole. A template
    may be a callable (values in, text out) when the text is more than a format string, e.g. a JSON
    body whose size is the limit. ``field_count`` measures one field alone (default ``count``). When
    even the emptied fields leave it too long, ``fits`` is False and the caller decides (refuse, or
    cut the whole).
    """
    render: Callable[[Mapping[str, str]], str] = (
        template if callable(template) else (lambda v: render_template(template, v)))
    own = field_count or count
    current = dict(values)
    text = render(current)
    cut: list[str] = []
    dropped: list[str] = []
    for name in drop_order:
        if count(text) <= limit:
            break
        if not current.get(name):
            continue
        others = dict(current)

        def size(s: str, name: str = name, others: dict[str, str] = others) -> int:
            return count(render({**others, name: s}))

        current[name] = _shrink(size, own, current[name], limit)
        (cut if current[name] else dropped).append(name)
        text = render(current)
    return Fitted(text, current, count(text), limit, tuple(cut), tuple(dropped))


def _shrink(size: Callable[[str], int], own: Counter, value: str, limit: int) -> str:
    """``value`` trimmed just enough that ``size(value) <= limit`` ("" if nothing fits).

    ``size`` measures the whole text around the value. The overhead is measured, not assumed
    (escaping or collapsed blank lines shift it a little), so the budget converges in a few rounds.
    """
    excess = size(value) - limit
    if excess <= 0:
        return value
    budget = own(value) - excess
    for _ in range(8):
        if budget <= 0:
            break
        candidate = trim(value, budget, count=own).text
        excess = size(candidate) - limit
        if excess <= 0:
            return candidate
        budget -= excess
    return ""


# --- an article without a summary ---------------------------------------------------------------

SUMMARY_FROM_BODY_CHARS = 200
_BLOCK = re.compile(r"</?(?:p|div|h[1-6]|li|ul|ol|blockquote|br|hr|tr|table|figure|figcaption|pre|dd|dt)\b[^>]*>",
                    re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def summary_from_body(body_html: str, limit: int = SUMMARY_FROM_BODY_CHARS) -> str:
    """The body's opening paragraphs as plain text, at most ``limit`` characters (cut at a sentence or
    word boundary): what an article without a summary is summarised by. The body is already sanitised."""
    from .text.trim import trim

    paragraphs = [" ".join(html.unescape(_TAG.sub("", chunk)).split()) for chunk in _BLOCK.split(body_html or "")]
    out = ""
    for para in filter(None, paragraphs):
        joined = f"{out} {para}".strip()
        if len(joined) > limit:
            return out or trim(para, limit).text
        out = joined
    return out


def with_summary(article: Article, warnings: list[str]) -> Article:
    """``article`` itself, or — when it has no summary — a copy summarised from its body (with a warning),
    so a platform whose post is the summary never sends an empty one."""
    if article.summary or not article.body_html:
        return article
    summary = summary_from_body(article.body_html)
    if not summary:
        return article
    filled = copy.copy(article)
    object.__setattr__(filled, "summary", summary)
    warnings.append("the article has no summary: the start of its body is used")
    return filled
