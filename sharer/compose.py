"""Composition helpers every platform shares: per-account templates and campaign (UTM) tagging.

Pure: no I/O, no clock. A template is a ``str.format``-style string with named placeholders only.
"""

from __future__ import annotations

import copy
import html
import re
import string
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .article import Article

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
