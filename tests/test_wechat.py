"""WeChat Official Account: composition goldens, the client against the emulator, the real worker."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from bs4 import BeautifulSoup
from conftest import wait_settled
from harness import Fault, article, configure, ctx, faults, inject, platform_for, publish, run_fault, sandbox_posts

from sharer import service
from sharer.article import Article
from sharer.errors import Ambiguous, AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.base import DeliveryContext
from sharer.platforms.wechat import WeChat
from sharer.sandbox.wechat import APPSECRET

MAIN = "wechat-main"
ZH_IMAGE = "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
PAYLOAD_KEYS = {"publish_mode", "article_type", "title", "author", "digest", "content", "content_source_url",
                "need_open_comment", "only_fans_can_comment", "cover", "images"}


# --- helpers --------------------------------------------------------------------------------------

@pytest.fixture
def wx(emulators, runtime):
    """The WeChat emulator (reset by conftest) and an empty token cache for every WeChat account."""
    for name, account in runtime.settings.accounts.items():
        if account.platform == "wechat":
            runtime.redis.delete(runtime.keys.token(name), runtime.keys.token_lock(name))
    return emulators["wechat"]


def wechat(runtime: Any, name: str = MAIN) -> WeChat:
    platform = platform_for(runtime, name)
    assert isinstance(platform, WeChat)
    return platform


def image_url(emu, name: str) -> str:
    return f"{emu.url}/_sandbox/images/{name}"


def local_zh(emu) -> Article:
    """baic-catl-zh.md with its cover and inline image served by the emulator."""
    zh = article("baic-catl-zh.md")
    return dataclasses.replace(zh, image=image_url(emu, "cover.jpg"),
                               body_html=zh.body_html.replace(ZH_IMAGE, image_url(emu, "inline.png")))


def api_calls(emu) -> list[str]:
    reqs = requests.get(emu.url + "/_sandbox/requests", timeout=5).json()["requests"]
    return [r["path"].removeprefix("/cgi-bin/") for r in reqs]


# --- composition (pure) ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["baic-catl.json", "baic-catl-zh.md", "edge-cases.json", "baic-catl-page.html"])
def test_every_example_composes_within_wechat_limits(runtime, name):
    art = article(name)
    platform = wechat(runtime)
    post = platform.compose(art)
    assert post == platform.compose(art)  # pure and deterministic
    p = post.payload
    assert set(p) == PAYLOAD_KEYS  # never thumb_media_id (resolved at delivery) nor credentials
    assert 0 < len(p["title"]) <= 32 and len(p["title"].encode()) <= 64
    assert len(p["author"]) <= 8
    assert post.text == p["digest"] and post.length == len(p["digest"]) <= post.limit == 128
    source = p["content_source_url"]
    assert source.startswith(art.url.split("?")[0]) and "utm_source=wechat" in source
    assert len(p["content"]) < 20_000 and len(p["content"].encode()) < 1_000_000
    soup = BeautifulSoup(p["content"], "html.parser")
    assert not soup.find(["script", "style", "iframe", "form"])
    assert not any(k.startswith("on") for tag in soup.find_all(True) for k in tag.attrs)
    assert all(urlsplit(a["href"]).hostname == "mp.weixin.qq.com" for a in soup.find_all("a", href=True))
    assert p["images"] == list(dict.fromkeys(img["src"] for img in soup.find_all("img")))
    assert p["cover"] == art.image
    if p["title"] != art.title:
        assert any(w.startswith("title trimmed") for w in post.warnings)
    json.dumps(post.to_dict())


def test_chinese_article_golden(runtime):
    art = article("baic-catl-zh.md")
    post = wechat(runtime).compose(art)
    p = post.payload
    assert p["title"] == "北汽集团与宁德时代签署深化合作备忘录，携…"  # 21 characters, 63 bytes
    assert p["author"] == "北汽集团新闻中心"
    assert p["digest"] == post.text == art.summary
    assert "详情请见北汽集团官网。" in p["content"] and "<a" not in p["content"]
    assert p["images"] == [ZH_IMAGE] and p["cover"] == ZH_IMAGE
    assert (p["need_open_comment"], p["only_fans_can_comment"]) == (0, 0)
    assert post.warnings == ("title trimmed to 21 characters / 63 bytes (limit 32 / 64)", "1 link removed for WeChat")


def test_edge_cases_are_trimmed_safely_and_cleaned(runtime):
    art = article("edge-cases.json")
    post = wechat(runtime).compose(art)
    p = post.payload
    assert p["title"].startswith("🚗⚡") and p["title"].endswith("…") and art.title.startswith(p["title"][:-1])
    for junk in ("<script", "document.cookie", "onclick=", "evil()", "<a"):
        assert junk not in p["content"]
    assert "a link &amp; an ampersand" in p["content"]
    assert p["images"] == ["https://news.example.com/images/inline.png"]
    assert "1 link removed for WeChat" in post.warnings
    assert "👨\u200d👩\u200d👧\u200d👦" in p["digest"]  # the family emoji is whole


def test_english_author_over_the_limit_is_left_out_with_a_warning(runtime):
    post = wechat(runtime).compose(article("baic-catl.json"))
    assert post.payload["author"] == ""
    assert "author 'BAIC GROUP News Center' is over 8 characters: left out" in post.warnings


def test_override_replaces_the_digest_and_is_never_cut(runtime):
    platform = wechat(runtime)
    art = article("baic-catl-zh.md")
    post = platform.compose(art, "编辑写的摘要")
    assert post.text == post.payload["digest"] == "编辑写的摘要" and post.length == 6
    with pytest.raises(ComposeError) as e:
        platform.compose(art, "字" * 129)
    assert "wechat-main" in str(e.value) and "129" in str(e.value) and "128" in str(e.value)


def test_account_template_options_and_default_cover(runtime):
    platform = wechat(runtime, "wechat-custom")
    art = article("baic-catl-zh.md", author=None, image=None)
    post = platform.compose(art)
    p = post.payload
    assert len(p["title"]) <= 12 and len(p["title"].encode()) <= 36 and p["title"].endswith("…")
    assert p["digest"] == f"【{art.title}】{art.summary}"
    assert p["author"] == "新闻中心"
    assert (p["need_open_comment"], p["only_fans_can_comment"]) == (1, 1)
    assert "utm_campaign=wx-test" in p["content_source_url"] and p["cover"] is None
    with pytest.raises(ComposeError, match="cover image"):  # no default cover on the main account
        wechat(runtime).compose(art)


def test_long_content_drops_trailing_blocks_with_a_warning(runtime):
    body = "".join(f"<p>第{i}段" + "字" * 100 + "</p>" for i in range(400))
    art = Article(title="长文", url="https://news.example.com/zh/long", body_html=body,
                  image="https://news.example.com/images/c.jpg")
    post = wechat(runtime).compose(art)
    content = post.payload["content"]
    assert len(content) < 20_000 and content.startswith("<p>第0段") and "第399段" not in content
    assert any(w.startswith("content trimmed") and "阅读原文" in w for w in post.warnings)


# --- the client against the emulator --------------------------------------------------------------

def test_publish_happy_path(wx, runtime):
    steps: list[str] = []
    c = ctx(runtime, MAIN, steps)
    art = local_zh(wx)
    receipt, post = publish(runtime, MAIN, art, context=c)
    assert receipt.post_id and receipt.url == f"{wx.url}/s/{receipt.post_id}"
    assert api_calls(wx) == ["stable_token", "material/add_material", "media/uploadimg", "draft/add",
                             "freepublish/submit", "freepublish/get", "freepublish/get"]
    [posted] = sandbox_posts(wx)
    assert posted["id"] == receipt.post_id and posted["title"] == post.payload["title"]
    assert posted["thumb_media_id"].startswith("SBX_MAT_") and posted["digest"] == art.summary
    srcs = [img["src"] for img in BeautifulSoup(posted["content"], "html.parser").find_all("img")]
    assert len(srcs) == 1 and srcs[0].startswith("http://mmbiz.qpic.cn/sandbox/")
    assert "北汽集团" in posted["raw"] and "\\u5317" not in posted["raw"]  # raw UTF-8, no \u escapes
    assert steps[:5] == ["access token refreshed", "cover uploaded", "1 inline image uploaded", "draft created",
                         f"publish job {c.state['publish_id']} submitted"]
    assert steps[5] == "publish status 1 (publishing)"
    page = requests.get(receipt.url, timeout=5)
    assert page.status_code == 200 and "北汽集团" in page.text and srcs[0] in page.text


def _calls(name: str, count: int):
    """An emulator check: WeChat saw ``name`` called ``count`` times."""
    return lambda emu: api_calls(emu).count(name) == count


def _waits(low: float, high: float):
    """An error check: RateLimited waiting ``low`` to ``high`` seconds."""
    return lambda e: isinstance(e, RateLimited) and low <= e.retry_after <= high


ERROR_CODES = [
    Fault(f"{code} is {cls.__name__}", MAIN, {"kind": "error", "code": code}, cls, needle, path=path, exact=True,
          code=str(code), make_article=local_zh, check=check)
    for path, code, cls, needle, check in [
        ("draft/add", -1, TransientError, "system busy", None),
        ("freepublish/submit", 45011, RateLimited, "per-minute", _waits(60, 60)),
        ("media/uploadimg", 45009, RateLimited, "daily API quota", _waits(60, 86400)),
        ("draft/add", 45166, PermanentError, "invalid content", None),
        ("freepublish/submit", 53503, PermanentError, "publish check", None),
        ("material/add_material", 48001, PermanentError, "not authorised", None),
    ]
]
TOKEN_FAULTS = [
    Fault("a token rejected twice is auth", MAIN, {"kind": "expired_token", "count": 2}, AuthExpired,
          "re-authorise account wechat-main", path="draft/add", make_article=local_zh,
          after=_calls("stable_token", 2)),
    # the wrong secret never shows (run_fault checks every credential of the account)
    Fault("a wrong appsecret is permanent and named", "wechat-badsecret", None, PermanentError,
          "re-authorise account wechat-badsecret", code="40001", make_article=local_zh,
          check=lambda e: "not-the-sandbox-secret" not in str(e)),
]


@faults(ERROR_CODES + TOKEN_FAULTS)
def test_error_codes_and_token_faults_map_to_our_error_classes(case, wx, emulators, runtime):
    run_fault(case, emulators, runtime)  # also: no post made, no secret in the message


STATUS_4 = Fault("publish status 4 is permanent", MAIN, None, PermanentError, "rejected by platform review",
                 exact=True, code="publish_status 4", config={"publish_status": 4}, make_article=local_zh)


def test_publish_status_4_is_permanent(wx, emulators, runtime):
    steps: list[str] = []
    run_fault(STATUS_4, emulators, runtime, steps=steps)
    assert steps[-1].startswith("publish status 4")


def test_expired_token_mid_run_is_refreshed_once_and_the_call_retried(wx, runtime):
    publish(runtime, MAIN, local_zh(wx))
    assert api_calls(wx).count("stable_token") == 1
    inject(wx, path="draft/add", kind="expired_token")
    steps: list[str] = []
    receipt, _ = publish(runtime, MAIN, local_zh(wx), steps=steps)
    assert receipt.url
    calls = api_calls(wx)
    assert calls.count("stable_token") == 2 and calls.count("draft/add") == 3
    assert "access token rejected (errcode 42001): refreshing it once" in steps
    assert len(sandbox_posts(wx)) == 2


def test_a_failed_token_is_dropped_only_while_it_is_still_cached(wx, runtime):
    platform, c = wechat(runtime), ctx(runtime, MAIN)
    first = platform.access_token(c)
    stored = json.loads(runtime.redis.get(runtime.keys.token(MAIN)))  # another worker stores a newer token
    runtime.redis.set(runtime.keys.token(MAIN), json.dumps({**stored, "access_token": "ANOTHER-WORKERS-NEWER-TOKEN"}))
    assert platform.access_token(c, failed=first) == "ANOTHER-WORKERS-NEWER-TOKEN"
    assert api_calls(wx).count("stable_token") == 1
    assert platform.access_token(c, failed="ANOTHER-WORKERS-NEWER-TOKEN") == first  # still valid
    assert api_calls(wx).count("stable_token") == 2


def _token_in_child(config_path: str, account: str, barrier, out) -> None:
    from sharer.config import load_settings
    from sharer.runtime import Runtime

    rt = Runtime(load_settings(config_path))
    acc = rt.settings.account(account)
    c = DeliveryContext("dl_child", acc, rt.session, timeout=5, redis=rt.redis, keys=rt.keys)
    barrier.wait(30)
    out.put(WeChat(acc).access_token(c))


def test_two_worker_processes_fetch_one_token(wx, runtime, config_file):
    inject(wx, path="stable_token", kind="hold", seconds=0.5)  # the first fetch is slow: both need it at once
    mp = multiprocessing.get_context("spawn")
    barrier, out = mp.Barrier(2), mp.Queue()
    procs = [mp.Process(target=_token_in_child, args=(str(config_file), MAIN, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    tokens = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert tokens[0] == tokens[1]
    assert api_calls(wx).count("stable_token") == 1


def test_a_job_still_publishing_is_resumed_later_without_a_new_draft(wx, runtime):
    configure(wx, publishing_polls=4)
    saved: list[dict] = []
    fast = {"publish_poll_seconds": 0.12, "publish_poll_interval": 0.05}
    with pytest.raises(TransientError, match="still publishing"):
        publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, saved=saved, options=fast))
    post = wechat(runtime).compose(local_zh(wx))
    last = saved[-1]
    assert last["publish_id"] and last["draft_media_id"]
    checker = ctx(runtime, MAIN, state=last)  # reconciliation: a running saved job counts as absent
    assert wechat(runtime).find_existing(post, checker) is None
    steps: list[str] = []
    receipt = wechat(runtime).publish(post, ctx(runtime, MAIN, steps, state=last))
    assert steps[0] == f"resuming publish job {last['publish_id']}" and receipt.url
    calls = api_calls(wx)
    assert calls.count("draft/add") == calls.count("freepublish/submit") == 1
    assert calls.count("freepublish/get") == 5 and len(sandbox_posts(wx)) == 1


def test_a_saved_draft_is_submitted_not_created_again(wx, runtime):
    inject(wx, path="freepublish/submit", kind="error", code=-1)
    saved: list[dict] = []
    with pytest.raises(TransientError):
        publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, saved=saved))
    last = saved[-1]
    assert last["draft_media_id"] and "publish_id" not in last
    assert publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, state=last))[0].url
    calls = api_calls(wx)
    assert [calls.count(c) for c in ("material/add_material", "media/uploadimg", "draft/add")] == [1, 1, 1]
    assert calls.count("freepublish/submit") == 2


def test_a_lost_submit_answer_is_found_not_published_twice(wx, runtime):
    configure(wx, publish_seconds=0)  # jobs are final as soon as they are looked at
    inject(wx, path="freepublish/submit", kind="drop_after")
    saved: list[dict] = []
    with pytest.raises(Ambiguous):
        publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, saved=saved))
    # draft consumed -> 40007 -> look it up
    receipt, _ = publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, state=saved[-1]))
    [posted] = sandbox_posts(wx)
    assert receipt.post_id == posted["id"] and receipt.url == posted["url"]
    assert api_calls(wx).count("freepublish/submit") == 2


def _lost_submit(wx, runtime, fault: str) -> tuple[Any, dict]:
    """Publish local_zh with the submit's answer lost (``drop_after``: handled; ``drop``: not): the post
    and the state saved by then."""
    inject(wx, path="freepublish/submit", kind=fault)
    saved: list[dict] = []
    with pytest.raises(Ambiguous):
        publish(runtime, MAIN, local_zh(wx), context=ctx(runtime, MAIN, saved=saved))
    return wechat(runtime).compose(local_zh(wx)), saved[-1]


def test_find_existing_confirms_a_lost_submit_in_batchget_by_url_title_and_window(wx, runtime):
    configure(wx, publish_seconds=0)
    post, lost = _lost_submit(wx, runtime, "drop_after")
    assert lost["submit_at"] and lost["draft_media_id"] and "publish_id" not in lost
    platform, checker = wechat(runtime), ctx(runtime, MAIN, state=lost)
    found = platform.find_existing(post, checker)
    [posted] = sandbox_posts(wx)
    assert found is not None and found.post_id == posted["id"] and found.url == posted["url"]
    # another article's lost submit: not in the list, and its draft is gone -> cannot tell, never "absent"
    other = platform.compose(dataclasses.replace(local_zh(wx), url="https://news.example.com/zh/other"))
    with pytest.raises(Ambiguous, match="left the draft box"):
        platform.find_existing(other, checker)
    # nothing submitted yet: nothing can be public
    assert platform.find_existing(post, ctx(runtime, MAIN)) is None


def test_find_existing_says_absent_when_the_draft_is_still_in_the_draft_box(wx, runtime):
    post, lost = _lost_submit(wx, runtime, "drop")  # closed before WeChat handled it
    assert wechat(runtime).find_existing(post, ctx(runtime, MAIN, state=lost)) is None
    assert "draft/get" in api_calls(wx) and sandbox_posts(wx) == []


def test_two_matching_articles_in_the_window_need_review(wx, runtime):
    configure(wx, publish_seconds=0)
    for _ in range(2):  # the same article published twice (two shares)
        publish(runtime, MAIN, local_zh(wx))
    post, lost = _lost_submit(wx, runtime, "drop_after")
    with pytest.raises(Ambiguous, match="3 published WeChat articles match"):
        wechat(runtime).find_existing(post, ctx(runtime, MAIN, state=lost))


def test_inline_images_are_uploaded_and_rewritten_or_dropped(wx, runtime):
    img = lambda name: image_url(wx, name)
    body = (f'<p>一<img src="{img("a.png")}"></p><p><img src="{img("b.jpg")}"><img src="{img("a.png")}"></p>'
            f'<p><img src="{img("anim.gif")}"></p><p><img src="{img("big.jpg?bytes=1100000")}"></p>')
    art = Article(title="图片测试", url="https://news.example.com/zh/images", body_html=body, image=img("cover.bmp"))
    steps: list[str] = []
    assert publish(runtime, MAIN, art, steps=steps)[0].url
    [posted] = sandbox_posts(wx)
    srcs = [i["src"] for i in BeautifulSoup(posted["content"], "html.parser").find_all("img")]
    assert len(srcs) == 3 and srcs[0] == srcs[2] != srcs[1]
    assert all(s.startswith("http://mmbiz.qpic.cn/sandbox/") for s in srcs)
    assert api_calls(wx).count("media/uploadimg") == 2
    assert "2 inline images uploaded" in steps
    dropped = [s for s in steps if s.startswith("inline image dropped")]
    assert len(dropped) == 2 and "is gif" in dropped[0] and "1,048,575-byte limit" in dropped[1]


def _with_cover(cover: str):
    return lambda emu: dataclasses.replace(local_zh(emu), image=image_url(emu, cover))


COVER_FAULTS = [
    Fault(f"cover {cover}", MAIN, None, cls, needle, exact=True, make_article=_with_cover(cover),
          publish={"timeout": 0.5}, after=_calls("material/add_material", 0))
    for cover, cls, needle in [
        ("huge.jpg?bytes=10485761", PermanentError, "10,485,760-byte limit"),
        ("page.jpg?ctype=text/html", PermanentError, "Content-Type text/html"),
        ("missing.webp", PermanentError, "HTTP 404"),
        ("fake.txt?ctype=image/jpeg", PermanentError, "is not an image"),  # an image by its header only
        ("slow.jpg?delay=2", TransientError, "timeout"),
    ]
]


@faults(COVER_FAULTS)
def test_cover_download_is_capped_and_checked(case, wx, emulators, runtime):
    run_fault(case, emulators, runtime)  # and the cover never reached add_material


def test_the_draft_body_must_be_raw_utf8(wx, runtime):
    token = wechat(runtime).access_token(ctx(runtime, MAIN))
    body = {"articles": [{"title": "北汽", "content": "<p>内容</p>", "thumb_media_id": "SANDBOX_DEFAULT_COVER"}]}
    url = f"{wx.url}/cgi-bin/draft/add"
    escaped = requests.post(url, params={"access_token": token}, json=body, timeout=5).json()
    assert escaped["errcode"] == 47001
    raw = requests.post(url, params={"access_token": token}, data=json.dumps(body, ensure_ascii=False).encode(),
                        headers={"Content-Type": "application/json; charset=utf-8"}, timeout=5).json()
    assert raw["media_id"].startswith("SBX_DRAFT_")


# --- end to end through the real worker -----------------------------------------------------------

def test_share_chinese_article_through_the_worker(wx, runtime, worker):
    result = service.share(runtime, local_zh(wx), [MAIN])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "delivered", d.error
    assert d.post_url == f"{wx.url}/s/{d.post_id}"
    messages = [e["message"] for e in d.events]
    for needle in ("access token refreshed", "cover uploaded", "1 inline image uploaded", "draft created",
                   "submitted", "publish status 1 (publishing)"):
        assert any(needle in m for m in messages), (needle, messages)
    page = requests.get(d.post_url, timeout=5).text
    assert "北汽集团" in page and "mmbiz.qpic.cn" in page


def test_example_images_come_through_the_media_rewrite(wx, runtime, worker):
    result = service.share(runtime, article("baic-catl.json"), [MAIN])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "delivered", d.error
    assert sandbox_posts(wx)[0]["thumb_media_id"].startswith("SBX_MAT_")


def test_faults_leave_no_token_or_secret_in_the_delivery_records(wx, runtime, worker):
    art = local_zh(wx)
    inject(wx, path="draft/add", kind="error", code=45166)
    [rejected] = wait_settled(runtime, service.share(runtime, art, [MAIN]).share_id)
    assert rejected.status == "failed" and "45166" in rejected.error and rejected.error_kind == "permanent"
    inject(wx, path="freepublish/submit", kind="expired_token")
    [refreshed] = wait_settled(runtime, service.share(runtime, art, [MAIN]).share_id)
    assert refreshed.status == "delivered", refreshed.error
    [bad] = wait_settled(runtime, service.share(runtime, art, ["wechat-badsecret"]).share_id)
    assert bad.status == "failed" and "re-authorise account wechat-badsecret" in bad.error

    secrets = [APPSECRET, "not-the-sandbox-secret", "SBXS_", "SBXB_", *wx.tokens]  # every sandbox token starts SBX?_
    assert len(secrets) > 5
    r, prefix = runtime.redis, runtime.settings.prefix
    for key in r.scan_iter(match=f"{prefix}*", count=1000):
        name = key.decode()
        if ":token:" in name:  # the shared token cache itself: the one place a token belongs
            continue
        text = repr(_dump(r, key))
        for s in secrets:
            assert s not in text, f"{s[:8]}… found in {name}"


def _dump(r, key: bytes) -> object:
    """A Redis value of any type, for scanning."""
    kind = r.type(key).decode()
    if kind == "string":
        return r.get(key)
    if kind == "hash":
        return r.hgetall(key)
    if kind == "list":
        return r.lrange(key, 0, -1)
    if kind == "zset":
        return r.zrange(key, 0, -1)
    if kind == "set":
        return r.smembers(key)
    if kind == "stream":
        return r.xrange(key)
    return b""
