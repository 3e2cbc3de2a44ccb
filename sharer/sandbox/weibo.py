"""Sina Weibo open API emulator: ``POST /2/statuses/share.json``, ``GET /2/statuses/user_timeline.json``,
``GET /2/statuses/show.json``, ``GET /2/short_url/expand.json`` and ``POST /oauth2/get_token_info``.

Its own reading of the fact sheet (no client code or counters of ours): every link in a stored
status's ``text`` becomes a ``http://t.cn/<code>`` link, as on Weibo; the share answer and the
timeline show that text, and ``/_sandbox/posts`` keeps the text as sent.

What it checks, in order, with Weibo's own codes (``{"request", "error_code" (a string), "error"}``,
HTTP 400 — the real HTTP statuses are unverified; a fault may set ``status``):
  method (10021) → access_token (missing 10006, expired 21327, unknown 21332) → ``rip`` (10016) →
  ``status`` (empty 20008, over the limit 20012, a ``#话题#`` topic 10017 "parameter (status)'s value
  invalid", no link on the safe domain 10017 "appkey not bind domain!") → ``pic`` (not a file 20007,
  not JPEG/GIF/PNG 20005, 5 MB or more 20006) → same text as a status in the last 24 h 20019 (unless
  ``duplicate_check`` is off) → posting rate
  (30 per sliding hour per user, 20016).

Control (besides the base API):
  GET/POST /_sandbox/weibo/config   {"safe_domains": [...], "posts_per_hour": N, "limit": 140, "url_weight": 11,
                                     "duplicate_check": true}  (false: an identical text is posted again,
                                     so a second post shows in tests instead of a 20019)
  GET      /_sandbox/images/NAME.jpg|png|gif   small valid images (sandbox/images.py); NAME "large" is ≥ 5 MB,
                                               "fake" is not an image (but says it is), "missing" is 404.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .images import SAMPLE_JPEG, make_png
from .server import Emulator, Request, Response, route

SANDBOX_TOKEN = "sandbox-access_token"  # what "sandbox:" resolves to for the credential "access_token"
SANDBOX_USER = {"id": 7712345678, "screen_name": "沙盒新闻"}
SHARE = "/2/statuses/share.json"
CST = timezone(timedelta(hours=8))
TOPIC = re.compile(r"[#＃][^#＃\s]+[#＃]")
MAX_PIC = 5 * 1024 * 1024
# A link as Weibo's text handling sees it: a scheme and a run of URL characters (CJK ends it).
LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

ERRORS: dict[str, str] = {
    "10001": "system error!", "10002": "service unavailable!", "10003": "remote service error",
    "10006": "source paramter(appkey) is missing", "10008": "param error, see doc for more info.",
    "10009": "too many pending tasks, system is busy!", "10010": "job expired!", "10011": "RPC error!",
    "10016": "miss required parameter (rip) , see doc for more info.",
    "10017": "appkey not bind domain!", "10021": "HTTP METHOD is not suported for this request!",
    "10022": "IP requests out of rate limit!", "10023": "user requests out of rate limit!",
    "10024": "user requests for (statuses/share) out of rate limit!",
    "20005": "unsupported image type, only suport JPG, GIF, PNG!", "20006": "image size too large.",
    "20007": "does multipart has image?", "20008": "content is null!",
    "20012": "text too long, please input text less than 140 characters!", "20016": "out of limit!",
    "20017": "repeated content!", "20018": "contain illegal website!", "20019": "repeat content!",
    "20032": "update success, while server slow now, please wait 1-2 minutes",
    "21314": "token used", "21315": "token expired", "21316": "token revoked", "21317": "token rejected",
    "21319": "accessor was revoked", "21327": "expired_token", "21332": "invalid_access_token",
}


class WeiboEmulator(Emulator):
    platform = "weibo"

    def reset_state(self) -> None:
        self.users = {SANDBOX_TOKEN: dict(SANDBOX_USER)}
        self.expired: set[str] = set()
        self.safe_domains = ["news.example.com"]
        self.posts_per_hour = 30
        self.limit = 140
        self.url_weight = 11
        self.duplicate_check = True
        self.statuses: list[dict[str, Any]] = []  # newest last
        self.short: dict[str, str] = {}  # t.cn code -> long URL
        self.mids = itertools.count(4912345678901234, 7919)

    def error(self, code: Any, spec: dict[str, Any]) -> Response:
        code = str(code)
        body = {"request": spec.get("request", SHARE), "error_code": int(code) if spec.get("int") else code,
                "error": spec.get("error") or ERRORS.get(code, "unknown error")}
        return Response(int(spec.get("status", 400)), body)

    def fail(self, code: str, request: str = SHARE, error: str | None = None) -> Response:
        return self.error(code, {"request": request, **({"error": error} if error else {})})

    def expire_tokens(self) -> None:
        with self.lock:
            self.expired |= set(self.users)

    # --- API -----------------------------------------------------------------------------------------

    def _user(self, req: Request, request: str) -> dict[str, Any] | Response:
        """The token's user, or Weibo's error answer for a missing, expired or unknown token."""
        token = req.arg("access_token")
        if not token:
            return self.fail("10006", request)
        if token in self.expired:
            return self.fail("21327", request)
        user = self.users.get(token)
        return user if user else self.fail("21332", request)

    @route("*", SHARE.replace(".", r"\."))
    def share(self, req: Request) -> Response:
        if req.method != "POST":
            return self.fail("10021")
        with self.lock:
            user = self._user(req, SHARE)
            if isinstance(user, Response):
                return user
            form, files = req.form(), req.files()
            if not form.get("rip"):
                return self.fail("10016")
            text = form.get("status", "")
            if not text.strip():
                return self.fail("20008")
            if weibo_length(text, self.url_weight) > self.limit:
                return self.fail("20012", error=f"text too long, please input text less than {self.limit} characters!")
            if TOPIC.search(_without_urls(text)):
                return self.fail("10017", error="parameter (status)'s value invalid,expect (no #topic#) , but get "
                                                "(#topic#) , see doc for more info.")
            if not any(_on(m.group(), self.safe_domains) for m in LINK.finditer(text)):
                return self.fail("10017")
            pic = None
            if "pic" in form:  # sent as a plain field, not a file part
                return self.fail("20007")
            if "pic" in files:
                filename, _ctype, data = files["pic"]
                kind = _sniff(data)
                if kind is None:
                    return self.fail("20005")
                if len(data) >= MAX_PIC:
                    return self.fail("20006")
                pic = {"filename": filename, "content_type": kind, "size": len(data),
                       "sha1": hashlib.sha1(data).hexdigest()}
            now = time.time()
            mine = [s for s in self.statuses if s["user"]["id"] == user["id"]]
            if self.duplicate_check and any(s["_sent"] == text and now - s["_at"] < 86400 for s in mine):
                return self.fail("20019")
            if sum(1 for s in mine if now - s["_at"] < 3600) >= self.posts_per_hour:
                return self.fail("20016")
            status = self._status(user, text, pic, now)
            self.statuses.append(status)
            public = _public(status)
            uid = str(user["id"])
            self.record_post({"id": status["idstr"], "mid": status["mid"], "uid": uid,
                              "url": _status_url(uid, status["mid"]), "text": text,
                              "rip": form["rip"], "pic": pic,
                              "encoding": "multipart" if files else "form", "status": public})
            return Response(200, public)

    @route("GET", r"/2/statuses/user_timeline\.json")
    def user_timeline(self, req: Request) -> Response:
        """The token's user's statuses, newest first: ``count`` (≤ 100), ``page``, ``since_id``, ``max_id``."""
        request = "/2/statuses/user_timeline.json"
        with self.lock:
            user = self._user(req, request)
            if isinstance(user, Response):
                return user
            try:
                count = int(req.query.get("count", "20"))
                page = int(req.query.get("page", "1"))
                since_id = int(req.query.get("since_id", "0"))
                max_id = int(req.query.get("max_id", "0"))
            except ValueError:
                return self.fail("10008", request)
            count, page = max(1, min(count, 100)), max(1, page)
            mine = [s for s in reversed(self.statuses) if s["user"]["id"] == user["id"]
                    and s["id"] > since_id and (not max_id or s["id"] <= max_id)]
            trim = req.query.get("trim_user") == "1"
            shown = [_public(s, trim) for s in mine[(page - 1) * count: page * count]]
            return Response(200, {"statuses": shown, "previous_cursor": 0, "next_cursor": 0,
                                  "total_number": len(mine), "hasvisible": False})

    @route("GET", r"/2/statuses/show\.json")
    def show(self, req: Request) -> Response:
        request = "/2/statuses/show.json"
        with self.lock:
            user = self._user(req, request)
            if isinstance(user, Response):
                return user
            wanted = req.query.get("id", "")
            for status in self.statuses:
                if status["idstr"] == wanted:
                    return Response(200, _public(status))
            return self.fail("20101", request, "target weibo does not exist!")

    @route("GET", r"/2/short_url/expand\.json")
    def expand(self, req: Request) -> Response:
        """A t.cn link back to the long one (``url_short``; an unknown link gets ``result: false``)."""
        request = "/2/short_url/expand.json"
        with self.lock:
            user = self._user(req, request)
            if isinstance(user, Response):
                return user
            out = []
            for short in [req.query.get("url_short", "")]:
                long = self.short.get(short.rsplit("/", 1)[-1])
                out.append({"url_short": short, "url_long": long or "", "type": 0, "result": long is not None})
            return Response(200, {"urls": out})

    @route("POST", r"/oauth2/get_token_info")
    def token_info(self, req: Request) -> Response:
        """What the dashboard's credential check reads: the token's user and remaining lifetime."""
        request = "/oauth2/get_token_info"
        with self.lock:
            user = self._user(req, request)
            if isinstance(user, Response):
                return user
            return Response(200, {"uid": user["id"], "appkey": "sandbox-appkey", "scope": "",
                                  "create_at": int(time.time()) - 3600, "expire_in": 157_679_999})

    def _shorten(self, text: str) -> str:
        """Every link becomes ``http://t.cn/<code>`` (a code per long URL), as Weibo stores statuses."""
        def short(m: re.Match) -> str:
            code = _base62(int(hashlib.sha256(m.group().encode()).hexdigest()[:12], 16))[:8]
            self.short[code] = m.group()
            return f"http://t.cn/{code}"

        return LINK.sub(short, text)

    def _status(self, user: dict[str, Any], text: str, pic: dict[str, Any] | None, now: float) -> dict[str, Any]:
        mid = next(self.mids)
        status: dict[str, Any] = {
            "created_at": _weibo_time(now),
            "id": mid, "idstr": str(mid), "mid": str(mid), "text": self._shorten(text),
            "source": '<a href="https://app.weibo.com/t/feed/sharer" rel="nofollow">sharer</a>',
            "favorited": False, "truncated": False, "pic_urls": [], "reposts_count": 0, "comments_count": 0,
            "attitudes_count": 0, "visible": {"type": 0, "list_id": 0},
            "user": {"id": user["id"], "idstr": str(user["id"]), "screen_name": user["screen_name"],
                     "name": user["screen_name"], "profile_url": f"u/{user['id']}"},
            "_at": now, "_sent": text,
        }
        if pic:
            ext = pic["content_type"].split("/")[1].replace("jpeg", "jpg")
            name = f"{pic['sha1'][:24]}.{ext}"
            status.update({"thumbnail_pic": f"https://wx1.sinaimg.cn/thumbnail/{name}",
                           "bmiddle_pic": f"https://wx1.sinaimg.cn/bmiddle/{name}",
                           "original_pic": f"https://wx1.sinaimg.cn/large/{name}",
                           "pic_urls": [{"thumbnail_pic": f"https://wx1.sinaimg.cn/thumbnail/{name}"}]})
        return status

    # --- control -------------------------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        if req.path == "/_sandbox/weibo/config":
            with self.lock:
                if req.method == "POST":
                    spec = req.json()
                    for key in ("safe_domains", "posts_per_hour", "limit", "url_weight", "duplicate_check"):
                        if key in spec:
                            setattr(self, key, spec[key])
                return Response(200, {"safe_domains": self.safe_domains, "posts_per_hour": self.posts_per_hour,
                                      "limit": self.limit, "url_weight": self.url_weight,
                                      "duplicate_check": self.duplicate_check})
        m = re.fullmatch(r"/_sandbox/images/(\w[\w-]*)\.(jpg|jpeg|png|gif)", req.path)
        if m and req.method == "GET":
            return sample_image(m.group(1), m.group(2))
        return super().control(req)


# --- helpers ---------------------------------------------------------------------------------------------

def _without_urls(text: str) -> str:
    return LINK.sub(" ", text)


def weibo_length(text: str, url_weight: int) -> int:
    """The fact sheet's rule: per UTF-16 unit, Latin-1 ½ and anything else 1, each link a fixed
    weight, rounded up, surrounding whitespace not counted."""
    text = text.strip()
    units = len(LINK.findall(text)) * url_weight * 2
    for ch in LINK.sub("", text):
        units += 1 if ord(ch) <= 0xFF else 2 * (2 if ord(ch) > 0xFFFF else 1)
    return math.ceil(units / 2)


def _public(status: dict[str, Any], trim_user: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if not k.startswith("_")}
    if trim_user:
        out["uid"] = out.pop("user")["id"]
    return out


def _weibo_time(now: float) -> str:
    t = datetime.fromtimestamp(now, CST)
    day = "Mon Tue Wed Thu Fri Sat Sun".split()[t.weekday()]
    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[t.month - 1]
    return f"{day} {month} {t.day:02d} {t:%H:%M:%S} +0800 {t.year}"


def _base62(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
        if not n:
            return out


def _on(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _status_url(uid: str, mid: str) -> str:
    """``weibo.com/{uid}/{base62(mid)}``: 7-digit groups from the right, inner ones padded to 4."""
    digits, groups = str(int(mid)), list[str]()
    while digits:
        groups.insert(0, digits[-7:])
        digits = digits[:-7]
    code = "".join(_base62(int(g)).rjust(4, "0") if i else _base62(int(g)) for i, g in enumerate(groups))
    return f"https://weibo.com/{uid}/{code}"


GIF_BYTES = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
             b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def sample_image(name: str, ext: str) -> Response:
    ctype = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif"}[ext]
    if name == "missing":
        return Response(404, {"error": "no such image"})
    if name == "fake":
        return Response(200, b"<html>not an image</html>", {"Content-Type": ctype})
    data = {"image/jpeg": SAMPLE_JPEG, "image/png": make_png(), "image/gif": GIF_BYTES}[ctype]
    if name == "large":
        data += b"\x00" * (MAX_PIC + 1024)
    return Response(200, data, {"Content-Type": ctype})
