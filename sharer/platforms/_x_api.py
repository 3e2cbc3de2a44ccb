"""X's API session for one attempt: tweepy's ``Client`` rerouted to ``api_base`` with our timeouts,
errors mapped through X's ``ErrorTable``, and the rotating OAuth 2.0 token pair shared by all workers
(``SharedToken``: X only supplies the refresh call).

Split from ``x.py`` (composition, delivery, reconciliation), which is what uses it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from ..errors import Ambiguous, DeliveryError, Duplicate, PermanentError, TransientError
from ..media import Image
from ..store.tokens import Grant, SharedToken, seed_of
from .base import DeliveryContext
from .http import ErrorTable, Rule, json_body, network_error, send, short

OAUTH1 = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
OAUTH2 = ("client_id", "oauth2_refresh_token")
PUBLIC_HOSTS = ("https://api.twitter.com", "https://api.x.com")  # what tweepy (and we) put in URLs
TOKEN_PATH = "/2/oauth2/token"
MEDIA_PATH = "/2/media/upload"
MEDIA_LIFETIME = 86400.0  # expires_after_secs when X's answer leaves it out (fact sheet §3.3: ~86400)
DUPLICATE = "duplicate"  # X's 403 for a repeated text ("duplicate content"; v1.1 code 187)

_REAUTHORISE = Rule(PermanentError, "{message}; re-authorise account '{account}'")
# OAuth 2.0: a 401 is an expired access token (refreshed once); the rest is the shared meaning.
ERRORS = ErrorTable(codes={DUPLICATE: Rule(Duplicate)})
# OAuth 1.0a tokens never expire: a 401 means the app's access was revoked.
ERRORS_OAUTH1 = ErrorTable(codes={DUPLICATE: Rule(Duplicate)}, statuses={401: _REAUTHORISE})
# The token endpoint: a refused refresh token means authorising again.
TOKEN_ERRORS = ErrorTable(statuses={400: _REAUTHORISE, 401: _REAUTHORISE, 403: _REAUTHORISE})


@dataclass(frozen=True)
class Uploaded:
    """An uploaded image: its media id and how long X keeps it attachable (seconds from the upload)."""

    media_id: str
    expires_after: float


# --- the API session ------------------------------------------------------------------------------

class _Reroute(HTTPAdapter):
    """Sends requests for tweepy's hard-coded hosts to the account's ``api_base``, with our timeouts."""

    def __init__(self, api_base: str, timeout: float):
        super().__init__(max_retries=0)
        self.api_base, self.timeout = api_base.rstrip("/"), timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float, float] | tuple[float, None] | None = None, verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        url = request.url or ""
        for host in PUBLIC_HOSTS:
            if url.startswith(host + "/") and not url.startswith(self.api_base + "/"):
                request.url = self.api_base + url[len(host):]
                proxies = get_environ_proxies(request.url)  # proxies of the real destination
                break
        if timeout is None:
            timeout = (min(5.0, self.timeout), self.timeout)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


class _Api:
    """One tweepy ``Client`` for one attempt: auth chosen from the credentials, errors mapped to ours."""

    def __init__(self, ctx: DeliveryContext):
        self.ctx, self.account = ctx, ctx.account
        self.oauth2: SharedToken | None = None
        if all(self.account.has_secret(k) for k in OAUTH1):
            self.client = tweepy.Client(**{k: self.account.secret(k) for k in OAUTH1})
        elif all(self.account.has_secret(k) for k in OAUTH2):
            self.oauth2 = oauth2_token(ctx)
            self.client = tweepy.Client(bearer_token=self.oauth2.get())
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
            except requests.JSONDecodeError:  # a 2xx we cannot read: a write may have been made
                raise (Ambiguous if write else TransientError)("X answered without readable JSON") from None
            except requests.RequestException as e:
                raise network_error(e, idempotent=not write, title="X") from None
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

    def upload(self, image: Image) -> Uploaded:
        """``POST /2/media/upload`` (one shot) over the client's session and auth (tweepy has no v2 upload)."""
        def fn(client: tweepy.Client, user_auth: bool) -> Uploaded:
            auth = tweepy.OAuth1UserHandler(client.consumer_key, client.consumer_secret, client.access_token,
                                            client.access_token_secret).apply_auth() if user_auth else None
            headers = {"User-Agent": client.user_agent}
            if not user_auth:
                headers["Authorization"] = f"Bearer {client.bearer_token}"
            media = (image.filename, image.data, image.content_type)
            with client.session.post(PUBLIC_HOSTS[0] + MEDIA_PATH, files={"media": media},
                                     data={"media_category": "tweet_image"}, headers=headers, auth=auth) as resp:
                raise_for_status(resp)
                data = json_body(resp).get("data") or {}
            if not data.get("id"):
                raise TransientError("X answered the image upload without a media id")
            try:
                lifetime = float(data.get("expires_after_secs") or MEDIA_LIFETIME)
            except (TypeError, ValueError):
                lifetime = MEDIA_LIFETIME
            return Uploaded(str(data["id"]), lifetime)

        return self.call("the image upload", fn, write=False)

    def error(self, e: tweepy.HTTPException, what: str, write: bool) -> DeliveryError:
        resp = e.response
        detail = "; ".join(str(m) for m in e.api_messages) or str(resp.reason or "")
        message = self.ctx.redact(f"X answered HTTP {resp.status_code} to {what}: {short(detail)}")
        table = ERRORS if self.oauth2 is not None else ERRORS_OAUTH1
        if resp.status_code == 403 and ("duplicate" in detail.lower() or 187 in e.api_codes):
            return table.for_code(DUPLICATE, message, status=403)
        return table.for_response(resp, message, retry_after=reset_in(resp.headers) if resp.status_code == 429
                                  else None, retry_safe=not write, fields={"account": self.account.name})


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


# --- OAuth 2.0 tokens -----------------------------------------------------------------------------

def oauth2_token(ctx: DeliveryContext) -> SharedToken:
    """The account's OAuth 2.0 access token, shared by all workers. X refresh tokens are single-use:
    ``SharedToken`` stores each new one before the access token is used, one worker refreshing at a
    time. The seed (a digest of the configured refresh token) lets an operator re-authorise by
    putting a new one in the config."""
    account = ctx.account
    configured = account.secret("oauth2_refresh_token")
    seed = seed_of(configured)

    def fetch(refresh_token: str | None) -> Grant:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token or configured}
        auth = None
        if account.has_secret("client_secret"):  # confidential client: HTTP Basic
            auth = (account.secret("client_id"), account.secret("client_secret"))
        else:
            form["client_id"] = account.secret("client_id")
        resp = send(ctx, "POST", account.api_base + TOKEN_PATH, data=form, auth=auth)
        body = json_body(resp)
        if resp.status_code == 200 and body.get("access_token"):
            return Grant(str(body["access_token"]), float(body.get("expires_in") or 7200),
                         body.get("refresh_token") or None)
        detail = body.get("error_description") or body.get("error") or body.get("detail") or resp.reason
        message = ctx.redact(f"X answered HTTP {resp.status_code} to the token refresh: {short(str(detail))}")
        raise TOKEN_ERRORS.for_response(resp, message, retry_after=reset_in(resp.headers)
                                        if resp.status_code == 429 else None, retry_safe=True,
                                        fields={"account": account.name})

    return ctx.shared_token(fetch, seed=seed, refresh_token=_stored_refresh_token(ctx, seed) or configured,
                            margin=60.0)


def _stored_refresh_token(ctx: DeliveryContext, seed: str) -> str | None:
    """The live refresh token of a pair stored by the token store before ``SharedToken`` (same key and
    seed, no ``lifetime``): the configured one is already spent, so an upgrade must start from it."""
    if ctx.redis is None or ctx.keys is None:
        return None
    raw = ctx.redis.get(ctx.keys.token(ctx.account.name))
    try:
        rec = json.loads(raw) if raw else {}
    except ValueError:
        return None
    if not isinstance(rec, dict) or "lifetime" in rec or rec.get("seed") != seed:
        return None
    return str(rec["refresh_token"]) if rec.get("refresh_token") else None
