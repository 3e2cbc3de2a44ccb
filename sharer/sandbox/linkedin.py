"""LinkedIn REST emulator: ``/rest/posts`` (create: 201 + ``x-restli-id``; find by author), the Images
API (initializeUpload + PUT), the OAuth refresh grant, versioned headers.

Every ``/rest`` call needs ``LinkedIn-Version`` (missing → 400 ``VERSION_MISSING``; older than
202401 or in the future → 426 ``NONEXISTENT_VERSION``) and ``X-Restli-Protocol-Version: 2.0.0``.
Errors are ``{"status", "code", "message"}``. The commentary is read as the little text format, on
its own: the stored text is cut at the first unescaped reserved character (as LinkedIn silently
does) and unescaped; more than 3,000 characters is 422. The same commentary from the same author
within a day is 422 "Content is a duplicate of urn:li:share:…" (the wording is unverified).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from .server import JSON, Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-access_token"
REFRESH = "sandbox-refresh_token"
CLIENT = ("sandbox-client_id", "sandbox-client_secret")
AUTHOR = "urn:li:organization:2414183"
RESERVED = set("\\|{}@[]()<>#*_~")


def little_text(commentary: str) -> str:
    """What LinkedIn shows: escapes resolved, cut at the first unescaped reserved character (but #tags)."""
    out, i = [], 0
    while i < len(commentary):
        c = commentary[i]
        if c == "\\" and i + 1 < len(commentary):
            out.append(commentary[i + 1])
            i += 2
            continue
        if c == "#" and i + 1 < len(commentary) and re.match(r"\w", commentary[i + 1]) and (
                i == 0 or commentary[i - 1].isspace()):
            out.append(c)  # a hashtag
        elif c in RESERVED:
            break  # silently truncated here
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _err(status: int, message: str, code: str | None = None) -> Response:
    body: JSON = {"status": status, "message": message}
    if code:
        body["code"] = code
    return Response(status, body)


class LinkedInEmulator(Emulator):
    platform = "linkedin"

    def reset_state(self) -> None:
        self.tokens = {SANDBOX_TOKEN}
        self.images: dict[str, JSON] = {}
        self.uploads: dict[str, str] = {}
        self.ids = itertools.count(7200000000000000001)

    def expire_tokens(self) -> None:
        self.tokens = set()  # access tokens expire; the refresh token still works

    def error(self, code: Any, spec: JSON) -> Response:
        code = int(code or 500)
        text = {401: ("Invalid access token", "EXPIRED_ACCESS_TOKEN"),
                403: ("Not enough permissions to access: partnerApiPostsExternal.CREATE.20241101", "ACCESS_DENIED"),
                422: ("ERROR :: /commentary :: is invalid", "UNPROCESSABLE_ENTITY"),
                426: ("Requested version 202301 is not active", "NONEXISTENT_VERSION"),
                429: ("Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
                      "TOO_MANY_REQUESTS")}.get(code, ("Internal Server Error", None))
        resp = _err(code, *text)
        if code == 429 and spec.get("retry_after"):
            resp.headers["Retry-After"] = str(spec["retry_after"])
        return resp

    def _rest(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _err(401, "Invalid access token", "EXPIRED_ACCESS_TOKEN")
        version = req.headers.get("linkedin-version", "")
        if not version:
            return _err(400, "A version must be present. Please specify a version by adding the LinkedIn-Version "
                             "header.", "VERSION_MISSING")
        if not re.fullmatch(r"20\d{4}", version) or not "202401" <= version <= datetime.now(UTC).strftime("%Y%m"):
            return _err(426, f"Requested version {version} is not active", "NONEXISTENT_VERSION")
        if req.headers.get("x-restli-protocol-version") != "2.0.0":
            return _err(400, "Rest.li protocol 2.0.0 is required (X-Restli-Protocol-Version)", "ILLEGAL_ARGUMENT")
        return None

    @route("POST", r"/oauth/v2/accessToken")
    def token(self, req: Request) -> Response:
        form = req.form()
        if form.get("grant_type") != "refresh_token" or (form.get("client_id"), form.get("client_secret")) != CLIENT:
            return Response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("refresh_token") != REFRESH:
            return Response(400, {"error": "invalid_grant", "error_description": "The provided authorization grant "
                                  "or refresh token is invalid, expired or revoked"})
        with self.lock:
            access = f"AQV{secrets.token_urlsafe(12)}"
            self.tokens.add(access)
        return Response(200, {"access_token": access, "expires_in": 5184000, "refresh_token": REFRESH,
                              "refresh_token_expires_in": 31536000, "scope": "w_organization_social"})

    @route("POST", r"/rest/images")
    def init_upload(self, req: Request) -> Response:
        problem = self._rest(req)
        if problem:
            return problem
        owner = ((req.json() or {}).get("initializeUploadRequest") or {}).get("owner")
        if req.query.get("action") != "initializeUpload" or not owner:
            return _err(422, "ERROR :: /initializeUploadRequest/owner :: field is required but not found")
        with self.lock:
            urn, ticket = f"urn:li:image:D4E{secrets.token_hex(6)}", secrets.token_hex(8)
            self.images[urn] = {"owner": owner, "status": "WAITING_UPLOAD"}
            self.uploads[ticket] = urn
        return Response(200, {"value": {"uploadUrlExpiresAt": int(time.time() * 1000) + 86_400_000,
                                        "uploadUrl": f"{self.url}/dms-uploads/{ticket}", "image": urn}})

    @route("PUT", r"/dms-uploads/(?P<ticket>\w+)")
    def upload(self, req: Request) -> Response:
        urn = self.uploads.get(req.params["ticket"])
        if urn is None:
            return _err(404, "Upload not found")
        if not req.body:
            return _err(400, "Empty upload")
        with self.lock:
            self.images[urn].update(status="AVAILABLE", size=len(req.body))
        return Response(201, b"")

    @route("POST", r"/rest/posts")
    def create(self, req: Request) -> Response:
        problem = self._rest(req)
        if problem:
            return problem
        body = req.json()
        for field in ("author", "commentary", "visibility", "distribution", "lifecycleState"):
            if field not in body:
                return _err(422, f"ERROR :: /{field} :: field is required but not found and has no default value\n")
        if body["author"] != AUTHOR:
            return _err(403, f"Not enough permissions to access: partnerApiPostsExternal.CREATE for {body['author']}",
                        "ACCESS_DENIED")
        if len(body["commentary"]) > 3000:
            return _err(422, "ERROR :: /commentary :: length 3000 exceeded")
        thumb = ((body.get("content") or {}).get("article") or {}).get("thumbnail")
        if thumb and (self.images.get(thumb) or {}).get("status") != "AVAILABLE":
            return _err(422, f"ERROR :: /content/article/thumbnail :: {thumb} is not available")
        with self.lock:
            now = time.time()
            for p in self.posts:
                if p["raw_commentary"] == body["commentary"] and now - p["received_at"] < 86400:
                    return _err(422, f"Content is a duplicate of {p['id']}", "DUPLICATE_POST")
            urn = f"urn:li:share:{next(self.ids)}"
            self.record_post({"id": urn, "author": body["author"], "raw_commentary": body["commentary"],
                              "commentary": little_text(body["commentary"]), "content": body.get("content"),
                              "visibility": body["visibility"], "createdAt": int(now * 1000),
                              "version": req.headers.get("linkedin-version")})
        return Response(201, b"", {"x-restli-id": urn, "x-linkedin-id": urn.rsplit(":", 1)[1]})

    @route("GET", r"/rest/posts")
    def by_author(self, req: Request) -> Response:
        problem = self._rest(req)
        if problem:
            return problem
        if req.query.get("q") != "author" or not req.query.get("author"):
            return _err(400, "q=author and author are required", "ILLEGAL_ARGUMENT")
        start, count = int(req.query.get("start") or 0), min(100, int(req.query.get("count") or 10))
        with self.lock:
            mine = [p for p in reversed(self.posts) if p["author"] == req.query["author"]]
        page = [{"id": p["id"], "author": p["author"], "commentary": p["raw_commentary"], "content": p["content"],
                 "createdAt": p["createdAt"], "lifecycleState": "PUBLISHED"} for p in mine[start:start + count]]
        return Response(200, {"elements": page, "paging": {"start": start, "count": count, "total": len(mine)}})
