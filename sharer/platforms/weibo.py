"""Sina Weibo (新浪微博): one short status with the article link, via ``POST /2/statuses/share.json``.

Set-up:
  1. Create a web app on open.weibo.com (我的应用), bind the news site's domain as its 安全域名 (safe
     domain: 应用信息 → 基本应用信息编辑 → 安全域名) and list it in ``options.safe_domains``.
  2. Authorise the posting account with the OAuth2 code flow; put the ``access_token`` in an env var or
     the secrets file (``credentials = { access_token = "env:WEIBO_TOKEN" }``).
  3. Set ``options.rip`` to the public IP of the server that posts (Weibo requires the "real IP").

Quirks:
  - The status must contain at least one link on the app's safe domain, and no ``#话题#`` topic.
  - Length is in 汉字: CJK = 1, ASCII/Latin-1 = ½ (rounded up), each link a fixed ~11 (t.cn); the server
    algorithm is unverified, hence the ``limit``, ``url_weight`` and ``margin`` options.
  - ``error_code`` may be a string. Web apps get no refresh token: an expired token means re-authorising.
  - No idempotency: Weibo answers 20017/20019 for a repeat, without the earlier id.
  - Reconciliation reads ``statuses/show`` (the id, once a reply was read) or one page of
    ``statuses/user_timeline``, whose texts carry t.cn links instead of ours: statuses are matched on
    their text without links and whitespace, their ``created_at`` and the account's uid. Both count
    against the 100 calls/day quota, so they are made only after an ambiguous send.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

import requests

from ..article import Article
from ..compose import article_values, tag_url
from ..config.credentials import is_loopback_url
from ..errors import (
    Ambiguous,
    AuthExpired,
    ComposeError,
    DeliveryError,
    Duplicate,
    RateLimited,
    TransientError,
)
from ..media import Image, fetch_image
from ..text import count_weibo
from ._weibo_lookup import LOOKUP_COUNT, known_uid, match_timeline, remember_uid
from ._weibo_text import (
    _normal_domain,
    comparable,
    find_topics,
    generate,
    host_allowed,
    parse_created_at,
    seconds_to_next_hour,
    status_url,
    strip_topics,
    tag_link,
)
from ._weibo_text import mid_to_base62 as mid_to_base62  # re-exported: part of this platform's surface
from .base import CLOCK_SLACK, DeliveryContext, Platform, Post, Receipt
from .http import ErrorTable, Rule, json_body, send, short
from .spec import Credentials, Demo, Limits, OptionError, Options, PlatformSpec, RateLimit, Sandbox

__all__ = ["LOOKUP_COUNT", "Weibo", "WeiboOptions", "comparable", "find_topics", "mid_to_base62",
           "parse_created_at", "seconds_to_next_hour", "strip_topics"]

SANDBOX_RIP = "127.0.0.1"  # used when ``rip`` is unset and api_base is a loopback (sandbox) address
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Weibo: "< 5 MB"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif")
SLOW = "20032"  # "posted, server slow": success without a guarantee (its wait is an account option)


def _codes(rule: Rule, *codes: str) -> dict[str, Rule]:
    return dict.fromkeys(codes, rule)


# Weibo's ``error_code`` (a string or a number; read as a string). Posting windows are clock hours.
ERRORS = ErrorTable(codes={
    **_codes(Rule(TransientError), "10001", "10002", "10003", "10009", "10010", "10011", "21331"),
    **_codes(Rule(RateLimited, retry_after=lambda: seconds_to_next_hour(time.time())),
             "10022", "10023", "10024", "20016"),
    **_codes(Rule(AuthExpired, "Weibo rejected the access token of {account} ({detail}); web apps get no refresh "
                               "token: the account owner must authorise again"),
             "21327", "21332", "21314", "21315", "21316", "21317", "21319"),
    **_codes(Rule(Duplicate), "20017", "20019"),
})


@dataclass(frozen=True)
class WeiboOptions(Options):
    safe_domains: tuple[str, ...] = ()  # the app's bound 安全域名; the article link must be on one of them
    rip: str = ""                       # the posting server's public IP; "" = 127.0.0.1 in the sandbox only
    limit: int = 140                    # unverified server rule
    url_weight: int = 11                # what one (t.cn-shortened) link counts; unverified
    margin: int = 0                     # units kept free below the limit
    attach_image: bool = True
    slow_check_seconds: float = 120.0   # after 20032 ("posted, server slow, wait 1-2 minutes"): look then

    def check(self) -> WeiboOptions:
        if not all(_normal_domain(d) and "/" not in d for d in self.safe_domains):
            raise OptionError("safe_domains", "must be a list of domain names like \"news.example.com\"")
        for key in ("limit", "url_weight", "margin"):
            if getattr(self, key) < (0 if key == "margin" else 1):
                raise OptionError(key, f"must be a {'non-negative' if key == 'margin' else 'positive'} integer")
        if not 0 <= self.slow_check_seconds <= 3600:
            raise OptionError("slow_check_seconds", "must be between 0 and 3600")
        if self.margin >= self.limit:
            raise OptionError("margin", "must be smaller than limit")
        if self.rip:
            try:
                ipaddress.ip_address(self.rip)
            except ValueError:
                raise OptionError("rip", f"must be an IP address, got {self.rip!r}") from None
        return self.normalised(safe_domains=tuple(_normal_domain(d) for d in self.safe_domains))


class Weibo(Platform[WeiboOptions]):
    spec = PlatformSpec(
        id="weibo", title="Sina Weibo", api_base="https://api.weibo.com",
        limits=Limits(140, "Weibo units", count_weibo, media=1, media_bytes=MAX_IMAGE_BYTES - 1,
                      media_types=IMAGE_TYPES),
        options=WeiboOptions,
        credentials=Credentials(required=("access_token",)),
        template="{title}\n{summary}\n{url}",
        rate_limit=RateLimit(30, 3600.0),  # posting: 30 per hour per user (Weibo rate-limiting wiki)
        sandbox=Sandbox("sharer.sandbox.weibo:WeiboEmulator", 8902),
        # the sandbox has no hourly quota to protect; real accounts keep Weibo's 30 posts/hour default
        demo=(Demo(options={"safe_domains": ["news.example.com"], "rip": "127.0.0.1"},
                   rate_limit=RateLimit(600, 3600.0)),),
    )

    # --- composition (pure) ---------------------------------------------------------------------------

    def count(self, text: str) -> int:
        return count_weibo(text, self.options.url_weight)

    @property
    def effective_limit(self) -> int:
        return self.options.limit - self.options.margin

    def compose(self, article: Article, text: str | None = None) -> Post:
        name, domains = self.account.name, self.options.safe_domains
        if not domains:
            raise ComposeError(name, "no safe_domains configured (options.safe_domains: the Weibo app's 安全域名); "
                                     "the share API only accepts statuses linking to them")
        url = tag_url(article.url, self.account.utm)
        if not host_allowed(url, domains):
            raise ComposeError(name, f"the article link {article.url} is not on the account's safe domains "
                                     f"({', '.join(domains)}); Weibo's share API would reject it")
        rip = self.options.rip
        if not rip:
            if not is_loopback_url(self.account.api_base):
                raise ComposeError(name, "options.rip is required: Weibo's share API needs the posting server's "
                                         "public IP address")
            rip = SANDBOX_RIP
        limit = self.effective_limit
        if text is not None:
            composed = tag_link(text, article.url, url)
        else:
            composed = generate(self.template, article_values(article, url), self.count, limit, self.unit)
        if composed.problem:
            raise ComposeError(name, composed.problem)
        status = composed.text
        if text is not None:
            self.check_override(status, self.count(status), limit)
        pic = article.image if self.options.attach_image else None
        payload = {"status": status, "pic": pic, "rip": rip}
        return Post(self.id, name, status, payload, self.count(status), limit, self.unit, composed.warnings,
                    (pic,) if pic else ())

    # --- delivery --------------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        form = {"access_token": self.account.secret("access_token"), "status": post.payload["status"],
                "rip": post.payload["rip"]}
        files: dict[str, tuple[str, bytes, str]] | None = None
        if post.payload.get("pic"):
            image = self._fetch_image(post.payload["pic"], ctx)
            if image is not None:
                files = {"pic": (image.filename, image.data, image.content_type)}
        resp = send(ctx, "POST", f"{self.account.api_base}/2/statuses/share.json", data=form, files=files)
        data = self._answer(resp, ctx)
        if not (data.get("idstr") or data.get("id")):
            raise Ambiguous("Weibo answered without a status id; the status may have been posted",
                            status=resp.status_code)
        receipt = self._receipt(data)
        # recorded the moment it is read: if this worker dies before the receipt is written, the
        # reconciliation reads this one status (statuses/show) instead of searching the timeline
        ctx.state["status_id"] = receipt.post_id
        ctx.save_state()
        remember_uid(data, ctx)
        return receipt

    def check_credentials(self, ctx: DeliveryContext) -> str:
        """``oauth2/get_token_info``: whether the token is alive and how long it has left (a read)."""
        resp = send(ctx, "POST", f"{self.account.api_base}/oauth2/get_token_info", idempotent=True,
                    data={"access_token": self.account.secret("access_token")})
        data = self._answer(resp, ctx)
        expire_in = data.get("expire_in")
        left = f", expires in {int(expire_in)} s" if isinstance(expire_in, (int, float)) else ""
        return f"token valid for user {data.get('uid', '?')}{left}"

    def find_existing(self, post: Post, ctx: DeliveryContext) -> Receipt | None:
        """Our status on the account: by id when a reply was read, else in the newest timeline page
        (``_weibo_lookup.match_timeline``: matched on its text without links, its age and the uid).

        After a 20017/20019 answer (``ctx.duplicate``) an older identical status is the one Weibo
        already had. None only when the page reached back before the first attempt (or held the whole
        timeline); otherwise "cannot tell" — one page (100 statuses) is all the daily quota lets us spend.
        """
        known = ctx.state.get("status_id")
        if known:
            return self._show(str(known), ctx)
        if not comparable(post.text):
            raise Ambiguous("the status has no text besides its link, so it cannot be told apart on the timeline")
        resp = send(ctx, "GET", f"{self.account.api_base}/2/statuses/user_timeline.json", idempotent=True,
                    params={"access_token": self.account.secret("access_token"), "count": LOOKUP_COUNT})
        since = None if ctx.window_start is None else ctx.window_start - CLOCK_SLACK
        status, earlier = match_timeline(self._answer(resp, ctx), post.text, known_uid(ctx),
                                         window_start=ctx.window_start, since=since, duplicate=ctx.duplicate)
        if status is None:
            return None
        receipt = self._receipt(status)
        if earlier:
            where = receipt.url or f"status {receipt.post_id}"
            return Receipt(receipt.post_id, receipt.url, f"Weibo already had this post: {where}", already_posted=True)
        return receipt

    def _show(self, status_id: str, ctx: DeliveryContext) -> Receipt:
        """``statuses/show``: the status we have the id of (a reply was read before the worker stopped)."""
        resp = send(ctx, "GET", f"{self.account.api_base}/2/statuses/show.json", idempotent=True,
                    params={"access_token": self.account.secret("access_token"), "id": status_id})
        data = self._answer(resp, ctx)
        if str(data.get("idstr") or data.get("id") or "") != status_id or data.get("deleted"):
            raise Ambiguous(f"Weibo no longer shows status {status_id}, which it accepted (deleted?)")
        return self._receipt(data)

    def _answer(self, resp: requests.Response, ctx: DeliveryContext) -> dict[str, Any]:
        """The JSON body of a success; an error answer raises (Weibo's code first, else the HTTP status)."""
        data = json_body(resp)
        code = str(data.get("error_code") or "0").strip()
        if code not in ("", "0"):
            detail = ctx.redact(short(str(data.get("error") or data.get("error_description") or "no error text")))
            message = ctx.redact(f"Weibo error {code}: {detail}")
            if code == SLOW:  # not a failure: accepted, shown later; the wait is the account's option
                raise Ambiguous(f"Weibo says the status was received but the server is slow ({detail}); verify "
                                "before posting again", accepted=True, check_after=self.options.slow_check_seconds,
                                code=code, status=resp.status_code)
            raise ERRORS.for_code(code, message, status=resp.status_code,
                                  fields={"account": self.account.name, "detail": detail})
        if not 200 <= resp.status_code < 300:
            raise ERRORS.for_response(resp, ctx.redact(f"Weibo answered HTTP {resp.status_code}: {short(resp.text)}"))
        return data

    def _receipt(self, status: dict[str, Any]) -> Receipt:
        idstr = str(status.get("idstr") or status.get("id"))
        user = status.get("user") or {}
        uid = user.get("idstr") or user.get("id")
        mid = str(status.get("mid") or idstr)
        if not uid or not mid.isdigit():
            return Receipt(idstr, None, note="Weibo's answer had no user id or numeric mid for a public URL")
        return Receipt(idstr, status_url(str(uid), mid))

    def _fetch_image(self, url: str, ctx: DeliveryContext) -> Image | None:
        """Download the article image; any problem means posting without it (noted in the log)."""
        try:
            image = fetch_image(ctx, url, max_bytes=MAX_IMAGE_BYTES - 1, allowed=IMAGE_TYPES)
        except DeliveryError as e:
            ctx.step(f"image not attached ({e}); posting without it")
            return None
        ctx.step(f"image attached ({image.content_type}, {len(image.data)} bytes)")
        return image
