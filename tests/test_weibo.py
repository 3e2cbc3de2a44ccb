"""Sina Weibo: composition (pure), the client against the emulator, and end to end through the worker."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable

import pytest
import requests
from conftest import EXAMPLES, inject, run_cli, sandbox_posts, wait_settled
from harness import Fault, faults, run_fault

from sharer import service
from sharer.article import Article
from sharer.config import Account, Secret, parse_settings
from sharer.errors import (
    Ambiguous,
    AuthExpired,
    ComposeError,
    ConfigError,
    DeliveryError,
    Duplicate,
    PermanentError,
    RateLimited,
    TransientError,
)
from sharer.loaders import load_article
from sharer.platforms.base import CLOCK_SLACK, DeliveryContext
from sharer.platforms.weibo import (
    Weibo,
    comparable,
    find_topics,
    mid_to_base62,
    parse_created_at,
    seconds_to_next_hour,
    strip_topics,
)
from sharer.sandbox.weibo import SANDBOX_TOKEN, SANDBOX_USER
from sharer.text import count_weibo, find_urls

UTM = {"utm_source": "weibo", "utm_medium": "social", "utm_campaign": "sharer"}
ZH_URL = "https://news.example.com/zh/2023/03/13/baic-catl-cooperation?" + "&".join(f"{k}={v}" for k, v in UTM.items())
EN_URL = ZH_URL.replace("/zh/", "/en/")
UID = str(SANDBOX_USER["id"])
POST_URL_RE = re.compile(rf"^https://weibo\.com/{UID}/[0-9a-zA-Z]+$")
BAD_TOKEN = "not-the-sandbox-secret"  # what weibo-badtoken's env: reference resolves to


def make_account(template: str | None = None, api_base: str = "http://127.0.0.1:1", utm=UTM, **options) -> Account:
    opts = {"safe_domains": ["news.example.com"], **options}
    return Account(name="weibo-t", platform="weibo", api_base=api_base,
                   credentials={"access_token": Secret("tok-123456")}, options=Weibo.parse_options(opts),
                   template=template, utm=utm)


def compose(article: Article, text: str | None = None, **kw):
    return Weibo(make_account(**kw)).compose(article, text)


def article(title="新能源汽车新平台发布", summary="续航一千公里。", url="https://news.example.com/zh/a", image=None):
    return Article(title=title, url=url, summary=summary, image=image)


# --- composition ---------------------------------------------------------------------------------------

def test_golden_chinese_article_fits_untrimmed():
    post = compose(load_article(str(EXAMPLES / "baic-catl-zh.md")))
    assert post.text == ("北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品\n"
                         "3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，双方将联合开发动力电池产品，"
                         "共同开拓新能源汽车市场。\n" + ZH_URL)
    assert (post.length, post.limit, post.unit, post.warnings) == (99, 140, "Weibo units", ())
    assert post.payload == {"status": post.text, "rip": "127.0.0.1",
                            "pic": "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"}


def test_golden_english_article_summary_trimmed():
    post = compose(load_article(str(EXAMPLES / "baic-catl.json")))
    assert post.text == (
        "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation\n"
        "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
        "agreement to jointly develop power battery products and explore the…\n" + EN_URL)
    assert post.length == 139 and post.warnings == ("summary trimmed",)


@pytest.mark.parametrize("name", ["baic-catl-zh.md", "baic-catl.json", "edge-cases.json", "baic-catl-page.html",
                                  "baic-catl-page.txt"])
def test_every_example_fits_with_a_tagged_link_and_no_topic(name):
    src = load_article(str(EXAMPLES / name), url="https://news.example.com/en/2023/03/13/baic-catl-cooperation"
                       if name.endswith(".txt") else None)
    post = compose(src)
    tagged = src.url + ("&" if "?" in src.url else "?") + "&".join(f"{k}={v}" for k, v in UTM.items())
    assert post.length == count_weibo(post.text) <= 140
    assert tagged in [post.text[s:e] for s, e in find_urls(post.text)]
    assert post.text.startswith(src.title[:20]) and not find_topics(post.text)
    assert ("summary trimmed" in post.warnings) == (src.summary not in post.text)


def test_edge_case_long_title_and_emoji_summary():
    src = load_article(str(EXAMPLES / "edge-cases.json"))
    post = compose(src)
    title, summary, link = post.text.split("\n")
    assert title == src.title and summary.endswith("…") and "summary trimmed" in post.warnings
    assert "👨‍👩‍👧‍👦" in summary or "👨" not in summary  # never a torn family emoji
    assert link.endswith("lang=en&utm_source=weibo&utm_medium=social&utm_campaign=sharer")
    # With a tighter limit the summary goes and the title itself is trimmed.
    short = compose(src, limit=60)
    title, link = short.text.split("\n")
    assert short.length <= 60 and title.endswith("…") and short.warnings == ("summary dropped", "title trimmed")
    assert src.title.startswith(title[:-1].rstrip())


def test_cjk_title_over_the_limit_is_trimmed_and_link_kept():
    post = compose(article(title="北汽" * 80, summary="摘要"))
    assert post.length <= 140 and post.text.endswith(UTM["utm_campaign"])
    assert post.warnings == ("summary dropped", "title trimmed")


def test_options_change_counting():
    src = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    assert compose(src, url_weight=20).length == 108  # 99 - 11 + 20
    post = compose(src, limit=100, margin=10)
    assert post.limit == 90 and post.length <= 90 and "summary trimmed" in post.warnings


def test_topics_are_stripped_from_generated_text_but_not_from_links():
    post = compose(article(title="#新能源#汽车发布会", summary="见#续航#说明", url="https://news.example.com/a#x#y"))
    assert post.text.startswith("新能源汽车发布会\n见续航说明\n") and not find_topics(post.text)
    assert post.text.endswith("#x#y")  # a URL fragment is not a topic (UTM goes before it)
    assert any("topic" in w for w in post.warnings)
    assert strip_topics("C# 和 F# 语言") == "C# 和 F# 语言"  # not a pair: whitespace inside


def test_override_is_validated_never_cut():
    src = article()
    long = "很长的文字" * 40 + " " + src.url
    with pytest.raises(ComposeError) as e:
        compose(src, long)
    assert "weibo-t" in str(e.value) and "212 Weibo units" in str(e.value) and "limit is 140" in str(e.value)
    with pytest.raises(ComposeError, match="must contain the article link"):
        compose(src, "没有链接的文字")
    with pytest.raises(ComposeError, match="#话题#"):
        compose(src, f"快来看 #话题# {src.url}")
    ok = compose(src, f"编辑推荐：{src.url}")
    assert ok.text == f"编辑推荐：{src.url}?utm_source=weibo&utm_medium=social&utm_campaign=sharer"
    assert ok.warnings == ("article link tagged",) and ok.payload["status"] == ok.text


def test_safe_domain_rules():
    with pytest.raises(ComposeError, match=r"not on the account's safe domains \(news\.example\.com\)"):
        compose(article(url="https://evil.example.org/a"))
    assert compose(article(url="https://m.news.example.com/a")).text  # a subdomain is fine
    with pytest.raises(ComposeError, match="no safe_domains configured"):
        compose(article(), safe_domains=[])
    with pytest.raises(ComposeError, match="template has no {url}"):
        compose(article(), template="{title}")
    with pytest.raises(ComposeError, match="options.rip is required"):
        compose(article(), api_base="https://api.weibo.com")
    assert compose(article(), api_base="https://api.weibo.com", rip="203.0.113.9").payload["rip"] == "203.0.113.9"
    custom = compose(article(), template="【{title}】{summary}{url}")
    assert custom.text.startswith("【新能源汽车新平台发布】续航一千公里。https://")


def test_bad_options_fail_at_config_load(tmp_path):
    base = ('[accounts.w]\nplatform = "weibo"\napi_base = "http://127.0.0.1:1"\n'
            'credentials = { access_token = "sandbox:" }\n')
    for opts, needle in [('{ rip = "localhost" }', "rip: must be an IP"),
                         ('{ safe_domains = ["https://x.com/"] }', "safe_domains"),
                         ("{ limit = 0 }", "limit"), ("{ margin = 200 }", "margin"), ("{ colour = 1 }", "colour")]:
        import tomllib

        raw = tomllib.loads(base + f"options = {opts}\n")
        with pytest.raises(ConfigError, match=needle):
            parse_settings(raw, tmp_path / "c.toml", {})


def test_base62_mid():
    assert mid_to_base62(3501756485200075) == "z0JH2lOMb"
    assert mid_to_base62("3500000000000001") == "z00000001"  # inner groups keep their zero padding
    assert mid_to_base62(61) == "Z"
    assert 0 < seconds_to_next_hour(7200.5) <= 3600 and seconds_to_next_hour(7200.0) == 3600


# --- the client against the emulator --------------------------------------------------------------------

@pytest.fixture
def weibo(emulators, runtime):
    emu = emulators["weibo"]

    def client(name: str = "weibo-main"):
        acc = runtime.settings.account(name)
        steps: list[str] = []
        ctx = DeliveryContext(delivery_id="dl_test", account=acc, session=runtime.session, timeout=5,
                              redis=runtime.redis, keys=runtime.keys, on_step=steps.append,
                              media_rewrite=runtime.settings.media_rewrite)
        return Weibo(acc), ctx, steps

    client.emu = emu
    return client


def test_publish_text_only(weibo):
    platform, ctx, _ = weibo()
    post = platform.compose(article())
    receipt = platform.publish(post, ctx)
    [rec] = sandbox_posts(weibo.emu)
    assert receipt.post_id == rec["id"] and receipt.url == rec["url"] and POST_URL_RE.match(receipt.url)
    assert receipt.url.endswith("/" + mid_to_base62(rec["mid"]))
    assert rec["text"] == post.text and rec["rip"] == "203.0.113.7" and rec["encoding"] == "form"
    assert rec["pic"] is None and isinstance(rec["status"]["id"], int) and rec["status"]["idstr"] == rec["id"]


def test_publish_with_pic_is_multipart(weibo):
    platform, ctx, steps = weibo()
    post = platform.compose(article(image=f"{weibo.emu.url}/_sandbox/images/cover.png"))
    receipt = platform.publish(post, ctx)
    [rec] = sandbox_posts(weibo.emu)
    assert rec["encoding"] == "multipart" and rec["pic"]["content_type"] == "image/png"
    assert rec["status"]["original_pic"].startswith("https://wx1.sinaimg.cn/large/")
    assert any("image attached (image/png" in s for s in steps) and POST_URL_RE.match(receipt.url)


@pytest.mark.parametrize("name", ["fake.jpg", "missing.jpg", "large.jpg"])
def test_unusable_image_posts_without_it_and_says_so(weibo, name):
    platform, ctx, steps = weibo()
    platform.publish(platform.compose(article(image=f"{weibo.emu.url}/_sandbox/images/{name}")), ctx)
    [rec] = sandbox_posts(weibo.emu)
    assert rec["pic"] is None and rec["encoding"] == "form"
    assert any(s.startswith("image not attached") and "posting without it" in s for s in steps)


def _checks(code: str, cls: type) -> Callable[[DeliveryError], bool]:
    """What each error class must carry besides its code: a wait, or the account to re-authorise."""
    def check(err: DeliveryError) -> bool:
        if cls is RateLimited:
            return isinstance(err, RateLimited) and 0 < err.retry_after <= 3600
        if cls is AuthExpired:
            return "access token of weibo-main" in str(err) and "authorise again" in str(err)
        return code != "99999" or "unknown error" in str(err)
    return check


ERROR_CODES = [Fault(f"{code} is {cls.__name__}", "weibo-main", {"kind": "error", "code": code}, cls,
                     path="/2/statuses/share.json", exact=True, code=code, check=_checks(code, cls))
               for code, cls in [
    ("10001", TransientError), ("10009", TransientError), ("21331", TransientError), ("20016", RateLimited),
    ("10023", RateLimited), ("21327", AuthExpired), ("21332", AuthExpired), ("21319", AuthExpired),
    ("20019", Duplicate), ("20017", Duplicate), ("20012", PermanentError), ("21323", PermanentError),
    ("20032", Ambiguous), ("99999", PermanentError),
]]


@faults(ERROR_CODES)
def test_error_codes_map_to_classes(case, emulators, runtime):
    err = run_fault(case, emulators, runtime)  # also: no post made, no secret in the message
    assert SANDBOX_TOKEN not in str(err)


def test_integer_error_code_and_odd_http_status(weibo):
    platform, ctx, _ = weibo()
    inject(weibo.emu, path="share", kind="status", status=403,
           body={"request": "/2/statuses/share.json", "error_code": 10023, "error": "user requests out of rate limit!"})
    with pytest.raises(RateLimited, match="10023"):
        platform.publish(platform.compose(article()), ctx)
    inject(weibo.emu, path="share", kind="error", code="21327", status=200, int=True)
    with pytest.raises(AuthExpired):
        platform.publish(platform.compose(article()), ctx)
    inject(weibo.emu, path="share", kind="status", status=502, body="<html>bad gateway</html>")
    with pytest.raises(Ambiguous):
        platform.publish(platform.compose(article()), ctx)


def test_emulator_enforces_the_rules_for_real(weibo):
    platform, ctx, _ = weibo()
    post = platform.compose(article())
    platform.publish(post, ctx)
    with pytest.raises(Duplicate, match="20019"):
        platform.publish(post, ctx)
    requests.post(weibo.emu.url + "/_sandbox/weibo/config", json={"posts_per_hour": 1}, timeout=5)
    with pytest.raises(RateLimited, match="20016"):
        platform.publish(platform.compose(article(summary="另一条")), ctx)
    requests.post(weibo.emu.url + "/_sandbox/weibo/config", json={"posts_per_hour": 30, "url_weight": 100},
                  timeout=5)  # a harsher server rule than ours: what the margin option is for
    with pytest.raises(PermanentError, match="20012"):
        platform.publish(platform.compose(article(summary="第三条" * 10)), ctx)
    requests.post(weibo.emu.url + "/_sandbox/weibo/config", json={"url_weight": 11, "safe_domains": ["other.cn"]},
                  timeout=5)
    with pytest.raises(PermanentError, match="10017: appkey not bind domain"):
        platform.publish(platform.compose(article(summary="第四条")), ctx)
    inject(weibo.emu, path="share", kind="expired_token")
    with pytest.raises(AuthExpired, match="expired_token"):
        platform.publish(platform.compose(article(summary="第五条")), ctx)
    bad, bad_ctx, _ = weibo("weibo-badtoken")
    with pytest.raises(AuthExpired, match="invalid_access_token") as e:
        bad.publish(bad.compose(article(url="https://example.com/x")), bad_ctx)
    assert BAD_TOKEN not in str(e.value) and len(sandbox_posts(weibo.emu)) == 1


def test_emulator_rejects_bad_requests_with_weibo_errors(weibo):
    url = weibo.emu.url + "/2/statuses/share.json"
    link = "https://news.example.com/a"
    form = {"access_token": SANDBOX_TOKEN, "status": f"正文 {link}", "rip": "1.2.3.4"}
    cases = [
        ({**form, "rip": ""}, None, "10016"), ({**form, "status": " "}, None, "20008"),
        ({**form, "status": f"看 #话题# {link}"}, None, "10017"), ({**form, "status": "no link"}, None, "10017"),
        ({**form, "status": "长" * 141 + link}, None, "20012"), ({**form, "access_token": "nope"}, None, "21332"),
        (form, {"pic": ("a.jpg", b"<html>", "image/jpeg")}, "20005"),
        (form, {"pic": ("a.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "image/jpeg")}, "20006"),
    ]
    for data, files, code in cases:
        resp = requests.post(url, data=data, files=files, timeout=10)
        body = resp.json()
        assert resp.status_code == 400 and body["error_code"] == code, (code, body)
        assert body["request"] == "/2/statuses/share.json" and body["error"]
    assert requests.get(url, params={"access_token": SANDBOX_TOKEN}, timeout=5).json()["error_code"] == "10021"
    assert sandbox_posts(weibo.emu) == []


def _fresh(weibo, **kw):
    """A new delivery's context (its own state), as the worker builds per attempt."""
    platform, ctx, steps = weibo()
    for k, v in kw.items():
        setattr(ctx, k, v)
    return platform, ctx


def test_timeline_carries_t_cn_links_and_find_existing_still_finds_our_status(weibo):
    platform, ctx = _fresh(weibo)
    post = platform.compose(article())
    assert platform.find_existing(post, ctx) is None  # an empty timeline: proven absent
    platform.publish(platform.compose(article(summary="别的文章", url="https://news.example.com/zh/b")), ctx)
    assert _fresh(weibo)[0].find_existing(post, _fresh(weibo)[1]) is None  # another article only
    started = time.time()
    receipt = platform.publish(post, _fresh(weibo)[1])
    timeline = requests.get(weibo.emu.url + "/2/statuses/user_timeline.json",
                            params={"access_token": SANDBOX_TOKEN}, timeout=5).json()["statuses"]
    assert "http://t.cn/" in timeline[0]["text"] and "news.example.com" not in timeline[0]["text"]
    checker, cctx = _fresh(weibo, window_start=started)
    assert checker.find_existing(post, cctx) == receipt  # matched without links, inside the window
    # A status made but its answer lost: ambiguous, and the timeline lookup then finds it.
    lost = platform.compose(article(summary="答复丢失", url="https://news.example.com/zh/c"))
    inject(weibo.emu, path="share", kind="drop_after")
    with pytest.raises(Ambiguous):
        platform.publish(lost, _fresh(weibo)[1])
    found = checker.find_existing(lost, _fresh(weibo, window_start=time.time() - 5)[1])
    assert found is not None and found.post_id == sandbox_posts(weibo.emu)[-1]["id"] and POST_URL_RE.match(found.url)
    inject(weibo.emu, path="user_timeline", kind="error", code="21332", request="/2/statuses/user_timeline.json")
    with pytest.raises(AuthExpired):
        checker.find_existing(post, _fresh(weibo)[1])


def test_a_read_reply_is_recorded_and_checked_with_statuses_show(weibo):
    platform, _ = _fresh(weibo)
    saved = []
    ctx = _fresh(weibo)[1]
    ctx.on_state = lambda state: saved.append(dict(state))
    receipt = platform.publish(platform.compose(article()), ctx)
    assert saved == [{"status_id": receipt.post_id}]  # persisted before the receipt is returned
    requests.post(weibo.emu.url + "/_sandbox/reset", timeout=5)
    again = _fresh(weibo, state={"status_id": receipt.post_id})[1]
    with pytest.raises(PermanentError, match="20101"):  # gone from Weibo: never "absent", an editor decides
        platform.find_existing(platform.compose(article()), again)
    receipt = platform.publish(platform.compose(article()), _fresh(weibo)[1])
    seen = len(weibo.emu.requests)
    assert platform.find_existing(platform.compose(article()), _fresh(weibo, state={"status_id": receipt.post_id})[1]) \
        == receipt
    assert [r["path"] for r in weibo.emu.requests[seen:]] == ["/2/statuses/show.json"]  # one call, no timeline


def test_an_older_identical_status_is_absent_unless_weibo_said_duplicate(weibo):
    platform, ctx = _fresh(weibo)
    post = platform.compose(article())
    earlier = platform.publish(post, ctx)
    later = time.time() + 2 * CLOCK_SLACK  # a delivery that began well after the earlier status
    assert platform.find_existing(post, _fresh(weibo, window_start=later)[1]) is None
    with pytest.raises(Ambiguous, match="just before the first attempt"):  # ours on a late clock, or not
        platform.find_existing(post, _fresh(weibo, window_start=time.time() + 60)[1])
    dup = platform.find_existing(post, _fresh(weibo, window_start=later, duplicate=True)[1])
    assert dup.already_posted and dup.post_id == earlier.post_id
    assert dup.note == f"Weibo already had this post: {earlier.url}"


def test_a_full_page_that_does_not_reach_the_window_cannot_tell(weibo):
    requests.post(weibo.emu.url + "/_sandbox/weibo/config", json={"posts_per_hour": 1000}, timeout=5)
    platform, ctx = _fresh(weibo)
    started = time.time() - 1
    for i in range(100):  # 100 statuses since the delivery began: the page cannot reach back before it
        requests.post(weibo.emu.url + "/2/statuses/share.json", timeout=5, data={
            "access_token": SANDBOX_TOKEN, "rip": "1.2.3.4", "status": f"第{i}条 https://news.example.com/{i}"})
    with pytest.raises(Ambiguous, match="do not reach back"):
        platform.find_existing(platform.compose(article()), _fresh(weibo, window_start=started)[1])
    # the same page reaching back before the window proves absence
    assert platform.find_existing(platform.compose(article()), _fresh(weibo, window_start=time.time() + 3600)[1]) \
        is None


def test_duplicate_detection_can_be_switched_off(weibo):
    platform, ctx = _fresh(weibo)
    post = platform.compose(article())
    platform.publish(post, ctx)
    requests.post(weibo.emu.url + "/_sandbox/weibo/config", json={"duplicate_check": False}, timeout=5)
    platform.publish(post, _fresh(weibo)[1])
    assert [p["text"] for p in sandbox_posts(weibo.emu)] == [post.text, post.text]


def test_status_text_without_anything_but_a_link_cannot_be_recognised(weibo):
    platform, ctx = _fresh(weibo)
    post = platform.compose(article(), "https://news.example.com/zh/a")
    with pytest.raises(Ambiguous, match="no text besides its link"):
        platform.find_existing(post, ctx)


def test_comparable_text_and_created_at():
    assert comparable("北汽 与宁德\n时代 http://t.cn/A6x3Kp9Z") == comparable("北汽与宁德时代\nhttps://news.example.com/a?b=1")
    assert comparable("A &amp; B https://x.cn/1") == "A&B"
    assert parse_created_at("Tue May 31 17:46:55 +0800 2011") == 1306835215.0
    assert parse_created_at("yesterday") is None


# --- end to end through the worker ----------------------------------------------------------------------

def test_share_chinese_article_end_to_end(emulators, runtime, worker, base_env):
    proc = run_cli(["share", str(EXAMPLES / "baic-catl-zh.md"), "--to", "weibo-main", "--force", "--wait", "--json"],
                   base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [d] = json.loads(proc.stdout)["deliveries"]
    [rec] = sandbox_posts(emulators["weibo"])
    assert d["status"] == "delivered" and d["post_id"] == rec["id"]
    assert POST_URL_RE.match(d["post_url"]) and d["post_url"] == rec["url"]
    assert rec["text"].endswith(ZH_URL) and rec["pic"]["content_type"] == "image/jpeg"  # via the stand-in site
    assert any("image attached" in e["message"] for e in d["events"])


def test_permanent_failure_end_to_end(emulators, runtime, worker):
    inject(emulators["weibo"], path="share", kind="error", code="20012", count=5)
    result = service.share(runtime, load_article(str(EXAMPLES / "baic-catl.json")), ["weibo-main"], force=True)
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "failed" and d.error_kind == "permanent" and "Weibo error 20012" in d.error


def test_no_access_token_in_records_or_worker_log(emulators, runtime, worker):
    """Faults of every kind, then a scan of every Redis value under our prefix and of the worker's log."""
    emu = emulators["weibo"]
    src = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    faults = [{"kind": "error", "code": "10001"}, {"kind": "error", "code": "21327"},
              {"kind": "status", "status": 500, "body": {"error": f"echo access_token={SANDBOX_TOKEN}"}},
              {"kind": "timeout", "seconds": 6}]
    for i, fault in enumerate(faults):  # one at a time, each its own article, so each fault meets its delivery
        inject(emu, path="share", **fault)
        variant = dataclasses.replace(src, url=f"https://news.example.com/zh/scan-{i}")
        wait_settled(runtime, service.share(runtime, variant, ["weibo-main"], force=True).share_id, timeout=40)
    [bad] = wait_settled(runtime, service.share(runtime, src, ["weibo-badtoken"], force=True).share_id)
    assert bad.status == "failed" and bad.error_kind == "auth" and "re-authorise account weibo-badtoken" in bad.error
    assert "invalid_access_token" in bad.error
    r = runtime.redis
    readers = {"hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1), "zset": lambda k: r.zrange(k, 0, -1),
               "string": r.get, "set": r.smembers}
    dump = [repr(readers.get(r.type(key).decode(), lambda k: b"")(key))
            for key in r.scan_iter(match=f"{runtime.settings.prefix}*", count=1000)]
    text = "\n".join(dump) + worker.output()
    assert "(code 10001)" in text and "(code 21327)" in text and "HTTP 500" in text  # the faults were recorded
    for secret in (SANDBOX_TOKEN, BAD_TOKEN):
        assert secret not in text


def _share_requests(emu) -> int:
    return sum(1 for r in emu.requests if r["path"] == "/2/statuses/share.json")


def test_same_article_twice_is_delivered_with_a_note_naming_the_earlier_status(emulators, runtime, worker, base_env):
    """20019 once the first status is out: found on the timeline (a t.cn text), never a loop, never failed."""
    args = ["share", str(EXAMPLES / "baic-catl-zh.md"), "--to", "weibo-main", "--force", "--wait", "--json"]
    first = run_cli(args, base_env)
    assert first.returncode == 0, first.stderr
    [d1] = json.loads(first.stdout)["deliveries"]
    second = run_cli(args, base_env)
    assert second.returncode == 0, second.stderr + second.stdout
    [d2] = json.loads(second.stdout)["deliveries"]
    assert d1["already_posted"] is False and d2["status"] == "delivered" and d2["already_posted"] is True
    assert d2["post_id"] == d1["post_id"] and d2["post_url"] == d1["post_url"]
    assert d2["note"] == f"Weibo already had this post: {d1['post_url']}" and d2["attempts"] == 1
    assert len(sandbox_posts(emulators["weibo"])) == 1 and _share_requests(emulators["weibo"]) == 2
    table = run_cli(["status", d2["share_id"]], base_env).stdout
    assert "Weibo already had this post" in table and "nothing new was published" in table


def test_20019_with_no_earlier_status_to_find_needs_review(emulators, runtime, worker):
    inject(emulators["weibo"], path="share", kind="error", code="20019")
    [d] = wait_settled(runtime, service.share(runtime, load_article(str(EXAMPLES / "baic-catl.json")),
                                              ["weibo-main"], force=True).share_id)
    assert d.status == "needs_review" and "already has this post" in d.events[-1]["message"]
    assert _share_requests(emulators["weibo"]) == 1 and sandbox_posts(emulators["weibo"]) == []


@pytest.mark.parametrize("made", [True, False])
def test_20032_posted_server_slow_is_verified_later_never_resent(emulators, runtime, worker, made):
    emu = emulators["weibo"]
    inject(emu, path="share", kind="error_after" if made else "error", code="20032")
    [d] = wait_settled(runtime, service.share(runtime, load_article(str(EXAMPLES / "baic-catl.json")),
                                              ["weibo-slow"], force=True).share_id, timeout=30)
    assert _share_requests(emu) == 1  # never sent again
    if made:
        [status] = sandbox_posts(emu)
        assert d.status == "delivered" and d.post_id == status["id"] and not d.already_posted
    else:
        assert d.status == "needs_review" and "said it accepted the post" in d.events[-1]["message"]
    checked = next(e for e in d.events if e["status"] == "unknown")
    assert "never resending" in checked["message"]
