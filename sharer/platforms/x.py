"""X (Twitter): one post, or a numbered thread, through tweepy's API v2 ``Client``.

Set-up
  1. developer.x.com: an App inside a Project, user authentication with "Read and write" permission.
  2. OAuth 1.0a (simplest; tokens never expire, a 401 means re-authorise): API Key and Secret
     (``consumer_key``, ``consumer_secret``) and an Access Token and Secret (``access_token``,
     ``access_token_secret``) generated *after* choosing "Read and write".
  3. Or OAuth 2.0 user context: ``client_id`` (+ ``client_secret`` for a confidential client) and a
     refresh token (``oauth2_refresh_token``) from one PKCE authorisation with the scopes
     ``tweet.read tweet.write users.read offline.access media.write``. Refresh tokens are single-use:
     the current pair lives in Redis (``<prefix>:token:<account>``) from the first refresh on.
  With all four OAuth 1.0a credentials configured, OAuth 1.0a is used; otherwise OAuth 2.0.

Quirks
  - Length is twitter-text's weighted count (URL = 23, CJK/emoji = 2), limit 280 (``max_length``).
  - tweepy hard-codes ``https://api.twitter.com``; a transport adapter on the client's session sends
    those requests to ``api_base`` instead. OAuth 1.0a signatures cover the original URL.
  - No idempotency key: a thread that fails at part k resumes at part k (ids kept in the delivery state).
  - 429 carries no Retry-After: the wait is ``x-rate-limit-reset`` (Unix seconds) minus now.
"""

from __future__ import annotations

import hashlib
import html
import json
import unicodedata
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import regex

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..errors import (
    Ambiguous,
    ComposeError,
    DeliveryError,
)
from ..media import fetch_image
from ..text import count_x, find_urls, split_thread, thread_label, trim
from ._lookup import Age, age
from ._x_api import OAUTH1, OAUTH2, _Api
from ._x_api import OAuth2Tokens as OAuth2Tokens  # re-exported: part of this platform's surface
from .base import CLOCK_SLACK, DeliveryContext, Platform, Post, Receipt

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")  # GIFs need the chunked upload (not implemented)
LABEL_RESERVE = count_x(thread_label(99, 99))  # room kept for the " k/n" numbering of a thread part
_NOT_X_TEXT = dict.fromkeys(map(ord, "\ufffe\ufeff\uffff"))  # X rejects posts holding these
_NOT_IN_HASHTAG = regex.compile(r"[^\p{L}\p{M}\p{Nd}_]")
LOOKUP_PAGES = 5  # timeline pages of 100 read at most by one reconciliation


# --- composition (pure) ---------------------------------------------------------------------------

def hashtag(tag: str) -> str | None:
    """``"power battery"`` -> ``#PowerBattery``; characters X does not allow are dropped; None if no letter."""
    words = [w for w in (_NOT_IN_HASHTAG.sub("", w) for w in tag.split()) if w]
    if len(words) > 1:
        words = [w[:1].upper() + w[1:] for w in words]
    body = "".join(words)
    return "#" + body if regex.search(r"\p{L}", body) else None


def hashtags(tags: tuple[str, ...] | list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        h = hashtag(tag)
        if h and h.casefold() not in {o.casefold() for o in out}:
            out.append(h)
    return out


class _Paragraphs(HTMLParser):
    """Plain-text paragraphs of a (sanitised) article body: block elements separate paragraphs."""

    BLOCKS = frozenset("p div li ul ol h1 h2 h3 h4 h5 h6 blockquote pre tr table figure figcaption dt dd hr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.out.append("\n\n" if tag in self.BLOCKS else " " if tag == "br" else "")

    def handle_endtag(self, tag: str) -> None:
        self.out.append("\n\n" if tag in self.BLOCKS else "")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def body_paragraphs(body_html: str) -> list[str]:
    parser = _Paragraphs()
    parser.feed(body_html or "")
    parser.close()
    return [p for p in (_clean(" ".join(chunk.split())) for chunk in "".join(parser.out).split("\n\n")) if p]


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.translate(_NOT_X_TEXT))


class X(Platform):
    id = "x"
    title = "X (Twitter)"
    default_api_base = "https://api.x.com"
    required_credentials = ()
    optional_credentials = (*OAUTH1, "client_id", "client_secret", "oauth2_refresh_token")
    option_defaults = {
        "username": "",  # for post URLs https://x.com/<username>/status/<id>
        "user_id": "",  # the account's numeric id; "" = asked once with GET /2/users/me and cached
        "thread": False,  # post the article body as a numbered thread after the link post
        "max_length": 280,  # weighted length limit (Premium accounts may post more: unverified)
        "max_thread_parts": 25,
        "max_hashtags": 5,
        "attach_image": True,
        "max_image_bytes": 5 * 1024 * 1024,  # unverified (third-party SDK doc)
    }
    default_template = "{title} {url} {hashtags}"
    limit = 280
    unit = "weighted characters"
    sandbox_port = 8903
    rate_limit = (100, 900.0)  # POST /2/tweets: 100 per 15 min per user (X docs, 2026)

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        out = super().validate_options(raw)
        if not 2 <= out["max_thread_parts"] <= 99:
            raise ValueError("max_thread_parts: must be between 2 and 99")
        if out["user_id"] and not str(out["user_id"]).isdigit():
            raise ValueError("user_id: must be the account's numeric X user id (or empty to look it up)")
        if out["max_length"] < 2 * LABEL_RESERVE or out["max_hashtags"] < 0 or out["max_image_bytes"] <= 0:
            raise ValueError("max_length, max_hashtags and max_image_bytes must be sensible positive numbers")
        return out

    def compose(self, article: Article, text: str | None = None, thread: bool | None = None) -> Post:
        limit = int(self.options["max_length"])
        image = article.image if self.options["attach_image"] else None
        thread = self.options["thread"] if thread is None else thread
        if text is not None:
            text = _clean(text.strip())
            self.check_override(text, count_x(text), limit)
            notes = ("thread mode ignored: a text override is posted as one post",) if thread else ()
            return self._post([text], image, limit, notes)
        url = tag_url(article.url, self.account.utm)
        body = body_paragraphs(article.body_html) if thread else []
        if not body:
            head, notes = self._head(article, url, limit)
            notes += ["no body text: posted as one post"] if thread else []
            return self._post([head], image, limit, notes)
        head, notes = self._head(article, url, limit - LABEL_RESERVE)
        rest = split_thread("\n\n".join(body), limit - LABEL_RESERVE, count=count_x, numbering=False)
        most = int(self.options["max_thread_parts"])
        if len(rest) + 1 > most:
            notes.append(f"thread cut to {most} posts: the last {len(rest) + 1 - most} body parts are not posted")
            rest = rest[: most - 1]
        n = len(rest) + 1
        return self._post([p + thread_label(k, n) for k, p in enumerate([head, *rest], 1)], image, limit, notes)

    def _head(self, article: Article, url: str, limit: int) -> tuple[str, list[str]]:
        """The link post: the template with summary, then title trimmed to fit, then hashtags while they fit."""
        values = article_values(article, url)
        render = lambda vals, tags: _clean(render_template(self.template, {**vals, "hashtags": " ".join(tags)}))
        notes: list[str] = []
        for name in ("summary", "title"):
            if count_x(render(values, [])) <= limit:
                break
            if "{" + name + "}" in self.template:
                cut = trim(values[name], limit, count=lambda s, n=name: count_x(render({**values, n: s}, [])))
                values[name] = cut.text
                if cut.trimmed:
                    notes.append(f"{name} trimmed to fit {limit} weighted characters")
        length = count_x(render(values, []))
        if length > limit:
            raise ComposeError(self.account.name, f"the template is {length} weighted characters long even "
                                                  f"without title and summary; the limit is {limit}")
        wanted = hashtags(article.tags)[: int(self.options["max_hashtags"])] if "{hashtags}" in self.template else []
        used: list[str] = []
        for tag in wanted:
            if count_x(render(values, [*used, tag])) > limit:
                notes.append(f"{len(wanted) - len(used)} hashtag(s) left out for lack of room")
                break
            used.append(tag)
        return render(values, used), notes

    def _post(self, parts: list[str], image: str | None, limit: int, notes: Any) -> Post:
        return Post(self.id, self.account.name, parts[0], {"parts": parts, "image": image},
                    max(count_x(p) for p in parts), limit, self.unit, tuple(notes))

    # --- delivery ---------------------------------------------------------------------------------

    def status_url(self, post_id: str) -> str:
        user = self.options["username"].lstrip("@")
        return f"https://x.com/{user}/status/{post_id}" if user else f"https://x.com/i/web/status/{post_id}"

    def receipt(self, ids: list[str]) -> Receipt:
        return Receipt(ids[0], self.status_url(ids[0]), f"thread of {len(ids)} posts" if len(ids) > 1 else None)

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        parts: list[str] = list(post.payload["parts"])
        n = len(parts)
        done = [str(i) for i in ctx.state.get("parts", [])][:n]
        with _Api(ctx) as api:
            media_ids = None
            if done:
                ctx.step(f"resuming the thread at part {len(done) + 1}/{n}" if len(done) < n else "already posted")
            elif post.payload.get("image"):
                media_id = self._image(api, post.payload["image"], ctx)
                media_ids = [media_id] if media_id else None
            for k in range(len(done), n):
                post_id = api.create(parts[k], media_ids if k == 0 else None, done[-1] if done else None)
                done.append(post_id)
                ctx.state["parts"] = list(done)
                ctx.save_state()  # after EACH part: a retry must never post it again
                if n > 1:
                    ctx.step(f"part {k + 1}/{n} posted: {post_id}")
        return self.receipt(done)

    def _image(self, api: _Api, url: str, ctx: DeliveryContext) -> str | None:
        """Upload the article image. One we cannot fetch or would not send is left out (noted in the log);
        an upload X refuses is an error like any other."""
        try:
            image = fetch_image(ctx, url, max_bytes=int(self.options["max_image_bytes"]), allowed=IMAGE_TYPES)
        except DeliveryError as e:
            ctx.step(f"image not attached ({e}); posting without it")
            return None
        media_id = api.upload(image)
        ctx.step(f"image uploaded ({image.content_type}, {len(image.data)} bytes): media {media_id}")
        return media_id

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
            matches = [t for t in timeline if _is_part(t, parts[len(done)], done[-1] if done else None)]
            if not done:
                ages = {t.id: age(_created(t), ws, ctx.duplicate) for t in matches}
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
        if self.options["user_id"]:
            return str(self.options["user_id"])
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
        token = None
        since = datetime.fromtimestamp(start, UTC) if start is not None else None
        for _ in range(LOOKUP_PAGES):
            resp = api.call("the timeline", lambda c, ua, t=token: c.get_users_tweets(
                uid, max_results=100, start_time=since, pagination_token=t, user_auth=ua,
                tweet_fields=["created_at", "entities", "referenced_tweets"]), write=False)
            posts += resp.data or []
            token = (resp.meta or {}).get("next_token")
            if not token:
                return posts, True
        return posts, False


def _created(tweet: Any) -> float | None:
    at = getattr(tweet, "created_at", None)
    return at.timestamp() if at is not None else None


def _bare(text: str) -> str:
    """A post's text as X keeps it, for comparison: entities decoded, NFC, no links, no whitespace."""
    text = unicodedata.normalize("NFC", html.unescape(text or ""))
    for start, end in reversed(find_urls(text)):
        text = text[:start] + text[end:]
    return "".join(text.split())


def _is_part(tweet: Any, text: str, reply_to: str | None) -> bool:
    """Whether ``tweet`` is the part with ``text``: same text without links, our links among its
    ``expanded_url``s (when X lists them), and for part k+1 the reply to part k."""
    if reply_to is not None and not any(r.type == "replied_to" and str(r.id) == reply_to
                                        for r in tweet.referenced_tweets or []):
        return False
    if _bare(tweet.text) != _bare(text):
        return False
    entities = (tweet.entities or {}).get("urls")
    if not entities:
        return True
    links = {str(u.get("expanded_url") or "").rstrip("/") for u in entities}
    return all(text[s:e].rstrip("/") in links for s, e in find_urls(text))
