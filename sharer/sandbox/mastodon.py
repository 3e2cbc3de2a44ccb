"""Mastodon emulator: instance info, statuses (with Idempotency-Key), media (202 then poll), accounts.

Errors are ``{"error": "…"}`` with Mastodon's status codes; every API answer carries
``X-RateLimit-Limit/Remaining/Reset`` (Reset is ISO-8601) and 429 ``{"error":"Too many requests"}``
once the window's budget is spent. The length check is written independently of ``sharer.text``
(grapheme clusters via ``\\X``, each URL = characters_reserved_per_url, ``@user@domain`` = ``@user``).

Extra control endpoints (besides the base ones):
  GET  /_sandbox/images/<name>.jpg|png   a small valid image
  POST /_sandbox/config   {"max_characters", "characters_reserved_per_url", "media_polls" (206 answers
                           before a media is ready), "rate_limit" (requests per window), "rate_window" (s)}
"""

from __future__ import annotations

import html
import itertools
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import regex

from .server import JSON, Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-access_token"  # what "sandbox:" resolves to for the credential "access_token"
USERNAME = "sharer"
ACCOUNT_ID = "109000000000000001"
VISIBILITIES = ("public", "unlisted", "private", "direct")
IDEMPOTENCY_TTL = 3600.0
_URL = regex.compile(r"(?<![\w@$#])https?://[^\s<>\"]+[^\s<>\".,;:!?'\")\]]", regex.IGNORECASE)
_MENTION = regex.compile(r"(?<![=/\w])@(\w+(?:[\w.-]+\w+)?)(?:@[\w.-]+\w+)", regex.IGNORECASE)
_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png", b"GIF8": "image/gif"}


def status_length(text: str, url_weight: int) -> int:
    """Mastodon's StatusLengthValidator, independently: URLs → N×"x", remote mentions → @user, graphemes."""
    countable = _URL.sub("x" * url_weight, text)
    countable = _MENTION.sub(r"@\1", countable)
    return len(regex.findall(r"\X", countable))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def to_html(text: str) -> str:
    """Status text as Mastodon renders it: paragraphs, <br />, links (href keeps the full URL)."""
    def para(p: str) -> str:
        out, pos = [], 0
        for m in _URL.finditer(p):
            out.append(html.escape(p[pos:m.start()]))
            url = html.escape(m.group())
            out.append(f'<a href="{url}" rel="nofollow noopener" target="_blank">{url}</a>')
            pos = m.end()
        out.append(html.escape(p[pos:]))
        return "<p>" + "".join(out).replace("\n", "<br />") + "</p>"

    return "".join(para(p) for p in text.split("\n\n") if p.strip())


class MastodonEmulator(Emulator):
    platform = "mastodon"

    def reset_state(self) -> None:
        self.tokens = {SANDBOX_TOKEN}
        self.max_characters = 500
        self.url_weight = 23
        self.media_polls = 2
        self.rate_limit = 300
        self.rate_window = 300.0
        self.windows: dict[str, tuple[float, int]] = {}  # who -> (window start, calls)
        self.ids = itertools.count(110000000000000001)
        self.media: dict[str, JSON] = {}
        self.idempotency: dict[tuple[str, str], tuple[float, JSON]] = {}

    def expire_tokens(self) -> None:
        self.tokens = set()

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 500)
        text = spec.get("message") or {
            401: "The access token is invalid", 403: "This action is not allowed", 404: "Record not found",
            422: "Validation failed: Text character limit of 500 exceeded", 429: "Too many requests",
            503: "Service Unavailable"}.get(code, "Internal Server Error")
        headers = {}
        if code == 429:
            reset = time.time() + float(spec.get("reset_in", 60))
            headers = {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": iso(reset)}
        return Response(code, {"error": text}, headers)

    # --- control ---------------------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        if req.method == "POST" and req.path == "/_sandbox/config":
            spec = req.json()
            with self.lock:
                self.max_characters = int(spec.get("max_characters", self.max_characters))
                self.url_weight = int(spec.get("characters_reserved_per_url", self.url_weight))
                self.media_polls = int(spec.get("media_polls", self.media_polls))
                self.rate_limit = int(spec.get("rate_limit", self.rate_limit))
                self.rate_window = float(spec.get("rate_window", self.rate_window))
                self.windows.clear()
            return Response(200, {"ok": True})
        return super().control(req)

    # --- rate limit on every API call (wraps the base dispatch to the routes) ----------------------

    def _handle(self, req: Request) -> Response:
        who = req.headers.get("authorization") or "anonymous"
        with self.lock:
            now = time.time()
            start, calls = self.windows.get(who, (now, 0))
            if now - start >= self.rate_window:
                start, calls = now, 0
            calls += 1
            self.windows[who] = (start, calls)
        headers = {"X-RateLimit-Limit": str(self.rate_limit),
                   "X-RateLimit-Remaining": str(max(0, self.rate_limit - calls)),
                   "X-RateLimit-Reset": iso(start + self.rate_window)}
        resp = Response(429, {"error": "Too many requests"}) if calls > self.rate_limit else super()._handle(req)
        resp.headers = {**headers, **resp.headers}
        return resp

    def _authorized(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    @staticmethod
    def _unauthorized() -> Response:
        return Response(401, {"error": "The access token is invalid"})

    # --- routes ----------------------------------------------------------------------------------

    @route("GET", r"/api/v2/instance")
    def instance(self, req: Request) -> Response:
        return Response(200, {
            "domain": "127.0.0.1", "title": "Sharer sandbox", "version": "4.3.0", "source_url": "",
            "configuration": {
                "statuses": {"max_characters": self.max_characters, "max_media_attachments": 4,
                             "characters_reserved_per_url": self.url_weight},
                "media_attachments": {"supported_mime_types": list(_MAGIC.values()),
                                      "image_size_limit": 16777216, "description_limit": 1500},
            },
        })

    @route("GET", r"/api/v1/accounts/verify_credentials")
    def verify_credentials(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized()
        return Response(200, self._account())

    @route("GET", r"/api/v1/accounts/(?P<id>[^/]+)/statuses")
    def account_statuses(self, req: Request) -> Response:
        if req.params["id"] != ACCOUNT_ID:
            return Response(404, {"error": "Record not found"})
        limit = min(40, max(1, int(req.query.get("limit", 20))))
        with self.lock:
            statuses = [self._public(p) for p in reversed(self.posts)][:limit]
        return Response(200, statuses)

    @route("GET", r"/@(?P<user>\w+)/(?P<id>\d+)")
    def public_page(self, req: Request) -> Response:
        """The status ``url`` (a web page on a real instance; the Status JSON here)."""
        with self.lock:
            for status in self.posts:
                if status["id"] == req.params["id"] and req.params["user"] == USERNAME:
                    return Response(200, self._public(status))
        return Response(404, {"error": "Record not found"})

    @route("POST", r"/api/v1/statuses")
    def create_status(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized()
        try:
            args = self._status_args(req)
        except ValueError:
            return Response(400, {"error": "Error while parsing request body"})
        key = req.headers.get("idempotency-key")
        token = req.headers["authorization"]
        with self.lock:
            now = time.time()
            if key and (token, key) in self.idempotency:
                at, status = self.idempotency[(token, key)]
                if now - at < IDEMPOTENCY_TTL:
                    return Response(200, self._public(status))
            text = str(args.get("status") or "")
            media_ids = [str(m) for m in args.get("media_ids") or []]
            problem = self._validate(text, args, media_ids)
            if problem:
                return problem
            status_id = str(next(self.ids))
            status = self.record_post({
                "id": status_id, "text": text, "created_at": iso(now),
                "visibility": args.get("visibility") or "public", "language": args.get("language") or None,
                "media_ids": media_ids, "idempotency_key": key,
                "url": f"{self.url}/@{USERNAME}/{status_id}",
                "uri": f"{self.url}/users/{USERNAME}/statuses/{status_id}",
            })
            if key:
                self.idempotency[(token, key)] = (now, status)
        return Response(200, self._public(status))

    @route("POST", r"/api/v2/media")
    def upload_media(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized()
        part = req.files().get("file")
        if part is None or part[0] is None:
            return Response(422, {"error": "Validation failed: File can't be blank"})
        ctype = next((t for magic, t in _MAGIC.items() if part[2].startswith(magic)), None)
        if ctype is None:
            return Response(422, {"error": "Validation failed: File content type is invalid, File file type "
                                           "is invalid"})
        description = req.form().get("description") or None
        if description and len(description) > 1500:
            return Response(422, {"error": "Validation failed: Description is too long (maximum is 1500 "
                                           "characters)"})
        with self.lock:
            media_id = str(next(self.ids))
            item = {"id": media_id, "type": "image", "description": description, "polls_left": self.media_polls,
                    "size": len(part[2]), "mime": ctype, "url": None}
            self.media[media_id] = item
            if self.media_polls <= 0:
                self._finish(item)
                return Response(200, self._media_entity(item))
        return Response(202, self._media_entity(item))

    @route("GET", r"/api/v1/media/(?P<id>\d+)")
    def get_media(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized()
        with self.lock:
            item = self.media.get(req.params["id"])
            if item is None:
                return Response(404, {"error": "Record not found"})
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
                return Response(206, self._media_entity(item))
            self._finish(item)
            return Response(200, self._media_entity(item))

    # --- helpers ---------------------------------------------------------------------------------

    def _status_args(self, req: Request) -> JSON:
        ctype = req.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            data = req.json()
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        if ctype.startswith("multipart/form-data"):
            return req.form()
        form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
        args: JSON = {k: v[0] for k, v in form.items() if not k.endswith("[]")}
        args["media_ids"] = form.get("media_ids[]", [])
        return args

    def _validate(self, text: str, args: JSON, media_ids: list[str]) -> Response | None:
        if not text.strip() and not media_ids:
            return Response(422, {"error": "Validation failed: Text can't be blank"})
        if status_length(text + str(args.get("spoiler_text") or ""), self.url_weight) > self.max_characters:
            return Response(422, {"error": f"Validation failed: Text character limit of {self.max_characters} "
                                           "exceeded"})
        if (args.get("visibility") or "public") not in VISIBILITIES:
            return Response(422, {"error": "Validation failed: Visibility is not included in the list"})
        if len(media_ids) > 4:
            return Response(422, {"error": "Validation failed: Media attachments is too long (maximum is 4)"})
        for media_id in media_ids:
            item = self.media.get(media_id)
            if item is None:
                return Response(422, {"error": "Validation failed: Media attachments are invalid"})
            if item["url"] is None:
                return Response(422, {"error": "Cannot attach files that have not finished processing. Try "
                                               "again in a moment!"})
        return None

    def _finish(self, item: JSON) -> None:
        ext = "png" if item["mime"] == "image/png" else "jpg"
        item["polls_left"] = 0
        item["url"] = f"{self.url}/system/media_attachments/files/{item['id']}/original.{ext}"

    @staticmethod
    def _media_entity(item: JSON) -> JSON:
        return {"id": item["id"], "type": item["type"], "url": item["url"],
                "preview_url": item["url"], "remote_url": None, "description": item["description"],
                "meta": {"original": {"width": 64, "height": 36}}, "blurhash": None}

    def _account(self) -> JSON:
        return {"id": ACCOUNT_ID, "username": USERNAME, "acct": USERNAME, "display_name": "Sharer Sandbox",
                "url": f"{self.url}/@{USERNAME}", "locked": False, "bot": True}

    def _public(self, status: JSON) -> JSON:
        """The Status entity as the API returns it."""
        return {
            "id": status["id"], "created_at": status["created_at"], "uri": status["uri"], "url": status["url"],
            "visibility": status["visibility"], "language": status["language"], "sensitive": False,
            "spoiler_text": "", "content": to_html(status["text"]), "account": self._account(),
            "media_attachments": [self._media_entity(self.media[m]) for m in status["media_ids"] if m in self.media],
            "mentions": [], "tags": [], "emojis": [], "reblogs_count": 0, "favourites_count": 0,
            "replies_count": 0, "in_reply_to_id": None, "reblog": None, "card": None, "poll": None,
        }
