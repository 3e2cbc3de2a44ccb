"""WeChat Official Account (公众号): one `news` draft article, published with 发布 (freepublish).

Set-up:
  1. mp.weixin.qq.com → 设置与开发 → 基本配置: copy the AppID, generate the AppSecret.
  2. Add the server's egress IP to the IP whitelist on the same page (else errcode 40164).
  3. credentials = { appid = "env:WECHAT_APPID", appsecret = "env:WECHAT_APPSECRET" }.

Flow: access token (``/cgi-bin/stable_token``, cached in Redis and shared by every worker, one refresher
at a time) → cover uploaded as permanent material (its media_id is the ``thumb_media_id``) → every
inline image uploaded with ``media/uploadimg`` and its ``src`` rewritten → ``draft/add`` → ``freepublish/
submit`` → ``freepublish/get`` polled until the job is final. Progress (cover id, image URLs, draft
media_id, publish_id) is saved in ``ctx.state``: a later attempt never makes a second draft or job.

Quirks: errors come as HTTP 200 ``{"errcode","errmsg"}`` and success bodies may omit errcode; the body
must be raw UTF-8 JSON (``requests``' ``json=`` sends ``\\uXXXX`` escapes, which WeChat rejects); links
to sites other than mp.weixin.qq.com make ``draft/add`` fail (45166), so they are unwrapped to text;
"字" is undefined, so limits are conservative and configurable. Docs: docs/platforms/wechat.md.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..errors import (
    Ambiguous,
    AuthExpired,
    ComposeError,
    DeliveryError,
    Duplicate,
    PermanentError,
    RateLimited,
    TransientError,
)
from ..media import Image
from ._wechat_html import download_image, rewrite_images, trim_to, wechat_html
from .base import DeliveryContext, Platform, Post, Receipt, error_for_status, json_body, send, short

AUTH_CODES = frozenset({40001, 40014, 42001})
TOKEN_MARGIN = 300.0  # refresh when fewer than 5 minutes remain (WeChat's own overlap window)
COVER_MAX_BYTES = 10 * 1024 * 1024  # add_material: image ≤ 10 MB, bmp/png/jpeg/gif
INLINE_MAX_BYTES = 1024 * 1024 - 1  # uploadimg: jpg/png < 1 MB
COVER_KINDS = ("image/jpeg", "image/png", "image/gif", "image/bmp")
INLINE_KINDS = ("image/jpeg", "image/png")
URL_MAX_BYTES = 1024  # content_source_url ≤ 1 KB
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
CHINA = timezone(timedelta(hours=8))  # daily quotas reset at midnight Beijing time

# Compare-and-delete: drop a key only if it still holds the value we saw (a token that failed, our lock).
_CAS_DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

MEANINGS = {
    -1: "system busy", 40001: "invalid credential", 40004: "invalid media type", 40005: "invalid file type",
    40007: "invalid media_id", 40009: "invalid image size", 40013: "invalid appid",
    40014: "invalid access_token", 40033: "invalid charset", 40164: "server IP not in the whitelist",
    41001: "access_token missing", 42001: "access_token expired", 45002: "content size out of limit",
    45003: "title size out of limit", 45004: "digest size out of limit", 45009: "daily API quota reached",
    45011: "per-minute API quota reached", 45110: "author size out of limit",
    45166: "invalid content (WeChat rejects links to external sites and some markup)",
    47001: "data format error", 48001: "API not authorised for this account", 48004: "API banned",
    50002: "user limited", 53503: "the draft failed the publish check",
    53504: "this draft must be published in the web console",
    53505: "save this draft manually in the web console first",
}
PUBLISH_STATUS = {
    2: "originality check failed (原创校验失败)", 3: "publishing failed (常规失败)",
    4: "rejected by platform review (平台审核不通过)", 5: "published, then every article was deleted by the user",
    6: "published, then every article was banned by the system",
}


class WeChat(Platform):
    id = "wechat"
    title = "WeChat Official Account"
    default_api_base = "https://api.weixin.qq.com"
    required_credentials = ("appid", "appsecret")
    default_template = "{summary}"  # applies to the digest (摘要)
    limit = 128  # the digest: Post.text is the digest, the part an editor may override
    unit = "characters"
    sandbox_port = 8901
    option_defaults: dict[str, Any] = {
        "title_max_chars": 32, "title_max_bytes": 64, "author_max_chars": 8, "digest_max_chars": 128,
        "content_max_chars": 20_000, "content_max_bytes": 1_000_000,
        "default_author": "", "default_cover_media_id": "", "default_cover_url": "",
        "need_open_comment": False, "only_fans_can_comment": False,
        "publish_poll_seconds": 60.0, "publish_poll_interval": 2.0,
    }

    # --- composition (pure) ---------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        o, name = self.options, self.account.name
        warnings: list[str] = []
        url = tag_url(article.url, self.account.utm)
        if len(url.encode()) > URL_MAX_BYTES:
            raise ComposeError(name, f"the article URL is over WeChat's {URL_MAX_BYTES}-byte 阅读原文 limit")
        cover = article.image or o["default_cover_url"] or None
        if not cover and not o["default_cover_media_id"]:
            raise ComposeError(name, "WeChat news needs a cover image: give the article an image or set the "
                                     "account option default_cover_url or default_cover_media_id")
        if not article.image:
            warnings.append("the article has no image: using the account's default cover")

        title = trim_to(article.title, o["title_max_chars"], o["title_max_bytes"])
        if title != article.title:
            warnings.append(f"title trimmed to {len(title)} characters / {len(title.encode())} bytes "
                            f"(limit {o['title_max_chars']} / {o['title_max_bytes']})")
        author = self._author(article, warnings)
        try:
            body = wechat_html(article.body_html, o["content_max_chars"], o["content_max_bytes"])
        except ValueError as e:
            raise ComposeError(name, str(e)) from None
        warnings.extend(body.warnings)
        if not body.html:
            raise ComposeError(name, "the article has no body; WeChat news needs content")

        limit = o["digest_max_chars"]
        if text is not None:  # an override replaces the digest (摘要), validated, never cut
            self.check_override(text, len(text), limit)
            digest = text
        else:
            values = article_values(article, url)
            values["summary"] = article.summary or body.first_paragraph
            digest = render_template(self.template, values)
            if len(digest) > limit:
                digest = trim_to(digest, limit)
                warnings.append(f"digest trimmed to {limit} characters")
        payload = {
            "article_type": "news",
            "title": title,
            "author": author,
            "digest": digest,
            "content": body.html,
            "content_source_url": url,
            "need_open_comment": int(o["need_open_comment"]),
            "only_fans_can_comment": int(o["only_fans_can_comment"]),
            "cover": cover,  # uploaded at delivery; its media_id becomes thumb_media_id
            "images": list(body.images),  # inline images, uploaded at delivery and their src rewritten
        }
        return Post(self.id, name, digest, payload, len(digest), limit, self.unit, tuple(warnings))

    def _author(self, article: Article, warnings: list[str]) -> str:
        """The article's author if it fits, else the account's default author, else none (WeChat: optional)."""
        limit = self.options["author_max_chars"]
        candidates = [a for a in (article.author, self.options["default_author"]) if a]
        for a in candidates:
            if len(a) <= limit:
                if a != candidates[0]:
                    warnings.append(f"author {candidates[0]!r} is over {limit} characters: using the default author")
                return a
        if candidates:
            warnings.append(f"author {candidates[0]!r} is over {limit} characters: left out")
        return ""

    # --- delivery -------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        state = ctx.state
        if state.get("publish_id"):  # an earlier attempt submitted the job: only look at it again
            ctx.step(f"resuming publish job {state['publish_id']}")
            return self._wait(ctx, str(state["publish_id"]))
        resumed = bool(state.get("draft_media_id"))
        if not resumed:
            article = self._prepare(post, ctx)
            data = self._call(ctx, "/cgi-bin/draft/add", "draft/add", {"articles": [article]}, write=True)
            state["draft_media_id"] = _need(ctx, data, "media_id", "draft/add")
            ctx.save_state()
            ctx.step("draft created")
        try:
            data = self._call(ctx, "/cgi-bin/freepublish/submit", "publish submit",
                              {"media_id": state["draft_media_id"]}, write=True)
        except PermanentError as e:
            if not (resumed and e.code == "40007"):
                raise
            # The draft is gone: an earlier submit went through and its answer was lost.
            found = self.find_existing(post, ctx)
            if found is not None:
                return found
            raise Duplicate(ctx.redact(f"WeChat draft {state['draft_media_id']} was already submitted by an "
                                       "earlier attempt; its article is not in the published list yet"),
                            code=e.code) from None
        state["publish_id"] = str(_need(ctx, data, "publish_id", "publish submit"))
        ctx.save_state()
        ctx.step(f"publish job {state['publish_id']} submitted")
        return self._wait(ctx, state["publish_id"])

    def _prepare(self, post: Post, ctx: DeliveryContext) -> dict[str, Any]:
        """The draft article: cover → thumb_media_id, inline images uploaded, their src rewritten."""
        state = ctx.state
        fields = {k: v for k, v in post.payload.items() if k not in ("cover", "images")}
        if not state.get("thumb_media_id"):
            cover = post.payload.get("cover")
            if cover:
                img = download_image(ctx, cover, "cover image", COVER_MAX_BYTES, COVER_KINDS)
                data = self._call(ctx, "/cgi-bin/material/add_material", "cover upload", None,
                                  params={"type": "image"}, files=_media(img), write=True)
                state["thumb_media_id"] = _need(ctx, data, "media_id", "cover upload")
                ctx.step("cover uploaded")
            elif self.options["default_cover_media_id"]:
                state["thumb_media_id"] = self.options["default_cover_media_id"]
                ctx.step("using the account's default cover")
            else:
                raise PermanentError("WeChat news needs a cover image")
            ctx.save_state()
        fields["thumb_media_id"] = state["thumb_media_id"]

        done: dict[str, str | None] = state.setdefault("images", {})
        uploaded = dropped = 0
        try:
            for src in post.payload.get("images", []):
                if src in done:
                    continue
                try:
                    img = download_image(ctx, src, "inline image", INLINE_MAX_BYTES, INLINE_KINDS)
                except PermanentError as e:  # a broken/unsupported inline image is left out, not fatal
                    done[src] = None
                    dropped += 1
                    ctx.step(f"inline image dropped: {e.message}")
                    continue
                data = self._call(ctx, "/cgi-bin/media/uploadimg", "inline image upload", None,
                                  files=_media(img), write=True)
                done[src] = _need(ctx, data, "url", "inline image upload")
                uploaded += 1
        finally:
            if uploaded or dropped:
                ctx.save_state()
        if uploaded:
            ctx.step(f"{uploaded} inline image{'s' if uploaded != 1 else ''} uploaded")
        fields["content"] = rewrite_images(fields["content"], done)
        return fields

    def _wait(self, ctx: DeliveryContext, publish_id: str) -> Receipt:
        """Poll the publish job, bounded: a job still running after the bound is retried later, not waited on."""
        bound = float(self.options["publish_poll_seconds"])
        deadline = time.monotonic() + bound
        interval = max(0.01, float(self.options["publish_poll_interval"]))
        told = False
        while True:
            data = self._call(ctx, "/cgi-bin/freepublish/get", "publish status", {"publish_id": publish_id})
            status = data.get("publish_status")
            if status == 0:
                article_id = str(data.get("article_id") or "") or None
                items = (data.get("article_detail") or {}).get("item") or [{}]
                url = items[0].get("article_url")
                note = None if url else "published; WeChat returned no article URL"
                return Receipt(article_id, url, note)
            if status == 1:
                if not told:
                    ctx.step("publish status 1 (publishing)")
                    told = True
                if time.monotonic() + interval > deadline:
                    ctx.save_state()  # holds publish_id: the next attempt resumes polling this job
                    raise TransientError(f"still publishing: WeChat publish job {publish_id} is not final after "
                                         f"{bound:g} s; a later attempt resumes polling it")
                time.sleep(interval)
                interval = min(interval * 2, 10.0)
                continue
            if status not in PUBLISH_STATUS:
                raise TransientError(ctx.redact(f"WeChat publish job {publish_id}: unexpected answer "
                                                f"{short(json.dumps(data, ensure_ascii=False), 200)}"))
            meaning = PUBLISH_STATUS[status]
            ctx.step(f"publish status {status} ({meaning})")
            fail_idx = data.get("fail_idx") or []
            where = f" (failed articles: {', '.join(map(str, fail_idx))})" if fail_idx else ""
            raise PermanentError(f"WeChat publish job {publish_id}: {meaning}{where}", code=f"publish_status {status}")

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``stable_token`` without force_refresh: proves appid/appsecret/IP whitelist, rotates nothing."""
        _token, expires_in = self._fetch_token(ctx)
        return f"access token issued (valid {int(expires_in)} s)"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """The saved publish job's article if it succeeded, else a published article whose 阅读原文 is this
        post's tagged URL (the 20 newest). A saved job still running counts as absent: the next attempt
        resumes that job, so a retry cannot publish twice."""
        publish_id = ctx.state.get("publish_id")
        if publish_id:
            data = self._call(ctx, "/cgi-bin/freepublish/get", "publish status", {"publish_id": publish_id})
            if data.get("publish_status") == 1:
                return None
            if data.get("publish_status") == 0:
                items = (data.get("article_detail") or {}).get("item") or [{}]
                return Receipt(str(data.get("article_id") or "") or None, items[0].get("article_url"))
        url = post.payload["content_source_url"]
        data = self._call(ctx, "/cgi-bin/freepublish/batchget", "published list",
                          {"offset": 0, "count": 20, "no_content": 1})
        for item in data.get("item") or []:
            for news in (item.get("content") or {}).get("news_item") or []:
                if news.get("content_source_url") == url and not news.get("is_deleted"):
                    return Receipt(str(item.get("article_id")), news.get("url"))
        return None

    # --- access token (shared by every worker through Redis) --------------------------------------

    def access_token(self, ctx: DeliveryContext, *, failed: str | None = None) -> str:
        """The cached token, or a fresh one. ``failed``: a token WeChat just rejected (dropped only if
        the cache still holds it, so a token another worker already replaced is not thrown away)."""
        r = ctx.redis
        if r is None or ctx.keys is None:  # no shared cache (one-off use): fetch each time
            return self._fetch_token(ctx)[0]
        key = ctx.keys.token(self.account.name)
        if failed:
            r.eval(_CAS_DELETE, 1, key, failed)
        cached = r.get(key)
        if cached:
            return _text(cached)
        lock, me = ctx.keys.token_lock(self.account.name), secrets.token_hex(8)
        deadline = time.monotonic() + ctx.timeout + 5
        while True:
            if r.set(lock, me, nx=True, px=int((ctx.timeout + 5) * 1000)):
                try:
                    cached = r.get(key)  # filled while we were taking the lock?
                    if cached:
                        return _text(cached)
                    token, expires_in = self._fetch_token(ctx)
                    ttl = max(expires_in - TOKEN_MARGIN, expires_in / 2)
                    r.set(key, token, px=max(1000, int(ttl * 1000)))
                    ctx.step("access token refreshed")
                    return token
                finally:
                    r.eval(_CAS_DELETE, 1, lock, me)
            time.sleep(0.05)  # another worker is refreshing: wait for its result
            cached = r.get(key)
            if cached:
                return _text(cached)
            if time.monotonic() > deadline:
                raise TransientError("timed out waiting for another worker to refresh the WeChat access token")

    def _fetch_token(self, ctx: DeliveryContext) -> tuple[str, float]:
        body = {"grant_type": "client_credential", "appid": self.account.secret("appid"),
                "secret": self.account.secret("appsecret"), "force_refresh": False}
        resp = send(ctx, "POST", self.account.api_base + "/cgi-bin/stable_token", data=_utf8(body),
                    headers=JSON_HEADERS, idempotent=True)
        data = json_body(resp)
        code = _errcode(data)
        if resp.status_code == 200 and code in (40001, 40013, 40125, 40164):
            raise PermanentError(ctx.redact(f"WeChat refused the credentials: {_meaning(code, data)}; check the "
                                            f"appid/appsecret and IP whitelist, then re-authorise account "
                                            f"{self.account.name}"), code=code)
        data = self._check(ctx, resp, data, "access token request", write=False)
        token = _need(ctx, data, "access_token", "access token request")
        return str(token), float(data.get("expires_in") or 7200)

    # --- one API call: token, auth retry, error mapping -----------------------------------------

    def _call(self, ctx: DeliveryContext, path: str, what: str, body: dict[str, Any] | None, *,
              params: dict[str, str] | None = None, files: dict[str, Any] | None = None,
              write: bool = False) -> dict[str, Any]:
        """POST to ``path`` with the access token; on 40001/40014/42001 refresh once and retry once."""
        token = self.access_token(ctx)
        for attempt in (1, 2):
            kwargs: dict[str, Any] = {"params": {"access_token": token, **(params or {})}}
            if files is not None:
                kwargs["files"] = files
            else:
                kwargs.update(data=_utf8(body or {}), headers=JSON_HEADERS)
            resp = send(ctx, "POST", self.account.api_base + path, idempotent=not write, **kwargs)
            data = json_body(resp)
            code = _errcode(data)
            if resp.status_code == 200 and code in AUTH_CODES:
                if attempt == 2:
                    raise AuthExpired(ctx.redact(f"WeChat rejected a fresh access token ({_meaning(code, data)}): "
                                                 f"re-authorise account {self.account.name}"), code=code)
                ctx.step(f"access token rejected (errcode {code}): refreshing it once")
                token = self.access_token(ctx, failed=token)
                continue
            return self._check(ctx, resp, data, what, write=write)
        raise AssertionError("unreachable")

    def _check(self, ctx: DeliveryContext, resp: Any, data: dict[str, Any], what: str, *,
               write: bool) -> dict[str, Any]:
        """HTTP 200 + errcode 0 (or none) → the body; anything else → our error classes."""
        if resp.status_code != 200:
            raise error_for_status(resp, ctx.redact(f"WeChat {what}: HTTP {resp.status_code} {short(resp.text, 200)}"))
        if not data:
            cls = Ambiguous if write else TransientError
            raise cls(f"WeChat {what}: the answer was not JSON", status=200)
        code = _errcode(data)
        if code == 0:
            return data
        raise error_for_code(ctx, code, data, what)


def error_for_code(ctx: DeliveryContext, code: int, data: dict[str, Any], what: str) -> DeliveryError:
    """Map a WeChat errcode (fact sheet §1.6) to our error classes; the message is redacted."""
    message = ctx.redact(f"WeChat {what} failed: {_meaning(code, data)}")
    if code == -1:
        return TransientError(message, code=code)
    if code in (45011, 45066):  # per-minute quota / mass send too fast: next minute
        return RateLimited(message, retry_after=60.0, code=code)
    if code in (45009, 45028):  # daily quota: next day (Beijing time), unless someone runs clear_quota
        now = datetime.now(CHINA)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return RateLimited(message, retry_after=max(60.0, (midnight - now).total_seconds()), code=code)
    if code == 45065:
        return Duplicate(message, code=code)
    if code in AUTH_CODES:
        return AuthExpired(message + f": re-authorise account {ctx.account.name}", code=code)
    return PermanentError(message, code=code)


def _errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return 0


def _meaning(code: int, data: dict[str, Any]) -> str:
    errmsg = short(str(data.get("errmsg") or ""), 200)
    known = MEANINGS.get(code)
    if known and errmsg and known.split(" (")[0].lower() not in errmsg.lower():
        text = f"{known} — {errmsg}"
    else:
        text = errmsg or known or "error"
    return f"{text} (errcode {code})"


def _need(ctx: DeliveryContext, data: dict[str, Any], field: str, what: str) -> Any:
    value = data.get(field)
    if value in (None, ""):
        raise Ambiguous(ctx.redact(f"WeChat {what}: the answer has no {field}: {short(json.dumps(data), 200)}"))
    return value


def _media(img: Image) -> dict[str, tuple[str, bytes, str]]:
    """The multipart ``media`` field both upload endpoints take."""
    return {"media": (img.filename, img.data, img.content_type)}


def _utf8(body: dict[str, Any]) -> bytes:
    """Raw UTF-8 JSON: WeChat rejects \\uXXXX escapes of non-ASCII characters."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
