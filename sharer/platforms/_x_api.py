"""X's API session for one attempt: tweepy's ``Client`` rerouted to ``api_base`` with our timeouts,
errors mapped to ours, and the rotating OAuth 2.0 token pair shared by all workers in Redis.

Split from ``x.py`` (composition, delivery, reconciliation), which is what uses it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import requests
import tweepy
from redis.exceptions import LockError
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from ..errors import Ambiguous, AuthExpired, DeliveryError, Duplicate, PermanentError, RateLimited, TransientError
from ..media import Image
from .base import DeliveryContext, json_body, send, short

OAUTH1 = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
OAUTH2 = ("client_id", "oauth2_refresh_token")
PUBLIC_HOSTS = ("https://api.twitter.com", "https://api.x.com")  # what tweepy (and we) put in URLs
TOKEN_PATH = "/2/oauth2/token"
MEDIA_PATH = "/2/media/upload"


# --- the API session ------------------------------------------------------------------------------

class _Reroute(HTTPAdapter):
    """Sends requests for tweepy's hard-coded hosts to the account's ``api_base``, with our timeouts."""

    def __init__(self, api_base: str, timeout: float):
        super().__init__(max_retries=0)
        self.api_base, self.timeout = api_base.rstrip("/"), timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        for host in PUBLIC_HOSTS:
            if url.startswith(host + "/") and not url.startswith(self.api_base + "/"):
                request.url = self.api_base + url[len(host):]
                kwargs["proxies"] = get_environ_proxies(request.url)  # proxies of the real destination
                break
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (min(5.0, self.timeout), self.timeout)
        return super().send(request, **kwargs)


class _Api:
    """One tweepy ``Client`` for one attempt: auth chosen from the credentials, errors mapped to ours."""

    def __init__(self, ctx: DeliveryContext):
        self.ctx, self.account = ctx, ctx.account
        if all(self.account.has_secret(k) for k in OAUTH1):
            self.oauth2 = None
            self.client = tweepy.Client(**{k: self.account.secret(k) for k in OAUTH1})
        elif all(self.account.has_secret(k) for k in OAUTH2):
            self.oauth2 = OAuth2Tokens(ctx)
            self.client = tweepy.Client(bearer_token=self.oauth2.access_token())
        else:
            raise PermanentError(f"account {self.account.name!r}: configure consumer_key, consumer_secret, "
                                 "access_token and access_token_secret (OAuth 1.0a) or client_id and "
                                 "oauth2_refresh_token (OAuth 2.0)")
        adapter = _Reroute(self.account.api_base, ctx.timeout)
        for host in PUBLIC_HOSTS:
            self.client.session.mount(host, adapter)

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.session.close()

    def call(self, what: str, fn: Callable[[tweepy.Client, bool], Any], *, write: bool) -> Any:
        """``fn(client, user_auth)``; with OAuth 2.0 a 401 refreshes the token once and retries once."""
        for attempt in (1, 2):
            try:
                return fn(self.client, self.oauth2 is None)
            except tweepy.Unauthorized as e:
                if self.oauth2 is not None and attempt == 1:
                    self.client.bearer_token = self.oauth2.refresh(failed=self.client.bearer_token)
                    continue
                raise self.error(e, what, write) from None
            except tweepy.HTTPException as e:
                raise self.error(e, what, write) from None
            except requests.RequestException as e:
                raise network_error(e, write) from None
        raise AssertionError("unreachable")

    def create(self, text: str, media_ids: list[str] | None, reply_to: str | None) -> str:
        def fn(client: tweepy.Client, user_auth: bool) -> str:
            resp = client.create_tweet(text=text, media_ids=media_ids, in_reply_to_tweet_id=reply_to,
                                       user_auth=user_auth)
            try:
                return str(resp.data["id"])
            except (KeyError, TypeError):
                raise Ambiguous("X accepted the post but its answer has no post id") from None

        return self.call("the post", fn, write=True)

    def upload(self, image: Image) -> str:
        """``POST /2/media/upload`` (one shot) over the client's session and auth (tweepy has no v2 upload)."""
        def fn(client: tweepy.Client, user_auth: bool) -> str:
            auth = tweepy.OAuth1UserHandler(client.consumer_key, client.consumer_secret, client.access_token,
                                            client.access_token_secret).apply_auth() if user_auth else None
            headers = {"User-Agent": client.user_agent}
            if not user_auth:
                headers["Authorization"] = f"Bearer {client.bearer_token}"
            media = (image.filename, image.data, image.content_type)
            with client.session.post(PUBLIC_HOSTS[0] + MEDIA_PATH, files={"media": media},
                                     data={"media_category": "tweet_image"}, headers=headers, auth=auth) as resp:
                raise_for_status(resp)
                media_id = (json_body(resp).get("data") or {}).get("id")
            if not media_id:
                raise TransientError("X answered the image upload without a media id")
            return str(media_id)

        return self.call("the image upload", fn, write=False)

    def error(self, e: tweepy.HTTPException, what: str, write: bool) -> DeliveryError:
        resp = e.response
        status = resp.status_code
        detail = "; ".join(str(m) for m in e.api_messages) or str(resp.reason or "")
        message = self.ctx.redact(f"X answered HTTP {status} to {what}: {short(detail)}")
        if status == 429:
            return RateLimited(message, retry_after=reset_in(resp.headers), status=status)
        if status == 403 and ("duplicate" in detail.lower() or 187 in e.api_codes):
            return Duplicate(message, status=status)
        if status == 401:
            if self.oauth2 is not None:
                return AuthExpired(message, status=status)
            return PermanentError(f"{message}; re-authorise account {self.account.name!r}", status=status)
        if status in (502, 504) and write:
            return Ambiguous(message, status=status)
        if status >= 500:
            return TransientError(message, status=status)
        return PermanentError(message, status=status)


_STATUS_ERRORS = {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden, 404: tweepy.NotFound,
                  429: tweepy.TooManyRequests}


def raise_for_status(resp: requests.Response) -> None:
    """tweepy's own exception for a non-2xx answer to a request we made on its session."""
    if not 200 <= resp.status_code < 300:
        cls = _STATUS_ERRORS.get(resp.status_code) or (
            tweepy.TwitterServerError if resp.status_code >= 500 else tweepy.HTTPException)
        raise cls(resp)


def reset_in(headers: Any, default: float = 900.0) -> float:
    """Seconds until the exhausted window resets (the 15-min one, or a 24-hour one at 0 remaining)."""
    resets = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        value = headers.get(f"{prefix}-reset")
        if value and (prefix == "x-rate-limit" or headers.get(f"{prefix}-remaining") == "0"):
            try:
                resets.append(float(value))
            except ValueError:
                pass
    return max(0.0, max(resets) - time.time()) if resets else default


def network_error(e: requests.RequestException, write: bool) -> DeliveryError:
    """Same rule as ``base.send``: failed before sending is transient; after, a write is ambiguous."""
    after = Ambiguous if write else TransientError
    if isinstance(e, requests.ConnectTimeout):
        return TransientError("could not connect to X (timeout)")
    if isinstance(e, requests.ReadTimeout):
        return after("no answer from X before the timeout; the request may have been received")
    if isinstance(e, requests.ConnectionError):
        text = repr(e)
        before = any(s in text for s in ("NewConnectionError", "Connection refused", "NameResolution",
                                         "Failed to resolve", "Max retries exceeded"))
        if before and "RemoteDisconnected" not in text and "Connection aborted" not in text:
            return TransientError("could not connect to X")
        return after("the connection to X was dropped; the request may have been received")
    if isinstance(e, requests.JSONDecodeError):
        return after("X answered without readable JSON")
    return TransientError(f"HTTP request to X failed: {type(e).__name__}")


# --- OAuth 2.0 tokens -----------------------------------------------------------------------------

class OAuth2Tokens:
    """The account's OAuth 2.0 token pair, shared by all workers in Redis.

    X refresh tokens are single-use: each refresh returns a new one and kills the old, so the new pair
    is written to Redis the moment it arrives, before the access token is used, under a lock so only
    one worker refreshes. ``seed`` (a digest of the configured refresh token) lets an operator
    re-authorise by putting a new token in the config: a record from an older seed is ignored.
    """

    def __init__(self, ctx: DeliveryContext):
        if ctx.redis is None or ctx.keys is None:
            raise PermanentError("X OAuth 2.0 needs Redis to keep the rotating refresh token")
        self.ctx, self.redis, self.account = ctx, ctx.redis, ctx.account
        self.key = ctx.keys.token(self.account.name)
        self.lock_key = ctx.keys.token_lock(self.account.name)
        self.seed = hashlib.sha256(self.account.secret("oauth2_refresh_token").encode()).hexdigest()[:16]

    def _load(self) -> dict[str, Any]:
        raw = self.redis.get(self.key)
        rec = json.loads(raw) if raw else {}
        return rec if rec.get("seed") == self.seed else {}

    def access_token(self) -> str:
        rec = self._load()
        if rec.get("access_token") and float(rec.get("expires_at", 0)) > time.time() + 60:
            return rec["access_token"]
        return self.refresh()

    def refresh(self, failed: str | None = None) -> str:
        lock = self.redis.lock(self.lock_key, timeout=max(30.0, 3 * self.ctx.timeout),
                               blocking_timeout=self.ctx.timeout + 5)
        if not lock.acquire():
            raise TransientError("another worker is refreshing the X token")
        try:
            rec = self._load()
            current = rec.get("access_token")
            if current and current != failed and float(rec.get("expires_at", 0)) > time.time() + 60:
                return current  # refreshed by another worker meanwhile
            data = self._request(rec.get("refresh_token") or self.account.secret("oauth2_refresh_token"))
            rec = {"seed": self.seed, "access_token": data["access_token"],
                   "refresh_token": data.get("refresh_token") or rec.get("refresh_token"),
                   "expires_at": time.time() + float(data.get("expires_in") or 7200)}
            self.redis.set(self.key, json.dumps(rec))  # before any use: the old refresh token is spent
            self.ctx.step("X OAuth 2.0 token refreshed")
            return rec["access_token"]
        finally:
            try:
                lock.release()
            except LockError:  # the lock expired meanwhile: nothing to release
                pass

    def _request(self, refresh_token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        auth = None
        if self.account.has_secret("client_secret"):  # confidential client: HTTP Basic
            auth = (self.account.secret("client_id"), self.account.secret("client_secret"))
        else:
            form["client_id"] = self.account.secret("client_id")
        resp = send(self.ctx, "POST", self.account.api_base + TOKEN_PATH, data=form, auth=auth)
        body = json_body(resp)
        if resp.status_code == 200 and body.get("access_token"):
            return body
        detail = body.get("error_description") or body.get("error") or body.get("detail") or resp.reason
        message = self.ctx.redact(f"X answered HTTP {resp.status_code} to the token refresh: {short(str(detail))}")
        if resp.status_code == 429:
            raise RateLimited(message, retry_after=reset_in(resp.headers), status=429)
        if resp.status_code >= 500:
            raise TransientError(message, status=resp.status_code)
        raise PermanentError(f"{message}; re-authorise account {self.account.name!r}", status=resp.status_code)
