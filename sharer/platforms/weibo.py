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
import json
import string
import time
from typing import Any

import requests

from ..article import Article
from ..compose import article_values, tag_url
from ..config import is_loopback_url
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
from ..media import Image, fetch_image
from ..text import count_weibo, find_urls, trim
from ._lookup import Age, age
from ._weibo_text import (
    _normal_domain,
    _outside_urls,
    comparable,
    find_topics,
    host_allowed,
    parse_created_at,
    render_lines,
    seconds_to_next_hour,
    status_url,
    strip_topics,
)
from ._weibo_text import mid_to_base62 as mid_to_base62  # re-exported: part of this platform's surface
from .base import CLOCK_SLACK, DeliveryContext, Platform, Post, Receipt, error_for_status, json_body, send, short

SANDBOX_RIP = "127.0.0.1"  # used when ``rip`` is unset and api_base is a loopback (sandbox) address
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Weibo: "< 5 MB"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif")

TRANSIENT = {"10001", "10002", "10003", "10009", "10010", "10011", "21331"}
RATE_LIMITED = {"10022", "10023", "10024", "20016"}
AUTH = {"21327", "21332", "21314", "21315", "21316", "21317", "21319"}
DUPLICATE = {"20017", "20019"}
SLOW = "20032"  # "posted, server slow": success without a guarantee
LOOKUP_COUNT = 100  # user_timeline's largest page: one call (of the 100 a day) sees the most


# --- the platform --------------------------------------------------------------------------------------

class Weibo(Platform):
    id = "weibo"
    title = "Sina Weibo"
    default_api_base = "https://api.weibo.com"
    required_credentials = ("access_token",)
    limit = 140
    unit = "Weibo units"
    sandbox_port = 8902
    rate_limit = (30, 3600.0)  # posting: 30 per hour per user (Weibo rate-limiting wiki)
    default_template = "{title}\n{summary}\n{url}"
    option_defaults = {
        "safe_domains": [],  # the app's bound 安全域名; the article link must be on one of them
        "rip": "",  # the posting server's public IP; "" = 127.0.0.1 in the sandbox, an error elsewhere
        "limit": 140,  # unverified server rule
        "url_weight": 11,  # what one (t.cn-shortened) link counts; unverified
        "margin": 0,  # units kept free below the limit
        "attach_image": True,
        "slow_check_seconds": 120,  # after 20032 ("posted, server slow, wait 1-2 minutes"): look then
    }

    @classmethod
    def validate_options(cls, raw: Any) -> dict[str, Any]:
        out = super().validate_options(raw)
        domains = out["safe_domains"]
        if not all(isinstance(d, str) and _normal_domain(d) and "/" not in d for d in domains):
            raise ValueError("safe_domains: must be a list of domain names like \"news.example.com\"")
        out["safe_domains"] = [_normal_domain(d) for d in domains]
        for key in ("limit", "url_weight", "margin"):
            if int(out[key]) != out[key] or out[key] < (0 if key == "margin" else 1):
                raise ValueError(f"{key}: must be a {'non-negative' if key == 'margin' else 'positive'} integer")
            out[key] = int(out[key])
        if not 0 <= out["slow_check_seconds"] <= 3600:
            raise ValueError("slow_check_seconds: must be between 0 and 3600")
        if out["margin"] >= out["limit"]:
            raise ValueError("margin: must be smaller than limit")
        if out["rip"]:
            try:
                ipaddress.ip_address(out["rip"])
            except ValueError:
                raise ValueError(f"rip: must be an IP address, got {out['rip']!r}") from None
        return out

    # --- composition (pure) ---------------------------------------------------------------------------

    def count(self, text: str) -> int:
        return count_weibo(text, self.options["url_weight"])

    @property
    def effective_limit(self) -> int:
        return self.options["limit"] - self.options["margin"]

    def compose(self, article: Article, text: str | None = None) -> Post:
        name = self.account.name
        domains = self.options["safe_domains"]
        if not domains:
            raise ComposeError(name, "no safe_domains configured (options.safe_domains: the Weibo app's 安全域名); "
                                     "the share API only accepts statuses linking to them")
        url = tag_url(article.url, self.account.utm)
        if not host_allowed(url, domains):
            raise ComposeError(name, f"the article link {article.url} is not on the account's safe domains "
                                     f"({', '.join(domains)}); Weibo's share API would reject it")
        rip = self.options["rip"]
        if not rip:
            if not is_loopback_url(self.account.api_base):
                raise ComposeError(name, "options.rip is required: Weibo's share API needs the posting server's "
                                         "public IP address")
            rip = SANDBOX_RIP
        limit = self.effective_limit
        status, warnings = (self._override(text, article, url, limit) if text is not None
                            else self._generate(article, url, limit))
        pic = article.image if self.options["attach_image"] else None
        payload = {"status": status, "pic": pic, "rip": rip}
        return Post(self.id, name, status, payload, self.count(status), limit, self.unit, tuple(warnings))

    def _override(self, text: str, article: Article, url: str, limit: int) -> tuple[str, list[str]]:
        """An editor's text: checked, never cut. A bare article link in it is tagged."""
        warnings = []
        links = [text[s:e] for s, e in find_urls(text)]
        if url not in links:
            if article.url in links:
                text = "".join(url if is_url and text[s:e] == article.url else text[s:e]
                               for s, e, is_url in _outside_urls(text))
                warnings.append("article link tagged")
            else:
                raise ComposeError(self.account.name, f"the text must contain the article link {url} "
                                                      "(Weibo's share API needs a link on the safe domain)")
        topics = find_topics(text)
        if topics:
            raise ComposeError(self.account.name, f"the text contains the topic {topics[0]}: Weibo's share API "
                                                  "rejects #话题# topics (remove the # marks)")
        self.check_override(text, self.count(text), limit)
        return text, warnings

    def _generate(self, article: Article, url: str, limit: int) -> tuple[str, list[str]]:
        """Template text; the summary is trimmed to fit, then dropped, then the title trimmed."""
        name, template = self.account.name, self.template
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        if "url" not in fields:
            raise ComposeError(name, "the template has no {url}: Weibo's share API needs the article link")
        values = article_values(article, url)
        clean = {k: strip_topics(v) for k, v in values.items() if k not in ("url", "image")}
        warnings = []
        if any(clean[k] != values[k] for k in clean):
            warnings.append("# marks of #topic# removed (Weibo's share API forbids topics)")
        values.update(clean)
        title, summary = values["title"], values["summary"] if "summary" in fields else ""

        def render(t: str, s: str) -> str:
            return render_lines(template, {**values, "title": t, "summary": s})

        text = render(title, summary)
        if self.count(text) > limit:
            if summary and self.count(render(title, "")) <= limit:
                cut = trim(summary, limit, count=lambda s: self.count(render(title, s)))
                text = render(title, cut.text)
                warnings.append("summary trimmed" if cut.text else "summary dropped")
            else:
                if summary:
                    warnings.append("summary dropped")
                cut = trim(title, limit, count=lambda t: self.count(render(t, "")))
                if not cut.text or self.count(render(cut.text, "")) > limit:
                    raise ComposeError(name, f"the template's fixed text and link alone exceed {limit} "
                                             f"{self.unit}")
                text = render(cut.text, "")
                warnings.append("title trimmed")
        topics = find_topics(text)
        if topics:
            raise ComposeError(name, f"the template produces the topic {topics[0]}: Weibo's share API "
                                     "rejects #话题# topics")
        return text, warnings

    # --- delivery --------------------------------------------------------------------------------------

    def publish(self, post: Post, ctx: DeliveryContext) -> Receipt:
        form = {"access_token": self.account.secret("access_token"), "status": post.payload["status"],
                "rip": post.payload["rip"]}
        files = None
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
        self._remember_uid(data, ctx)
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
        """Our status on the account: by id when a reply was read, else in the newest timeline page.

        A timeline status is ours when it is the account's own (its uid, when known; not a repost),
        its text equals ours once links and whitespace are removed (``comparable``: the timeline
        shows t.cn links), and it was made after the first attempt began (``_lookup.age``; one
        stamped just before is "cannot tell"). After a 20017/20019 answer (``ctx.duplicate``) an
        older identical status is the one Weibo already had. None only when
        the page reached back before the first attempt (or held the whole timeline); otherwise the
        answer is "cannot tell" — one page (100 statuses) is all the daily quota lets us spend.
        """
        known = ctx.state.get("status_id")
        if known:
            return self._show(str(known), ctx)
        needle = comparable(post.text)
        if not needle:
            raise Ambiguous("the status has no text besides its link, so it cannot be told apart on the timeline")
        resp = send(ctx, "GET", f"{self.account.api_base}/2/statuses/user_timeline.json", idempotent=True,
                    params={"access_token": self.account.secret("access_token"), "count": LOOKUP_COUNT})
        page = self._answer(resp, ctx)
        statuses = [s for s in page.get("statuses") or [] if isinstance(s, dict)]
        uid = self._known_uid(ctx)
        found: dict[Age, list[dict[str, Any]]] = {a: [] for a in Age}
        for status in statuses:
            user = status.get("user") or {}
            owner = str(user.get("idstr") or user.get("id") or status.get("uid") or "")
            if (uid and owner and owner != uid) or status.get("retweeted_status"):
                continue
            if comparable(str(status.get("text") or "")) == needle:
                at = parse_created_at(status.get("created_at"))
                found[age(at, ctx.window_start, ctx.duplicate)].append(status)
        if found[Age.OURS]:
            return self._receipt(found[Age.OURS][-1])  # newest first: the oldest match is the first made
        if ctx.duplicate and found[Age.EARLIER]:
            earlier = self._receipt(found[Age.EARLIER][0])
            where = earlier.url or f"status {earlier.post_id}"
            return Receipt(earlier.post_id, earlier.url, f"Weibo already had this post: {where}", already_posted=True)
        if found[Age.NEAR]:
            near = found[Age.NEAR][0]
            raise Ambiguous(f"a status with the same text ({near.get('idstr') or near.get('id')}, "
                            f"{near.get('created_at')}) was made just before the first attempt: ours if Weibo's "
                            "clock runs behind, or an earlier share")
        since = None if ctx.window_start is None else ctx.window_start - CLOCK_SLACK
        oldest = parse_created_at(statuses[-1].get("created_at")) if statuses else None
        # the whole timeline was seen: a short page, and the total (when Weibo says it) no larger — a
        # short page alone could be a server that caps ``count`` below what we asked for
        total = page.get("total_number")
        whole = len(statuses) < LOOKUP_COUNT and (not isinstance(total, int) or total <= len(statuses))
        if whole or (since is not None and oldest is not None and oldest < since):
            return None
        reach = "the account's start" if since is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(since))
        raise Ambiguous(f"the newest {len(statuses)} statuses on the timeline do not reach back to {reach}, "
                        "so the status may be further down")

    def _show(self, status_id: str, ctx: DeliveryContext) -> Receipt:
        """``statuses/show``: the status we have the id of (a reply was read before the worker stopped)."""
        resp = send(ctx, "GET", f"{self.account.api_base}/2/statuses/show.json", idempotent=True,
                    params={"access_token": self.account.secret("access_token"), "id": status_id})
        data = self._answer(resp, ctx)
        if str(data.get("idstr") or data.get("id") or "") != status_id or data.get("deleted"):
            raise Ambiguous(f"Weibo no longer shows status {status_id}, which it accepted (deleted?)")
        return self._receipt(data)

    def _remember_uid(self, status: dict[str, Any], ctx: DeliveryContext) -> None:
        """The account's uid, from a status it made: lookups then ignore anyone else's statuses."""
        user = status.get("user") or {}
        uid = user.get("idstr") or user.get("id")
        if uid and ctx.redis is not None and ctx.keys is not None:
            try:
                ctx.redis.set(ctx.keys.cache(self.account.name, "weibo-uid"), json.dumps(str(uid)))
            except Exception:  # a cache: never worth failing a delivery over
                pass

    def _known_uid(self, ctx: DeliveryContext) -> str | None:
        if ctx.redis is None or ctx.keys is None:
            return None
        try:
            raw = ctx.redis.get(ctx.keys.cache(self.account.name, "weibo-uid"))
            return json.loads(raw) if raw else None
        except Exception:  # a cache: without it the timeline is simply not filtered by uid
            return None

    def _answer(self, resp: requests.Response, ctx: DeliveryContext) -> dict[str, Any]:
        """The JSON body of a success; an error answer raises (Weibo's code first, else the HTTP status)."""
        data = json_body(resp)
        if str(data.get("error_code") or "0").strip() not in ("", "0"):
            raise self._error(resp, data, ctx)
        if not 200 <= resp.status_code < 300:
            raise error_for_status(resp, ctx.redact(f"Weibo answered HTTP {resp.status_code}: {short(resp.text)}"))
        return data

    def _receipt(self, status: dict[str, Any]) -> Receipt:
        idstr = str(status.get("idstr") or status.get("id"))
        user = status.get("user") or {}
        uid = user.get("idstr") or user.get("id")
        mid = str(status.get("mid") or idstr)
        if not uid or not mid.isdigit():
            return Receipt(idstr, None, note="Weibo's answer had no user id or numeric mid for a public URL")
        return Receipt(idstr, status_url(str(uid), mid))

    def _error(self, resp: requests.Response, data: dict[str, Any], ctx: DeliveryContext) -> DeliveryError:
        code = str(data.get("error_code")).strip()
        detail = short(str(data.get("error") or data.get("error_description") or "no error text"))
        message = ctx.redact(f"Weibo error {code}: {detail}")
        kw = {"code": code, "status": resp.status_code}
        if code in TRANSIENT:
            return TransientError(message, **kw)
        if code in RATE_LIMITED:
            return RateLimited(message, retry_after=seconds_to_next_hour(time.time()), **kw)
        if code in AUTH:
            return AuthExpired(ctx.redact(f"Weibo rejected the access token of {self.account.name} ({detail}); web "
                                          "apps get no refresh token: the account owner must authorise again"), **kw)
        if code in DUPLICATE:
            return Duplicate(message, **kw)
        if code == SLOW:
            return Ambiguous(ctx.redact(f"Weibo says the status was received but the server is slow ({detail}); "
                                        "verify before posting again"), accepted=True,
                             check_after=float(self.options["slow_check_seconds"]), **kw)
        return PermanentError(message, **kw)

    def _fetch_image(self, url: str, ctx: DeliveryContext) -> Image | None:
        """Download the article image; any problem means posting without it (noted in the log)."""
        try:
            image = fetch_image(ctx, url, max_bytes=MAX_IMAGE_BYTES - 1, allowed=IMAGE_TYPES)
        except DeliveryError as e:
            ctx.step(f"image not attached ({e}); posting without it")
            return None
        ctx.step(f"image attached ({image.content_type}, {len(image.data)} bytes)")
        return image
