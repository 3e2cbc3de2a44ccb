"""Telegram channel or group posts through the Bot API (``{api_base}/bot{TOKEN}/{method}``).

Set-up: talk to @BotFather → /newbot; keep the token ``123456:ABC…`` as credential ``bot_token``
(``env:`` or ``file:``). Add the bot to the channel as an administrator allowed to post (or to the group
as a member). Set option ``chat_id`` to ``"@channelusername"`` or the numeric id (``-100…`` for
channels/supergroups; forward a channel post to @getidsbot, or call getUpdates, to find it). For a
numeric id of a public channel set ``public_username`` so receipts carry a ``t.me`` link.

Quirks:
- The token travels in the URL path, so every message is redacted (``/bot<token>`` is masked by
  ``sharer.redact`` even when the value is unknown). Tokens never expire: a 401 means revoked or mistyped.
- ``parse_mode=HTML``: only b/strong, i/em, u/ins, s/strike/del, a href, code, pre, blockquote are kept;
  other body tags are unwrapped to their text, paragraphs become blank lines, ``<br>`` a newline,
  images are dropped; & < > are escaped outside tags (and " inside attribute values).
- Limits count what the reader sees (after entity parsing) in UTF-16 units: 4096 for a text message,
  1024 for a photo caption. Generated text is trimmed at paragraph level, then the first paragraph that
  does not fit is trimmed as plain text and re-escaped, so no tag or entity is ever cut.
- A group upgraded to a supergroup answers 400 with ``parameters.migrate_to_chat_id``: the call is
  retried once on the new id and the receipt tells the editor to update ``chat_id``.
- No idempotency and bots cannot read channel history: ``find_existing`` cannot tell (Ambiguous).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from bs4 import BeautifulSoup, NavigableString, Tag

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..errors import Ambiguous, ComposeError, PermanentError, RateLimited, TransientError
from ..media import fetch_image, rewrite
from ..text import count_utf16, trim
from .base import DeliveryContext, Platform, Post, Receipt, error_for_status, json_body, parse_retry_after, send, short

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
INLINE_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "a"})
ALLOWED_TAGS = INLINE_TAGS | {"pre", "blockquote"}
BLOCK_TAGS = frozenset({
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "figure",
    "figcaption", "table", "thead", "tbody", "tfoot", "tr", "caption", "hr", "pre", "blockquote",
})
MIN_PARTIAL = 24  # a trimmed last paragraph shorter than this is not worth showing
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*?)?)\s*/?>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")
_USERNAME_RE = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")
_SENTINEL = "\x00"


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


# --- the platform ----------------------------------------------------------------------------------

class _Migrated(Exception):
    def __init__(self, new_chat_id: int):
        super().__init__(new_chat_id)
        self.new_chat_id = new_chat_id


class Telegram(Platform):
    id = "telegram"
    title = "Telegram"
    default_api_base = "https://api.telegram.org"
    required_credentials = ("bot_token",)
    option_defaults: ClassVar[dict[str, Any]] = {
        "chat_id": None,             # required: "@channelusername" or a numeric id (int)
        "public_username": "",       # for t.me links when chat_id is numeric
        "disable_notification": False,
        "link_preview": True,
        "photo": True,               # send the article image with a caption (sendPhoto)
        "upload_photo": False,       # download the image and upload it instead of passing its URL
        "include_body": False,       # {summary} expands to the summary followed by the article body
        "max_photo_bytes": 10_000_000,  # upload limit, unverified: configurable
    }
    default_template = "<b>{title}</b>\n\n{summary}\n\n{url}"
    limit = TEXT_LIMIT
    unit = "UTF-16 units"
    sandbox_port = 8904
    rate_limit: ClassVar[tuple[int, float]] = (20, 60.0)  # Bot FAQ: ≤20 messages/min per group

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        out = super().validate_options(raw)
        chat = out["chat_id"]
        if isinstance(chat, str) and re.fullmatch(r"-?\d+", chat):
            out["chat_id"] = chat = int(chat)
        if chat is None:
            raise ValueError('chat_id: is required ("@channelusername" or the numeric chat id)')
        if isinstance(chat, bool) or not isinstance(chat, (int, str)) or (
                isinstance(chat, str) and not _USERNAME_RE.match(chat)):
            raise ValueError(f'chat_id: must be "@channelusername" or a numeric id, got {chat!r}')
        name = out["public_username"].lstrip("@")
        if name and not _USERNAME_RE.match("@" + name):
            raise ValueError(f"public_username: not a Telegram username: {out['public_username']!r}")
        out["public_username"] = name
        return out

    # --- compose (pure) ---------------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        photo = article.image if self.options["photo"] and article.image else None
        limit = CAPTION_LIMIT if photo else TEXT_LIMIT
        warnings: list[str] = []
        if text is not None:
            markup = text.strip()
            problem = html_problem(markup)
            if problem:
                raise ComposeError(self.account.name, f"the text is not valid Telegram HTML: {problem}")
            length = visible_len(markup)
            if photo and length > limit:
                raise ComposeError(self.account.name, f"the caption is {length} {self.unit} long; the limit for a "
                                   f"photo caption is {limit} (set options.photo = false for a text message)")
            self.check_override(visible(markup), length, limit)
        else:
            markup = self._render(article, url, limit, warnings)
            length = visible_len(markup)
        payload: dict[str, Any] = {"method": "sendPhoto" if photo else "sendMessage",
                                   "chat_id": self.options["chat_id"]}
        if photo:
            payload.update({"photo": photo, "caption": markup, "parse_mode": "HTML"})
            if self.options["upload_photo"]:
                payload["upload_photo"] = True  # not a wire field: publish uploads the image as "photo"
        else:
            payload.update({"text": markup, "parse_mode": "HTML",
                            "link_preview_options": {"is_disabled": not self.options["link_preview"]}})
        payload["disable_notification"] = self.options["disable_notification"]
        return Post(self.id, self.account.name, markup, payload, length, limit, self.unit, tuple(warnings))

    def _render(self, article: Article, url: str, limit: int, warnings: list[str]) -> str:
        values = {k: escape_attr(v) for k, v in article_values(article, url).items()}
        # a title too long for the message is trimmed to fit (as every platform does), never refused
        room = limit - visible_len(render_template(self.template, {**values, "title": "", "summary": ""}))
        if room > 0 and count_utf16(article.title) > room:
            values["title"] = escape_attr(trim(article.title, room, count=count_utf16).text)
            warnings.append(f"title trimmed to fit {limit} {self.unit}")
        blocks = [Block(escape_text(article.summary), article.summary)] if article.summary else []
        if self.options["include_body"]:
            blocks += body_blocks(article.body_html)
        skeleton = render_template(self.template, {**values, "summary": _SENTINEL if blocks else ""})
        pieces = skeleton.split(_SENTINEL)
        out = skeleton
        if len(pieces) > 1:
            budget = (limit - visible_len("".join(pieces))) // (len(pieces) - 1)
            middle, notes = fit_blocks(blocks, budget) if budget > 0 else ("", ["summary left out: no room"])
            warnings.extend(notes)
            out = middle.join(pieces) if middle else render_template(self.template, {**values, "summary": ""})
        problem = html_problem(out)
        if problem:
            raise ComposeError(self.account.name, f"the template gives invalid Telegram HTML: {problem}")
        if visible_len(out) > limit:
            raise ComposeError(self.account.name, f"the template without the summary is already "
                               f"{visible_len(out)} {self.unit} long; the limit is {limit}")
        return out

    # --- delivery ---------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        fields = dict(post.payload)
        method = fields.pop("method")
        upload = fields.pop("upload_photo", False)
        files = None
        if method == "sendPhoto":
            if upload:
                image = fetch_image(ctx, fields.pop("photo"), max_bytes=int(self.options["max_photo_bytes"]),
                                    allowed=PHOTO_TYPES)
                files = {"photo": (image.filename, image.data, image.content_type)}
                ctx.step(f"image downloaded ({len(image.data)} bytes) for upload")
            else:  # Telegram downloads it, as we would: the same [media] rewrite applies
                fields["photo"] = rewrite(fields["photo"], ctx.media_rewrite)
        notes = []
        try:
            result = self._call(ctx, method, fields, files)
        except _Migrated as m:
            old, fields["chat_id"] = fields["chat_id"], m.new_chat_id
            notice = f"group migrated to supergroup {m.new_chat_id}; update chat_id in config (was {old})"
            ctx.step(notice)
            notes.append(notice)
            try:
                result = self._call(ctx, method, fields, files)
            except _Migrated:
                raise PermanentError(f"chat {old} keeps answering that it moved; fix chat_id in config") from None
        message_id = result.get("message_id")
        if message_id is None:
            raise Ambiguous(ctx.redact(f"Telegram {method} answered ok without a message_id"), status=200)
        url, url_note = self.post_url(result.get("chat") or {}, message_id, fields["chat_id"])
        if url_note:
            notes.append(url_note)
        return Receipt(str(message_id), url, "; ".join(notes) or None)

    def post_url(self, chat: dict[str, Any], message_id: Any, chat_id: int | str) -> tuple[str | None, str | None]:
        """``t.me`` link: public by username, ``t.me/c/…`` (members only) for private supergroups/channels."""
        username = self.options["public_username"] or chat.get("username")
        if not username and isinstance(chat_id, str) and chat_id.startswith("@"):
            username = chat_id[1:]
        if username:
            return f"https://t.me/{username}/{message_id}", None
        numeric = str(chat.get("id", chat_id))
        if numeric.startswith("-100"):
            return f"https://t.me/c/{numeric[4:]}/{message_id}", "private chat link: opens for members only"
        return None, "a basic group or private chat message has no link"

    def _call(self, ctx: DeliveryContext, method: str, fields: dict[str, Any], files: dict | None) -> dict[str, Any]:
        url = f"{self.account.api_base}/bot{self.account.secret('bot_token')}/{method}"
        if files:
            form = {k: json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v) for k, v in fields.items()}
            resp = send(ctx, "POST", url, data=form, files=files)
        else:
            resp = send(ctx, "POST", url, json=fields)
        data = json_body(resp)
        if resp.status_code == 200 and data.get("ok") is True and isinstance(data.get("result"), dict):
            return data["result"]
        raise self._error(ctx, method, resp, data)

    def _error(self, ctx: DeliveryContext, method: str, resp: Any, data: dict[str, Any]) -> Exception:
        status = resp.status_code
        params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
        code = data.get("error_code") or status
        detail = ctx.redact(short(str(data.get("description") or resp.text or f"HTTP {status}")))
        message = f"Telegram {method} failed: {detail}"
        if params.get("migrate_to_chat_id") is not None:
            return _Migrated(int(params["migrate_to_chat_id"]))
        if status == 200:
            return Ambiguous(f"Telegram {method} answered HTTP 200 without a result: {detail}", status=200)
        if status == 429:
            retry = params.get("retry_after")
            wait = float(retry) if isinstance(retry, (int, float)) else parse_retry_after(
                resp.headers.get("Retry-After"), 30.0)
            return RateLimited(message, retry_after=wait, code=code, status=status)
        if status == 401:
            return PermanentError(f"{message} — the bot token for account {self.account.name!r} is wrong or was "
                                  "revoked (Telegram tokens do not expire); fix credentials.bot_token",
                                  code=code, status=status)
        if status == 403:
            return PermanentError(f"{message} — is the bot a member (an admin, for a channel) of chat "
                                  f"{self.options['chat_id']}?", code=code, status=status)
        if status in (400, 404):
            return PermanentError(message, code=code, status=status)
        if status >= 500:
            return TransientError(message, code=code, status=status)
        return error_for_status(resp, message, code=code)

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``getMe``: the bot token works (it cannot tell whether the bot may still post in the chat)."""
        me = self._call(ctx, "getMe", {}, None)
        return f"bot @{me.get('username', '?')}"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Bots cannot read a channel's history (no getHistory in the Bot API): we cannot tell."""
        raise Ambiguous("Telegram bots cannot read channel history, so an earlier post cannot be looked up")
