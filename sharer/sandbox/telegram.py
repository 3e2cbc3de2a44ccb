"""Telegram Bot API emulator: ``/bot<token>/<method>`` for sendMessage, sendPhoto, getMe and getChat.

Real shapes: ``{"ok":true,"result":Message}`` / ``{"ok":false,"error_code":N,"description":"…"}``
with ``parameters.retry_after`` (429) and ``parameters.migrate_to_chat_id`` (400). Parameters may come
as a query string, a form, JSON or multipart (a photo upload). The HTML parse_mode check is stricter
than Telegram on one point (a bare ``&`` is an error here) so that escaping bugs show up in tests.

Extra control endpoints (besides the base ones):
  GET  /_sandbox/images/<name>.jpg|png   a small valid image (for photo URLs and uploads)
  POST /_sandbox/chats    {"id", "type", "username", "title", "member", "migrate_to_chat_id"}: add a chat
  POST /_sandbox/config   {"min_interval": seconds between messages per chat (0 = off)}
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from .server import JSON, Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-bot_token"  # what "sandbox:" resolves to for the credential "bot_token"
BOT = {"id": 7000000001, "is_bot": True, "first_name": "Sharer Sandbox", "username": "sharer_sandbox_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
ALLOWED = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
           "tg-spoiler", "tg-emoji", "span"}
ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
PUBLIC_CHANNEL = -1001000000001
PRIVATE_SUPERGROUP = -1001000000002
NOT_MEMBER_CHANNEL = -1001000000003
MIGRATED_GROUP = -400000001
MIGRATED_TO = -1004000000001


def _default_chats() -> dict[int, JSON]:
    return {
        PUBLIC_CHANNEL: {"id": PUBLIC_CHANNEL, "type": "channel", "title": "Sharer News", "username": "sharer_news"},
        PRIVATE_SUPERGROUP: {"id": PRIVATE_SUPERGROUP, "type": "supergroup", "title": "Newsroom (private)"},
        NOT_MEMBER_CHANNEL: {"id": NOT_MEMBER_CHANNEL, "type": "channel", "title": "Elsewhere",
                             "username": "sharer_elsewhere", "member": False},
        MIGRATED_GROUP: {"id": MIGRATED_GROUP, "type": "group", "title": "Old group",
                         "migrate_to_chat_id": MIGRATED_TO},
        MIGRATED_TO: {"id": MIGRATED_TO, "type": "supergroup", "title": "Old group"},
    }


def parse_html_text(text: str) -> str:
    """Telegram's HTML parse_mode: the visible text, or ValueError with Telegram's wording."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        offset = len(text[:i].encode("utf-8"))
        if ch == "<":
            end = text.find(">", i)
            if end < 0:
                raise ValueError(f"Unclosed start tag at byte offset {offset}")
            inner = text[i + 1:end].strip()
            closing = inner.startswith("/")
            name = (inner[1:] if closing else inner).split()[0].lower() if inner.strip("/") else ""
            if closing:
                if not stack:
                    raise ValueError(f"Unexpected end tag at byte offset {offset}")
                if stack[-1] != name:
                    raise ValueError(f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1]}>", '
                                     f'found "</{name}>"')
                stack.pop()
            else:
                if name not in ALLOWED:
                    raise ValueError(f'Unsupported start tag "{name}" at byte offset {offset}')
                stack.append(name)
            i = end + 1
        elif ch == "&":
            m = re.match(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);", text[i:])
            if not m or (not m.group(1).startswith("#") and m.group(1) not in ENTITIES):
                raise ValueError(f"Character entity expected at byte offset {offset}")
            out.append(html.unescape(m.group()))
            i += m.end()
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramEmulator(Emulator):
    platform = "telegram"

    def reset_state(self) -> None:
        self.token = SANDBOX_TOKEN
        self.chats = _default_chats()
        self.message_ids: dict[int, itertools.count] = {}
        self.min_interval = 0.0
        self.last_sent: dict[int, float] = {}
        self.revocations = itertools.count(1)

    def expire_tokens(self) -> None:
        """Telegram tokens do not expire, but /revoke in @BotFather kills the current one."""
        self.token = f"{SANDBOX_TOKEN}-revoked-{next(self.revocations)}"

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 500)
        params = None
        if code == 429:
            wait = int(spec.get("retry_after", 5))
            description, params = f"Too Many Requests: retry after {wait}", {"retry_after": wait}
        else:
            description = spec.get("description") or {
                400: "Bad Request: chat not found", 401: "Unauthorized",
                403: "Forbidden: bot is not a member of the channel chat", 404: "Not Found",
                502: "Bad Gateway"}.get(code, "Internal Server Error")
        return self._fail(code, description, params)

    # --- control ---------------------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        if req.method == "POST" and req.path == "/_sandbox/chats":
            chat = req.json()
            with self.lock:
                self.chats[int(chat["id"])] = {k: v for k, v in chat.items() if v is not None}
            return Response(200, {"ok": True})
        if req.method == "POST" and req.path == "/_sandbox/config":
            spec = req.json()
            with self.lock:
                self.min_interval = float(spec.get("min_interval", self.min_interval))
            return Response(200, {"ok": True})
        return super().control(req)

    # --- the Bot API -----------------------------------------------------------------------------

    @route("*", r"/bot(?P<token>[^/]*)/(?P<method>[A-Za-z]+)")
    def api(self, req: Request) -> Response:
        if req.params["token"] != self.token:
            return self._fail(401, "Unauthorized")
        try:
            args = self._args(req)
        except ValueError:
            return self._fail(400, "Bad Request: can't parse JSON")
        handler = {"getme": self.get_me, "getchat": self.get_chat, "sendmessage": self.send_message,
                   "sendphoto": self.send_photo, "sendmediagroup": self.send_media_group}.get(
                       req.params["method"].lower())
        if handler is None:
            return self._fail(404, "Not Found")
        return handler(req, args)

    def get_me(self, req: Request, args: JSON) -> Response:
        return self._ok(BOT)

    def get_chat(self, req: Request, args: JSON) -> Response:
        chat = self._chat(args.get("chat_id"))
        if isinstance(chat, Response):
            return chat
        return self._ok(self._public(chat))

    def send_message(self, req: Request, args: JSON) -> Response:
        text = args.get("text")
        if not text or not str(text).strip():
            return self._fail(400, "Bad Request: message text is empty")
        return self._send(req, args, "text", str(text), 4096, "message is too long")

    def send_photo(self, req: Request, args: JSON) -> Response:
        photo = req.files().get("photo")
        if photo is not None:
            data = photo[2]
        elif isinstance(args.get("photo"), str) and args["photo"]:
            downloaded = self._download(args["photo"])
            if isinstance(downloaded, Response):
                return downloaded
            data = downloaded
        else:
            return self._fail(400, "Bad Request: there is no photo in the request")
        if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")
                or data[8:12] == b"WEBP" or data == b""):
            return self._fail(400, "Bad Request: IMAGE_PROCESS_FAILED")
        extra = {"photo": [{"file_id": f"AgAC-sandbox-{len(data)}", "file_unique_id": f"sb{len(data)}",
                            "file_size": len(data), "width": 64, "height": 36}],
                 "photo_source": "upload" if photo is not None else args["photo"]}
        return self._send(req, args, "caption", str(args.get("caption") or ""), 1024,
                          "message caption is too long", extra)

    def send_media_group(self, req: Request, args: JSON) -> Response:
        """2–10 photos as one album; the caption is the first item's. Answers every message made."""
        items = args.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            return self._fail(400, "Bad Request: wrong number of media in the album: must be 2-10")
        files, sources, sizes = req.files(), [], []
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "photo" or not isinstance(item.get("media"), str):
                return self._fail(400, "Bad Request: can't parse InputMedia: media type must be photo here")
            ref = item["media"]
            if ref.startswith("attach://"):
                part = files.get(ref.removeprefix("attach://"))
                if part is None:
                    return self._fail(400, f"Bad Request: file {ref} not found in the request")
                data, source = part[2], "upload"
            else:
                downloaded = self._download(ref)
                if isinstance(downloaded, Response):
                    return downloaded
                data, source = downloaded, ref
            if data and not (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or data[8:12] == b"WEBP"):
                return self._fail(400, "Bad Request: IMAGE_PROCESS_FAILED")
            sources.append(source)
            sizes.append(len(data))
        first = items[0]
        extra = {"photo_source": sources, "media_group_id": f"sb{int(time.time() * 1000)}",
                 "photo": [{"file_id": f"AgAC-sandbox-{sizes[0]}", "file_unique_id": f"sb{sizes[0]}",
                            "file_size": sizes[0], "width": 64, "height": 36}]}
        resp = self._send(req, {**args, "parse_mode": first.get("parse_mode")}, "caption",
                          str(first.get("caption") or ""), 1024, "message caption is too long", extra)
        if resp.status != 200:
            return resp
        head = resp.body["result"]
        with self.lock:  # the album's other photos are messages of their own
            counter = self.message_ids[head["chat"]["id"]]
            rest = [{**{k: v for k, v in head.items() if k != "caption"}, "message_id": next(counter)}
                    for _ in items[1:]]
        return self._ok([head, *rest])

    # --- helpers ---------------------------------------------------------------------------------

    def _send(self, req: Request, args: JSON, field: str, raw: str, limit: int, too_long: str,
              extra: JSON | None = None) -> Response:
        chat = self._chat(args.get("chat_id"))
        if isinstance(chat, Response):
            return chat
        if chat.get("migrate_to_chat_id"):
            return self._fail(400, "Bad Request: group chat was upgraded to a supergroup chat",
                              {"migrate_to_chat_id": chat["migrate_to_chat_id"]})
        if chat.get("member") is False:
            kind = "channel chat" if chat["type"] == "channel" else "group chat"
            return self._fail(403, f"Forbidden: bot is not a member of the {kind}")
        mode = str(args.get("parse_mode") or "")
        try:
            shown = parse_html_text(raw) if mode.upper() == "HTML" else raw
        except ValueError as e:
            return self._fail(400, f"Bad Request: can't parse entities: {e}")
        shown = shown.strip()
        if utf16_len(shown) > limit:
            return self._fail(400, f"Bad Request: {too_long}")
        with self.lock:
            now = time.time()
            last = self.last_sent.get(chat["id"])
            if self.min_interval and last is not None and now - last < self.min_interval:
                wait = max(1, math.ceil(self.min_interval - (now - last)))
                return self._fail(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            self.last_sent[chat["id"]] = now
            counter = self.message_ids.setdefault(chat["id"], itertools.count(1))
            message_id = next(counter)
            message: JSON = {"message_id": message_id, "chat": self._public(chat), "date": int(now)}
            if shown:
                message[field] = shown
            if extra:
                message.update({k: v for k, v in extra.items() if k != "photo_source"})
            self.record_post({
                "id": f"{chat['id']}/{message_id}", "method": req.params["method"], "chat_id": chat["id"],
                "message_id": message_id, "raw": raw, "parse_mode": mode or None, field: shown,
                "disable_notification": _flag(args.get("disable_notification")),
                "link_preview_options": args.get("link_preview_options"),
                **({"photo_source": extra["photo_source"]} if extra else {}),
                **({"media_group_id": extra["media_group_id"]} if extra and "media_group_id" in extra else {}),
            })
        return self._ok(message)

    def _args(self, req: Request) -> JSON:
        ctype = req.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            data = req.json()
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        args: JSON = dict(req.query)
        args.update(req.form())
        for key in ("link_preview_options", "reply_parameters", "reply_markup", "media"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _chat(self, chat_id: Any) -> JSON | Response:
        with self.lock:
            if isinstance(chat_id, str) and chat_id.startswith("@"):
                for chat in self.chats.values():
                    if str(chat.get("username", "")).lower() == chat_id[1:].lower():
                        return chat
            else:
                try:
                    found = self.chats.get(int(chat_id))
                except (TypeError, ValueError):
                    found = None
                if found:
                    return found
        if chat_id in (None, ""):
            return self._fail(400, "Bad Request: chat_id is empty")
        return self._fail(400, "Bad Request: chat not found")

    def _download(self, url: str) -> bytes | Response:
        """Telegram fetches photo URLs itself; the sandbox only follows loopback ones (no internet)."""
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme not in ("http", "https"):
            return self._fail(400, "Bad Request: wrong remote file identifier specified: Wrong character in "
                                   "the string")
        if host not in ("127.0.0.1", "localhost", "::1"):
            return b""  # accepted unseen
        try:
            resp = requests.get(url, timeout=5)
        except requests.RequestException:
            return self._fail(400, "Bad Request: failed to get HTTP URL content")
        if resp.status_code != 200:
            return self._fail(400, "Bad Request: failed to get HTTP URL content")
        if not resp.headers.get("Content-Type", "").startswith("image/"):
            return self._fail(400, "Bad Request: wrong type of the web page content")
        return resp.content

    @staticmethod
    def _public(chat: JSON) -> JSON:
        return {k: chat[k] for k in ("id", "title", "username", "type") if k in chat}

    @staticmethod
    def _ok(result: Any) -> Response:
        return Response(200, {"ok": True, "result": result})

    @staticmethod
    def _fail(code: int, description: str, parameters: JSON | None = None) -> Response:
        body: JSON = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return Response(code, body)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
