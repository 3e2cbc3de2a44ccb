"""Article and template → Telegram HTML (``parse_mode=HTML``). Pure: no I/O.

Only b/strong, i/em, u/ins, s/strike/del, a href, code, pre, blockquote survive; other body tags are
unwrapped to their text, paragraphs become blank lines, ``<br>`` a newline, images are dropped; & < >
are escaped outside tags (and " inside attribute values). Lengths count what the reader sees (after
entity parsing) in UTF-16 units. Text is fitted at paragraph level, then the first paragraph that does
not fit is trimmed as plain text and re-escaped, so no tag or entity is ever cut.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag

from ..text import count_utf16, trim

INLINE_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "a"})
ALLOWED_TAGS = INLINE_TAGS | {"pre", "blockquote"}
BLOCK_TAGS = frozenset({
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "figure",
    "figcaption", "table", "thead", "tbody", "tfoot", "tr", "caption", "hr", "pre", "blockquote",
})
MIN_PARTIAL = 24  # a trimmed last paragraph shorter than this is not worth showing
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*?)?)\s*/?>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")


def escape_text(text: str) -> str:
    """Text outside tags: & < > become entities (all Telegram needs)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """A value that may land in an attribute too: also " → &quot; (valid in text as well)."""
    return escape_text(text).replace('"', "&quot;")


def visible(markup: str) -> str:
    """What the reader sees once Telegram has parsed the entities: tags gone, entities decoded."""
    return html.unescape(_TAG_RE.sub("", markup))


def visible_len(markup: str) -> int:
    return count_utf16(visible(markup))


def html_problem(markup: str) -> str | None:
    """Why Telegram would answer "can't parse entities" (unknown tag, unbalanced tags, bare &)."""
    stack: list[str] = []
    pos = 0
    while pos < len(markup):
        ch = markup[pos]
        if ch == "<":
            m = _TAG_RE.match(markup, pos)
            if not m:
                return f"a bare '<' at character {pos} (write &lt;)"
            closing, name = m.group(1), m.group(2).lower()
            if name not in ALLOWED_TAGS:
                return f"unsupported tag <{name}>"
            if closing:
                if not stack or stack[-1] != name:
                    return f"unbalanced </{name}>"
                stack.pop()
            else:
                stack.append(name)
            pos = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(markup, pos)
            if not m:
                return f"a bare '&' at character {pos} (write &amp;)"
            pos = m.end()
        elif ch == ">":
            return f"a bare '>' at character {pos} (write &gt;)"
        else:
            pos += 1
    return f"<{stack[-1]}> is never closed" if stack else None


# --- article body → Telegram HTML blocks -----------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """One paragraph: balanced Telegram HTML and the text a reader sees (what counts)."""

    markup: str
    text: str
    kind: str = "p"  # "li" blocks follow each other with one newline, others with a blank line


class _Body:
    """Walks sanitised article HTML and collects blocks; unknown tags are unwrapped to their text."""

    def __init__(self, in_quote: bool = False):
        self.blocks: list[Block] = []
        self.line: list[tuple[str, str]] = []  # ("text", s) | ("br", "\n") | ("tag", markup)
        self.kind = "p"
        self.in_quote = in_quote

    def flush(self) -> None:
        parts: list[tuple[str, str]] = []
        after_space = True
        for kind, value in self.line:
            if kind == "br":
                _rstrip_parts(parts)
                if any(k == "text" and v for k, v in parts):
                    parts.append(("text", "\n"))
                after_space = True
            elif kind == "text":
                value = value.lstrip(" ") if after_space else value
                if value:
                    parts.append(("text", value))
                    after_space = value.endswith((" ", "\n"))
            else:
                parts.append((kind, value))
        _rstrip_parts(parts)
        text = "".join(v for k, v in parts if k == "text")
        markup = "".join(escape_text(v) if k == "text" else v for k, v in parts)
        markup = _drop_empty_tags(markup)
        if text.strip():
            self.blocks.append(Block(markup, text, self.kind))
        self.line, self.kind = [], "p"

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not comments, CDATA, doctype
                    self.line.append(("text", re.sub(r"\s+", " ", str(child))))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name == "br":
                self.line.append(("br", "\n"))
            elif name in ("img", "script", "style"):
                continue
            elif name == "pre":
                self.flush()
                text = child.get_text().strip("\n")
                if text.strip():
                    self.blocks.append(Block(f"<pre>{escape_text(text)}</pre>", text))
            elif name == "blockquote" and not self.in_quote:
                self.flush()
                inner = _Body(in_quote=True)
                inner.walk(child)
                inner.flush()
                if inner.blocks:
                    text = "\n".join(b.text for b in inner.blocks)
                    markup = "\n".join(b.markup for b in inner.blocks)
                    self.blocks.append(Block(f"<blockquote>{markup}</blockquote>", text))
            elif name in BLOCK_TAGS:
                self.flush()
                if name == "li":
                    self.kind = "li"
                    self.line.append(("text", "• "))
                self.walk(child)
                self.flush()
            elif name in INLINE_TAGS and not child.find(list(BLOCK_TAGS | {"br"})):
                open_tag = _open_tag(name, child)
                if open_tag is None:
                    self.walk(child)
                    continue
                self.line.append(("tag", open_tag))
                self.walk(child)
                self.line.append(("tag", f"</{name}>"))
            else:  # span, sub, sup, mark, td…: keep the text only
                self.walk(child)
                if name in ("td", "th", "dt"):
                    self.line.append(("text", " "))


def _open_tag(name: str, node: Tag) -> str | None:
    if name != "a":
        return f"<{name}>"
    href = str(node.get("href") or "")
    if not re.match(r"(?i)(https?|mailto):", href):
        return None  # a link without a usable target keeps its text
    return f'<a href="{escape_attr(href)}">'


def _rstrip_parts(parts: list[tuple[str, str]]) -> None:
    """Remove trailing spaces/newlines from the text at the end (possibly inside closing tags)."""
    for i in range(len(parts) - 1, -1, -1):
        kind, value = parts[i]
        if kind != "text":
            if value.startswith("</"):
                continue
            return
        stripped = value.rstrip(" \n")
        parts[i] = (kind, stripped)
        if stripped:
            return


def _drop_empty_tags(markup: str) -> str:
    pattern = re.compile(r"<([a-z]+)(?: [^<>]*)?></\1>")
    while True:
        reduced = pattern.sub("", markup)
        if reduced == markup:
            return markup
        markup = reduced


def body_blocks(body_html: str) -> list[Block]:
    """The article body as Telegram HTML paragraphs."""
    walker = _Body()
    walker.walk(BeautifulSoup(body_html or "", "html.parser"))
    walker.flush()
    return walker.blocks


def fit_blocks(blocks: list[Block], budget: int) -> tuple[str, list[str]]:
    """Whole blocks while they fit ``budget`` (UTF-16 units), then the next one trimmed as plain text."""
    out: list[str] = []
    used, prev, notes = 0, None, []
    for i, block in enumerate(blocks):
        sep = "" if prev is None else ("\n" if prev.kind == block.kind == "li" else "\n\n")
        need = count_utf16(sep) + count_utf16(block.text)
        if used + need <= budget:
            out.append(sep + block.markup)
            used += need
            prev = block
            continue
        room = budget - used - count_utf16(sep)
        if room >= MIN_PARTIAL or (prev is None and room > 0):
            cut = trim(block.text, room, count=count_utf16).text
            if cut:
                out.append(sep + escape_text(cut))
        notes.append(f"text trimmed to fit: {i} of {len(blocks)} paragraphs (summary and body) kept whole")
        break
    return "".join(out), notes


_SENTINEL = "\x00"


def fill(template: str, values: dict[str, str], blocks: list[Block], limit: int) -> tuple[str, list[str]]:
    """The template (values already escaped) with ``{summary}`` expanded to as many ``blocks`` as fit.

    Every ``{summary}`` gets an equal share of what the fixed parts leave; returns the markup and
    notes on what was trimmed. The caller checks the result is valid and within ``limit``.
    """
    from ..compose import render_template

    skeleton = render_template(template, {**values, "summary": _SENTINEL if blocks else ""})
    pieces = skeleton.split(_SENTINEL)
    if len(pieces) == 1:
        return skeleton, []
    budget = (limit - visible_len("".join(pieces))) // (len(pieces) - 1)
    middle, notes = fit_blocks(blocks, budget) if budget > 0 else ("", ["summary left out: no room"])
    if not middle:
        return render_template(template, {**values, "summary": ""}), notes
    return middle.join(pieces), notes
