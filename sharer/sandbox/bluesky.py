"""Bluesky PDS emulator: sessions (createSession / refreshSession / getSession), uploadBlob,
createRecord / listRecords for ``app.bsky.feed.post``, resolveHandle.

Errors are XRPC ``{"error", "message"}``: an expired access JWT is **HTTP 400** ``ExpiredToken``; a
spent (single-use) refresh JWT is 400 ``ExpiredToken`` too; a wrong password 401
``AuthenticationRequired``; more than ``session_limit`` createSession calls in 5 minutes 429
``RateLimitExceeded`` (sessions must be reused). Records are checked on their own: ≤ 300 graphemes
(``\\X``) and ≤ 3,000 UTF-8 bytes, facet byte ranges inside the text, known blobs. Each stored post
keeps ``facet_text``: the text each facet covers, cut from the UTF-8 bytes, so tests see offsets the
way Bluesky reads them. Config: ``access_ttl`` (s), ``session_limit``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import time
from typing import Any

import regex

from .server import JSON, Emulator, Request, Response, route

HANDLE = "sharer.test"
DID = "did:plc:sharersandbox0000000000"
PASSWORD = "sandbox-app_password"
KNOWN = {HANDLE: DID, "alice.test": "did:plc:alice0000000000000000000"}
TID = "234567abcdefghijklmnopqrstuvwxyz"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _err(status: int, error: str, message: str) -> Response:
    return Response(status, {"error": error, "message": message})


class BlueskyEmulator(Emulator):
    platform = "bluesky"
    config_schema = {"access_ttl": float, "session_limit": int}

    def reset_state(self) -> None:
        self.config = {"access_ttl": 7200.0, "session_limit": 30}
        self.access: dict[str, float] = {}  # access JWT -> expires at
        self.refresh: set[str] = set()
        self.sessions: list[float] = []
        self.blobs: dict[str, JSON] = {}
        self.seq = itertools.count(1)

    def expire_tokens(self) -> None:
        self.access = {k: 0.0 for k in self.access}

    def error(self, code: Any, spec: JSON) -> Response:
        name = str(code or "InternalServerError")
        status = {"ExpiredToken": 400, "InvalidToken": 400, "InvalidRequest": 400, "AuthenticationRequired": 401,
                  "RateLimitExceeded": 429, "UpstreamFailure": 502, "InternalServerError": 500}.get(name, 400)
        resp = _err(status, name, spec.get("message") or name)
        if status == 429:
            resp.headers.update({"ratelimit-limit": "5000", "ratelimit-remaining": "0",
                                 "ratelimit-reset": str(int(time.time() + float(spec.get("reset_in", 120)))),
                                 "ratelimit-policy": "5000;w=3600"})
        return resp

    def _jwt(self, scope: str, ttl: float) -> str:
        now = int(time.time())
        payload = {"scope": scope, "sub": DID, "iat": now, "exp": now + int(ttl), "jti": secrets.token_hex(6)}
        return f"{_b64({'typ': 'at+jwt', 'alg': 'ES256K'})}.{_b64(payload)}.{secrets.token_urlsafe(16)}"

    def _pair(self) -> JSON:
        access = self._jwt("com.atproto.access", float(self.config["access_ttl"]))
        refresh = self._jwt("com.atproto.refresh", 90 * 86400)
        self.access[access] = time.time() + float(self.config["access_ttl"])
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": HANDLE, "did": DID, "active": True}

    def _auth(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token not in self.access:
            return _err(400 if token else 401, "InvalidToken" if token else "AuthenticationRequired",
                        "Token could not be verified" if token else "Authentication Required")
        if self.access[token] < time.time():
            return _err(400, "ExpiredToken", "Token has expired")
        return None

    # --- sessions ----------------------------------------------------------------------------------

    @route("POST", r"/xrpc/com\.atproto\.server\.createSession")
    def create_session(self, req: Request) -> Response:
        body = req.json()
        with self.lock:
            now = time.time()
            self.sessions = [t for t in self.sessions if now - t < 300] + [now]
            if len(self.sessions) > int(self.config["session_limit"]):
                return _err(429, "RateLimitExceeded", "Rate Limit Exceeded")
            if body.get("identifier") not in (HANDLE, DID) or body.get("password") != PASSWORD:
                return _err(401, "AuthenticationRequired", "Invalid identifier or password")
            return Response(200, self._pair())

    @route("POST", r"/xrpc/com\.atproto\.server\.refreshSession")
    def refresh_session(self, req: Request) -> Response:
        token = req.headers.get("authorization", "")[7:]
        with self.lock:
            if token not in self.refresh:
                return _err(400, "ExpiredToken", "Token has been revoked")
            self.refresh.discard(token)  # single use
            return Response(200, self._pair())

    @route("GET", r"/xrpc/com\.atproto\.server\.getSession")
    def get_session(self, req: Request) -> Response:
        return self._auth(req) or Response(200, {"handle": HANDLE, "did": DID, "active": True})

    @route("GET", r"/xrpc/com\.atproto\.identity\.resolveHandle")
    def resolve(self, req: Request) -> Response:
        did = KNOWN.get(req.query.get("handle", ""))
        return Response(200, {"did": did}) if did else _err(400, "InvalidRequest", "Unable to resolve handle")

    # --- blobs and records -------------------------------------------------------------------------

    @route("POST", r"/xrpc/com\.atproto\.repo\.uploadBlob")
    def upload_blob(self, req: Request) -> Response:
        problem = self._auth(req)
        if problem:
            return problem
        if len(req.body) > 1_000_000:
            return _err(400, "BlobTooLarge", f"This file is too large. It is {len(req.body)} bytes")
        cid = "bafkrei" + hashlib.sha256(req.body).hexdigest()[:52]
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": req.headers.get("content-type", "*/*"),
                "size": len(req.body)}
        with self.lock:
            self.blobs[cid] = blob
        return Response(200, {"blob": blob})

    @route("POST", r"/xrpc/com\.atproto\.repo\.createRecord")
    def create_record(self, req: Request) -> Response:
        problem = self._auth(req)
        if problem:
            return problem
        body = req.json()
        record = body.get("record") or {}
        if body.get("repo") not in (DID, HANDLE) or body.get("collection") != "app.bsky.feed.post":
            return _err(400, "InvalidRequest", "Could not find repo or collection")
        bad = self._invalid(record)
        if bad:
            return _err(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {bad}")
        with self.lock:
            n = next(self.seq)
            rkey = "3l" + "".join(TID[(n * 7 + i * 3) % 32] for i in range(9)) + f"{n:02d}"[-2:]
            uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
            text = record["text"].encode()
            self.record_post({"id": rkey, "uri": uri, "cid": "bafyrei" + secrets.token_hex(20), "value": record,
                              "text": record["text"], "facet_text": [
                                  text[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode("utf-8", "replace")
                                  for f in record.get("facets") or []]})
            post = self.posts[-1]
        return Response(200, {"uri": uri, "cid": post["cid"], "commit": {"cid": "bafyrei" + secrets.token_hex(20),
                                                                          "rev": rkey}, "validationStatus": "valid"})

    def _invalid(self, record: JSON) -> str | None:
        text = record.get("text")
        if record.get("$type") != "app.bsky.feed.post" or not isinstance(text, str) or not record.get("createdAt"):
            return "$type, text and createdAt are required"
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        if len(text.encode()) > 3000:
            return "Record/text must not be longer than 3000 characters"
        size = len(text.encode())
        for facet in record.get("facets") or []:
            index = facet.get("index") or {}
            if not 0 <= index.get("byteStart", -1) < index.get("byteEnd", -1) <= size:
                return "Record/facets: byte range outside the text"
        embed = record.get("embed") or {}
        blobs = [i.get("image") for i in embed.get("images") or []] + [(embed.get("external") or {}).get("thumb")]
        for blob in blobs:
            if blob is not None and (not isinstance(blob, dict) or (blob.get("ref") or {}).get("$link")
                                     not in self.blobs):
                return "Record/embed: blob not found"
        if len(embed.get("images") or []) > 4:
            return "Record/embed/images must not have more than 4 elements"
        return None

    @route("GET", r"/xrpc/com\.atproto\.repo\.listRecords")
    def list_records(self, req: Request) -> Response:
        limit, start = min(100, int(req.query.get("limit") or 50)), int(req.query.get("cursor") or 0)
        with self.lock:
            items = [p for p in reversed(self.posts) if req.query.get("repo") in (DID, HANDLE)]
        page = items[start:start + limit]
        body: JSON = {"records": [{"uri": p["uri"], "cid": p["cid"], "value": p["value"]} for p in page]}
        if start + limit < len(items):
            body["cursor"] = str(start + limit)
        return Response(200, body)
