"""WeChat Official Account (公众号): a `news` draft of 1–8 articles, then 发布, 群发 or left for an editor.

Set-up:
  1. mp.weixin.qq.com → 设置与开发 → 基本配置: copy the AppID, generate the AppSecret.
  2. Add the server's egress IP to the IP whitelist on the same page (else errcode 40164).
  3. credentials = { appid = "env:WECHAT_APPID", appsecret = "env:WECHAT_APPSECRET" }.

Publishing modes (account option ``publish_mode``):
  * ``publish`` (default): ``freepublish/submit``, polled with ``freepublish/get`` — the article goes
    live on the account but is not pushed to followers;
  * ``mass``: 群发 with ``message/mass/sendall`` to all followers or a tag, idempotent through a
    ``clientmsgid`` made from the delivery id, completion read with ``message/mass/get``; the account's
    mass quota is checked first (``_wechat_quota``);
  * ``draft``: the draft is created and its (temporary) preview link returned, for an editor to finish
    in the WeChat console (原创 declaration has no API).

This module composes (pure) and picks the flow; the draft (and draft-only mode, phone preview) is in
``_wechat_draft``, publishing in ``_wechat_flows``, 群发 in ``_wechat_mass``, one API call with
its token and errcodes in ``_wechat_api``, body rules and downloads in ``_wechat_html``, cover crops in
``_wechat_image``. Docs: docs/platforms/wechat.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..article import Article
from ..compose import article_values, render_template, tag_url
from ..errors import ComposeError, InputError
from . import _wechat_draft as drafts
from . import _wechat_flows as flows
from . import _wechat_mass as mass
from ._wechat_api import WxApi
from ._wechat_html import trim_to, wechat_html
from ._wechat_options import ACCOUNT_TYPES, MODES, WeChatOptions
from .base import DeliveryContext, Platform, Post, Receipt
from .spec import Credentials, Demo, Limits, PlatformSpec, Sandbox

__all__ = ["ACCOUNT_TYPES", "MODES", "PhonePreview", "WeChat", "WeChatOptions"]

URL_MAX_BYTES = 1024  # content_source_url ≤ 1 KB
MAX_ARTICLES = 8  # one draft / one push carries at most 8 articles
IMAGE_TYPES = ("image/jpeg", "image/png")


@dataclass(frozen=True)
class PhonePreview:
    """What ``message/mass/preview`` sent: to whom, the draft it showed, WeChat's msg_id."""

    account: str
    to: str
    draft_media_id: str
    msg_id: str | None
    articles: int


_COVER = {"default_cover_url": "https://news.example.com/images/brand-card.jpg"}
_DEMOS = (
    Demo(options={"publish_poll_interval": 0.5, **_COVER}),
    # 群发 (mass send) to every follower: the demo's multi-article push goes here. A real service account
    # has 4 mass sends a month; the sandbox has no followers to protect, so the demo allows more.
    Demo(suffix="-mass", options={"publish_mode": "mass", "account_type": "service", "mass_quota": 1000,
                                  "publish_poll_interval": 0.5, **_COVER}),
    # Draft only: the push is left in the draft box for an editor to finish (原创 declaration) in the console.
    Demo(suffix="-draft", options={"publish_mode": "draft", **_COVER}),
)


class WeChat(Platform[WeChatOptions]):
    spec = PlatformSpec(
        id="wechat", title="WeChat Official Account", api_base="https://api.weixin.qq.com",
        # the digest (摘要): Post.text, the part an editor may override; the cover is the one image
        limits=Limits(128, "characters", media=1, media_bytes=10 * 1024 * 1024, media_types=IMAGE_TYPES),
        options=WeChatOptions,
        # callback_token: the server-config Token, for MASSSENDJOBFINISH events
        credentials=Credentials(required=("appid", "appsecret"), optional=("callback_token",)),
        template="{summary}",  # applies to the digest
        sandbox=Sandbox("sharer.sandbox.wechat:WeChatEmulator", 8901),
        demo=_DEMOS,
    )

    @property
    def mode(self) -> str:
        return self.options.publish_mode

    # --- composition (pure) ---------------------------------------------------------------------

    def compose(self, article: Article, text: str | None = None) -> Post:
        o, name = self.options, self.account.name
        items = (article, *article.extra_articles)
        if len(items) > MAX_ARTICLES:
            raise ComposeError(name, f"{len(items)} articles: one WeChat push carries at most {MAX_ARTICLES}")
        warnings: list[str] = []
        lead = self._article_fields(article, warnings, "")
        more = [self._article_fields(a, warnings, f"article {i}: ") for i, a in enumerate(items[1:], start=2)]

        limit = o.digest_max_chars
        if text is not None:  # an override replaces the digest (摘要), validated, never cut
            self.check_override(text, len(text), limit)
            digest = text
        else:
            values = article_values(article, lead["content_source_url"])
            values["summary"] = article.summary or lead.pop("_first_paragraph")
            digest = render_template(self.template, values)
            if len(digest) > limit:
                digest = trim_to(digest, limit)
                warnings.append(f"digest trimmed to {limit} characters")
        lead.pop("_first_paragraph", None)
        for m in more:
            m.pop("_first_paragraph", None)
        if more:
            warnings.append(f"{len(items)} articles in one push (多图文): the lead article's title and cover lead; "
                            "WeChat shows no digest for a multi-article push")
        warnings.extend(self._mode_notes())
        payload = {"publish_mode": self.mode, "article_type": "news", "title": lead.pop("title"),
                   "author": lead.pop("author"), "digest": digest, **lead}
        if more:
            payload["more"] = more
        return Post(self.id, name, digest, payload, len(digest), limit, self.unit, tuple(warnings))

    def _article_fields(self, article: Article, warnings: list[str], where: str) -> dict[str, Any]:
        """One draft article's fields (``cover`` and ``images`` are resolved at delivery)."""
        o, name = self.options, self.account.name
        url = tag_url(article.url, self.account.utm)
        if len(url.encode()) > URL_MAX_BYTES:
            raise ComposeError(name, f"{where}the article URL is over WeChat's {URL_MAX_BYTES}-byte 阅读原文 limit")
        cover = article.image or o.default_cover_url or None
        if not cover and not o.default_cover_media_id:
            raise ComposeError(name, f"{where}WeChat news needs a cover image: give the article an image or set "
                                     "the account option default_cover_url or default_cover_media_id")
        if not article.image:
            warnings.append(f"{where}the article has no image: using the account's default cover")
        title = trim_to(article.title, o.title_max_chars, o.title_max_bytes)
        if title != article.title:
            warnings.append(f"{where}title trimmed to {len(title)} characters / {len(title.encode())} bytes "
                            f"(limit {o.title_max_chars} / {o.title_max_bytes})")
        author = self._author(article, warnings, where)
        try:
            body = wechat_html(article.body_html, o.content_max_chars, o.content_max_bytes)
        except ValueError as e:
            raise ComposeError(name, f"{where}{e}") from None
        warnings.extend(where + w for w in body.warnings)
        if not body.html:
            raise ComposeError(name, f"{where}the article has no body; WeChat news needs content")
        return {"title": title, "author": author, "content": body.html, "content_source_url": url,
                "need_open_comment": int(o.need_open_comment),
                "only_fans_can_comment": int(o.only_fans_can_comment),
                "cover": cover,  # uploaded at delivery; its media_id becomes thumb_media_id
                "images": list(body.images),  # inline images, uploaded at delivery and their src rewritten
                "_first_paragraph": body.first_paragraph}

    def _author(self, article: Article, warnings: list[str], where: str = "") -> str:
        """The article's author if it fits, else the account's default author, else none (WeChat: optional)."""
        limit = self.options.author_max_chars
        candidates = [a for a in (article.author, self.options.default_author) if a]
        for a in candidates:
            if len(a) <= limit:
                if a != candidates[0]:
                    warnings.append(f"{where}author {candidates[0]!r} is over {limit} characters: "
                                    "using the default author")
                return a
        if candidates:
            warnings.append(f"{where}author {candidates[0]!r} is over {limit} characters: left out")
        return ""

    def _mode_notes(self) -> list[str]:
        if self.mode == "mass":
            from ._wechat_quota import rule

            count, period = rule(self.account)
            tag = self.options.tag_id
            to = f"the followers with tag {tag}" if tag is not None else "all followers"
            return [f"mass send (群发) to {to}: pushed to their chats; uses one of the account's "
                    f"{count} mass send{'s' if count != 1 else ''} a {period}"]
        if self.mode == "draft":
            return ["draft only: saved in the WeChat draft box for an editor to finish and publish in the console"]
        return []

    # --- delivery -------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        mode = post.payload.get("publish_mode", "publish")
        ctx.state.setdefault("publish_mode", mode)
        if mode == "mass":
            return mass.mass_send(self.api, post, ctx, self.options)
        if mode == "draft":
            return drafts.draft_only(self.api, post, ctx, self.options)
        return flows.publish(self.api, post, ctx, self.options)

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Receipt when found; None only when absence is proven (or a retry is safe: a running job is
        resumed, a mass send is de-duplicated by its clientmsgid); raises when WeChat cannot tell."""
        mode = post.payload.get("publish_mode", "publish")
        if mode == "mass":
            return mass.find_mass(self.api, post, ctx, self.options)
        if mode == "draft":
            return drafts.find_draft(self.api, post, ctx)
        return flows.find_published_post(self.api, post, ctx, self.options)

    def send_preview(self, post: Post, ctx: DeliveryContext, to: str) -> PhonePreview:
        """Create the real draft (images uploaded) and send it to one phone with ``message/mass/preview``.

        ``to`` is a WeChat ID (``towxname``) or ``openid:OPENID`` (``touser``); the previewer must follow
        the account. The draft stays in the draft box.
        """
        kind, _, value = to.partition(":")
        target = {"touser": value.strip()} if kind == "openid" and value.strip() else {"towxname": to.strip()}
        if not next(iter(target.values())):
            raise InputError("send_to", "give a WeChat ID or openid:OPENID")
        msg_id, media_id = drafts.preview_to_phone(self.api, post, ctx, self.options, target)
        return PhonePreview(self.account.name, to.strip(), media_id, msg_id, 1 + len(post.payload.get("more") or []))

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``stable_token`` without force_refresh: proves appid/appsecret/IP whitelist, rotates nothing."""
        _token, expires_in = self.api.fetch_token(ctx)
        return f"access token issued (valid {int(expires_in)} s)"

    @property
    def api(self) -> WxApi:
        return WxApi(self.account)

    def access_token(self, ctx: DeliveryContext, *, failed: str | None = None) -> str:
        return self.api.access_token(ctx, failed=failed)
