"""LinkedIn organisation posts: one ``POST /rest/posts`` per share with an article card.

Set-up: a LinkedIn app with the Community Management API (scope ``w_organization_social``, plus
``r_organization_social`` for the reconciliation lookup); the posting member must be an admin or
content admin of the Page. Store the OAuth access token as credential ``access_token``; apps approved
for refresh tokens also store ``refresh_token``, ``client_id`` and ``client_secret``, and sharer then
renews the access token (for every worker at once) before it runs out. ``options.author`` is the
organisation URN (``urn:li:organization:ID``; a member URN works with ``w_member_social``).

Quirks (fact sheet §7):
- Versioned API: ``LinkedIn-Version: YYYYMM`` (``options.version``; versions sunset about yearly,
  426 when one is gone) and ``X-Restli-Protocol-Version: 2.0.0`` on every call.
- ``commentary`` ≤ 3,000 characters in the "little" text format: the reserved characters
  ``\\ | { } @ [ ] ( ) < > # * _ ~`` are backslash-escaped (LinkedIn silently cuts the post at the
  first unescaped one); hashtags stay ``#Tag``. The length is counted on the escaped text, as sent.
- 201 with an empty body: the post URN is in the ``x-restli-id`` header.
- No idempotency key. ``find_existing`` reads the author's posts since the first send and matches the
  article link; a 422 duplicate that names the earlier post settles to it (wording unverified).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..article import Article
from ..compose import article_values, fit, hashtag, render_template, tag_url
from ..errors import Ambiguous, AuthExpired, ComposeError, DeliveryError, Duplicate, PermanentError
from ..media import fetch_image
from ..store.tokens import Grant, seed_of
from ..text import count_chars, trim
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

LIMIT = 3000
RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
HASHTAG = re.compile(r"(?<!\S)#\w+")
POST_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif")
SKEW_MS = 600_000
LOOKUP_PAGES = 10

ERRORS = ErrorTable(statuses={
    401: Rule(AuthExpired, "LinkedIn: the access token expired or was revoked — re-authorise the app and update "
                           "credentials.access_token ({message})"),
    403: Rule(PermanentError, "LinkedIn: not allowed — the token needs w_organization_social and the member a "
                              "Page admin role ({message})"),
    426: Rule(PermanentError, "LinkedIn: API version no longer served — set options.version to a current "
                              "YYYYMM ({message})"),
})


def escape(text: str) -> str:
    """The little text format: every reserved character backslash-escaped."""
    return RESERVED.sub(r"\\\1", text)


def escape_keeping_hashtags(text: str) -> str:
    """An editor's text: escaped, except ``#word`` hashtags, which stay hashtags."""
    out, pos = [], 0
    for m in HASHTAG.finditer(text):
        out += [escape(text[pos:m.start()]), "#" + escape(m.group()[1:])]
        pos = m.end()
    return "".join([*out, escape(text[pos:])])


@dataclass(frozen=True)
class LinkedInOptions(Options):
    author: str = ""                 # urn:li:organization:ID (or urn:li:person:ID)
    version: str = "202611"          # LinkedIn-Version (YYYYMM): each is served about a year
    visibility: str = "PUBLIC"
    hashtags: bool = True            # #Tags from the article's tags, while they fit
    thumbnail: bool = True           # upload the lead image as the article card's thumbnail
    max_image_bytes: int = 10_000_000  # unverified: configurable
    oauth_base: str = "https://www.linkedin.com"  # the token endpoint's host ("" = api_base)

    def check(self) -> LinkedInOptions:
        if not re.fullmatch(r"urn:li:(organization|person):\w+", self.author):
            raise OptionError("author", f"must be urn:li:organization:ID or urn:li:person:ID, got {self.author!r}")
        if not re.fullmatch(r"20\d{4}", self.version):
            raise OptionError("version", f"must be YYYYMM, got {self.version!r}")
        if self.visibility not in ("PUBLIC", "CONNECTIONS"):
            raise OptionError("visibility", f"must be PUBLIC or CONNECTIONS, got {self.visibility!r}")
        return self


class LinkedIn(Platform[LinkedInOptions]):
    spec = PlatformSpec(
        id="linkedin", title="LinkedIn", api_base="https://api.linkedin.com",
        limits=Limits(LIMIT, "characters", count_chars, media=1, media_bytes=10_000_000, media_types=MEDIA_TYPES),
        options=LinkedInOptions,
        credentials=Credentials(required=("access_token",), optional=("refresh_token", "client_id", "client_secret")),
        template="{title}\n\n{summary}\n\n{hashtags}",
        rate_limit=RateLimit(150, 86400.0),  # 150 posts/day per member (unverified; an account overrides it)
        sandbox=Sandbox("sharer.sandbox.linkedin:LinkedInEmulator", 8911),
        demo=(Demo(options={"author": "urn:li:organization:2414183", "oauth_base": ""}),),
    )

    # --- compose (pure) ---------------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        warnings: list[str] = []
        if text is not None:
            human, commentary = text.strip(), escape_keeping_hashtags(text.strip())
            self.check_override(commentary, count_chars(commentary), LIMIT)
        else:
            human, commentary = self._render(article, url, warnings)
        card: dict[str, Any] = {"source": url, "title": trim(article.title, 400).text}
        if article.summary:
            card["description"] = trim(article.summary, 4086).text
        payload: dict[str, Any] = {
            "author": self.options.author, "commentary": commentary, "visibility": self.options.visibility,
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "content": {"article": card}, "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False,
        }
        media = (article.image,) if self.options.thumbnail and article.image else ()
        return Post(self.id, self.account.name, human, {**payload, "thumbnail_url": media[0] if media else None},
                    count_chars(commentary), LIMIT, self.unit, tuple(warnings), media)

    def _render(self, article: Article, url: str, warnings: list[str]) -> tuple[str, str]:
        tags = [t for t in dict.fromkeys(map(hashtag, article.tags)) if t] if self.options.hashtags else []

        def wire(v: Mapping[str, str]) -> str:
            return render_template(self.template, {k: (x if k == "hashtags" else escape(x)) for k, x in v.items()})

        values = {**article_values(article, url), "hashtags": " ".join(escape_keeping_hashtags(t) for t in tags)}
        fitted = fit(wire, values, count=count_chars, limit=LIMIT, drop_order=("hashtags", "summary", "title"),
                     field_count=lambda s: count_chars(escape(s)))
        if not fitted.fits:
            raise ComposeError(self.account.name, f"the template alone is {fitted.length} characters; the limit "
                               f"is {LIMIT}")
        warnings += [f"{name} trimmed to fit LinkedIn's {LIMIT} characters" for name in fitted.cut]
        warnings += [f"{name} left out: no room" for name in fitted.dropped]
        human = render_template(self.template, {**fitted.values, "hashtags": " ".join(tags)
                                                if fitted.values.get("hashtags") else ""})
        return human, fitted.text

    # --- the wire ---------------------------------------------------------------------------------

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "LinkedIn-Version": self.options.version,
                "X-Restli-Protocol-Version": "2.0.0"}

    def _refreshes(self) -> bool:
        return all(self.account.has_secret(k) for k in ("refresh_token", "client_id", "client_secret"))

    def _token(self, ctx: DeliveryContext, failed: str | None = None) -> str:
        if not self._refreshes():
            return self.account.secret("access_token")
        refresh = self.account.secret("refresh_token")

        def fetch(spend: str | None) -> Grant:
            base = self.options.oauth_base or self.account.api_base
            resp = send(ctx, "POST", f"{base}/oauth/v2/accessToken", idempotent=True, data={
                "grant_type": "refresh_token", "refresh_token": spend or refresh,
                "client_id": self.account.secret("client_id"), "client_secret": self.account.secret("client_secret")})
            data = json_body(resp)
            if resp.status_code != 200 or not data.get("access_token"):
                detail = ctx.redact(short(str(data.get("error_description") or data.get("error") or resp.text)))
                if resp.status_code in (400, 401):
                    raise AuthExpired(f"LinkedIn: the refresh token was refused ({detail}): re-authorise the app")
                raise ERRORS.for_response(resp, f"LinkedIn token refresh: HTTP {resp.status_code}: {detail}")
            return Grant(str(data["access_token"]), float(data.get("expires_in") or 5_184_000),
                         data.get("refresh_token"))

        shared = ctx.shared_token(fetch, seed=seed_of(refresh), refresh_token=refresh)
        return shared.refresh(failed=failed) if failed else shared.get()

    def _call(self, ctx: DeliveryContext, method: str, url: str, what: str, *, idempotent: bool = False,
              **kwargs: Any) -> Any:
        """One REST call; an expired token is renewed once when refresh credentials are configured."""
        token = self._token(ctx)
        extra = kwargs.pop("headers", {})
        for attempt in (1, 2):  # the second only after a renewed token
            resp = send(ctx, method, url, idempotent=idempotent, headers={**self._headers(token), **extra}, **kwargs)
            if resp.status_code < 300:
                return resp
            err = self._error(ctx, what, resp)
            if isinstance(err, AuthExpired) and self._refreshes() and attempt == 1:
                token = self._token(ctx, failed=token)
                continue
            raise err
        raise AssertionError("unreachable")

    def _error(self, ctx: DeliveryContext, what: str, resp: Any) -> DeliveryError:
        data = json_body(resp)
        detail = str(data.get("message") or short(resp.text) or f"HTTP {resp.status_code}")
        message = ctx.redact(f"{what}: HTTP {resp.status_code}: {short(detail)}")
        code = data.get("code") or data.get("serviceErrorCode")
        if resp.status_code == 422 and "duplicate" in detail.lower():
            found = POST_URN.search(detail)
            if found:
                ctx.state["duplicate_of"] = found.group()
                ctx.save_state()
            return Duplicate(f"LinkedIn: duplicate post ({message})", code=code, status=422)
        return ERRORS.for_response(resp, f"LinkedIn {message}", code=code)

    # --- delivery ---------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        body = {k: v for k, v in post.payload.items() if k != "thumbnail_url"}
        if post.payload.get("thumbnail_url"):
            body["content"] = {"article": {**body["content"]["article"],
                                           "thumbnail": self._thumbnail(ctx, str(post.payload["thumbnail_url"]))}}
        ctx.state.setdefault("sent_at", time.time())  # find_existing reads the posts from here on
        ctx.save_state()
        resp = self._call(ctx, "POST", f"{self.account.api_base}/rest/posts", "post", json=body)
        urn = resp.headers.get("x-restli-id")
        if resp.status_code != 201 or not urn:
            raise Ambiguous(f"LinkedIn answered HTTP {resp.status_code} without x-restli-id", status=resp.status_code)
        return self.receipt(urn)

    @staticmethod
    def receipt(urn: str) -> Receipt:
        return Receipt(urn, f"https://www.linkedin.com/feed/update/{urn}/")

    def _thumbnail(self, ctx: DeliveryContext, url: str) -> str:
        """The lead image as an image URN: initializeUpload, PUT the bytes (once per delivery)."""
        if ctx.state.get("thumbnail"):
            return str(ctx.state["thumbnail"])
        image = fetch_image(ctx, url, max_bytes=self.options.max_image_bytes, allowed=MEDIA_TYPES)
        init = self._call(ctx, "POST", f"{self.account.api_base}/rest/images", "image upload", idempotent=True,
                          params={"action": "initializeUpload"},
                          json={"initializeUploadRequest": {"owner": self.options.author}})
        value = json_body(init).get("value") or {}
        if not value.get("uploadUrl") or not value.get("image"):
            raise Ambiguous("LinkedIn's initializeUpload answer has no uploadUrl/image")
        self._call(ctx, "PUT", str(value["uploadUrl"]), "image bytes", idempotent=True, data=image.data,
                   headers={"Content-Type": image.content_type})
        ctx.state["thumbnail"] = str(value["image"])
        ctx.save_state()
        ctx.step(f"thumbnail uploaded ({value['image']})")
        return str(value["image"])

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """A duplicate answer's URN, else the author's posts since the first send, matched on the link."""
        if ctx.state.get("duplicate_of"):
            return self.receipt(str(ctx.state["duplicate_of"]))
        sent_at = ctx.state.get("sent_at")
        if sent_at is None:
            return None  # saved before the first request: without it nothing was ever sent
        since_ms = float(sent_at) * 1000 - SKEW_MS
        source = ((post.payload.get("content") or {}).get("article") or {}).get("source")
        url = f"{self.account.api_base}/rest/posts?q=author&author={quote(self.options.author)}&sortBy=CREATED"
        for page in range(LOOKUP_PAGES):
            resp = self._call(ctx, "GET", url, "the author's posts", idempotent=True,
                              params={"count": 50, "start": page * 50},
                              headers={"X-RestLi-Method": "FINDER"})
            elements = json_body(resp).get("elements") or []
            for el in elements:
                if ((el.get("content") or {}).get("article") or {}).get("source") == source and source:
                    return self.receipt(str(el["id"]))
            if len(elements) < 50 or any(float(el.get("createdAt") or 0) < since_ms for el in elements):
                return None  # the whole window was read
        raise Ambiguous(f"more than {LOOKUP_PAGES * 50} LinkedIn posts since the first send")
