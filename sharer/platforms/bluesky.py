"""Bluesky (AT Protocol): one ``app.bsky.feed.post`` record per share, with rich-text facets and a link
card (or up to four images). Set-up: Settings → Privacy and security → App passwords → Add; credential
``app_password``, ``options.handle``; ``api_base`` is the PDS (``https://bsky.social`` unless elsewhere).

The session (access JWT ~2 h, single-use refresh JWT) lives in the shared token store: workers reuse one
(``createSession`` allows 30 per 5 min); ``ExpiredToken`` comes as HTTP 400. ``text`` ≤ 300 graphemes
and 3,000 UTF-8 bytes with URLs in full, so the link shows as ``host/path…`` with a link facet to the
tagged URL; facet offsets are UTF-8 bytes; mentions need ``resolveHandle`` (at delivery). Plain
requests, not the ``atproto`` SDK: its own httpx client and session object would bypass our session,
timeouts, network-error classification and the shared token store (fact sheet §6).
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..article import Article
from ..compose import article_values, choose_images, fit, hashtag, render_template, tag_url
from ..errors import Ambiguous, AuthExpired, ComposeError, DeliveryError, PermanentError, RateLimited
from ..media import fetch_image
from ..store.tokens import Grant, seed_of
from ..text import count_graphemes, count_utf8_bytes, find_urls, trim
from .base import DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

GRAPHEMES, BYTES = 300, 3000
FACET = "app.bsky.richtext.facet"
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
TAG = re.compile(r"(?<!\S)#([^\s#.,;:!?()\[\]]+)")
MENTION = re.compile(r"(?<![\w@])@([a-zA-Z0-9][a-zA-Z0-9-]*(?:\.[a-zA-Z0-9-]+)+)")
SKEW, LOOKUP_PAGES = 600.0, 10  # clock allowance (s) and pages read when looking for a post

ERRORS = ErrorTable(codes={
    "ExpiredToken": Rule(AuthExpired, "Bluesky: the session expired ({message})"),
    "InvalidToken": Rule(AuthExpired, "Bluesky: the session is not valid ({message})"),
    "AuthenticationRequired": Rule(AuthExpired, "Bluesky: sign-in refused — check the handle and app password "
                                                "({message})"),
    "RateLimitExceeded": Rule(RateLimited, "Bluesky: rate limit ({message})", retry_after=300.0),
    "InvalidRequest": Rule(PermanentError, "Bluesky refused the record ({message})"),
}, other_code=Rule(PermanentError, "Bluesky refused the call ({message})"))


def display_url(url: str, keep: int = 27) -> str:
    """``https://host/long/path?q`` → ``host/long/pa…`` (what the Bluesky app shows)."""
    bare = re.sub(r"^https?://(www\.)?", "", url)
    return bare if len(bare) <= keep else bare[: keep - 1] + "…"


def byte_span(text: str, start: int, end: int) -> dict[str, int]:
    return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}


def facets(text: str, links: dict[str, str]) -> list[dict[str, Any]]:
    """Link facets (``links``: shown text → URL, then explicit URLs) and ``#tag`` facets, by UTF-8 bytes."""
    spans: list[tuple[int, int, dict[str, Any]]] = []

    def add(start: int, end: int, feature: dict[str, Any]) -> None:
        if start >= 0 and not any(s < end and start < e for s, e, _ in spans):
            spans.append((start, end, feature))

    for shown, uri in links.items():
        add(text.rfind(shown) if shown else -1, text.rfind(shown) + len(shown), {"$type": f"{FACET}#link", "uri": uri})
    for start, end in find_urls(text):
        add(start, end, {"$type": f"{FACET}#link", "uri": text[start:end]})
    for m in TAG.finditer(text):
        if len(m.group(1)) <= 64:
            add(m.start(), m.end(), {"$type": f"{FACET}#tag", "tag": m.group(1)})
    return [{"index": byte_span(text, s, e), "features": [f]} for s, e, f in sorted(spans, key=lambda x: x[0])]


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT: the PDS's own claims ``sub`` (the DID) and ``exp``."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class BlueskyOptions(Options):
    handle: str = ""                  # the account's handle (or DID / e-mail) for createSession
    hashtags: bool = True             # #CamelCase from the article tags, while they fit
    images: int = 1                   # > 1: an images embed (the lead, then the body's) instead of the card
    card: bool = True                 # the link card (app.bsky.embed.external)
    max_image_bytes: int = 1_000_000  # unverified: configurable

    def check(self) -> BlueskyOptions:
        if not self.handle:
            raise OptionError("handle", "is required (the account's handle, e.g. newsroom.bsky.social)")
        if not 1 <= self.images <= Bluesky.spec.limits.media:
            raise OptionError("images", f"must be 1 to {Bluesky.spec.limits.media}, got {self.images}")
        return self


class Bluesky(Platform[BlueskyOptions]):
    spec = PlatformSpec(
        id="bluesky", title="Bluesky", api_base="https://bsky.social",
        limits=Limits(GRAPHEMES, "graphemes", count_graphemes, media=4, media_bytes=1_000_000,
                      media_types=MEDIA_TYPES),
        options=BlueskyOptions,
        credentials=Credentials(required=("app_password",)),
        template="{title}\n\n{summary}\n\n{url}\n\n{hashtags}",
        rate_limit=RateLimit(1666, 3600.0),  # 5,000 write points an hour, a post costs 3
        sandbox=Sandbox("sharer.sandbox.bluesky:BlueskyEmulator", 8910),
        demo=(Demo(options={"handle": "sharer.test"}),),
    )

    def compose(self, article: Article, text: str | None = None) -> Post:
        url = tag_url(article.url, self.account.utm)
        shown = display_url(url)
        warnings: list[str] = []
        if text is not None:
            body = text.strip()
            self.check_override(body, count_graphemes(body), GRAPHEMES)
            if count_utf8_bytes(body) > BYTES:
                raise ComposeError(self.account.name, f"text is {count_utf8_bytes(body)} bytes; the limit is {BYTES}")
        else:
            body = self._render(article, shown, warnings)
        attached, offered = choose_images(article, self.options.images, self.spec.limits.media)
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": body,
                                  "facets": facets(body, {shown: url} if text is None else {})}
        if article.lang:
            record["langs"] = [article.lang]
        if self.options.images > 1 and attached:  # image URLs in the embed become uploaded blobs at delivery
            record["embed"] = {"$type": "app.bsky.embed.images", "images": [
                {"alt": trim(i.alt, 1000).text, "image": i.url} for i in attached]}
        elif self.options.card:  # the link card, the lead image as its thumb
            attached = tuple(i for i in attached[:1] if i.url == article.image)
            card = {"uri": url, "title": trim(article.title, 300).text, "description": trim(article.summary, 1000).text}
            record["embed"] = {"$type": "app.bsky.embed.external",
                               "external": {**card, "thumb": article.image} if article.image else card}
        else:
            attached = ()
        return Post(self.id, self.account.name, body, {"record": record, "article_url": url},
                    count_graphemes(body), GRAPHEMES, self.unit, tuple(warnings), tuple(i.url for i in attached),
                    offered if self.options.images > 1 else ())

    def _render(self, article: Article, shown: str, warnings: list[str]) -> str:
        """The template within 300 graphemes (and 3,000 bytes), then whole hashtags while they fit."""
        def size(s: str) -> int:  # graphemes, or the byte limit's share of 300 when bytes run out first
            return max(count_graphemes(s), -(-count_utf8_bytes(s) * GRAPHEMES // BYTES))

        values = {**article_values(article, shown), "hashtags": ""}
        fitted = fit(self.template, values, count=size, limit=GRAPHEMES, drop_order=("summary", "title"),
                     field_count=count_graphemes)
        if not fitted.fits:
            raise ComposeError(self.account.name, f"the template alone is {fitted.length} graphemes; the limit is "
                               f"{GRAPHEMES}")
        warnings += [f"{n} trimmed to fit Bluesky's {GRAPHEMES} graphemes" for n in fitted.cut]
        warnings += [f"{n} left out: no room" for n in fitted.dropped]
        body, chosen = fitted.text, list[str]()
        for tag in dict.fromkeys(t for t in map(hashtag, article.tags) if t) if self.options.hashtags else ():
            candidate = render_template(self.template, {**fitted.values, "hashtags": " ".join([*chosen, tag])})
            if size(candidate) > GRAPHEMES:
                warnings.append(f"hashtags from {tag} on left out: no room")
                break
            chosen.append(tag)
            body = candidate
        return body

    def _xrpc(self, ctx: DeliveryContext, method: str, nsid: str, token: str | None, what: str, *,
              idempotent: bool = False, **kwargs: Any) -> dict[str, Any]:
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        resp = send(ctx, method, f"{self.account.api_base}/xrpc/{nsid}", idempotent=idempotent, headers=headers,
                    **kwargs)
        data = json_body(resp)
        if resp.status_code == 200:
            return data
        raise self._error(ctx, what, resp, data)

    def _error(self, ctx: DeliveryContext, what: str, resp: Any, data: dict[str, Any]) -> DeliveryError:
        code = data.get("error")
        message = ctx.redact(f"{what}: HTTP {resp.status_code}: {short(str(data.get('message') or code or resp.text))}")
        if resp.status_code == 429 or code == "RateLimitExceeded":
            reset = resp.headers.get("ratelimit-reset")
            wait = max(1.0, float(reset) - time.time()) if reset and reset.isdigit() else None
            return ERRORS.for_response(resp, f"Bluesky: rate limit ({message})", code=code, retry_after=wait)
        if isinstance(code, str) and resp.status_code < 500:
            return ERRORS.for_code(code, message, status=resp.status_code)
        return ERRORS.for_response(resp, f"Bluesky {message}", code=code)

    def _session(self, ctx: DeliveryContext, failed: str | None = None) -> str:
        password = self.account.secret("app_password")

        def fetch(refresh: str | None) -> Grant:
            data: dict[str, Any] | None = None
            if refresh:
                try:
                    data = self._xrpc(ctx, "POST", "com.atproto.server.refreshSession", refresh, "refreshSession",
                                      idempotent=True)
                except AuthExpired:
                    ctx.step("the Bluesky refresh token was spent or expired: signing in again")
            if data is None:
                data = self._xrpc(ctx, "POST", "com.atproto.server.createSession", None, "createSession",
                                  idempotent=True, json={"identifier": self.options.handle, "password": password})
            access = str(data["accessJwt"])
            exp = jwt_claims(access).get("exp")
            life = float(exp) - time.time() if isinstance(exp, (int, float)) else 7200.0  # ~2 h (unverified)
            return Grant(access, max(60.0, life), str(data["refreshJwt"]))

        shared = ctx.shared_token(fetch, seed=seed_of(self.options.handle, password), margin=300.0)
        return shared.refresh(failed=failed) if failed else shared.get()

    def _authed(self, ctx: DeliveryContext, method: str, nsid: str, what: str, **kwargs: Any) -> dict[str, Any]:
        """One call with the shared session; an expired access JWT is refreshed once."""
        token = self._session(ctx)
        try:
            return self._xrpc(ctx, method, nsid, token, what, **kwargs)
        except AuthExpired:
            return self._xrpc(ctx, method, nsid, self._session(ctx, failed=token), what, **kwargs)

    def _repo(self, ctx: DeliveryContext) -> str:
        """The DID the PDS's access JWT names, else the handle (``repo`` takes either)."""
        did = jwt_claims(self._session(ctx)).get("sub")
        return did if isinstance(did, str) and did.startswith("did:") else self.options.handle

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        record = json.loads(json.dumps(post.payload["record"]))  # a copy: blobs and mentions are added
        embed = record.get("embed") or {}
        if embed.get("$type") == "app.bsky.embed.images":
            for n, image in enumerate(embed["images"]):
                image["image"] = self._blob(ctx, image["image"], f"blob_{n}")
        elif (embed.get("external") or {}).get("thumb"):
            embed["external"]["thumb"] = self._blob(ctx, embed["external"]["thumb"], "thumb")
        record["facets"] = sorted(record["facets"] + self._mentions(ctx, record["text"]),
                                  key=lambda f: f["index"]["byteStart"])
        record["createdAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ctx.state.setdefault("sent_at", time.time())  # find_existing reads the records from here on
        ctx.save_state()
        data = self._authed(ctx, "POST", "com.atproto.repo.createRecord", "createRecord",
                            json={"repo": self._repo(ctx), "collection": "app.bsky.feed.post", "record": record})
        if not data.get("uri"):
            raise Ambiguous("Bluesky answered createRecord without a uri", status=200)
        return self.receipt(str(data["uri"]))

    def receipt(self, uri: str) -> Receipt:
        handle = self.options.handle if "@" not in self.options.handle else uri.split("/")[2]
        return Receipt(uri, f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}")

    def _blob(self, ctx: DeliveryContext, url: str, key: str) -> dict[str, Any]:
        """An image uploaded once per delivery (the blob ref survives retries in ``ctx.state``)."""
        if not ctx.state.get(key):
            image = fetch_image(ctx, url, max_bytes=self.options.max_image_bytes, allowed=MEDIA_TYPES)
            data = self._authed(ctx, "POST", "com.atproto.repo.uploadBlob", "uploadBlob", idempotent=True,
                                data=image.data, headers={"Content-Type": image.content_type})
            ctx.state[key] = data["blob"]
            ctx.save_state()
            ctx.step(f"image uploaded ({data['blob'].get('size')} bytes)")
        return dict(ctx.state[key])

    def _mentions(self, ctx: DeliveryContext, text: str) -> list[dict[str, Any]]:
        """``@handle`` facets with the DID the PDS resolves; an unknown handle stays plain text."""
        out = []
        for m in MENTION.finditer(text):
            try:
                did = self._xrpc(ctx, "GET", "com.atproto.identity.resolveHandle", None, "resolveHandle",
                                 idempotent=True, params={"handle": m.group(1)})["did"]
                out.append({"index": byte_span(text, m.start(), m.end()),
                            "features": [{"$type": f"{FACET}#mention", "did": did}]})
            except PermanentError:
                ctx.step(f"@{m.group(1)} is not a Bluesky handle: left as text")
        return out

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """The account's posts since the first send, newest first, matched on the article link."""
        sent_at = ctx.state.get("sent_at")
        if sent_at is None:
            return None  # saved before the first request: without it nothing was ever sent
        url, since = post.payload.get("article_url"), float(sent_at) - SKEW
        params: dict[str, Any] = {"repo": self._repo(ctx), "collection": "app.bsky.feed.post", "limit": 100}
        for _ in range(LOOKUP_PAGES):
            data = self._authed(ctx, "GET", "com.atproto.repo.listRecords", "listRecords", idempotent=True,
                                params=params)
            for item in data.get("records") or []:
                value = item.get("value") or {}
                links = [f.get("uri") for facet in value.get("facets") or [] for f in facet.get("features") or []]
                links.append(((value.get("embed") or {}).get("external") or {}).get("uri"))
                if url and url in links:
                    return self.receipt(str(item["uri"]))
                if datetime.fromisoformat(str(value.get("createdAt") or "9999").replace("Z", "+00:00")).timestamp() \
                        < since:
                    return None  # older than the window: all of it was read
            if not data.get("cursor"):
                return None
            params["cursor"] = data["cursor"]
        raise Ambiguous(f"more than {LOOKUP_PAGES * 100} Bluesky posts since the first send")

    def check_credentials(self, ctx: DeliveryContext) -> str:
        data = self._authed(ctx, "GET", "com.atproto.server.getSession", "getSession", idempotent=True)
        return f"signed in as @{data.get('handle')} ({data.get('did')})"
