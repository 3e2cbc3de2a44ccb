"""Telegram channel or group posts through the Bot API (``{api_base}/bot{TOKEN}/{method}``).

Set-up: talk to @BotFather → /newbot; keep the token ``123456:ABC…`` as credential ``bot_token``
(``env:`` or ``file:``). Add the bot to the channel as an administrator allowed to post (or to the group
as a member). Set option ``chat_id`` to ``"@channelusername"`` or the numeric id (``-100…`` for
channels/supergroups; forward a channel post to @getidsbot, or call getUpdates, to find it). For a
numeric id of a public channel set ``public_username`` so receipts carry a ``t.me`` link.

Quirks:
- The token travels in the URL path, so every message is redacted (``/bot<token>`` is masked by
  ``sharer.redact`` even when the value is unknown). Tokens never expire: a 401 means revoked or mistyped.
- ``parse_mode=HTML`` (rendering in ``_telegram_html``: the allowed tags, escaping, paragraph fitting).
- Limits count what the reader sees (after entity parsing) in UTF-16 units: 4096 for a text message,
  1024 for a photo caption.
- A group upgraded to a supergroup answers 400 with ``parameters.migrate_to_chat_id``: the call is
  retried once on the new id and the receipt tells the editor to update ``chat_id``.
- No idempotency and bots cannot read channel history: ``find_existing`` cannot tell (Ambiguous).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, choose_images, render_template, tag_url
from ..errors import Ambiguous, ComposeError, PermanentError, TransientError
from ..media import fetch_image, rewrite
from ..text import count_utf16, trim
from ._telegram_html import Block, body_blocks, escape_attr, escape_text, fill, html_problem, visible, visible_len
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

__all__ = ["Telegram", "TelegramOptions", "html_problem", "visible", "visible_len"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ALBUM_LIMIT = 10  # sendMediaGroup takes 2–10 items
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
_USERNAME_RE = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")

# Telegram's answers. Tokens never expire, so a 401 is a wrong or revoked token: re-authorising will
# not come from a refresh. Its 5xx (502/504 too) come from the Bot API server itself, before the
# message is sent: plainly transient.
ERRORS = ErrorTable(
    statuses={
        401: Rule(PermanentError),  # with its account-specific hint from _error
    },
    gateway=TransientError,
    rate_limit_default=30.0,
)


def _count_markup(markup: str) -> int:
    """What Telegram counts: the UTF-16 units the reader sees."""
    return count_utf16(visible(markup))


@dataclass(frozen=True)
class TelegramOptions(Options):
    chat_id: int | str | None = None   # required: "@channelusername" or a numeric id (int)
    public_username: str = ""          # for t.me links when chat_id is numeric
    disable_notification: bool = False
    link_preview: bool = True
    photo: bool = True                 # send the article image with a caption (sendPhoto)
    images: int = 1                    # up to this many: 2+ images go as an album (sendMediaGroup, max 10)
    upload_photo: bool = False         # download the image and upload it instead of passing its URL
    include_body: bool = False         # {summary} expands to the summary followed by the article body
    max_photo_bytes: int = 10_000_000  # upload limit, unverified: configurable

    def check(self) -> TelegramOptions:
        chat = self.chat_id
        if isinstance(chat, str) and re.fullmatch(r"-?\d+", chat):
            chat = int(chat)
        if chat is None:
            raise OptionError("chat_id", 'is required ("@channelusername" or the numeric chat id)')
        if isinstance(chat, str) and not _USERNAME_RE.match(chat):
            raise OptionError("chat_id", f'must be "@channelusername" or a numeric id, got {chat!r}')
        if not 1 <= self.images <= ALBUM_LIMIT:
            raise OptionError("images", f"must be 1 to {ALBUM_LIMIT}, got {self.images}")
        name = self.public_username.lstrip("@")
        if name and not _USERNAME_RE.match("@" + name):
            raise OptionError("public_username", f"not a Telegram username: {self.public_username!r}")
        return self.normalised(chat_id=chat, public_username=name)


# --- the platform ----------------------------------------------------------------------------------

class _Migrated(Exception):
    def __init__(self, new_chat_id: int):
        super().__init__(new_chat_id)
        self.new_chat_id = new_chat_id


class Telegram(Platform[TelegramOptions]):
    spec = PlatformSpec(
        id="telegram", title="Telegram", api_base="https://api.telegram.org",
        limits=Limits(TEXT_LIMIT, "UTF-16 units", _count_markup, media=ALBUM_LIMIT, media_bytes=10_000_000,
                      media_types=PHOTO_TYPES),
        options=TelegramOptions,
        credentials=Credentials(required=("bot_token",)),
        template="<b>{title}</b>\n\n{summary}\n\n{url}",
        rate_limit=RateLimit(20, 60.0),  # Bot FAQ: ≤20 messages/min per group
        sandbox=Sandbox("sharer.sandbox.telegram:TelegramEmulator", 8904),
        demo=(Demo(options={"chat_id": "@sharer_news"}),),
    )

    # --- compose (pure) ---------------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        attached, offered = choose_images(article, self.options.images if self.options.photo else 0, ALBUM_LIMIT)
        photo = attached[0].url if attached else None
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
                                   "chat_id": self.options.chat_id}
        if len(attached) > 1:  # an album: the caption rides on the first photo
            payload["method"] = "sendMediaGroup"
            first = {"caption": markup, "parse_mode": "HTML"}
            payload["media"] = [{"type": "photo", "media": i.url, **(first if n == 0 else {})}
                                for n, i in enumerate(attached)]
        elif photo:
            payload.update({"photo": photo, "caption": markup, "parse_mode": "HTML"})
        else:
            payload.update({"text": markup, "parse_mode": "HTML",
                            "link_preview_options": {"is_disabled": not self.options.link_preview}})
        if photo and self.options.upload_photo:
            payload["upload_photo"] = True  # not a wire field: publish uploads the image(s)
        payload["disable_notification"] = self.options.disable_notification
        return Post(self.id, self.account.name, markup, payload, length, limit, self.unit, tuple(warnings),
                    tuple(i.url for i in attached), offered)

    def _render(self, article: Article, url: str, limit: int, warnings: list[str]) -> str:
        values = {k: escape_attr(v) for k, v in article_values(article, url).items()}
        # a title too long for the message is trimmed to fit (as every platform does), never refused
        room = limit - visible_len(render_template(self.template, {**values, "title": "", "summary": ""}))
        if room > 0 and count_utf16(article.title) > room:
            values["title"] = escape_attr(trim(article.title, room, count=count_utf16).text)
            warnings.append(f"title trimmed to fit {limit} {self.unit}")
        blocks = [Block(escape_text(article.summary), article.summary)] if article.summary else []
        if self.options.include_body:
            blocks += body_blocks(article.body_html)
        out, notes = fill(self.template, values, blocks, limit)
        warnings.extend(notes)
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
        files: dict[str, Any] = {}
        into = files if upload else None
        if method == "sendPhoto":
            fields["photo"] = self._photo(ctx, fields["photo"], "photo", into)
            if upload:
                del fields["photo"]  # the upload is the multipart part named "photo"
        elif method == "sendMediaGroup":
            fields["media"] = [{**item, "media": self._photo(ctx, item["media"], f"photo{n}", into)}
                               for n, item in enumerate(fields["media"])]
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

    def _photo(self, ctx: DeliveryContext, url: str, name: str, files: dict[str, Any] | None) -> str:
        """The photo as Telegram will take it: its URL (Telegram downloads it, as we would: the same
        [media] rewrite applies), or — when uploading — downloaded into ``files`` and named."""
        if files is None:
            return rewrite(url, ctx.media_rewrite)
        image = fetch_image(ctx, url, max_bytes=self.options.max_photo_bytes, allowed=PHOTO_TYPES)
        files[name] = (image.filename, image.data, image.content_type)
        ctx.step(f"image downloaded ({len(image.data)} bytes) for upload")
        return f"attach://{name}"

    def post_url(self, chat: dict[str, Any], message_id: Any, chat_id: int | str) -> tuple[str | None, str | None]:
        """``t.me`` link: public by username, ``t.me/c/…`` (members only) for private supergroups/channels."""
        username = self.options.public_username or chat.get("username")
        if not username and isinstance(chat_id, str) and chat_id.startswith("@"):
            username = chat_id[1:]
        if username:
            return f"https://t.me/{username}/{message_id}", None
        numeric = str(chat.get("id", chat_id))
        if numeric.startswith("-100"):
            return f"https://t.me/c/{numeric[4:]}/{message_id}", "private chat link: opens for members only"
        return None, "a basic group or private chat message has no link"

    def _call(self, ctx: DeliveryContext, method: str, fields: dict[str, Any],
              files: dict[str, Any] | None) -> dict[str, Any]:
        url = f"{self.account.api_base}/bot{self.account.secret('bot_token')}/{method}"
        if files:
            form = {k: json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v) for k, v in fields.items()}
            resp = send(ctx, "POST", url, data=form, files=files)
        else:
            resp = send(ctx, "POST", url, json=fields)
        data = json_body(resp)
        result = data.get("result")
        if isinstance(result, list) and result:  # an album answers each of its messages: the first leads
            result = result[0]
        if resp.status_code == 200 and data.get("ok") is True and isinstance(result, dict):
            return result
        raise self._error(ctx, method, resp, data)

    def _error(self, ctx: DeliveryContext, method: str, resp: Any, data: dict[str, Any]) -> Exception:
        status = resp.status_code
        params: dict[str, Any] = data["parameters"] if isinstance(data.get("parameters"), dict) else {}
        code = data.get("error_code") or status
        detail = ctx.redact(short(str(data.get("description") or resp.text or f"HTTP {status}")))
        message = f"Telegram {method} failed: {detail}"
        if params.get("migrate_to_chat_id") is not None:
            return _Migrated(int(params["migrate_to_chat_id"]))
        if status == 200:
            return Ambiguous(f"Telegram {method} answered HTTP 200 without a result: {detail}", status=200)
        if status == 401:
            message += (f" — the bot token for account {self.account.name!r} is wrong or was revoked (Telegram "
                        "tokens do not expire); fix credentials.bot_token")
        elif status == 403:
            message += f" — is the bot a member (an admin, for a channel) of chat {self.options.chat_id}?"
        retry = params.get("retry_after")  # else the Retry-After header, else 30 s
        wait = float(retry) if isinstance(retry, (int, float)) else None
        return ERRORS.for_response(resp, message, code=code, retry_after=wait)

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``getMe``: the bot token works (it cannot tell whether the bot may still post in the chat)."""
        me = self._call(ctx, "getMe", {}, None)
        return f"bot @{me.get('username', '?')}"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Bots cannot read a channel's history (no getHistory in the Bot API): we cannot tell."""
        raise Ambiguous("Telegram bots cannot read channel history, so an earlier post cannot be looked up")
