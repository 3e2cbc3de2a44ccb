"""X API v2 emulator: posts, media upload, OAuth 1.0a signatures, rotating OAuth 2.0 tokens, rate limits.

Real paths and bodies (problem-JSON errors, 201 on create, ``x-rate-limit-*`` headers and no
Retry-After on 429). OAuth 1.0a signatures are checked against the *public* URL the client signed
(``https://api.twitter.com/...`` or ``https://api.x.com/...``): the client signs the real URL and
its transport adapter only then reroutes the request here. "sandbox:" credentials resolve to
``sandbox-<credential name>``. Links in a post become ``https://t.co/...`` in the stored text, with
``entities.urls[].expanded_url`` keeping the original, as on X.

Sandbox extras: ``GET /_sandbox/files/<name>`` serves test images (``sample.png``, ``sample.jpg``,
``big.png`` over 5 MB, ``anim.gif``, ``not-an-image.png``) and ``GET /_sandbox/images/<any>.png|jpg`` a
small image that differs per name; ``POST /_sandbox/config`` ``{"post_limit": N, "window": S,
"duplicate_check": bool, "media_ttl": S}`` sets the per-user posting limit (default 100 per 900 s),
whether an identical text is refused with 403 duplicate (default true; false lets a second post show in
tests) and how long an uploaded media id stays valid (default 86400 s). Each recorded post lists its
``media`` (id, type, size, sha256 of the bytes) in order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import time
from typing import Any
from urllib.parse import quote, unquote

from ._x_wire import CREDS, INVALID, PUBLIC_HOSTS, USER, invalid, problem, unauthorized
from .server import JSON, Emulator, Request, Response, route
from .x_media import XMediaMixin
from .x_reads import XReadsMixin

try:  # the independent twitter-text port (dev dependency) judges lengths, so our counter is checked too
    from twitter_text import extract_urls_with_indices, parse_tweet

    def weighted_length(text: str) -> int:
        return parse_tweet(text).weightedLength

    def url_spans(text: str) -> list[tuple[int, int]]:
        return [(int(u["indices"][0]), int(u["indices"][1])) for u in extract_urls_with_indices(text)]
except ImportError:  # pragma: no cover - production install without dev extras
    from ..text import count_x as weighted_length
    from ..text import find_x_urls as url_spans

SCOPE = "tweet.write users.read tweet.read offline.access media.write"
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
TWEET_FIELDS = {"text", "media", "reply", "quote_tweet_id", "poll", "reply_settings", "geo", "community_id",
                "for_super_followers_only", "direct_message_deep_link", "nullcast", "card_uri"}


def _enc(s: str) -> str:
    return quote(s, safe="-._~")


class XEmulator(XMediaMixin, XReadsMixin, Emulator):
    platform = "x"

    def reset_state(self) -> None:
        self.ids = itertools.count(1860000000000000001)
        self.tweets: dict[str, JSON] = {}
        self.media: dict[str, JSON] = {}
        self.media_ttl = 86400.0  # expires_after_secs of an upload
        self.nonces: set[str] = set()
        self.oauth1_revoked = False
        self.refresh_token = CREDS["oauth2_refresh_token"]  # the one valid refresh token
        self.access_tokens: dict[str, float] = {}  # token -> expiry
        self.post_limit, self.window = 100, 900.0
        self.duplicate_check = True
        self.windows: dict[str, tuple[float, int]] = {}  # user id -> (window start, posts in it)

    def expire_tokens(self) -> None:
        self.access_tokens.clear()
        self.oauth1_revoked = True  # an OAuth 1.0a token only dies when revoked

    def error(self, code: Any, spec: JSON) -> Response:
        code = str(code)
        if code in ("duplicate", "187"):
            return problem(403, "Forbidden", DUPLICATE)
        if code in ("429", "rate_limited"):
            reset = int(time.time() + float(spec.get("reset_in", 900)))
            return Response(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                                  "status": 429}, self._limit_headers(self.post_limit, 0, reset))
        if code == "usage_capped":
            return Response(429, {"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                                  "type": "https://api.twitter.com/2/problems/usage-capped", "period": "Monthly",
                                  "scope": "Product"})
        if code in ("401", "unauthorized"):
            return unauthorized()
        if code in ("403", "forbidden", "client-not-enrolled"):
            return problem(403, "Client Forbidden", "When authenticating requests to the Twitter API v2 endpoints, "
                           "you must use keys and tokens from a Twitter developer App that is attached to a Project.",
                           "https://api.twitter.com/2/problems/client-forbidden", reason="client-not-enrolled")
        if code in ("400", "invalid_request"):
            return invalid(spec.get("message", "Invalid request"))
        status = int(code) if code.isdigit() else 503
        return problem(status, "Service Unavailable", "Service Unavailable")

    # --- auth ------------------------------------------------------------------------------------

    def _user(self, req: Request) -> str | None:
        """The authenticated user id, or None: a valid OAuth 1.0a signature or an issued OAuth 2.0 token."""
        header = req.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return USER["id"] if self.access_tokens.get(header[7:], 0) > time.time() else None
        if not header.startswith("OAuth "):
            return None
        oauth = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header[6:])}
        signature = oauth.pop("oauth_signature", "")
        if (oauth.get("oauth_signature_method") != "HMAC-SHA1" or self.oauth1_revoked
                or oauth.get("oauth_consumer_key") != CREDS["consumer_key"]
                or oauth.get("oauth_token") != CREDS["access_token"]
                or abs(time.time() - float(oauth.get("oauth_timestamp") or 0)) > 300
                or oauth.get("oauth_nonce", "") in self.nonces):
            return None
        params = [*oauth.items(), *req.query.items()]
        if req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params += list(req.form().items())
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))
        key = f"{_enc(CREDS['consumer_secret'])}&{_enc(CREDS['access_token_secret'])}".encode()
        for host in PUBLIC_HOSTS:
            base = "&".join((req.method, _enc(host + req.path), _enc(normalized)))
            expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
            if hmac.compare_digest(expected, signature):
                self.nonces.add(oauth.get("oauth_nonce", ""))
                return USER["id"]
        return None

    @route("POST", r"/2/oauth2/token")
    def token(self, req: Request) -> Response:
        form = req.form()
        basic = req.headers.get("authorization", "")
        if basic.startswith("Basic "):
            client = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            ok = client == f"{CREDS['client_id']}:{CREDS['client_secret']}"
        else:
            ok = form.get("client_id") == CREDS["client_id"]
        if not ok:
            return Response(401, {"error": "unauthorized_client",
                                  "error_description": "Missing valid authorization header"})
        if form.get("grant_type") != "refresh_token":
            return Response(400, {"error": "invalid_request",
                                  "error_description": "Missing required parameter [grant_type]."})
        with self.lock:
            if not form.get("refresh_token") or form["refresh_token"] != self.refresh_token:
                return Response(400, {"error": "invalid_request",
                                      "error_description": "Value passed for the token was invalid."})
            n = next(self.ids)
            self.refresh_token = f"sandbox-rt-{n}-{hashlib.sha256(str(n).encode()).hexdigest()[:12]}"  # old one dies
            access = f"sandbox-at-{n}-{hashlib.sha256(str(-n).encode()).hexdigest()[:12]}"
            self.access_tokens[access] = time.time() + 7200
        return Response(200, {"token_type": "bearer", "expires_in": 7200, "access_token": access, "scope": SCOPE,
                              "refresh_token": self.refresh_token})

    # --- posts -----------------------------------------------------------------------------------

    def _limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(reset)}

    @route("POST", r"/2/tweets")
    def create(self, req: Request) -> Response:
        with self.lock:
            user = self._user(req)
            if user is None:
                return unauthorized()
            start, used = self.windows.get(user, (time.time(), 0))
            if time.time() >= start + self.window:
                start, used = time.time(), 0
            headers = self._limit_headers(self.post_limit, max(0, self.post_limit - used - 1), int(start + self.window))
            if used >= self.post_limit:
                return Response(429, {"title": "Too Many Requests", "detail": "Too Many Requests",
                                      "type": "about:blank", "status": 429}, {**headers, "x-rate-limit-remaining": "0"})
            self.windows[user] = (start, used + 1)
            resp = self._create(req, user)
            resp.headers.update(headers)
            return resp

    def _create(self, req: Request, user: str) -> Response:
        try:
            body = req.json()
        except ValueError:
            return invalid("Request body is not valid JSON")
        if not isinstance(body, dict):
            return invalid("$: expected an object")
        for key in body:
            if key not in TWEET_FIELDS:
                return invalid(f"$.{key}: is not defined in the schema and the schema does not allow additional "
                               "properties")
        text = body.get("text")
        refused = None if body.get("media") is None else self.check_media(body["media"], user)
        if refused is not None:
            return refused
        media_ids = list(body["media"]["media_ids"]) if body.get("media") is not None else []
        if text is None and not media_ids:
            return invalid("$.text: text is required unless media is attached")
        if text is not None and not isinstance(text, str):
            return invalid("$.text: expected a string")
        text = text or ""
        length = weighted_length(text)
        if length > 280:
            return problem(400, "Invalid Request", "Your Tweet text is too long. For more information on how "
                           "Twitter determines text length see https://github.com/twitter/twitter-text.", INVALID)
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and (not isinstance(reply_to, str) or reply_to not in self.tweets):
            return problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
        if text and self.duplicate_check and any(t["author_id"] == user and t["sent_text"] == text
                                                 for t in self.tweets.values()):
            return problem(403, "Forbidden", DUPLICATE)
        tweet_id = str(next(self.ids))
        shown, urls = self._tco(text)
        auth = "oauth2" if req.headers.get("authorization", "").startswith("Bearer ") else "oauth1"
        tweet = {"id": tweet_id, "text": shown, "sent_text": text, "author_id": user, "created_at": time.time(),
                 "edit_history_tweet_ids": [tweet_id], "entities": {"urls": urls} if urls else {},
                 "in_reply_to_tweet_id": reply_to, "media_ids": media_ids}
        self.tweets[tweet_id] = tweet
        self.record_post({"id": tweet_id, "text": text, "shown_text": shown, "weighted_length": length,
                          "in_reply_to_tweet_id": reply_to, "media_ids": media_ids,
                          "media": self.attached(media_ids), "auth": auth,
                          "author_id": user, "url": f"https://x.com/{USER['username']}/status/{tweet_id}"})
        return Response(201, {"data": {"id": tweet_id, "text": shown, "edit_history_tweet_ids": [tweet_id]}},
                        {"location": f"https://api.twitter.com/2/tweets/{tweet_id}"})

    def _tco(self, text: str) -> tuple[str, list[JSON]]:
        """Replace links by t.co links, as X does; entities keep the original as ``expanded_url``."""
        out, urls, pos = "", [], 0
        for start, end in url_spans(text):
            original = text[start:end]
            short = "https://t.co/" + hashlib.sha256(original.encode()).hexdigest()[:10]
            out += text[pos:start]
            expanded = original if "://" in original else "http://" + original
            display = expanded.split("://", 1)[1]
            urls.append({"start": len(out), "end": len(out) + len(short), "url": short, "expanded_url": expanded,
                         "display_url": display if len(display) <= 26 else display[:25] + "…"})
            out += short
            pos = end
        return out + text[pos:], urls

    # --- sandbox extras --------------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        if req.method == "GET" and req.path.startswith(("/_sandbox/files/", "/_sandbox/images/")):
            return self.sandbox_file(req.path.rsplit("/", 1)[-1], named=req.path.startswith("/_sandbox/images/"))
        if req.method == "POST" and req.path == "/_sandbox/config":
            spec = req.json()
            with self.lock:
                self.post_limit = int(spec.get("post_limit", self.post_limit))
                self.window = float(spec.get("window", self.window))
                self.duplicate_check = bool(spec.get("duplicate_check", self.duplicate_check))
                self.media_ttl = float(spec.get("media_ttl", self.media_ttl))
                self.windows.clear()
            return Response(200, {"ok": True, "post_limit": self.post_limit, "window": self.window,
                                  "duplicate_check": self.duplicate_check, "media_ttl": self.media_ttl})
        return super().control(req)
