"""X's pure text: hashtags, the body as plain paragraphs (for a thread), the link post fitted to
the limit, and how a timeline post is recognised as one of ours. No I/O; ``x.py`` is the platform.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from typing import Any

import regex

from ..compose import fit, render_template
from ..text import count_x, find_urls

_NOT_X_TEXT = dict.fromkeys(map(ord, "\ufffe\ufeff\uffff"))  # X rejects posts holding these
_NOT_IN_HASHTAG = regex.compile(r"[^\p{L}\p{M}\p{Nd}_]")


def hashtag(tag: str) -> str | None:
    """``"power battery"`` -> ``#PowerBattery``; characters X does not allow are dropped; None if no letter."""
    words = [w for w in (_NOT_IN_HASHTAG.sub("", w) for w in tag.split()) if w]
    if len(words) > 1:
        words = [w[:1].upper() + w[1:] for w in words]
    body = "".join(words)
    return "#" + body if regex.search(r"\p{L}", body) else None


def hashtags(tags: Sequence[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        h = hashtag(tag)
        if h and h.casefold() not in {o.casefold() for o in out}:
            out.append(h)
    return out


class _Paragraphs(HTMLParser):
    """Plain-text paragraphs of a (sanitised) article body: block elements separate paragraphs."""

    BLOCKS = frozenset("p div li ul ol h1 h2 h3 h4 h5 h6 blockquote pre tr table figure figcaption dt dd hr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.out.append("\n\n" if tag in self.BLOCKS else " " if tag == "br" else "")

    def handle_endtag(self, tag: str) -> None:
        self.out.append("\n\n" if tag in self.BLOCKS else "")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def body_paragraphs(body_html: str) -> list[str]:
    parser = _Paragraphs()
    parser.feed(body_html or "")
    parser.close()
    return [p for p in (clean(" ".join(chunk.split())) for chunk in "".join(parser.out).split("\n\n")) if p]


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.translate(_NOT_X_TEXT))


def head_post(template: str, values: Mapping[str, str], tags: Sequence[str], limit: int) -> tuple[str, list[str], int]:
    """The link post: the template with the summary, then the title trimmed to fit (``fit``), then
    hashtags while they fit. Returns (text, notes, length without hashtags): a caller refuses a
    length over the limit (the template's fixed text alone is too long)."""
    def render(vals: Mapping[str, str], used: Sequence[str] = ()) -> str:
        return clean(render_template(template, {**vals, "hashtags": " ".join(used)}))

    drop = tuple(name for name in ("summary", "title") if "{" + name + "}" in template)
    fitted = fit(render, values, count=count_x, limit=limit, drop_order=drop)
    notes = [f"{name} trimmed to fit {limit} weighted characters" for name in drop if fitted.changed(name)]
    if not fitted.fits:
        return fitted.text, notes, fitted.length
    used: list[str] = []
    for tag in tags if "{hashtags}" in template else ():
        if count_x(render(fitted.values, [*used, tag])) > limit:
            notes.append(f"{len(tags) - len(used)} hashtag(s) left out for lack of room")
            break
        used.append(tag)
    return render(fitted.values, used), notes, fitted.length


def created(tweet: Any) -> float | None:
    at = getattr(tweet, "created_at", None)
    return at.timestamp() if at is not None else None


def bare(text: str) -> str:
    """A post's text as X keeps it, for comparison: entities decoded, NFC, no links, no whitespace."""
    text = unicodedata.normalize("NFC", html.unescape(text or ""))
    for start, end in reversed(find_urls(text)):
        text = text[:start] + text[end:]
    return "".join(text.split())


def is_part(tweet: Any, text: str, reply_to: str | None) -> bool:
    """Whether ``tweet`` is the part with ``text``: same text without links, our links among its
    ``expanded_url``s (when X lists them), and for part k+1 the reply to part k."""
    if reply_to is not None and not any(r.type == "replied_to" and str(r.id) == reply_to
                                        for r in tweet.referenced_tweets or []):
        return False
    if bare(tweet.text) != bare(text):
        return False
    entities = (tweet.entities or {}).get("urls")
    if not entities:
        return True
    links = {str(u.get("expanded_url") or "").rstrip("/") for u in entities}
    return all(text[s:e].rstrip("/") in links for s, e in find_urls(text))
