"""Facebook Page: one Page post per share — a link post (``/{page-id}/feed``) or a photo post
(``/{page-id}/photos``; several photos: unpublished uploads attached to one ``/feed`` post).

Set-up: a Meta app with ``pages_manage_posts``, ``pages_read_engagement`` and ``pages_show_list``; the
Page's id in ``options.page_id``. Credential ``access_token`` is either the **Page token** (default,
``options.token = "page"``) or a **user token** (``options.token = "user"``): sharer then fetches the
Page token (``GET /{page-id}?fields=access_token``) once for all workers through the shared token
store, and fetches a fresh one when Facebook says the token expired (190/102).

Quirks (fact sheet §8):
- Errors are ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``; the class is
  read from ``code`` (506 duplicate post; 4/17/32/341 rate limits with ``X-App-Usage`` /
  ``X-Business-Use-Case-Usage`` saying when access comes back; 190/102 token).
- No idempotency key. ``find_existing`` reads the Page feed since the first send (``since``, all pages)
  and matches the article link: found → delivered; the whole window read and nothing → absent; a
  lookup that could not cover the window raises (needs review). A 506 duplicate is settled the same way.
- The Graph API version is ``options.api_version`` (versions retire: update it as Meta does).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, choose_images, fit, tag_url
from ..errors import Ambiguous, AuthExpired, DeliveryError, Duplicate, PermanentError, RateLimited, TransientError
from ..store.tokens import Grant, seed_of
from ..text import count_chars
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, Sandbox

MESSAGE_LIMIT = 63_206  # Facebook's post text limit; articles never come close
POST_AS = ("link", "photo")
SKEW = 600.0  # seconds of clock difference allowed when reading the feed "since" the first send
FEED_PAGES = 10


def _rate(minutes_default: float) -> Rule:
    return Rule(RateLimited, "Facebook: too many calls ({message})", retry_after=minutes_default * 60)


ERRORS = ErrorTable(codes={
    1: Rule(TransientError, "Facebook: unknown error, retrying ({message})"),
    2: Rule(TransientError, "Facebook: service error, retrying ({message})"),
    4: _rate(5), 17: _rate(5), 32: _rate(5), 341: _rate(5), 613: _rate(5),
    368: Rule(PermanentError, "Facebook: the Page is temporarily blocked from posting for a policy reason; "
                              "check the Page's Support Inbox ({message})"),
    506: Rule(Duplicate, "Facebook: duplicate post ({message})"),
    190: Rule(AuthExpired, "Facebook: the access token expired or was revoked — issue a new one ({message})"),
    102: Rule(AuthExpired, "Facebook: the session is not valid — issue a new token ({message})"),
    10: Rule(PermanentError, "Facebook: permission missing — the token needs pages_manage_posts ({message})"),
    100: Rule(PermanentError, "Facebook: invalid parameter ({message})"),
    1609005: Rule(PermanentError, "Facebook could not read the article link ({message})"),
}, other_code=Rule(PermanentError, "Facebook refused the post ({message})"))


def error_rule(code: int) -> int:
    """Permission errors are the whole 200–299 range."""
    return 10 if 200 <= code <= 299 else code


@dataclass(frozen=True)
class FacebookOptions(Options):
    page_id: str = ""
    token: str = "page"            # "page": the credential is the Page token; "user": fetch it with a user token
    api_version: str = "v21.0"
    post_as: str = "link"          # link: /feed with the article link; photo: /photos with the image
    images: int = 1                # photo posts: attach up to this many (the lead, then the body's)
    page_token_seconds: int = 86400  # how long a fetched Page token is reused before asking again

    def check(self) -> FacebookOptions:
        if not self.page_id.isdigit():
            raise OptionError("page_id", f"must be the Page's numeric id, got {self.page_id!r}")
        if self.token not in ("page", "user"):
            raise OptionError("token", f"must be page or user, got {self.token!r}")
        if self.post_as not in POST_AS:
            raise OptionError("post_as", f"must be one of {', '.join(POST_AS)}, got {self.post_as!r}")
        if not 1 <= self.images <= Facebook.spec.limits.media:
            raise OptionError("images", f"must be 1 to {Facebook.spec.limits.media}, got {self.images}")
        return self


class Facebook(Platform[FacebookOptions]):
    spec = PlatformSpec(
        id="facebook", title="Facebook Page", api_base="https://graph.facebook.com",
        limits=Limits(MESSAGE_LIMIT, "characters", count_chars, media=10),
        options=FacebookOptions,
        credentials=Credentials(required=("access_token",)),
        sandbox=Sandbox("sharer.sandbox.facebook:FacebookEmulator", 8912),
        demo=(Demo(options={"page_id": "1000000000000001", "token": "user"}),
              Demo(suffix="-photos", options={"page_id": "1000000000000001", "post_as": "photo", "images": 3})),
    )

    # --- compose (pure) ---------------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        warnings: list[str] = []
        photo = self.options.post_as == "photo"
        if text is not None:
            message = text.strip()
            self.check_override(message, count_chars(message), MESSAGE_LIMIT)
        else:  # a link post shows the link as a card: the text need not repeat it, a photo post must
            template = self.template if photo or self.account.template else "{title}\n\n{summary}"
            message = fit(template, article_values(article, url), count=count_chars, limit=MESSAGE_LIMIT,
                          drop_order=("summary",)).text
        attached, offered = choose_images(article, self.options.images if photo else 0, self.spec.limits.media)
        if photo and not attached:
            warnings.append("no image in the article: posted as a link post")
        payload: dict[str, Any] = {"message": message, "link": url, "photos": [i.url for i in attached]}
        return Post(self.id, self.account.name, message, payload, count_chars(message), MESSAGE_LIMIT, self.unit,
                    tuple(warnings), tuple(i.url for i in attached), offered)

    # --- the wire ---------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.account.api_base.rstrip('/')}/{self.options.api_version}/{path}"

    def _page_token(self, ctx: DeliveryContext, failed: str | None = None) -> str:
        if self.options.token == "page":
            return self.account.secret("access_token")
        user = self.account.secret("access_token")

        def fetch(_: str | None) -> Grant:
            resp = send(ctx, "GET", self._url(self.options.page_id), idempotent=True,
                        params={"fields": "access_token"}, headers={"Authorization": f"Bearer {user}"})
            data = json_body(resp)
            if resp.status_code != 200 or not data.get("access_token"):
                raise self._error(ctx, "the Page token request", resp, data)
            ctx.step("Page access token fetched with the user token")
            return Grant(str(data["access_token"]), float(self.options.page_token_seconds))

        shared = ctx.shared_token(fetch, seed=seed_of(user), margin=60.0)
        return shared.refresh(failed=failed) if failed else shared.get()

    def _call(self, ctx: DeliveryContext, method: str, path: str, what: str, *, idempotent: bool = False,
              **kwargs: Any) -> dict[str, Any]:
        """One Graph call with the Page token; a fetched token that expired is refreshed once."""
        token = self._page_token(ctx)
        for attempt in (1, 2):  # the second only after a fetched Page token was replaced
            resp = send(ctx, method, self._url(path), idempotent=idempotent,
                        headers={"Authorization": f"Bearer {token}"}, **kwargs)
            data = json_body(resp)
            if resp.status_code == 200 and "error" not in data:
                return data
            err = self._error(ctx, what, resp, data)
            if isinstance(err, AuthExpired) and self.options.token == "user" and attempt == 1:
                token = self._page_token(ctx, failed=token)
                continue
            raise err
        raise AssertionError("unreachable")

    def _error(self, ctx: DeliveryContext, what: str, resp: Any, data: dict[str, Any]) -> DeliveryError:
        raw = data.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        detail = error.get("message") or short(resp.text) or f"HTTP {resp.status_code}"
        message = ctx.redact(f"{what}: HTTP {resp.status_code}: {short(str(detail))}")
        if code is None or resp.status_code >= 500 and code not in (1, 2):
            return ERRORS.for_response(resp, f"Facebook: {message}")
        err = ERRORS.for_code(error_rule(code), message, status=resp.status_code)
        if isinstance(err, RateLimited):
            err.retry_after = _regain(resp, err.retry_after)
        err.code = code
        return err

    # --- delivery ---------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        photos = list(post.payload.get("photos") or [])
        ctx.state.setdefault("sent_at", time.time())  # find_existing reads the feed from here on
        ctx.save_state()
        if len(photos) == 1:
            data = self._call(ctx, "POST", f"{self.options.page_id}/photos", "photo post",
                              data={"url": photos[0], "caption": post.payload["message"], "published": "true"})
            post_id = str(data.get("post_id") or data.get("id") or "")
        elif photos:
            media = [self._unpublished(ctx, url, n) for n, url in enumerate(photos)]
            data = self._call(ctx, "POST", f"{self.options.page_id}/feed", "post", data={
                "message": post.payload["message"], "attached_media": json.dumps([{"media_fbid": m} for m in media])})
            post_id = str(data.get("id") or "")
        else:
            data = self._call(ctx, "POST", f"{self.options.page_id}/feed", "post",
                              data={"message": post.payload["message"], "link": post.payload["link"]})
            post_id = str(data.get("id") or "")
        if not post_id:
            raise Ambiguous("Facebook answered without a post id", status=200)
        return Receipt(post_id, f"https://www.facebook.com/{post_id}")

    def _unpublished(self, ctx: DeliveryContext, url: str, n: int) -> str:
        """Photo ``n`` uploaded unpublished once per delivery (its id survives retries)."""
        key = f"photo_{n}"
        if not ctx.state.get(key):
            data = self._call(ctx, "POST", f"{self.options.page_id}/photos", "photo upload", idempotent=True,
                              data={"url": url, "published": "false"})
            ctx.state[key] = str(data["id"])
            ctx.save_state()
            ctx.step(f"photo {n + 1} uploaded (unpublished, {ctx.state[key]})")
        return str(ctx.state[key])

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """The Page feed since the first send, every page, matched on the article link."""
        sent_at = ctx.state.get("sent_at")
        if sent_at is None:
            return None  # saved before the first request: without it nothing was ever sent
        url = str(post.payload.get("link") or "")
        params: dict[str, Any] | None = {"fields": "id,message,link,created_time", "limit": 100,
                                         "since": int(float(sent_at) - SKEW)}
        path = f"{self.options.page_id}/feed"
        for _ in range(FEED_PAGES):
            data = self._call(ctx, "GET", path, "the Page feed", idempotent=True, params=params)
            for item in data.get("data") or []:
                if url and (item.get("link") == url or url in str(item.get("message") or "")):
                    return Receipt(str(item["id"]), f"https://www.facebook.com/{item['id']}")
                if not url and item.get("message") == post.payload.get("message"):
                    return Receipt(str(item["id"]), f"https://www.facebook.com/{item['id']}")
            after = ((data.get("paging") or {}).get("cursors") or {}).get("after")
            if not (data.get("paging") or {}).get("next") or not after:
                return None  # the whole window was read
            params = {**(params or {}), "after": after}
        raise Ambiguous(f"the Page feed since the first send is longer than {FEED_PAGES * 100} posts")

    def check_credentials(self, ctx: DeliveryContext) -> str:
        data = self._call(ctx, "GET", self.options.page_id, "the Page", idempotent=True, params={"fields": "name"})
        return f"Page {data.get('name') or self.options.page_id}"


def _regain(resp: Any, default: float) -> float:
    """Seconds until access returns, from ``X-Business-Use-Case-Usage`` / ``X-App-Usage`` (minutes)."""
    for header in ("X-Business-Use-Case-Usage", "X-App-Usage"):
        try:
            usage = json.loads(resp.headers.get(header) or "null")
        except ValueError:
            continue
        found = _find_minutes(usage)
        if found is not None:
            return max(60.0, found * 60.0)
    return default


def _find_minutes(value: Any) -> float | None:
    """The first positive ``estimated_time_to_regain_access`` anywhere in the usage JSON."""
    if isinstance(value, dict):
        wait = value.get("estimated_time_to_regain_access")
        if isinstance(wait, (int, float)) and wait > 0:
            return float(wait)
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _find_minutes(item)
            if found is not None:
                return found
    return None
