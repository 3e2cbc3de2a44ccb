"""Mastodon: one status on the account's instance (``POST {api_base}/api/v1/statuses``).

Set-up: Preferences → Development → New application (scopes ``write:statuses write:media read:accounts
read:statuses``); "Your access token" → credential ``access_token``, ``api_base`` = the instance's
``https://`` URL; an instance allowing other than 500 characters → ``options.max_characters``.

Quirks:
- Length = grapheme clusters, a URL counts ``characters_reserved_per_url`` (23), ``@user@domain`` counts
  as ``@user``. Compose (pure) uses the *configured* limit; delivery reads the instance's real one
  (``GET /api/v2/instance``, cached a day) and refuses a status it would reject, naming the setting.
- ``Idempotency-Key`` = the delivery id: Mastodon answers a repeated POST (~1 hour) with the original
  status, so resending after a timeout or dropped connection is safe.
- Images: type/size checked, uploaded with ``POST /api/v2/media`` (may answer 202, ``url: null``);
  ``GET /api/v1/media/:id`` answers 206 until processed — polled with backoff, a bounded number of times.
- ``X-RateLimit-Reset`` is an ISO-8601 timestamp (not epoch seconds)."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..clock import epoch_of
from ..compose import article_values, choose_images, fit, hashtag, render_template, tag_url
from ..errors import Ambiguous, AuthExpired, ComposeError, DeliveryError, PermanentError, TransientError
from ..media import fetch_image
from ..text import count_mastodon as count_status
from ..text import trim
from .base import CLOCK_SLACK, DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, iso_reset_in, json_body, send, short
from .spec import Credentials, Idempotency, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

VISIBILITIES = ("public", "unlisted", "private", "direct")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DESCRIPTION_LIMIT = 1500


@dataclass(frozen=True)
class InstanceLimits:
    max_characters: int
    url_weight: int


# 401 is a revoked or wrong token (Mastodon tokens do not expire on their own); other 4xx are refusals.
ERRORS = ErrorTable(statuses={
    401: Rule(AuthExpired, "{message} — re-authorise the app and update credentials.access_token"),
})


@dataclass(frozen=True)
class MastodonOptions(Options):
    visibility: str = "public"
    language: str = ""                  # ISO 639; empty = the article's lang
    max_characters: int = 500           # the instance's limit (checked against /api/v2/instance at delivery)
    characters_reserved_per_url: int = 23
    hashtags: bool = True               # {hashtags}: #CamelCase from the article tags, while they fit
    image: bool = True                  # attach the article image
    images: int = 1                     # attach up to this many: the lead image, then the body's (max 4)
    image_description: str = ""         # alt text; empty = the article title
    max_image_bytes: int = 16_000_000   # unverified (instance-dependent): configurable
    media_poll_attempts: int = 20
    media_poll_interval: float = 0.1    # the first wait; each next one doubles, up to the max below
    media_poll_max_interval: float = 2.0
    instance_cache_seconds: int = 86400

    def check(self) -> MastodonOptions:
        if self.visibility not in VISIBILITIES:
            raise OptionError("visibility", f"must be one of {', '.join(VISIBILITIES)}, got {self.visibility!r}")
        if not 1 <= self.images <= Mastodon.spec.limits.media:
            raise OptionError("images", f"must be 1 to {Mastodon.spec.limits.media}, got {self.images}")
        for key in ("max_characters", "characters_reserved_per_url", "max_image_bytes", "media_poll_attempts"):
            if getattr(self, key) < 1:
                raise OptionError(key, "must be a positive whole number")
        return self


class Mastodon(Platform[MastodonOptions]):
    spec = PlatformSpec(
        id="mastodon", title="Mastodon", api_base="https://mastodon.social",
        limits=Limits(500, "characters", count_status, media=4, media_bytes=16_000_000, media_types=MEDIA_TYPES),
        options=MastodonOptions,
        credentials=Credentials(required=("access_token",)),
        template="{title}\n\n{summary}\n\n{url}\n\n{hashtags}",
        rate_limit=RateLimit(300, 300.0),  # 300 requests / 5 min per account
        idempotency=Idempotency.KEY,       # Idempotency-Key = the delivery id
        sandbox=Sandbox("sharer.sandbox.mastodon:MastodonEmulator", 8905),
    )

    # --- compose (pure) ---------------------------------------------------------------------------

    def count(self, text: str) -> int:
        return count_status(text, self.options.characters_reserved_per_url)

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        limit = self.options.max_characters
        warnings: list[str] = []
        if text is not None:
            status = text.strip()
            self.check_override(status, self.count(status), limit)
        else:
            status = self._render(article, url, limit, warnings)
        payload: dict[str, Any] = {"status": status, "visibility": self.options.visibility}
        language = self.options.language or article.lang
        if language:
            payload["language"] = language
        # Not wire fields: the images to upload (their media ids join the status at delivery) and the
        # tagged article URL that find_existing looks for.
        attached, offered = choose_images(article, self.options.images if self.options.image else 0,
                                          self.spec.limits.media)
        media = [{"url": i.url, "description": trim((self.options.image_description if n == 0 else "") or i.alt,
                                                    DESCRIPTION_LIMIT).text} for n, i in enumerate(attached)]
        payload["media"] = media[0] if media else None
        if len(media) > 1:
            payload["more_media"] = media[1:]
        payload["article_url"] = url
        return Post(self.id, self.account.name, status, payload, self.count(status), limit, self.unit,
                    tuple(warnings), tuple(i.url for i in attached), offered)

    def _render(self, article: Article, url: str, limit: int, warnings: list[str]) -> str:
        values = {**article_values(article, url), "hashtags": ""}

        def render(v: Mapping[str, str]) -> str:
            return render_template(self.template, v)

        fitted = fit(render, values, count=self.count, limit=limit, drop_order=("summary", "title"))
        if fitted.changed("summary"):
            warnings.append("summary trimmed to fit the status limit" if "summary" in fitted.cut else
                            "summary left out")
        if fitted.changed("title"):
            warnings.append("title trimmed to fit the status limit")
        if not fitted.fits:
            raise ComposeError(self.account.name, f"the template alone is {fitted.length} characters; "
                               f"the limit is {limit}")
        status = fitted.text
        if self.options.hashtags and not warnings:  # a trimmed summary gets the room, not hashtags
            chosen: list[str] = []
            for tag in dict.fromkeys(t for t in map(hashtag, article.tags) if t):
                candidate = render({**fitted.values, "hashtags": " ".join([*chosen, tag])})
                if self.count(candidate) > limit:
                    warnings.append(f"hashtags from {tag} on left out: no room")
                    break
                chosen.append(tag)
                status = candidate
        return status

    # --- delivery ---------------------------------------------------------------------------------

    def _headers(self, ctx: DeliveryContext) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.secret('access_token')}"}

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        self._check_instance_limit(post, ctx)
        body: dict[str, Any] = {k: post.payload[k] for k in ("status", "visibility", "language")
                                if post.payload.get(k)}
        media = [m for m in [post.payload.get("media"), *post.payload.get("more_media", ())] if m]
        if media:
            body["media_ids"] = [self._media_id(m, ctx, n) for n, m in enumerate(media)]
        headers = {**self._headers(ctx), "Idempotency-Key": ctx.delivery_id}
        # idempotent=True: with the Idempotency-Key, a repeat of this POST returns the status the first
        # one made instead of making a second, so a read timeout or a dropped connection is safe to retry
        # (TransientError) rather than Ambiguous.
        resp = send(ctx, "POST", f"{self.account.api_base}/api/v1/statuses", idempotent=True, json=body,
                    headers=headers)
        data = json_body(resp)
        if resp.status_code == 200 and data.get("id") is not None:
            return Receipt(str(data["id"]), data.get("url") or data.get("uri"))
        if resp.status_code == 200:
            raise Ambiguous(ctx.redact(f"Mastodon answered 200 without a status: {short(resp.text)}"), status=200)
        raise self._error(ctx, "status", resp, data, retry_safe=True)

    def instance_limits(self, ctx: DeliveryContext) -> InstanceLimits | None:
        """The instance's status limit, cached in Redis; None when the instance does not say."""
        r, key = ctx.redis, ctx.keys.cache(self.account.name, "instance") if ctx.keys else None
        if r is not None and key:
            cached = r.get(key)
            if cached:
                raw = json.loads(cached)
                return InstanceLimits(int(raw["max_characters"]), int(raw["url_weight"]))
        resp = send(ctx, "GET", f"{self.account.api_base}/api/v2/instance", idempotent=True)
        if resp.status_code != 200:
            ctx.step(f"instance limits unavailable (HTTP {resp.status_code}); the instance will check the length")
            return None
        statuses = (json_body(resp).get("configuration") or {}).get("statuses") or {}
        limits = InstanceLimits(int(statuses.get("max_characters") or 500),
                                int(statuses.get("characters_reserved_per_url") or 23))
        if r is not None and key:
            r.set(key, json.dumps({"max_characters": limits.max_characters, "url_weight": limits.url_weight}),
                          ex=max(1, self.options.instance_cache_seconds))
        return limits

    def _check_instance_limit(self, post: Post, ctx: DeliveryContext) -> None:
        limits = self.instance_limits(ctx)
        if limits is None:
            return
        length = count_status(post.text, limits.url_weight)
        if length > limits.max_characters:
            raise PermanentError(
                f"the status is {length} characters but the instance allows {limits.max_characters}; set "
                f"options.max_characters = {limits.max_characters} for account {self.account.name!r} in the "
                "config so posts are composed to fit", code="instance_limit")

    def _media_id(self, media: dict[str, Any], ctx: DeliveryContext, n: int = 0) -> str:
        """Upload image ``n`` once per delivery (the id survives retries in ``ctx.state``), wait until processed."""
        saved = "media_id" if n == 0 else f"media_id_{n}"
        if ctx.state.get(saved):
            return str(ctx.state[saved])
        base = self.account.api_base
        image = fetch_image(ctx, media["url"], max_bytes=self.options.max_image_bytes, allowed=MEDIA_TYPES)
        # A repeated upload only leaves an unattached attachment (the instance cleans those up): safe to retry.
        resp = send(ctx, "POST", f"{base}/api/v2/media", idempotent=True, headers=self._headers(ctx),
                    files={"file": (image.filename, image.data, image.content_type)},
                    data={"description": media.get("description") or ""})
        data = json_body(resp)
        if resp.status_code not in (200, 202) or data.get("id") is None:
            raise self._error(ctx, "media upload", resp, data, retry_safe=True)
        media_id = str(data["id"])
        if resp.status_code == 202 or not data.get("url"):
            ctx.step(f"image uploaded as media {media_id}; waiting for the instance to process it")
            self._wait_processed(media_id, ctx)
        ctx.step(f"image ready (media {media_id})")
        ctx.state[saved] = media_id
        ctx.save_state()
        return media_id

    def _wait_processed(self, media_id: str, ctx: DeliveryContext) -> None:
        # Most images are processed within a second: start short, back off (doubling) to the max.
        attempts = self.options.media_poll_attempts
        pause = float(self.options.media_poll_interval)
        cap = max(pause, float(self.options.media_poll_max_interval))
        for _ in range(attempts):
            time.sleep(pause)
            pause = min(cap, pause * 2)
            resp = send(ctx, "GET", f"{self.account.api_base}/api/v1/media/{media_id}", idempotent=True,
                        headers=self._headers(ctx))
            if resp.status_code == 200 and json_body(resp).get("url"):
                return
            if resp.status_code != 206:
                raise self._error(ctx, "media status", resp, json_body(resp), retry_safe=True)
        raise TransientError(f"media {media_id} still processing after {attempts} checks")

    def _error(self, ctx: DeliveryContext, what: str, resp: Any, data: dict[str, Any], *,
               retry_safe: bool = False) -> DeliveryError:
        status = resp.status_code
        detail = data.get("error") or short(resp.text) or f"HTTP {status}"
        message = ctx.redact(f"Mastodon {what} failed (HTTP {status}): {short(str(detail))}")
        wait = iso_reset_in(resp.headers.get("X-RateLimit-Reset"), 300.0) if status == 429 else None
        return ERRORS.for_response(resp, message, retry_after=wait, retry_safe=retry_safe)

    # --- reconciliation ---------------------------------------------------------------------------

    def _me(self, ctx: DeliveryContext) -> dict[str, Any]:
        """``verify_credentials``: the token works and names the account (a read)."""
        resp = send(ctx, "GET", f"{self.account.api_base}/api/v1/accounts/verify_credentials", idempotent=True,
                    headers=self._headers(ctx))
        me = json_body(resp)
        if resp.status_code != 200 or me.get("id") is None:
            raise self._error(ctx, "verify_credentials", resp, me)
        return me

    def check_credentials(self, ctx: DeliveryContext) -> str:
        me = self._me(ctx)
        return f"signed in as @{me.get('acct') or me.get('username') or '?'}"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """The account's recent statuses, matched on the tagged article URL.

        (Re-POSTing with the same Idempotency-Key within the hour is the other way to reconcile: the
        instance answers with the original status instead of making a new one.)
        """
        base, headers, me = self.account.api_base, self._headers(ctx), self._me(ctx)
        resp = send(ctx, "GET", f"{base}/api/v1/accounts/{me['id']}/statuses", idempotent=True, headers=headers,
                    params={"limit": 40, "exclude_replies": "true"})
        if resp.status_code != 200:
            raise self._error(ctx, "account statuses", resp, json_body(resp))
        try:
            statuses = resp.json()
        except ValueError:
            raise Ambiguous("Mastodon answered the statuses list with something that is not JSON") from None
        url = post.payload.get("article_url") or ""
        for status in statuses if isinstance(statuses, list) else []:
            content = html.unescape(str(status.get("content") or ""))
            if url and url in content:
                return Receipt(str(status["id"]), status.get("url") or status.get("uri"))
        if not url or url not in post.text:
            raise Ambiguous("the status text does not contain the article link, so it cannot be recognised")
        # "absent" needs proof (see Platform.find_existing): the page held the whole timeline, or
        # its oldest status predates the first attempt
        rows = statuses if isinstance(statuses, list) else []
        oldest = epoch_of(rows[-1].get("created_at")) if rows and isinstance(rows[-1], dict) else None
        since = None if ctx.window_start is None else ctx.window_start - CLOCK_SLACK
        if len(rows) < 40 or (since is not None and oldest is not None and oldest < since):
            return None
        raise Ambiguous("the newest 40 statuses do not reach back to the first attempt; the status may be further down")

