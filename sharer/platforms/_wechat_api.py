"""One WeChat API call: the shared access token, the auth retry, errcodes mapped to our error classes.

Quirks handled here once: errors come as HTTP 200 ``{"errcode","errmsg"}`` and success bodies may omit
errcode; bodies must be raw UTF-8 JSON (``requests``' ``json=`` sends ``\\uXXXX`` escapes, which WeChat
rejects). The ``stable_token`` is a ``SharedToken`` (cached in Redis and shared by every worker, one
refresher at a time, a rejected token retired only if the cache still holds it; fact sheet §1.1), and
errcodes are read through one ``ErrorTable`` (§1.6).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..errors import Ambiguous, AuthExpired, DeliveryError, Duplicate, PermanentError, RateLimited, TransientError
from ..store.tokens import Grant, seed_of
from .base import DeliveryContext
from .http import ErrorTable, Rule, json_body, send, short

if TYPE_CHECKING:
    from ..config.settings import Account
    from ..media import Image

AUTH_CODES = frozenset({40001, 40014, 42001})
TOKEN_MARGIN = 300.0  # refresh when fewer than 5 minutes remain (WeChat's own overlap window)
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
CHINA = timezone(timedelta(hours=8))  # daily API quotas reset at midnight Beijing time


MEANINGS = {
    -1: "system busy", 40001: "invalid credential", 40003: "invalid openid", 40004: "invalid media type",
    40005: "invalid file type", 40007: "invalid media_id", 40009: "invalid image size", 40013: "invalid appid",
    40014: "invalid access_token", 40033: "invalid charset", 40130: "invalid openid list",
    40164: "server IP not in the whitelist",
    41001: "access_token missing", 42001: "access_token expired", 43004: "the recipient does not follow the account",
    45002: "content size out of limit",
    45003: "title size out of limit", 45004: "digest size out of limit", 45009: "daily API quota reached",
    45011: "per-minute API quota reached", 45028: "no mass-send quota left", 45065: "clientmsgid already used",
    45066: "mass send retried too fast", 45067: "clientmsgid too long", 45110: "author size out of limit",
    45166: "invalid content (WeChat rejects links to external sites and some markup)",
    47001: "data format error", 48001: "API not authorised for this account", 48004: "API banned",
    50002: "user limited", 53503: "the draft failed the publish check",
    53504: "this draft must be published in the web console",
    53505: "save this draft manually in the web console first",
}


class WxApi:
    """The calls every WeChat flow makes; one per account (cheap to build)."""

    def __init__(self, account: Account):
        self.account = account

    # --- access token (shared by every worker through Redis) --------------------------------------

    def access_token(self, ctx: DeliveryContext, *, failed: str | None = None) -> str:
        """The cached token, or a fresh one. ``failed``: a token WeChat just rejected (retired only if
        the cache still holds it, so a token another worker already replaced is not thrown away)."""
        if ctx.redis is None or ctx.keys is None:  # no shared cache (one-off use): fetch each time
            return self.fetch_token(ctx)[0]
        # stable_token without force_refresh answers the current token: no refresh token to rotate
        shared = ctx.shared_token(lambda _refresh: Grant(*self.fetch_token(ctx)), margin=TOKEN_MARGIN,
                                  seed=seed_of(self.account.secret("appid"), self.account.secret("appsecret")))
        return shared.refresh(failed=failed) if failed else shared.get()

    def fetch_token(self, ctx: DeliveryContext) -> tuple[str, float]:
        body = {"grant_type": "client_credential", "appid": self.account.secret("appid"),
                "secret": self.account.secret("appsecret"), "force_refresh": False}
        resp = send(ctx, "POST", self.account.api_base + "/cgi-bin/stable_token", data=utf8(body),
                    headers=JSON_HEADERS, idempotent=True)
        data = json_body(resp)
        code = errcode(data)
        if resp.status_code == 200 and code in (40001, 40013, 40125, 40164):
            raise PermanentError(ctx.redact(f"WeChat refused the credentials: {meaning(code, data)}; check the "
                                            f"appid/appsecret and IP whitelist, then re-authorise account "
                                            f"{self.account.name}"), code=code)
        data = self._check(ctx, resp, data, "access token request", write=False)
        token = need(ctx, data, "access_token", "access token request")
        return str(token), float(data.get("expires_in") or 7200)

    # --- one API call ----------------------------------------------------------------------------

    def call(self, ctx: DeliveryContext, path: str, what: str, body: dict[str, Any] | None, *,
             params: dict[str, str] | None = None, files: dict[str, Any] | None = None,
             write: bool = False, raw: bool = False) -> dict[str, Any]:
        """POST to ``path`` with the access token; on 40001/40014/42001 refresh once and retry once.

        ``raw``: return the body of an errcode answer too (the caller reads e.g. 45065's earlier msg_id)
        instead of raising for it; auth and HTTP errors are still raised.
        """
        token = self.access_token(ctx)
        for attempt in (1, 2):
            kwargs: dict[str, Any] = {"params": {"access_token": token, **(params or {})}}
            if files is not None:
                kwargs["files"] = files
            else:
                kwargs.update(data=utf8(body or {}), headers=JSON_HEADERS)
            resp = send(ctx, "POST", self.account.api_base + path, idempotent=not write, **kwargs)
            data = json_body(resp)
            code = errcode(data)
            if resp.status_code == 200 and code in AUTH_CODES:
                if attempt == 2:
                    raise AuthExpired(ctx.redact(f"WeChat rejected a fresh access token ({meaning(code, data)}): "
                                                 f"re-authorise account {self.account.name}"), code=code)
                ctx.step(f"access token rejected (errcode {code}): refreshing it once")
                token = self.access_token(ctx, failed=token)
                continue
            if raw and resp.status_code == 200 and data:
                return data
            return self._check(ctx, resp, data, what, write=write)
        raise AssertionError("unreachable")

    def _check(self, ctx: DeliveryContext, resp: Any, data: dict[str, Any], what: str, *,
               write: bool) -> dict[str, Any]:
        """HTTP 200 + errcode 0 (or none) → the body; anything else → our error classes."""
        if resp.status_code != 200:
            raise ERRORS.for_response(resp, ctx.redact(f"WeChat {what}: HTTP {resp.status_code} "
                                                       f"{short(resp.text, 200)}"))
        if not data:
            cls = Ambiguous if write else TransientError
            raise cls(f"WeChat {what}: the answer was not JSON", status=200)
        code = errcode(data)
        if code == 0:
            return data
        raise error_for_code(ctx, code, data, what)


def _until_beijing_midnight() -> float:
    """Daily quotas reset at midnight Beijing time (unless someone runs clear_quota)."""
    now = datetime.now(CHINA)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - now).total_seconds())


_REAUTHORISE = Rule(AuthExpired, "{message}: re-authorise account {account}")
ERRORS = ErrorTable(codes={
    -1: Rule(TransientError),
    45011: Rule(RateLimited, retry_after=60.0),  # per-minute quota: next minute
    45066: Rule(RateLimited, retry_after=60.0),  # mass send retried too fast
    45009: Rule(RateLimited, retry_after=_until_beijing_midnight),  # daily API quota
    45028: Rule(RateLimited, retry_after=_until_beijing_midnight),  # no mass-send quota left today
    45065: Rule(Duplicate),  # clientmsgid already used
    **dict.fromkeys(AUTH_CODES, _REAUTHORISE),
})


def error_for_code(ctx: DeliveryContext, code: int, data: dict[str, Any], what: str) -> DeliveryError:
    """Map a WeChat errcode (fact sheet §1.6) to our error classes; the message is redacted."""
    message = ctx.redact(f"WeChat {what} failed: {meaning(code, data)}")
    return ERRORS.for_code(code, message, fields={"account": ctx.account.name})


def errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return 0


def meaning(code: int, data: dict[str, Any]) -> str:
    errmsg = short(str(data.get("errmsg") or ""), 200)
    known = MEANINGS.get(code)
    if known and errmsg and known.split(" (")[0].lower() not in errmsg.lower():
        text = f"{known} — {errmsg}"
    else:
        text = errmsg or known or "error"
    return f"{text} (errcode {code})"


def need(ctx: DeliveryContext, data: dict[str, Any], field: str, what: str) -> Any:
    value = data.get(field)
    if value in (None, ""):
        raise Ambiguous(ctx.redact(f"WeChat {what}: the answer has no {field}: {short(json.dumps(data), 200)}"))
    return value


def media(img: Image) -> dict[str, tuple[str, bytes, str]]:
    """The multipart ``media`` field both upload endpoints take."""
    return {"media": (img.filename, img.data, img.content_type)}


def utf8(body: dict[str, Any]) -> bytes:
    """Raw UTF-8 JSON: WeChat rejects \\uXXXX escapes of non-ASCII characters."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
