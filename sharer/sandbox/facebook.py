"""Facebook Graph API emulator for one Page: feed posts, photos (published or not), the feed with
``since``/``limit``/``after`` paging, the Page token from a user token, Graph error bodies.

Errors are ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``: an identical
message posted again within a day is ``(#506) Duplicate status message``; a bad token is 190; an
unknown object is 100. Tokens: ``sandbox-access_token`` is both the user token (it can read the Page
token) and, until ``expired_token``, a Page token; the fault ``expired_token`` retires every Page token
(a user token still fetches a new one). Paths are ``/{version}/…`` for any ``vNN.N``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from .server import JSON, Emulator, Request, Response, route

PAGE_ID = "1000000000000001"
USER_TOKEN = "sandbox-access_token"
V = r"/(?P<v>v\d+\.\d+)"
DUPLICATE_WINDOW = 86400.0


def graph_error(code: int, message: str, status: int = 400, subcode: int | None = None) -> Response:
    err: JSON = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": secrets.token_urlsafe(8)}
    if subcode:
        err["error_subcode"] = subcode
    return Response(status, {"error": err})


class FacebookEmulator(Emulator):
    platform = "facebook"

    def reset_state(self) -> None:
        self.page_tokens = {USER_TOKEN}
        self.photos: dict[str, JSON] = {}
        self.ids = itertools.count(7000000000000001)

    def expire_tokens(self) -> None:
        self.page_tokens = set()

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 1)
        text = {1: "An unknown error has occurred.", 2: "An unexpected error has occurred. Please retry your "
                "request later.", 4: "(#4) Application request limit reached", 17: "(#17) User request limit "
                "reached", 32: "(#32) Page request limit reached", 100: "(#100) Invalid parameter",
                190: "Error validating access token: Session has expired", 200: "(#200) Permissions error",
                368: "It looks like you were misusing this feature by going too fast.",
                506: "(#506) Duplicate status message", 1609005: "Error posting link"}.get(code, "Error")
        resp = graph_error(code, text, 500 if code in (1, 2) else 401 if code == 190 else 400,
                           spec.get("subcode"))
        if code in (4, 17, 32):
            minutes = int(spec.get("regain_minutes", 7))
            resp.headers["X-App-Usage"] = json.dumps({"call_count": 100, "total_time": 40, "total_cputime": 20})
            resp.headers["X-Business-Use-Case-Usage"] = json.dumps({PAGE_ID: [{
                "type": "pages", "call_count": 100, "total_cputime": 10, "total_time": 10,
                "estimated_time_to_regain_access": minutes}]})
        return resp

    def _token(self, req: Request) -> str:
        auth = req.headers.get("authorization", "")
        return auth[7:] if auth.startswith(("Bearer ", "OAuth ")) else (req.arg("access_token") or "")

    def _page(self, req: Request) -> Response | None:
        if req.params.get("page") != PAGE_ID:
            return graph_error(100, f"(#100) Unsupported request - object with ID '{req.params.get('page')}' "
                                    "does not exist")
        if self._token(req) not in self.page_tokens:
            return graph_error(190, "Error validating access token: Session has expired", 401, 463)
        return None

    @route("GET", V + r"/(?P<page>\d+)")
    def page(self, req: Request) -> Response:
        fields = (req.query.get("fields") or "").split(",")
        if "access_token" in fields and req.params["page"] == PAGE_ID:
            if self._token(req) != USER_TOKEN:
                return graph_error(190, "Error validating access token: The user has not authorized the app", 401)
            with self.lock:
                token = f"EAAPage{secrets.token_hex(8)}"
                self.page_tokens.add(token)
            return Response(200, {"access_token": token, "id": PAGE_ID})
        return self._page(req) or Response(200, {"id": PAGE_ID, "name": "Sharer Sandbox Page"})

    @route("POST", V + r"/(?P<page>\d+)/feed")
    def feed_post(self, req: Request) -> Response:
        problem = self._page(req)
        if problem:
            return problem
        form = req.form()
        message, link = form.get("message", ""), form.get("link") or None
        try:
            attached = [str(m["media_fbid"]) for m in json.loads(form.get("attached_media") or "[]")]
        except (ValueError, KeyError, TypeError):
            return graph_error(100, "(#100) param attached_media must be an array of objects with media_fbid")
        if not message and not link and not attached:
            return graph_error(100, "(#100) Missing message or attachment")
        if any(m not in self.photos or self.photos[m]["published"] for m in attached):
            return graph_error(100, "(#100) attached_media: the photo does not exist or is already published")
        with self.lock:
            return self._publish(message, link, attached)

    @route("POST", V + r"/(?P<page>\d+)/photos")
    def photo(self, req: Request) -> Response:
        problem = self._page(req)
        if problem:
            return problem
        form = req.form()
        url = form.get("url") or ""
        if not url.startswith(("http://", "https://")) and "source" not in req.files():
            return graph_error(324, "(#324) Requires upload file")
        published = form.get("published", "true").lower() != "false"
        with self.lock:
            photo_id = str(next(self.ids))
            self.photos[photo_id] = {"id": photo_id, "url": url, "published": published}
            if not published:
                return Response(200, {"id": photo_id})
            resp = self._publish(form.get("caption", ""), None, [photo_id])
            if resp.status != 200:
                return resp
            return Response(200, {"id": photo_id, "post_id": resp.body["id"]})

    def _publish(self, message: str, link: str | None, photos: list[str]) -> Response:
        now = time.time()
        if message and any(p["message"] == message and now - p["received_at"] < DUPLICATE_WINDOW for p in self.posts):
            return graph_error(506, "(#506) Duplicate status message", 400, 1455006)
        post_id = f"{PAGE_ID}_{next(self.ids)}"
        for m in photos:
            self.photos[m]["published"] = True
        self.record_post({"id": post_id, "message": message, "link": link, "photos": photos,
                          "created_time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                          "permalink_url": f"https://www.facebook.com/{post_id}"})
        return Response(200, {"id": post_id})

    @route("GET", V + r"/(?P<page>\d+)/feed")
    def feed(self, req: Request) -> Response:
        problem = self._page(req)
        if problem:
            return problem
        since = float(req.query.get("since") or 0)
        limit = min(100, int(req.query.get("limit") or 25))
        start = int(req.query.get("after") or 0)
        fields = [f for f in (req.query.get("fields") or "id,message,created_time").split(",") if f]
        with self.lock:
            items = [p for p in reversed(self.posts) if p["received_at"] >= since]
        page = items[start:start + limit]
        body: JSON = {"data": [{f: p.get(f) for f in fields if p.get(f) is not None} for p in page]}
        if start + limit < len(items):
            after = str(start + limit)
            body["paging"] = {"cursors": {"before": str(start), "after": after},
                              "next": f"{self.url}/{req.params['v']}/{PAGE_ID}/feed?after={after}"}
        return Response(200, body)
