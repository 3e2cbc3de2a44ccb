"""WeChat Official Account: composition goldens, the client against the emulator, the real worker."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from bs4 import BeautifulSoup
from conftest import EXAMPLES, inject, sandbox_posts, wait_settled

from sharer import service
from sharer.article import Article
from sharer.errors import (
    Ambiguous,
    AuthExpired,
    ComposeError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from sharer.loaders import load_article
from sharer.platforms.base import DeliveryContext, Post
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


@dataclass
class Run:
    ctx: DeliveryContext
    steps: list[str] = field(default_factory=list)
    saved: list[dict] = field(default_factory=list)

    @property
    def platform(self) -> WeChat:
        return WeChat(self.ctx.account)

    def publish(self, article: Article | Post):
        post = article if isinstance(article, Post) else self.platform.compose(article)
        return self.platform.publish(post, self.ctx)


def run_for(runtime, name: str = MAIN, *, state: dict | None = None, timeout: float = 5.0, **options) -> Run:
    """A DeliveryContext like the worker's, recording steps and saved states."""
    account = runtime.settings.account(name)
    if options:
        account = dataclasses.replace(account, options=dataclasses.replace(account.options, **options))
    run = Run(DeliveryContext(delivery_id="dl_wechat_test", account=account, session=runtime.session,
                              timeout=timeout, redis=runtime.redis, keys=runtime.keys, state=state or {},
                              media_rewrite=runtime.settings.media_rewrite))
    run.ctx.on_step = run.steps.append
    run.ctx.on_state = lambda s: run.saved.append(json.loads(json.dumps(s)))
    return run


def image_url(emu, name: str) -> str:
    return f"{emu.url}/_sandbox/images/{name}"


def local_zh(emu) -> Article:
    """baic-catl-zh.md with its cover and inline image served by the emulator."""
    article = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    return dataclasses.replace(article, image=image_url(emu, "cover.jpg"),
                               body_html=article.body_html.replace(ZH_IMAGE, image_url(emu, "inline.png")))


def api_calls(emu) -> list[str]:
    reqs = requests.get(emu.url + "/_sandbox/requests", timeout=5).json()["requests"]
    return [r["path"].removeprefix("/cgi-bin/") for r in reqs]


def configure(emu, **config) -> None:
    requests.post(emu.url + "/_sandbox/config", json=config, timeout=5).raise_for_status()


# --- composition (pure) ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["baic-catl.json", "baic-catl-zh.md", "edge-cases.json", "baic-catl-page.html"])
def test_every_example_composes_within_wechat_limits(runtime, name):
    article = load_article(str(EXAMPLES / name))
    platform = WeChat(runtime.settings.account(MAIN))
    post = platform.compose(article)
    assert post == platform.compose(article)  # pure and deterministic
    p = post.payload
    assert set(p) == PAYLOAD_KEYS  # never thumb_media_id (resolved at delivery) nor credentials
    assert 0 < len(p["title"]) <= 32 and len(p["title"].encode()) <= 64
    assert len(p["author"]) <= 8
    assert post.text == p["digest"] and post.length == len(p["digest"]) <= post.limit == 128
    source = p["content_source_url"]
    assert source.startswith(article.url.split("?")[0]) and "utm_source=wechat" in source
    assert len(p["content"]) < 20_000 and len(p["content"].encode()) < 1_000_000
    soup = BeautifulSoup(p["content"], "html.parser")
    assert not soup.find(["script", "style", "iframe", "form"])
    assert not any(k.startswith("on") for tag in soup.find_all(True) for k in tag.attrs)
    assert all(urlsplit(a["href"]).hostname == "mp.weixin.qq.com" for a in soup.find_all("a", href=True))
    assert p["images"] == list(dict.fromkeys(img["src"] for img in soup.find_all("img")))
    assert p["cover"] == article.image
    if p["title"] != article.title:
        assert any(w.startswith("title trimmed") for w in post.warnings)
    json.dumps(post.to_dict())


def test_chinese_article_golden(runtime):
    article = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    post = WeChat(runtime.settings.account(MAIN)).compose(article)
    p = post.payload
    assert p["title"] == "北汽集团与宁德时代签署深化合作备忘录，携…"  # 21 characters, 63 bytes
    assert p["author"] == "北汽集团新闻中心"
    assert p["digest"] == post.text == article.summary
    assert "详情请见北汽集团官网。" in p["content"] and "<a" not in p["content"]
    assert p["images"] == [ZH_IMAGE] and p["cover"] == ZH_IMAGE
    assert (p["need_open_comment"], p["only_fans_can_comment"]) == (0, 0)
    assert post.warnings == ("title trimmed to 21 characters / 63 bytes (limit 32 / 64)", "1 link removed for WeChat")


def test_edge_cases_are_trimmed_safely_and_cleaned(runtime):
    article = load_article(str(EXAMPLES / "edge-cases.json"))
    post = WeChat(runtime.settings.account(MAIN)).compose(article)
    p = post.payload
    assert p["title"].startswith("🚗⚡") and p["title"].endswith("…") and article.title.startswith(p["title"][:-1])
    for junk in ("<script", "document.cookie", "onclick=", "evil()", "<a"):
        assert junk not in p["content"]
    assert "a link &amp; an ampersand" in p["content"]
    assert p["images"] == ["https://news.example.com/images/inline.png"]
    assert "1 link removed for WeChat" in post.warnings
    assert "👨\u200d👩\u200d👧\u200d👦" in p["digest"]  # the family emoji is whole


def test_english_author_over_the_limit_is_left_out_with_a_warning(runtime):
    post = WeChat(runtime.settings.account(MAIN)).compose(load_article(str(EXAMPLES / "baic-catl.json")))
    assert post.payload["author"] == ""
    assert "author 'BAIC GROUP News Center' is over 8 characters: left out" in post.warnings


def test_override_replaces_the_digest_and_is_never_cut(runtime):
    platform = WeChat(runtime.settings.account(MAIN))
    article = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    post = platform.compose(article, "编辑写的摘要")
    assert post.text == post.payload["digest"] == "编辑写的摘要" and post.length == 6
    with pytest.raises(ComposeError) as e:
        platform.compose(article, "字" * 129)
    assert "wechat-main" in str(e.value) and "129" in str(e.value) and "128" in str(e.value)


def test_account_template_options_and_default_cover(runtime):
    platform = WeChat(runtime.settings.account("wechat-custom"))
    article = dataclasses.replace(load_article(str(EXAMPLES / "baic-catl-zh.md")), author=None, image=None)
    post = platform.compose(article)
    p = post.payload
    assert len(p["title"]) <= 12 and len(p["title"].encode()) <= 36 and p["title"].endswith("…")
    assert p["digest"] == f"【{article.title}】{article.summary}"
    assert p["author"] == "新闻中心"
    assert (p["need_open_comment"], p["only_fans_can_comment"]) == (1, 1)
    assert "utm_campaign=wx-test" in p["content_source_url"] and p["cover"] is None
    with pytest.raises(ComposeError, match="cover image"):  # no default cover on the main account
        WeChat(runtime.settings.account(MAIN)).compose(article)


def test_long_content_drops_trailing_blocks_with_a_warning(runtime):
    body = "".join(f"<p>第{i}段" + "字" * 100 + "</p>" for i in range(400))
    article = Article(title="长文", url="https://news.example.com/zh/long", body_html=body,
                      image="https://news.example.com/images/c.jpg")
    post = WeChat(runtime.settings.account(MAIN)).compose(article)
    content = post.payload["content"]
    assert len(content) < 20_000 and content.startswith("<p>第0段") and "第399段" not in content
    assert any(w.startswith("content trimmed") and "阅读原文" in w for w in post.warnings)


# --- the client against the emulator --------------------------------------------------------------

def test_publish_happy_path(wx, runtime):
    run = run_for(runtime)
    article = local_zh(wx)
    post = run.platform.compose(article)
    receipt = run.publish(post)
    assert receipt.post_id and receipt.url == f"{wx.url}/s/{receipt.post_id}"
    assert api_calls(wx) == ["stable_token", "material/add_material", "media/uploadimg", "draft/add",
                             "freepublish/submit", "freepublish/get", "freepublish/get"]
    [posted] = sandbox_posts(wx)
    assert posted["id"] == receipt.post_id and posted["title"] == post.payload["title"]
    assert posted["thumb_media_id"].startswith("SBX_MAT_") and posted["digest"] == article.summary
    srcs = [img["src"] for img in BeautifulSoup(posted["content"], "html.parser").find_all("img")]
    assert len(srcs) == 1 and srcs[0].startswith("http://mmbiz.qpic.cn/sandbox/")
    assert "北汽集团" in posted["raw"] and "\\u5317" not in posted["raw"]  # raw UTF-8, no \u escapes
    assert run.steps[:5] == ["access token refreshed", "cover uploaded", "1 inline image uploaded", "draft created",
                             f"publish job {run.ctx.state['publish_id']} submitted"]
    assert run.steps[5] == "publish status 1 (publishing)"
    page = requests.get(receipt.url, timeout=5)
    assert page.status_code == 200 and "北汽集团" in page.text and srcs[0] in page.text


@pytest.mark.parametrize(("path", "code", "cls", "needle"), [
    ("draft/add", -1, TransientError, "system busy"),
    ("freepublish/submit", 45011, RateLimited, "per-minute"),
    ("media/uploadimg", 45009, RateLimited, "daily API quota"),
    ("draft/add", 45166, PermanentError, "invalid content"),
    ("freepublish/submit", 53503, PermanentError, "publish check"),
    ("material/add_material", 48001, PermanentError, "not authorised"),
])
def test_error_codes_map_to_our_error_classes(wx, runtime, path, code, cls, needle):
    inject(wx, path=path, kind="error", code=code)
    with pytest.raises(DeliveryError) as e:
        run_for(runtime).publish(local_zh(wx))
    assert type(e.value) is cls and e.value.code == str(code) and needle in str(e.value)
    if code == 45011:
        assert e.value.retry_after == 60
    if code == 45009:
        assert 60 <= e.value.retry_after <= 86400
    assert sandbox_posts(wx) == []


def test_publish_status_4_is_permanent(wx, runtime):
    configure(wx, publish_status=4)
    run = run_for(runtime)
    with pytest.raises(PermanentError, match="rejected by platform review") as e:
        run.publish(local_zh(wx))
    assert type(e.value) is PermanentError and e.value.code == "publish_status 4"
    assert run.steps[-1].startswith("publish status 4") and sandbox_posts(wx) == []


def test_expired_token_mid_run_is_refreshed_once_and_the_call_retried(wx, runtime):
    run_for(runtime).publish(local_zh(wx))
    assert api_calls(wx).count("stable_token") == 1
    inject(wx, path="draft/add", kind="expired_token")
    run = run_for(runtime)
    assert run.publish(local_zh(wx)).url
    calls = api_calls(wx)
    assert calls.count("stable_token") == 2 and calls.count("draft/add") == 3
    assert "access token rejected (errcode 42001): refreshing it once" in run.steps
    assert len(sandbox_posts(wx)) == 2


def test_a_token_rejected_twice_is_auth_expired(wx, runtime):
    inject(wx, path="draft/add", kind="expired_token", count=2)
    with pytest.raises(AuthExpired, match="re-authorise account wechat-main"):
        run_for(runtime).publish(local_zh(wx))
    assert api_calls(wx).count("stable_token") == 2


def test_a_failed_token_is_dropped_only_while_it_is_still_cached(wx, runtime):
    run = run_for(runtime)
    first = run.platform.access_token(run.ctx)
    stored = json.loads(runtime.redis.get(runtime.keys.token(MAIN)))  # another worker stores a newer token
    runtime.redis.set(runtime.keys.token(MAIN), json.dumps({**stored, "access_token": "ANOTHER-WORKERS-NEWER-TOKEN"}))
    assert run.platform.access_token(run.ctx, failed=first) == "ANOTHER-WORKERS-NEWER-TOKEN"
    assert api_calls(wx).count("stable_token") == 1
    assert run.platform.access_token(run.ctx, failed="ANOTHER-WORKERS-NEWER-TOKEN") == first  # still valid
    assert api_calls(wx).count("stable_token") == 2


def test_wrong_appsecret_is_permanent_and_named(wx, runtime):
    with pytest.raises(PermanentError, match="re-authorise account wechat-badsecret") as e:
        run_for(runtime, "wechat-badsecret").publish(local_zh(wx))
    assert e.value.code == "40001" and "not-the-sandbox-secret" not in str(e.value)


def _token_in_child(config_path: str, account: str, barrier, out) -> None:
    from sharer.config import load_settings
    from sharer.runtime import Runtime

    rt = Runtime(load_settings(config_path))
    acc = rt.settings.account(account)
    ctx = DeliveryContext("dl_child", acc, rt.session, timeout=5, redis=rt.redis, keys=rt.keys)
    barrier.wait(30)
    out.put(WeChat(acc).access_token(ctx))


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
    run = run_for(runtime, publish_poll_seconds=0.12, publish_poll_interval=0.05)
    post = run.platform.compose(local_zh(wx))
    with pytest.raises(TransientError, match="still publishing"):
        run.publish(post)
    saved = run.saved[-1]
    assert saved["publish_id"] and saved["draft_media_id"]
    checker = run_for(runtime, state=saved)  # reconciliation: a running saved job counts as absent
    assert checker.platform.find_existing(post, checker.ctx) is None
    later = run_for(runtime, state=saved)
    receipt = later.publish(post)
    assert later.steps[0] == f"resuming publish job {saved['publish_id']}" and receipt.url
    calls = api_calls(wx)
    assert calls.count("draft/add") == calls.count("freepublish/submit") == 1
    assert calls.count("freepublish/get") == 5 and len(sandbox_posts(wx)) == 1


def test_a_saved_draft_is_submitted_not_created_again(wx, runtime):
    inject(wx, path="freepublish/submit", kind="error", code=-1)
    run = run_for(runtime)
    post = run.platform.compose(local_zh(wx))
    with pytest.raises(TransientError):
        run.publish(post)
    saved = run.saved[-1]
    assert saved["draft_media_id"] and "publish_id" not in saved
    assert run_for(runtime, state=saved).publish(post).url
    calls = api_calls(wx)
    assert [calls.count(c) for c in ("material/add_material", "media/uploadimg", "draft/add")] == [1, 1, 1]
    assert calls.count("freepublish/submit") == 2


def test_a_lost_submit_answer_is_found_not_published_twice(wx, runtime):
    configure(wx, publish_seconds=0)  # jobs are final as soon as they are looked at
    inject(wx, path="freepublish/submit", kind="drop_after")
    run = run_for(runtime)
    post = run.platform.compose(local_zh(wx))
    with pytest.raises(Ambiguous):
        run.publish(post)
    receipt = run_for(runtime, state=run.saved[-1]).publish(post)  # draft consumed -> 40007 -> look it up
    [posted] = sandbox_posts(wx)
    assert receipt.post_id == posted["id"] and receipt.url == posted["url"]
    assert api_calls(wx).count("freepublish/submit") == 2


def test_find_existing_confirms_a_lost_submit_in_batchget_by_url_title_and_window(wx, runtime):
    configure(wx, publish_seconds=0)
    inject(wx, path="freepublish/submit", kind="drop_after")
    run = run_for(runtime)
    article = local_zh(wx)
    post = run.platform.compose(article)
    with pytest.raises(Ambiguous):
        run.publish(post)
    lost = run.saved[-1]
    assert lost["submit_at"] and lost["draft_media_id"] and "publish_id" not in lost
    checker = run_for(runtime, state=lost)
    found = checker.platform.find_existing(post, checker.ctx)
    [posted] = sandbox_posts(wx)
    assert found is not None and found.post_id == posted["id"] and found.url == posted["url"]
    # another article's lost submit: not in the list, and its draft is gone -> cannot tell, never "absent"
    other = checker.platform.compose(dataclasses.replace(article, url="https://news.example.com/zh/other"))
    with pytest.raises(Ambiguous, match="left the draft box"):
        checker.platform.find_existing(other, checker.ctx)
    # nothing submitted yet: nothing can be public
    assert run_for(runtime).platform.find_existing(post, run_for(runtime).ctx) is None


def test_find_existing_says_absent_when_the_draft_is_still_in_the_draft_box(wx, runtime):
    inject(wx, path="freepublish/submit", kind="drop")  # closed before WeChat handled it
    run = run_for(runtime)
    post = run.platform.compose(local_zh(wx))
    with pytest.raises(Ambiguous):
        run.publish(post)
    checker = run_for(runtime, state=run.saved[-1])
    assert checker.platform.find_existing(post, checker.ctx) is None
    assert "draft/get" in api_calls(wx) and sandbox_posts(wx) == []


def test_two_matching_articles_in_the_window_need_review(wx, runtime):
    configure(wx, publish_seconds=0)
    article = local_zh(wx)
    for _ in range(2):  # the same article published twice (two shares)
        run_for(runtime).publish(article)
    inject(wx, path="freepublish/submit", kind="drop_after")
    run = run_for(runtime)
    post = run.platform.compose(article)
    with pytest.raises(Ambiguous):
        run.publish(post)
    checker = run_for(runtime, state=run.saved[-1])
    with pytest.raises(Ambiguous, match="3 published WeChat articles match"):
        checker.platform.find_existing(post, checker.ctx)


def test_inline_images_are_uploaded_and_rewritten_or_dropped(wx, runtime):
    img = lambda name: image_url(wx, name)
    body = (f'<p>一<img src="{img("a.png")}"></p><p><img src="{img("b.jpg")}"><img src="{img("a.png")}"></p>'
            f'<p><img src="{img("anim.gif")}"></p><p><img src="{img("big.jpg?bytes=1100000")}"></p>')
    article = Article(title="图片测试", url="https://news.example.com/zh/images", body_html=body,
                      image=img("cover.bmp"))
    run = run_for(runtime)
    assert run.publish(article).url
    [posted] = sandbox_posts(wx)
    srcs = [i["src"] for i in BeautifulSoup(posted["content"], "html.parser").find_all("img")]
    assert len(srcs) == 3 and srcs[0] == srcs[2] != srcs[1]
    assert all(s.startswith("http://mmbiz.qpic.cn/sandbox/") for s in srcs)
    assert api_calls(wx).count("media/uploadimg") == 2
    assert "2 inline images uploaded" in run.steps
    dropped = [s for s in run.steps if s.startswith("inline image dropped")]
    assert len(dropped) == 2 and "is gif" in dropped[0] and "1,048,575-byte limit" in dropped[1]


@pytest.mark.parametrize(("cover", "cls", "needle"), [
    ("huge.jpg?bytes=10485761", PermanentError, "10,485,760-byte limit"),
    ("page.jpg?ctype=text/html", PermanentError, "Content-Type text/html"),
    ("missing.webp", PermanentError, "HTTP 404"),
    ("fake.txt?ctype=image/jpeg", PermanentError, "is not an image"),  # an image by its header only
    ("slow.jpg?delay=2", TransientError, "timeout"),
])
def test_cover_download_is_capped_and_checked(wx, runtime, cover, cls, needle):
    run = run_for(runtime, timeout=0.5)
    article = dataclasses.replace(local_zh(wx), image=image_url(wx, cover))
    with pytest.raises(DeliveryError) as e:
        run.publish(article)
    assert type(e.value) is cls and needle in str(e.value)
    assert "material/add_material" not in api_calls(wx)


def test_the_draft_body_must_be_raw_utf8(wx, runtime):
    run = run_for(runtime)
    token = run.platform.access_token(run.ctx)
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
    result = service.share(runtime, load_article(str(EXAMPLES / "baic-catl.json")), [MAIN])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "delivered", d.error
    assert sandbox_posts(wx)[0]["thumb_media_id"].startswith("SBX_MAT_")


def test_faults_leave_no_token_or_secret_in_the_delivery_records(wx, runtime, worker):
    article = local_zh(wx)
    inject(wx, path="draft/add", kind="error", code=45166)
    [rejected] = wait_settled(runtime, service.share(runtime, article, [MAIN]).share_id)
    assert rejected.status == "failed" and "45166" in rejected.error and rejected.error_kind == "permanent"
    inject(wx, path="freepublish/submit", kind="expired_token")
    [refreshed] = wait_settled(runtime, service.share(runtime, article, [MAIN]).share_id)
    assert refreshed.status == "delivered", refreshed.error
    [bad] = wait_settled(runtime, service.share(runtime, article, ["wechat-badsecret"]).share_id)
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
