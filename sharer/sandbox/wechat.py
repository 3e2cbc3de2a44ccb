"""WeChat Official Account emulator: real /cgi-bin/ paths, HTTP 200 + errcode errors, asynchronous publish.

- ``GET /cgi-bin/token`` mints a new token on every call and kills the previous one at once (the real
  overlap is ~5 min); ``POST /cgi-bin/stable_token`` returns the same token while it has more than the
  rotation window left (5 min, or half the lifetime when that is shorter); ``force_refresh`` kills it.
- Every other call checks ``access_token``: missing → 41001, unknown or replaced → 40001, expired → 42001.
- ``material/add_material`` (type=image, ≤10 MB bmp/png/jpeg/gif), ``media/uploadimg`` (jpg/png < 1 MB),
  ``draft/add`` (validated: see ``_check_article``), ``freepublish/submit`` (consumes the draft),
  ``freepublish/get`` (status 1 for the first ``publishing_polls`` polls, then the final status),
  ``freepublish/batchget`` (settles jobs whose publishing time has passed, without a poll) and
  ``freepublish/getarticle``; ``GET /s/<article_id>`` is the article page.
- ``draft/get`` (a temporary preview ``url`` per article); a draft leaves the draft box once it is
  published or mass-sent, so using it again answers 40007.
- 群发: ``message/mass/sendall`` (``filter`` all/tag, ``mpnews.media_id`` = a draft, ``clientmsgid`` ≤ 64
  bytes else 45067, a repeated one → 45065 with the earlier ``msg_id``; checked before the draft unless
  ``{"clientmsgid_first": false}``), a quota of successful sends per Beijing day (``mass_quota``, then
  45028), ``message/mass/get`` (SENDING for ``mass_polls`` polls, then ``mass_status``) and
  ``message/mass/preview`` (``towxname`` or ``touser``; the draft stays; a name not in a non-empty
  ``followers`` list → 43004). ``GET /_sandbox/previews`` lists the previews sent to phones.
- Stricter than WeChat on purpose, to catch our bugs: unknown article fields (47001), script/iframe/form
  markup and images that are not uploadimg URLs (45166; WeChat strips those silently).

Control, besides the base's: ``POST /_sandbox/config`` with any of ``CONFIG``'s keys (e.g.
``{"publish_status": 4}`` makes the next jobs end in status 4, ``{"token_lifetime": 2}``), ``GET
/_sandbox/config``, and sample images at ``GET /_sandbox/images/<any path>.<jpg|png|gif|bmp|txt>`` with
optional ``?bytes=N`` (padded to N bytes), ``ctype=`` (Content-Type) and ``delay=`` (seconds).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from ._wx_cgi import WxError, cgi, check_flag, draft_named, job_named, rid, thumb_url
from .images import SAMPLE_JPEG, make_png
from .server import JSON, Emulator, Request, Response, route
from .wechat_mass import MassSendMixin

APPID, APPSECRET = "sandbox-appid", "sandbox-appsecret"  # what "sandbox:" resolves to
DEFAULT_COVER = "SANDBOX_DEFAULT_COVER"  # a permanent image material that always exists
CONFIG: JSON = {
    "token_lifetime": 7200, "publishing_polls": 1, "publish_seconds": 30.0, "publish_status": 0,
    "title_max_chars": 32, "title_max_bytes": 64, "author_max_chars": 8, "digest_max_chars": 128,
    "content_max_chars": 20_000, "content_max_bytes": 1_000_000,
    "mass_quota": 100, "mass_polls": 1, "mass_status": "SEND_SUCCESS", "clientmsgid_first": True,
    "followers": [],
}
ERRMSG = {
    -1: "system error", 40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type", 40004: "invalid media type", 40005: "invalid file type",
    40007: "invalid media_id", 40009: "invalid image size", 40013: "invalid appid",
    40014: "invalid access_token", 40033: "invalid charset", 40097: "invalid args",
    40164: "invalid ip, not in whitelist", 40003: "invalid openid", 43004: "require subscribe",
    45028: "has no masssend quota", 45065: "clientmsgid exist", 45066: "retry too fast", 45067: "clientmsgid too long",
    41001: "access_token missing", 41005: "media data missing", 42001: "access_token expired",
    44002: "empty post data", 44003: "empty news data", 45002: "content size out of limit",
    45003: "title size out of limit", 45004: "description size out of limit", 45005: "url size out of limit",
    45009: "reach max api daily quota limit", 45011: "api minute-quota reach limit mustslower retry next minute",
    45110: "author size out of limit", 45166: "invalid content", 47001: "data format error",
    48001: "api unauthorized", 48004: "api forbidden", 50002: "user limited",
    53503: "该草稿未通过发布检查", 53504: "需前往公众平台官网使用草稿", 53505: "请手动保存成功后再发表",
}
ARTICLE_FIELDS = {"article_type", "title", "author", "digest", "content", "content_source_url", "thumb_media_id",
                  "need_open_comment", "only_fans_can_comment", "pic_crop_235_1", "pic_crop_1_1"}
_NON_ASCII_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u(?!00[0-7][0-9a-fA-F])[0-9a-fA-F]{4}")
_MAGIC = (("jpeg", b"\xff\xd8\xff"), ("png", b"\x89PNG\r\n\x1a\n"), ("gif", b"GIF8"), ("bmp", b"BM"))


@dataclass
class Token:
    kind: str  # "basic" (/cgi-bin/token) or "stable"
    expires_at: float
    dead: bool = False  # replaced or force-refreshed
    expired: bool = False  # the expired_token fault


class WeChatEmulator(MassSendMixin, Emulator):
    platform = "wechat"

    def reset_state(self) -> None:
        self.config: JSON = dict(CONFIG)
        self.tokens: dict[str, Token] = {}
        self.latest_basic: str | None = None
        self.stable: str | None = None
        self.materials: dict[str, JSON] = {DEFAULT_COVER: {"type": "image", "url": "http://mmbiz.qpic.cn/sandbox/default"}}
        self.inline_urls: set[str] = set()
        self.drafts: dict[str, JSON] = {}
        self.jobs: dict[str, JSON] = {}
        self.articles: list[JSON] = []  # published, oldest first
        self.mass: dict[str, JSON] = {}  # msg_id -> mass send job
        self.clientmsgids: dict[str, str] = {}  # clientmsgid -> msg_id
        self.previews: list[JSON] = []  # message/mass/preview calls that succeeded
        self.seq = itertools.count(1)

    def error(self, code: Any, spec: JSON) -> Response:
        try:
            return self._err(int(code), spec.get("errmsg", ""))
        except (TypeError, ValueError):
            return Response(400, {"error": f"injected code must be a WeChat errcode, got {code!r}"})

    def expire_tokens(self) -> None:
        with self.lock:
            for t in self.tokens.values():
                t.expired = True

    def _err(self, code: int, hint: str = "") -> Response:
        text = ERRMSG.get(code, "error") + (f" hint: [{hint}]" if hint else "")
        return Response(200, {"errcode": code, "errmsg": f"{text} rid: {rid()}"})

    # --- helpers ---------------------------------------------------------------------------------

    def _check_token(self, req: Request) -> None:
        value = req.query.get("access_token")
        if not value:
            raise WxError(41001)
        t = self.tokens.get(value)
        if t is None or t.dead:
            raise WxError(40001)
        if t.expired or time.time() >= t.expires_at:
            raise WxError(42001)

    def _json(self, req: Request) -> JSON:
        if req.headers.get("content-type", "").startswith("multipart/form-data"):
            return {}
        if not req.body:
            raise WxError(44002)
        try:
            req.body.decode("utf-8")
        except UnicodeDecodeError:
            raise WxError(40033) from None
        if _NON_ASCII_ESCAPE.search(req.body):
            raise WxError(47001, "\\uXXXX escapes of non-ASCII characters are not accepted; send raw UTF-8")
        try:
            data = json.loads(req.body)
        except ValueError:
            raise WxError(47001) from None
        if not isinstance(data, dict):
            raise WxError(47001)
        return data

    def _mint(self, kind: str) -> tuple[str, int]:
        value = f"SBX{kind[0].upper()}_" + secrets.token_urlsafe(96)
        lifetime = int(self.config["token_lifetime"])
        self.tokens[value] = Token(kind, time.time() + lifetime)
        return value, lifetime

    def _credentials(self, appid: Any, secret: Any) -> None:
        if appid != APPID:
            raise WxError(40013)
        if secret != APPSECRET:
            raise WxError(40001, "appsecret")

    def _upload(self, req: Request) -> tuple[str, bytes]:
        part = req.files().get("media")
        if part is None or not part[2]:
            raise WxError(41005)
        data = part[2]
        kind = next((k for k, magic in _MAGIC if data.startswith(magic)), None)
        if kind is None:
            raise WxError(40005)
        return kind, data

    # --- auth ------------------------------------------------------------------------------------

    @cgi("GET", r"/cgi-bin/token", token=False, body=False)
    def token(self, req: Request, _: JSON) -> JSON:
        if req.query.get("grant_type") != "client_credential":
            raise WxError(40002)
        self._credentials(req.query.get("appid"), req.query.get("secret"))
        if self.latest_basic in self.tokens:
            self.tokens[self.latest_basic].dead = True
        self.latest_basic, lifetime = self._mint("basic")
        return {"access_token": self.latest_basic, "expires_in": lifetime}

    @cgi("POST", r"/cgi-bin/stable_token", token=False)
    def stable_token(self, req: Request, body: JSON) -> JSON:
        if body.get("grant_type") != "client_credential":
            raise WxError(40002)
        self._credentials(body.get("appid"), body.get("secret"))
        current = self.tokens.get(self.stable or "")
        now = time.time()
        if body.get("force_refresh") and current:
            current.dead = True
        elif current and not (current.dead or current.expired):
            left = current.expires_at - now
            if left > min(300.0, self.config["token_lifetime"] / 2):
                return {"access_token": self.stable, "expires_in": int(left)}
        self.stable, lifetime = self._mint("stable")  # the old one lives on until it expires
        return {"access_token": self.stable, "expires_in": lifetime}

    # --- images ----------------------------------------------------------------------------------

    @cgi("POST", r"/cgi-bin/material/add_material", body=False)
    def add_material(self, req: Request, _: JSON) -> JSON:
        mtype = req.query.get("type")
        if mtype not in ("image", "thumb"):
            raise WxError(40004)
        kind, data = self._upload(req)
        if mtype == "thumb" and (kind != "jpeg" or len(data) > 64 * 1024):
            raise WxError(40009 if kind == "jpeg" else 40005)
        if len(data) > 10 * 1024 * 1024:
            raise WxError(40009)
        media_id = "SBX_MAT_" + secrets.token_hex(16)
        url = f"http://mmbiz.qpic.cn/sandbox/mat_{secrets.token_hex(8)}.{kind}"
        self.materials[media_id] = {"type": mtype, "url": url, "bytes": len(data)}
        return {"media_id": media_id, "url": url}

    @cgi("POST", r"/cgi-bin/media/uploadimg", body=False)
    def uploadimg(self, req: Request, _: JSON) -> JSON:
        kind, data = self._upload(req)
        if kind not in ("jpeg", "png"):
            raise WxError(40005)
        if len(data) >= 1024 * 1024:
            raise WxError(40009)
        url = f"http://mmbiz.qpic.cn/sandbox/{secrets.token_hex(12)}.{'jpg' if kind == 'jpeg' else 'png'}"
        self.inline_urls.add(url)
        return {"url": url, "errcode": 0, "errmsg": "ok"}

    # --- drafts and publishing -------------------------------------------------------------------

    @cgi("POST", r"/cgi-bin/draft/add")
    def draft_add(self, req: Request, body: JSON) -> JSON:
        articles = body.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            raise WxError(47001, "articles must be a list of 1-8 articles")
        for a in articles:
            self._check_article(a)
        media_id = "SBX_DRAFT_" + secrets.token_hex(16)
        self.drafts[media_id] = {"articles": articles, "raw": req.body.decode("utf-8")}
        return {"media_id": media_id}

    def _check_article(self, a: Any) -> None:
        c = self.config
        if not isinstance(a, dict):
            raise WxError(47001, "an article must be an object")
        if set(a) - ARTICLE_FIELDS:
            raise WxError(47001, f"unknown article fields: {sorted(set(a) - ARTICLE_FIELDS)}")
        if a.get("article_type", "news") != "news":
            raise WxError(40097, "only news articles are emulated")
        title, author, digest = a.get("title"), a.get("author") or "", a.get("digest") or ""
        content, source = a.get("content"), a.get("content_source_url") or ""
        if not isinstance(title, str) or not title.strip() or not isinstance(content, str) or not content.strip():
            raise WxError(44003)
        if len(title) > c["title_max_chars"] or len(title.encode()) > c["title_max_bytes"]:
            raise WxError(45003)
        if not isinstance(author, str) or len(author) > c["author_max_chars"]:
            raise WxError(45110)
        if not isinstance(digest, str) or len(digest) > c["digest_max_chars"]:
            raise WxError(45004)
        if len(content) >= c["content_max_chars"] or len(content.encode()) >= c["content_max_bytes"]:
            raise WxError(45002)
        if not isinstance(source, str) or len(source.encode()) > 1024:
            raise WxError(45005)
        for key in ("need_open_comment", "only_fans_can_comment"):
            check_flag(a, key)
        for key in ("pic_crop_235_1", "pic_crop_1_1"):
            if key in a and not _crop_ok(a[key]):
                raise WxError(40097, f"{key} must be X1_Y1_X2_Y2 with 0 <= X1 < X2 <= 1 and 0 <= Y1 < Y2 <= 1")
        if a.get("thumb_media_id") not in self.materials:
            raise WxError(40007, "thumb_media_id must be a permanent image material")
        soup = BeautifulSoup(content, "html.parser")
        if soup.find(["script", "style", "iframe", "form", "input", "object", "embed"]):
            raise WxError(45166, "script/style/iframe/form markup")
        if any(k.lower().startswith("on") for tag in soup.find_all(True) for k in tag.attrs):
            raise WxError(45166, "event handler attribute")
        for link in soup.find_all("a", href=True):
            if urlsplit(str(link["href"])).hostname != "mp.weixin.qq.com":
                raise WxError(45166, "link to an external site")
        for img in soup.find_all("img"):
            if img.get("src") not in self.inline_urls:
                raise WxError(45166, "img src is not a media/uploadimg URL")

    @cgi("POST", r"/cgi-bin/freepublish/submit")
    def submit(self, req: Request, body: JSON) -> JSON:
        draft = draft_named(self.drafts, body.get("media_id"), consume=True)  # a published draft leaves the box
        n = next(self.seq)
        publish_id = str(2247483000 + n)
        self.jobs[publish_id] = {"draft": draft, "polls_left": int(self.config["publishing_polls"]),
                                 "ready_at": time.time() + float(self.config["publish_seconds"]),
                                 "target": int(self.config["publish_status"]), "status": None, "article": None}
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": 2650000000 + n}

    @cgi("POST", r"/cgi-bin/freepublish/get")
    def publish_get(self, req: Request, body: JSON) -> JSON:
        publish_id = str(body.get("publish_id"))
        job = job_named(self.jobs, publish_id, "publish_id")
        if job["status"] is None and job["polls_left"] > 0 and time.time() < job["ready_at"]:
            job["polls_left"] -= 1
            return {"publish_id": publish_id, "publish_status": 1, "article_id": "", "fail_idx": []}
        self._settle(job, publish_id)
        out: JSON = {"publish_id": publish_id, "publish_status": job["status"], "fail_idx": []}
        art = job["article"]
        if art is not None:
            out["article_id"] = art["article_id"]
        if job["status"] == 0:
            out["article_detail"] = {"count": len(art["urls"]),
                                     "item": [{"idx": i, "article_url": u} for i, u in enumerate(art["urls"], 1)]}
        elif job["status"] in (2, 3, 4):
            out["fail_idx"] = [1]
        return out

    def _settle(self, job: JSON, publish_id: str) -> None:
        """Make a job final: on success (0, or 5/6 which were a success first) the article exists."""
        if job["status"] is not None:
            return
        job["status"] = status = job["target"]
        if status not in (0, 5, 6):
            return
        article_id = "SBX_ART_" + secrets.token_hex(10)
        items = [dict(a) for a in job["draft"]["articles"]]
        urls = [f"{self.url}/s/{article_id}" + (f"?idx={i}" if i > 1 else "") for i in range(1, len(items) + 1)]
        art = {"article_id": article_id, "publish_id": publish_id, "url": urls[0], "urls": urls,
               "news": items[0], "items": items, "deleted": status != 0, "time": int(time.time())}
        job["article"] = art
        self.articles.append(art)
        if status == 0:
            self.record_post({"id": article_id, "mode": "publish", "publish_id": publish_id, "url": art["url"],
                              **items[0], "articles": items, "raw": job["draft"]["raw"]})

    def _news_items(self, art: JSON, with_content: bool) -> list[JSON]:
        out = []
        for news, url in zip(art["items"], art["urls"]):
            item = {**news, "url": url, "is_deleted": art["deleted"]}
            item["thumb_url"] = thumb_url(self.materials, item.get("thumb_media_id"))
            if not with_content:
                item.pop("content", None)
            out.append(item)
        return out

    @cgi("POST", r"/cgi-bin/freepublish/batchget")
    def batchget(self, req: Request, body: JSON) -> JSON:
        offset, count = body.get("offset"), body.get("count")
        if not isinstance(offset, int) or offset < 0 or not isinstance(count, int) or not 1 <= count <= 20:
            raise WxError(40097, "offset >= 0 and 1 <= count <= 20")
        now = time.time()
        for publish_id, job in self.jobs.items():  # jobs past their publishing time are final by now
            if job["status"] is None and now >= job["ready_at"]:
                self._settle(job, publish_id)
        newest = list(reversed(self.articles))
        page = newest[offset:offset + count]
        items = [{"article_id": a["article_id"], "update_time": a["time"],
                  "content": {"news_item": self._news_items(a, not body.get("no_content")),
                              "create_time": a["time"], "update_time": a["time"]}} for a in page]
        return {"total_count": len(newest), "item_count": len(items), "item": items}

    @cgi("POST", r"/cgi-bin/freepublish/getarticle")
    def getarticle(self, req: Request, body: JSON) -> JSON:
        for a in self.articles:
            if a["article_id"] == body.get("article_id"):
                return {"news_item": self._news_items(a, True)}
        raise WxError(40097, "unknown article_id")

    @route("GET", r"/s/(?P<article_id>[A-Za-z0-9_]+)")
    def article_page(self, req: Request) -> Response:
        with self.lock:
            art = next((a for a in self.articles if a["article_id"] == req.params["article_id"]), None)
            draft = self.drafts.get(req.query.get("media_id", "")) if req.params["article_id"] == "draft" else None
            if draft is not None:  # a draft's temporary preview link
                art = {"items": draft["articles"], "deleted": False}
        idx = int(req.query.get("idx") or 1) if (req.query.get("idx") or "1").isdigit() else 0
        if art is None or art["deleted"] or not 1 <= idx <= len(art["items"]):
            return Response(404, "该内容已被发布者删除", {"Content-Type": "text/plain; charset=utf-8"})
        n = art["items"][idx - 1]
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(n['title'])}</title></head>"
                f"<body><h1 id=\"activity-name\">{html.escape(n['title'])}</h1>"
                f"<div id=\"js_content\">{n['content']}</div>"
                f"<a href=\"{html.escape(n.get('content_source_url') or '')}\">阅读原文</a></body></html>")
        return Response(200, page, {"Content-Type": "text/html; charset=utf-8"})

    # --- control additions -----------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        if req.method == "GET" and req.path.startswith("/_sandbox/images/"):
            return sample_image(req)
        if req.method == "GET" and req.path == "/_sandbox/previews":
            with self.lock:
                return Response(200, {"previews": self.previews})
        if req.path == "/_sandbox/config":
            with self.lock:
                if req.method == "POST":
                    changes = req.json()
                    unknown = sorted(set(changes) - set(CONFIG)) if isinstance(changes, dict) else ["(not a dict)"]
                    if unknown:
                        return Response(400, {"error": f"unknown config keys: {unknown}", "known": sorted(CONFIG)})
                    self.config.update(changes)
                return Response(200, self.config)
        return super().control(req)


def _crop_ok(value: Any) -> bool:
    try:
        x1, y1, x2, y2 = (float(v) for v in str(value).split("_"))
    except ValueError:
        return False
    return 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


# --- sample images (JPEG/PNG from sharer.sandbox.images; tiny GIF and BMP for type checks) ----------

GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
BMP = (b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0)
       + b"\x30\x30\xc0\x00")
SAMPLES = {"jpg": (SAMPLE_JPEG, "image/jpeg"), "jpeg": (SAMPLE_JPEG, "image/jpeg"),
           "png": (make_png(), "image/png"), "gif": (GIF, "image/gif"), "bmp": (BMP, "image/bmp"),
           "txt": (b"not an image\n", "text/plain")}  # with ?ctype=image/jpeg: an image by its header only


def sample_image(req: Request) -> Response:
    ext = req.path.rsplit(".", 1)[-1].lower() if "." in req.path.rsplit("/", 1)[-1] else ""
    if ext not in SAMPLES:
        return Response(404, {"error": "sample images end in .jpg, .png, .gif, .bmp (or .txt)"})
    data, ctype = SAMPLES[ext]
    size = int(req.query.get("bytes") or 0)
    if size > len(data):
        data = data + b"\x00" * (size - len(data))  # trailing bytes after the image: still decodable
    if req.query.get("delay"):
        time.sleep(float(req.query["delay"]))
    return Response(200, data, {"Content-Type": req.query.get("ctype", ctype)})
