"""X (Twitter): one post, or a numbered thread, through tweepy's API v2 ``Client``.

Set-up
  1. developer.x.com: an App inside a Project, user authentication with "Read and write" permission.
  2. OAuth 1.0a (simplest; tokens never expire, a 401 means re-authorise): API Key and Secret
     (``consumer_key``, ``consumer_secret``) and an Access Token and Secret (``access_token``,
     ``access_token_secret``) generated *after* choosing "Read and write".
  3. Or OAuth 2.0 user context: ``client_id`` (+ ``client_secret`` for a confidential client) and a
     refresh token (``oauth2_refresh_token``) from one PKCE authorisation with the scopes
     ``tweet.read tweet.write users.read offline.access media.write``. Refresh tokens are single-use:
     the current pair lives in Redis (``<prefix>:token:<account>``, a ``SharedToken``) from the first
     refresh on.
  With all four OAuth 1.0a credentials configured, OAuth 1.0a is used; otherwise OAuth 2.0.

Quirks
  - Length is twitter-text's weighted count (URL = 23, CJK/emoji = 2), limit 280 (``max_length``).
  - tweepy hard-codes ``https://api.twitter.com``; a transport adapter on the client's session sends
    those requests to ``api_base`` instead. OAuth 1.0a signatures cover the original URL.
  - No idempotency key: a thread that fails at part k resumes at part k (ids kept in the delivery state).
  - Up to 4 images (``images``: the lead image, then the body's) on the first post, uploaded one by one
    (``POST /2/media/upload``); their ids are kept in the delivery state and reused by a retry while X
    still holds them (``expires_after_secs``), so a retry uploads only what is missing or expired.
  - 429 carries no Retry-After: the wait is ``x-rate-limit-reset`` (Unix seconds) minus now.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..article import Article
from ..compose import ArticleImage, article_values, choose_images, tag_url
from ..errors import Ambiguous, ComposeError
from ..text import count_x, split_thread, thread_label
from ._lookup import Age, age
from ._x_api import OAUTH1, OAUTH2, _Api
from ._x_media import IMAGE_TYPES, MAX_IMAGES, first_post, images_of
from ._x_text import body_paragraphs, clean, created, hashtag, hashtags, head_post, is_part
from .base import CLOCK_SLACK, DeliveryContext, Platform, Post, Receipt
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

__all__ = ["X", "XOptions", "body_paragraphs", "hashtag", "hashtags"]

LABEL_RESERVE = count_x(thread_label(99, 99))  # room kept for the " k/n" numbering of a thread part
LOOKUP_PAGES = 5  # timeline pages of 100 read at most by one reconciliation


@dataclass(frozen=True)
class XOptions(Options):
    username: str = ""                  # for post URLs https://x.com/<username>/status/<id>
    user_id: str = ""                   # the account's numeric id; "" = asked once with GET /2/users/me, cached
    thread: bool = False                # post the article body as a numbered thread after the link post
    max_length: int = 280               # weighted length limit (Premium accounts may post more: unverified)
    max_thread_parts: int = 25
    max_hashtags: int = 5
    attach_image: bool = True
    images: int = 1                     # attach up to this many: the lead image, then the body's (X takes 4)
    max_image_bytes: int = 5 * 1024 * 1024  # unverified (third-party SDK doc)

    def check(self) -> XOptions:
        if not 2 <= self.max_thread_parts <= 99:
            raise OptionError("max_thread_parts", "must be between 2 and 99")
        if self.user_id and not self.user_id.isdigit():
            raise OptionError("user_id", "must be the account's numeric X user id (or empty to look it up)")
        if self.max_length < 2 * LABEL_RESERVE:
            raise OptionError("max_length", f"must be at least {2 * LABEL_RESERVE}")
        if not 1 <= self.images <= MAX_IMAGES:
            raise OptionError("images", f"must be 1 to {MAX_IMAGES}, got {self.images}")
        if self.max_hashtags < 0 or self.max_image_bytes <= 0:
            key = "max_hashtags" if self.max_hashtags < 0 else "max_image_bytes"
            raise OptionError(key, "must be a sensible positive number")
        return self


class X(Platform[XOptions]):
    spec = PlatformSpec(
        id="x", title="X (Twitter)", api_base="https://api.x.com",
        limits=Limits(280, "weighted characters", count_x, media=MAX_IMAGES, media_bytes=5 * 1024 * 1024,
                      media_types=IMAGE_TYPES, thread=99),
        options=XOptions,
        credentials=Credentials(optional=(*OAUTH1, "client_id", "client_secret", "oauth2_refresh_token")),
        template="{title} {url} {hashtags}",
        rate_limit=RateLimit(100, 900.0),  # POST /2/tweets: 100 per 15 min per user (X docs, 2026)
        sandbox=Sandbox("sharer.sandbox.x:XEmulator", 8903),
        demo=(Demo(options={"username": "sharer_sandbox"}),),
    )

    def compose(self, article: Article, text: str | None = None, thread: bool | None = None) -> Post:
        limit = self.options.max_length
        media = choose_images(article, self.options.images if self.options.attach_image else 0, MAX_IMAGES)
        thread = self.options.thread if thread is None else thread
        if text is not None:
            text = clean(text.strip())
            self.check_override(text, count_x(text), limit)
            notes = ["thread mode ignored: a text override is posted as one post"] if thread else []
            return self._post([text], media, limit, notes)
        url = tag_url(article.url, self.account.utm)
        body = body_paragraphs(article.body_html) if thread else []
        if not body:
            head, notes = self._head(article, url, limit)
            notes += ["no body text: posted as one post"] if thread else []
            return self._post([head], media, limit, notes)
        head, notes = self._head(article, url, limit - LABEL_RESERVE)
        rest = split_thread("\n\n".join(body), limit - LABEL_RESERVE, count=count_x, numbering=False)
        most = self.options.max_thread_parts
        if len(rest) + 1 > most:
            notes.append(f"thread cut to {most} posts: the last {len(rest) + 1 - most} body parts are not posted")
            rest = rest[: most - 1]
        n = len(rest) + 1
        return self._post([p + thread_label(k, n) for k, p in enumerate([head, *rest], 1)], media, limit, notes)

    def _head(self, article: Article, url: str, limit: int) -> tuple[str, list[str]]:
        tags = hashtags(article.tags)[: self.options.max_hashtags]
        text, notes, length = head_post(self.template, article_values(article, url), tags, limit)
        if length > limit:
            raise ComposeError(self.account.name, f"the template is {length} weighted characters long even "
                                                  f"without title and summary; the limit is {limit}")
        return text, notes

    def _post(self, parts: list[str], images: tuple[tuple[ArticleImage, ...], tuple[str, ...]], limit: int,
              notes: list[str]) -> Post:
        """``payload["image"]`` is the first image (what a one-image post always had), ``more_images`` the rest."""
        attached, offered = images
        urls = [i.url for i in attached]
        payload: dict[str, Any] = {"parts": parts, "image": urls[0] if urls else None}
        if len(urls) > 1:
            payload["more_images"] = urls[1:]
        return Post(self.id, self.account.name, parts[0], payload, max(count_x(p) for p in parts), limit,
                    self.unit, tuple(notes), tuple(urls), offered)

    # --- delivery ---------------------------------------------------------------------------------

    def status_url(self, post_id: str) -> str:
        user = self.options.username.lstrip("@")
        return f"https://x.com/{user}/status/{post_id}" if user else f"https://x.com/i/web/status/{post_id}"

    def receipt(self, ids: list[str]) -> Receipt:
        return Receipt(ids[0], self.status_url(ids[0]), f"thread of {len(ids)} posts" if len(ids) > 1 else None)

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        parts: list[str] = list(post.payload["parts"])
        n = len(parts)
        done = [str(i) for i in ctx.state.get("parts", [])][:n]
        with _Api(ctx) as api:
            if done:  # images go on part 1 only: once it is out, none is uploaded again
                ctx.step(f"resuming the thread at part {len(done) + 1}/{n}" if len(done) < n else "already posted")
            for k in range(len(done), n):
                post_id = (api.create(parts[k], None, done[-1]) if done else
                           first_post(api, ctx, parts[0], images_of(post.payload), self.options.max_image_bytes))
                done.append(post_id)
                ctx.state["parts"] = list(done)
                ctx.save_state()  # after EACH part: a retry must never post it again
                if n > 1:
                    ctx.step(f"part {k + 1}/{n} posted: {post_id}")
        return self.receipt(done)

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``GET /2/users/me`` with the account's user auth (a read)."""
        with _Api(ctx) as api:
            me = api.call("the account lookup", lambda c, ua: c.get_me(user_auth=ua).data, write=False)
        return f"signed in as @{getattr(me, 'username', '?')}"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Look for this post's parts on the account's timeline (``GET /2/users/:id/tweets``).

        Part 1 is the account's post with our text (links compared as ``expanded_url``: X shows t.co
        links) made since the first attempt began; part k+1 is the reply to part k with its text.
        After a 403 duplicate (``ctx.duplicate``) an older part 1 is the post X already had. The pages
        start at the first attempt (``start_time``, less the clock slack) and are read to the end, at
        most ``LOOKUP_PAGES`` of them: None only when they were. A thread found only in part is not
        "delivered": the parts found are saved to the state, so the retry posts the rest, none twice.
        """
        parts = post.payload["parts"]
        done = [str(i) for i in ctx.state.get("parts", [])][: len(parts)]
        known = len(done)
        if known == len(parts):
            return self.receipt(done)
        ws = ctx.window_start
        start = None if ws is None or ctx.duplicate else ws - CLOCK_SLACK
        with _Api(ctx) as api:
            uid = self._user_id(api, ctx)
            timeline, complete = self._timeline(api, uid, start)
        earlier = near = None
        while len(done) < len(parts):
            matches = [t for t in timeline if is_part(t, parts[len(done)], done[-1] if done else None)]
            if not done:
                ages = {t.id: age(created(t), ws, ctx.duplicate) for t in matches}
                earlier = next((t for t in matches if ages[t.id] is Age.EARLIER), None) if ctx.duplicate else None
                near = next((t for t in matches if ages[t.id] is Age.NEAR), None)
                matches = [t for t in matches if ages[t.id] is Age.OURS]
            if not matches:
                break
            done.append(str(matches[-1].id))  # newest first: the oldest match is the first one made
        if earlier is not None and not done:
            url = self.status_url(str(earlier.id))
            return Receipt(str(earlier.id), url, f"X already had this post: {url}", already_posted=True)
        if len(done) == len(parts):
            return self.receipt(done)
        if not done and near is not None:
            raise Ambiguous(f"a post with the same text ({near.id}) was made just before the first attempt: "
                            "ours if X's clock runs behind, or an earlier share")
        if len(done) > known:
            ctx.state["parts"] = done
            ctx.save_state()
            ctx.step(f"parts 1-{len(done)} of {len(parts)} found on X; the thread continues from there")
        if not complete:
            raise Ambiguous(f"the account's timeline holds more than {LOOKUP_PAGES * 100} posts since the first "
                            "attempt began; the post may be further back")
        return None

    def _user_id(self, api: _Api, ctx: DeliveryContext) -> str:
        """The account's user id: ``options.user_id``, else ``GET /2/users/me`` once, cached per account."""
        if self.options.user_id:
            return self.options.user_id
        key = ctx.keys.cache(self.account.name, "x-user-id") if ctx.keys is not None else None
        seed = hashlib.sha256("\0".join(self.account.secret(k) for k in (*OAUTH1, *OAUTH2)
                                        if self.account.has_secret(k)).encode()).hexdigest()[:16]
        if key and ctx.redis is not None:
            raw = ctx.redis.get(key)
            cached = json.loads(raw) if raw else {}
            if cached.get("seed") == seed and cached.get("id"):
                return str(cached["id"])
        me = api.call("the account lookup", lambda c, ua: c.get_me(user_auth=ua).data, write=False)
        if me is None:
            raise Ambiguous("X answered the account lookup without a user")
        if key and ctx.redis is not None:
            ctx.redis.set(key, json.dumps({"seed": seed, "id": str(me.id)}))  # credentials changed -> new seed
        return str(me.id)

    def _timeline(self, api: _Api, uid: str, start: float | None) -> tuple[list[Any], bool]:
        """The account's posts since ``start`` (all of them, newest first) and whether the pages ran out."""
        posts: list[Any] = []
        token: str | None = None
        since = datetime.fromtimestamp(start, UTC) if start is not None else None

        def page(client: Any, user_auth: bool) -> Any:
            return client.get_users_tweets(uid, max_results=100, start_time=since, pagination_token=token,
                                           user_auth=user_auth,
                                           tweet_fields=["created_at", "entities", "referenced_tweets"])

        for _ in range(LOOKUP_PAGES):
            resp = api.call("the timeline", page, write=False)
            posts += resp.data or []
            token = (resp.meta or {}).get("next_token")
            if not token:
                return posts, True
        return posts, False
