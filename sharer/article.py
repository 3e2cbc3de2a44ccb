"""The Article: what an editor shares. Typed, validated, body sanitised once at construction.

Loaders (json, md, html, txt, url) live in ``sharer.loaders``; this module has no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nh3

from .errors import ArticleError

# Tags and attributes an article body may keep. Everything else (script, style, iframe, forms,
# event handlers, javascript: URLs) is removed by the nh3 (ammonia) sanitiser.
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code",
    "strong", "b", "em", "i", "u", "s", "del", "ins", "sub", "sup", "mark", "small",
    "ul", "ol", "li", "dl", "dt", "dd", "a", "img", "figure", "figcaption",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "span", "div",
}
MAX_EXTRA_ARTICLES = 7  # WeChat: at most 8 articles in one draft / push

ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


# Field limits, the same for every way in (files, URLs, the compose form, the API: sharer.web.schemas).
MAX_TITLE = 10_000  # long titles are trimmed per platform (each has its own limit); this only stops abuse
MAX_URL = 4000
MAX_SUMMARY = 100_000  # a summary is a paragraph; this only stops abuse (platforms trim to their own limits)
MAX_BODY = 2_000_000  # characters of body HTML
MAX_AUTHOR = 200
MAX_TAGS = 50
MAX_TAG = 100
MAX_LANG = 35
MAX_HTML_DEPTH = 200  # elements open at once; real articles stay under 30, the sanitiser's cost grows with it

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)(?:\s[^>]*)?>")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# elements a parser closes by itself when the next one starts: they never nest
_SELF_CLOSING = {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
                 "colgroup", "rt", "rp"}


def check_nesting(html: str, source: str, field_name: str = "body_html") -> None:
    """Refuse HTML nested deeper than ``MAX_HTML_DEPTH`` before a parser or the sanitiser sees it."""
    depth = 0
    for m in _TAG.finditer(html):
        name = m.group(2).lower()
        if name in _VOID or name in _SELF_CLOSING or m.group(0).endswith("/>"):
            continue
        if m.group(1):
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > MAX_HTML_DEPTH:
            raise ArticleError(source, field_name, f"HTML is nested more than {MAX_HTML_DEPTH} elements deep")


def sanitize_html(html: str) -> str:
    """Return ``html`` with only safe tags/attributes; script and style contents are dropped."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        clean_content_tags={"script", "style"},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )


def check_http_url(value: str, source: str, field_name: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ArticleError(source, field_name, "is required")
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 literal)
        raise ArticleError(source, field_name, f"is not a valid URL: {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ArticleError(source, field_name, f"must be an http(s) URL, got {value!r}")
    if any(ord(c) <= 32 or ord(c) == 127 for c in value):
        raise ArticleError(source, field_name, "must not contain spaces or control characters (encode them)")
    return value


@dataclass(frozen=True)
class Article:
    """One article. ``body_html`` is always sanitised; ``published_at`` is timezone-aware."""

    title: str
    url: str
    summary: str = ""
    body_html: str = ""
    image: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    published_at: datetime | None = None
    lang: str | None = None
    source: str = "<article>"  # where it was loaded from; used in error messages only
    # further articles of a multi-article push (多图文: WeChat takes the lead and up to 7 more in one
    # draft); platforms that post one article use the lead (this one) only
    extra_articles: tuple[Article, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        src = self.source
        title = " ".join((self.title or "").split())
        if not title:
            raise ArticleError(src, "title", "is required")
        object.__setattr__(self, "title", title)
        self._check_sizes()
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "url", check_http_url(self.url, src, "url"))
        if self.image:
            object.__setattr__(self, "image", check_http_url(self.image, src, "image"))
        else:
            object.__setattr__(self, "image", None)
        if self.published_at is not None:
            if not isinstance(self.published_at, datetime):
                raise ArticleError(src, "published_at", "must be a date-time")
            if self.published_at.tzinfo is None or self.published_at.utcoffset() is None:
                raise ArticleError(src, "published_at", "must include a time zone offset")
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise ArticleError(src, "tags", "must be a list of strings")
        object.__setattr__(self, "tags", tuple(t.strip() for t in self.tags if t.strip()))
        object.__setattr__(self, "summary", " ".join((self.summary or "").split()))
        check_nesting(self.body_html or "", src)
        object.__setattr__(self, "body_html", sanitize_html(self.body_html or ""))
        extras = tuple(self.extra_articles or ())
        if len(extras) > MAX_EXTRA_ARTICLES:
            raise ArticleError(src, "extra_articles", f"at most {MAX_EXTRA_ARTICLES} besides the lead article "
                                                      f"(8 in one push), got {len(extras)}")
        if not all(isinstance(a, Article) and not a.extra_articles for a in extras):
            raise ArticleError(src, "extra_articles", "must be articles (without extra articles of their own)")
        object.__setattr__(self, "extra_articles", extras)

    def _check_sizes(self) -> None:
        for name, limit in (("title", MAX_TITLE), ("url", MAX_URL), ("summary", MAX_SUMMARY),
                            ("body_html", MAX_BODY), ("image", MAX_URL), ("author", MAX_AUTHOR),
                            ("lang", MAX_LANG)):
            value = getattr(self, name)
            if isinstance(value, str) and len(value) > limit:
                raise ArticleError(self.source, name, f"is {len(value):,} characters; at most {limit:,}")
            if isinstance(value, str) and "\x00" in value:
                raise ArticleError(self.source, name, "contains a NUL character")
        if not isinstance(self.tags, str) and len(self.tags) > MAX_TAGS:
            raise ArticleError(self.source, "tags", f"{len(self.tags)} tags; at most {MAX_TAGS}")
        for tag in self.tags if not isinstance(self.tags, str) else ():
            if isinstance(tag, str) and len(tag) > MAX_TAG:
                raise ArticleError(self.source, "tags", f"a tag is {len(tag):,} characters; at most {MAX_TAG}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, the one stored with a share and accepted back by ``from_dict``."""
        data = dataclasses.asdict(dataclasses.replace(self, extra_articles=())) if self.extra_articles else \
            dataclasses.asdict(self)
        data["tags"] = list(self.tags)
        data["published_at"] = self.published_at.isoformat() if self.published_at else None
        del data["extra_articles"]  # kept out of the stored form unless there are some
        if self.extra_articles:
            data["extra_articles"] = [a.to_dict() for a in self.extra_articles]
        return data

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Article:
        """Rebuild an article sharer itself stored with a share: validated again, but its body was
        sanitised when the share was made, so it is not run through the sanitiser a second time."""
        body = data.get("body_html") or ""
        extras = tuple(cls.from_stored(a) for a in data.get("extra_articles") or ())
        article = cls.from_dict({**data, "body_html": "", "extra_articles": []})
        object.__setattr__(article, "body_html", body)
        object.__setattr__(article, "extra_articles", extras)
        return article

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<article>") -> Article:
        """Build from a JSON object (the ``.json`` format). Unknown keys are an error."""
        if not isinstance(data, dict):
            raise ArticleError(source, "(document)", "must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)} | {"body"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArticleError(source, unknown[0], "is not an article field")
        values = dict(data)
        if "body" in values:  # accept "body" as an alias of "body_html"
            values.setdefault("body_html", values.pop("body"))
        for name in ("title", "url", "summary", "body_html", "author", "lang", "image"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise ArticleError(source, name, "must be a string")
        published = values.get("published_at")
        if isinstance(published, str) and published:
            try:
                values["published_at"] = datetime.fromisoformat(published)
            except ValueError:
                raise ArticleError(source, "published_at", f"is not an ISO 8601 date-time: {published!r}") from None
        elif published in ("", None):
            values["published_at"] = None
        tags = values.get("tags") or ()
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise ArticleError(source, "tags", "must be a list of strings")
        values["tags"] = tuple(str(t) if isinstance(t, (int, float)) else t for t in tags)
        values["source"] = values.get("source") or source
        extras = values.get("extra_articles") or []
        if not isinstance(extras, (list, tuple)):
            raise ArticleError(source, "extra_articles", "must be a list of articles")
        values["extra_articles"] = tuple(a if isinstance(a, Article) else
                                         cls.from_dict(a, f"{source} extra_articles[{i}]")
                                         for i, a in enumerate(extras))
        values.setdefault("title", "")  # missing required fields are reported by __post_init__
        values.setdefault("url", "")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
