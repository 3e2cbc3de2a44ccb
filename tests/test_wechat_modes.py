"""WeChat publishing modes (publish / mass / draft), multi-article pushes, cover crops and the preview to a
phone: the client against the emulator, then the real worker and the CLI."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import requests
from conftest import EXAMPLES, run_cli
from harness import Fault, article, configure, ctx, inject, publish, run_fault, sandbox_posts
from test_wechat import api_calls, image_url, local_zh, wechat

from sharer.article import Article
from sharer.errors import Ambiguous, ArticleError, ComposeError, PermanentError, RateLimited
from sharer.platforms import _wechat_quota as quota
from sharer.platforms._wechat_image import centred_crop, image_size
from sharer.platforms._wechat_mass import clientmsgid
from sharer.sandbox.images import SAMPLE_JPEG, make_png


@pytest.fixture
def wx(emulators, runtime):
    """The emulator, an empty token cache and empty mass quotas for every WeChat account."""
    for name, account in runtime.settings.accounts.items():
        if account.platform == "wechat":
            runtime.redis.delete(runtime.keys.token(name), runtime.keys.token_lock(name))
            for key in runtime.redis.scan_iter(match=runtime.keys.cache(name, "mass-quota:*")):
                runtime.redis.delete(key)
    return emulators["wechat"]


def previews(emu) -> list[dict]:
    return requests.get(emu.url + "/_sandbox/previews", timeout=5).json()["previews"]


def three_articles(emu) -> Article:
    lead = local_zh(emu)
    extra = [Article(title=f"第{i}篇：补充报道", url=f"https://news.example.com/zh/more-{i}",
                     body_html=f"<p>第{i}篇的正文。</p><p><img src=\"{image_url(emu, f'more-{i}.png')}\"></p>",
                     image=image_url(emu, f"cover-{i}.png")) for i in (2, 3)]
    return dataclasses.replace(lead, extra_articles=tuple(extra))


# --- mass send (群发) ------------------------------------------------------------------------------

def test_mass_send_to_all_followers(wx, runtime):
    c = ctx(runtime, "wechat-mass")
    receipt, post = publish(runtime, "wechat-mass", local_zh(wx), context=c)
    assert post.payload["publish_mode"] == "mass"
    assert any(w.startswith("mass send (群发) to all followers") and "1000 mass sends a month" in w
               for w in post.warnings)
    [sent] = sandbox_posts(wx)
    assert sent["mode"] == "mass" and sent["filter"] == {"is_to_all": True}
    assert sent["clientmsgid"] == clientmsgid(c.delivery_id) and sent["send_ignore_reprint"] == 0
    assert receipt.post_id == sent["msg_id"] and receipt.url is None and "SEND_SUCCESS" in receipt.note
    assert c.state["msg_id"] == int(sent["msg_id"])
    calls = api_calls(wx)
    assert calls.count("message/mass/sendall") == 1 and "message/mass/get" in calls
    assert "freepublish/submit" not in calls
    # the mass-sent draft left the draft box
    token = wechat(runtime, "wechat-mass").access_token(c)
    gone = requests.post(f"{wx.url}/cgi-bin/draft/get", params={"access_token": token},
                         json={"media_id": c.state["draft_media_id"]}, timeout=5).json()
    assert gone["errcode"] == 40007


def test_mass_send_to_a_tag_with_ignore_reprint(wx, runtime):
    _, post = publish(runtime, "wechat-mass-daily", local_zh(wx))
    assert any("followers with tag 101" in w and "1 mass send a day" in w for w in post.warnings)
    [sent] = sandbox_posts(wx)
    assert sent["filter"] == {"is_to_all": False, "tag_id": 101} and sent["send_ignore_reprint"] == 1


def test_clientmsgid_is_stable_and_at_most_64_bytes():
    assert clientmsgid("dl_0190abc") == clientmsgid("dl_0190abc") == "sharer-dl_0190abc"
    long = clientmsgid("dl_" + "x" * 100)
    assert len(long.encode()) <= 64 and long == clientmsgid("dl_" + "x" * 100)


@pytest.mark.parametrize("clientmsgid_first", [True, False])
def test_a_lost_sendall_answer_is_confirmed_by_the_same_clientmsgid(wx, runtime, clientmsgid_first):
    """Resent with the same clientmsgid: 45065 with the earlier msg_id — whether WeChat looks at the
    clientmsgid first, or first finds our (consumed) draft gone and we ask again with a fresh one."""
    configure(wx, clientmsgid_first=clientmsgid_first)
    inject(wx, path="message/mass/sendall", kind="drop_after")
    saved: list[dict] = []
    with pytest.raises(Ambiguous):
        publish(runtime, "wechat-mass", local_zh(wx), context=ctx(runtime, "wechat-mass", saved=saved))
    post, lost = wechat(runtime, "wechat-mass").compose(local_zh(wx)), saved[-1]
    assert lost["mass_at"] and "msg_id" not in lost
    checker = ctx(runtime, "wechat-mass", state=lost)
    assert wechat(runtime, "wechat-mass").find_existing(post, checker) is None  # safe to resend: same clientmsgid
    steps: list[str] = []
    receipt = wechat(runtime, "wechat-mass").publish(post, ctx(runtime, "wechat-mass", steps, state=lost))
    [sent] = sandbox_posts(wx)
    assert receipt.post_id == sent["msg_id"] and "WeChat already had this mass send" in receipt.note
    assert any("msg_id " + sent["msg_id"] in s for s in steps)
    if not clientmsgid_first:
        assert any("consumed by an earlier send (errcode 40007)" in s for s in steps)
        assert api_calls(wx).count("draft/add") == 2
    assert quota.status(runtime.redis, runtime.keys, runtime.settings.account("wechat-mass")).used == 1


def test_the_daily_quota_is_enforced_before_sending_and_given_back_on_refusal(wx, runtime):
    account = runtime.settings.account("wechat-mass-daily")
    before = quota.status(runtime.redis, runtime.keys, account)
    assert (before.used, before.limit, before.period, before.zone) == (0, 1, "day", "Asia/Shanghai")
    inject(wx, path="message/mass/sendall", kind="error", code=48001)
    with pytest.raises(PermanentError):
        publish(runtime, "wechat-mass-daily", local_zh(wx))
    assert quota.status(runtime.redis, runtime.keys, account).used == 0  # refused: given back
    publish(runtime, "wechat-mass-daily", local_zh(wx))
    with pytest.raises(RateLimited, match="quota of account wechat-mass-daily used up: 1 of 1") as e:
        publish(runtime, "wechat-mass-daily", local_zh(wx), delivery_id="dl_second")
    assert 60 <= e.value.retry_after <= 86400 + 3600
    assert len(sandbox_posts(wx)) == 1 and api_calls(wx).count("message/mass/sendall") == 2


MASS_REFUSALS = [  # (row, the account's mass quota used afterwards; None: not checked)
    (Fault("45028 is rate-limited until the period resets", "wechat-mass", None, RateLimited, "45028",
           config={"mass_quota": 0}, make_article=local_zh, check=lambda e: e.retry_after >= 60), 0),
    (Fault("a mass send that fails is permanent", "wechat-mass", None, PermanentError, "SEND_FAIL",
           config={"mass_status": "SEND_FAIL"}, make_article=local_zh, posts=None), None),
]


@pytest.mark.parametrize(("case", "used"), MASS_REFUSALS, ids=[str(c) for c, _ in MASS_REFUSALS])
def test_mass_send_refusals(case, used, wx, emulators, runtime):
    run_fault(case, emulators, runtime)
    if used is not None:
        assert quota.status(runtime.redis, runtime.keys, runtime.settings.account(case.account)).used == used


# --- draft mode -------------------------------------------------------------------------------------

def test_draft_mode_returns_the_drafts_preview_link(wx, runtime):
    c = ctx(runtime, "wechat-draft")
    receipt, post = publish(runtime, "wechat-draft", local_zh(wx), context=c)
    assert any(w.startswith("draft only") for w in post.warnings)
    assert receipt.post_id == c.state["draft_media_id"] and "/s/draft?media_id=" in receipt.url
    assert "draft box for an editor" in receipt.note and sandbox_posts(wx) == []
    page = requests.get(receipt.url, timeout=5)
    assert page.status_code == 200 and "北汽集团" in page.text
    calls = api_calls(wx)
    assert "freepublish/submit" not in calls and "message/mass/sendall" not in calls


# --- multi-article pushes and cover crops ------------------------------------------------------------

def test_multi_article_compose_and_draft(wx, runtime):
    steps: list[str] = []
    receipt, post = publish(runtime, "wechat-main", three_articles(wx), steps=steps)
    p = post.payload
    assert p["title"] == wechat(runtime).compose(local_zh(wx)).payload["title"]  # the lead leads
    assert [m["title"] for m in p["more"]] == ["第2篇：补充报道", "第3篇：补充报道"]
    assert all("utm_source=wechat" in m["content_source_url"] for m in p["more"])
    assert any(w.startswith("3 articles in one push") for w in post.warnings)
    [posted] = sandbox_posts(wx)
    assert [a["title"] for a in posted["articles"]] == [p["title"], "第2篇：补充报道", "第3篇：补充报道"]
    assert "digest" not in posted["articles"][1] and len({a["thumb_media_id"] for a in posted["articles"]}) == 3
    assert all("mmbiz.qpic.cn" in a["content"] for a in posted["articles"])
    assert "draft created (3 articles)" in steps and receipt.url
    assert requests.get(receipt.url.replace("/s/", "/s/") + "?idx=3", timeout=5).status_code == 200


def test_more_than_eight_articles_is_refused(runtime):
    extra = tuple(Article(title=f"t{i}", url=f"https://news.example.com/{i}") for i in range(8))
    with pytest.raises(ArticleError, match="extra_articles: at most 7"):
        Article(title="lead", url="https://news.example.com/lead", extra_articles=extra)
    with pytest.raises(ComposeError, match="article 2: the article has no body"):
        wechat(runtime, "wechat-custom").compose(
            Article(title="lead", url="https://news.example.com/lead", body_html="<p>x</p>",
                    extra_articles=extra[:2]))


def test_cover_crops_come_from_the_cover_images_real_size(wx, runtime):
    assert image_size(SAMPLE_JPEG) == (64, 36) and image_size(make_png(300, 100)) == (300, 100)
    assert centred_crop(100, 100, 1.0) == "0_0_1_1"
    assert centred_crop(470, 100, 2.35) == "0.25_0_0.75_1"
    assert centred_crop(100, 470, 2.35) == "0_0.454731_1_0.545269"
    publish(runtime, "wechat-main", local_zh(wx))  # cover.jpg is the 64x36 sample JPEG
    [posted] = sandbox_posts(wx)
    assert posted["pic_crop_1_1"] == "0.21875_0_0.78125_1"
    assert posted["pic_crop_235_1"] == "0_0.121749_1_0.878251"


# --- preview to a phone ------------------------------------------------------------------------------

def test_preview_to_a_phone_by_wechat_id_and_openid(wx, runtime):
    platform, c = wechat(runtime), ctx(runtime, "wechat-main")
    post = platform.compose(three_articles(wx))
    sent = platform.send_preview(post, c, "editor-wx")
    assert sent.to == "editor-wx" and sent.msg_id and sent.articles == 3
    by_openid = platform.send_preview(post, c, "openid:oABC123")
    assert by_openid.draft_media_id == sent.draft_media_id  # the same draft: it stays in the draft box
    got = previews(wx)
    assert [(p["towxname"], p["touser"]) for p in got] == [("editor-wx", None), (None, "oABC123")]
    assert len(got[0]["articles"]) == 3 and sandbox_posts(wx) == []
    assert api_calls(wx).count("draft/add") == 1


def test_preview_to_someone_who_does_not_follow_is_a_clear_error(wx, runtime):
    configure(wx, followers=["editor-wx"])
    platform = wechat(runtime)
    with pytest.raises(PermanentError, match="does not follow the account"):
        platform.send_preview(platform.compose(local_zh(wx)), ctx(runtime, "wechat-main"), "stranger")


# --- through the worker and the CLI -------------------------------------------------------------------

def test_mass_and_draft_modes_through_the_worker_with_json_fields(wx, runtime, worker, base_env):
    proc = run_cli(["share", str(EXAMPLES / "baic-catl-zh.md"), "--to", "wechat-mass,wechat-draft,wechat-main",
                    "--wait", "--json", "--force"], base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    by = {d["account"]: d for d in json.loads(proc.stdout)["deliveries"]}
    mass, draft, main = by["wechat-mass"], by["wechat-draft"], by["wechat-main"]
    assert (mass["publish_mode"], draft["publish_mode"], main["publish_mode"]) == ("mass", "draft", "publish")
    [sent] = [p for p in sandbox_posts(wx) if p["mode"] == "mass"]
    assert mass["status"] == "delivered" and mass["msg_id"] == mass["post_id"] == sent["msg_id"]
    assert mass["post_url"] is None and "SEND_SUCCESS" in mass["note"]
    assert draft["status"] == "delivered" and "/s/draft?" in draft["post_url"] and draft["msg_id"] is None
    assert main["status"] == "delivered" and main["msg_id"] is None and main["post_url"]


def test_cli_multi_article_share_and_preview(wx, emulators, runtime, worker, base_env, tmp_path):
    files = []
    for i in (2, 3):
        f = tmp_path / f"more-{i}.md"
        f.write_text(f"---\ntitle: 第{i}篇\nurl: https://news.example.com/zh/more-{i}\n"
                     f"image: https://news.example.com/images/more-{i}.jpg\n---\n第{i}篇正文。\n", encoding="utf-8")
        files.append(str(f))
    lead = str(EXAMPLES / "baic-catl-zh.md")
    shown = run_cli(["preview", lead, *files, "--to", "wechat-main,weibo-main", "--json"], base_env)
    assert shown.returncode == 0, shown.stderr
    posts = {p["account"]: p for p in json.loads(shown.stdout)["posts"]}
    assert [m["title"] for m in posts["wechat-main"]["payload"]["more"]] == ["第2篇", "第3篇"]
    text = run_cli(["preview", lead, *files, "--to", "wechat-main"], base_env)
    assert "article 2: 第2篇" in text.stdout and "article 3: 第3篇" in text.stdout
    proc = run_cli(["share", lead, *files, "--to", "wechat-main,weibo-main", "--wait", "--json", "--force"],
                   base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    by = {d["platform"]: d for d in json.loads(proc.stdout)["deliveries"]}
    assert by["wechat"]["status"] == by["weibo"]["status"] == "delivered"
    [posted] = sandbox_posts(wx)
    assert [a["title"] for a in posted["articles"]][1:] == ["第2篇", "第3篇"]
    [weibo] = sandbox_posts(emulators["weibo"])
    assert "第2篇" not in weibo["text"]  # other platforms get the lead article only
    nine = run_cli(["share", lead, *([files[0]] * 8), "--to", "wechat-main"], base_env)
    assert nine.returncode == 2 and nine.stderr.count("\n") == 1
    assert "FILE: at most 8 articles" in nine.stderr and "at most 8" in nine.stderr


def test_cli_preview_send_to_phone(wx, runtime, base_env):
    lead = str(EXAMPLES / "baic-catl-zh.md")
    proc = run_cli(["preview", lead, "--to", "wechat-main", "--send-to", "editor-wx"], base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "sent to editor-wx's phone" in proc.stdout
    [p] = previews(wx)
    assert p["towxname"] == "editor-wx"
    as_json = run_cli(["preview", lead, "--to", "wechat-main", "--send-to", "openid:oXYZ", "--json"], base_env)
    out = json.loads(as_json.stdout)
    assert out["sent"][0]["to"] == "openid:oXYZ" and out["sent"][0]["msg_id"]
    assert previews(wx)[-1]["touser"] == "oXYZ"
    configure(wx, followers=["editor-wx"])
    bad = run_cli(["preview", lead, "--to", "wechat-main", "--send-to", "stranger"], base_env)
    assert bad.returncode == 1 and "does not follow the account" in bad.stderr and "Traceback" not in bad.stderr
    none = run_cli(["preview", lead, "--to", "weibo-main", "--send-to", "editor-wx"], base_env)
    assert none.returncode == 2 and "--send-to" in none.stderr


def test_quota_is_shown_in_preview(wx, runtime, base_env):
    publish(runtime, "wechat-mass-daily", local_zh(wx))
    proc = run_cli(["preview", str(EXAMPLES / "baic-catl-zh.md"), "--to", "wechat-mass-daily"], base_env)
    assert "1 of 1 mass send used today (Asia/Shanghai)" in proc.stdout
    out = json.loads(run_cli(["preview", str(EXAMPLES / "baic-catl-zh.md"), "--to", "wechat-mass-daily",
                              "--json"], base_env).stdout)
    assert out["posts"][0]["quota"]["used"] == 1 and out["posts"][0]["quota"]["limit"] == 1


# --- the dashboard's button: POST /api/previews/phone -------------------------------------------------

def test_api_phone_preview(wx, web_app, editor_token, viewer_token):
    from web_support import client, sign_in

    c = client(web_app)
    fields = {k: v for k, v in article("baic-catl-zh.md").to_dict().items() if k != "source" and v not in (None, [])}
    body = {"article": fields, "accounts": ["wechat-main", "weibo-main"], "send_to": "editor-wx"}
    r = c.post("/api/previews/phone", json=body, headers=editor_token)
    assert r.status_code == 200, r.text
    [sent] = r.json()["sent"]
    assert sent["account"] == "wechat-main" and sent["to"] == "editor-wx" and sent["msg_id"]
    assert previews(wx)[-1]["towxname"] == "editor-wx"
    assert c.post("/api/previews/phone", json=body, headers=viewer_token).status_code == 403
    r = c.post("/api/previews/phone", json={**body, "accounts": ["weibo-main"]}, headers=editor_token)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "--send-to"
    configure(wx, followers=["someone-else"])
    r = c.post("/api/previews/phone", json=body, headers=editor_token)
    assert r.status_code == 502 and "does not follow the account" in r.json()["detail"]
    page = sign_in(web_app, "editor").get("/compose")
    assert 'id="phone-btn"' in page.text and "/static/phone-preview.js" in page.text


# --- result events at the account's server URL (MASSSENDJOBFINISH) -------------------------------------

def _signed(token: str, **extra) -> dict:
    from sharer.platforms._wechat_events import signature

    ts, nonce = str(int(time.time())), "n0nce"
    return {"timestamp": ts, "nonce": nonce, "signature": signature(token, ts, nonce), **extra}


def test_events_parse_and_signature():
    from sharer.platforms._wechat_events import EventError, parse, verify

    xml = (b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><MsgType><![CDATA[event]]></MsgType>"
           b"<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID>"
           b"<Status><![CDATA[send success]]></Status></xml>")
    ev = parse(xml)
    assert (ev.kind, ev.job_id, ev.status) == ("MASSSENDJOBFINISH", "1000001625", "send success")
    pub = parse(b"<xml><MsgType>event</MsgType><Event>PUBLISHJOBFINISH</Event><PublishEventInfo>"
                b"<publish_id>2247503051</publish_id><publish_status>0</publish_status></PublishEventInfo></xml>")
    assert (pub.kind, pub.job_id, pub.status) == ("PUBLISHJOBFINISH", "2247503051", "0")
    with pytest.raises(EventError, match="DTD"):
        parse(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>')
    verify("tok", _signed("tok"))
    with pytest.raises(EventError, match="signature"):
        verify("other", _signed("tok"))
    with pytest.raises(EventError, match="stale"):
        verify("tok", _signed("tok"), now=time.time() + 3600)


def test_a_mass_send_finished_event_makes_the_waiting_delivery_poll_now(wx, runtime, web_app):
    from web_support import client

    from sharer.platforms._wechat_flows import remember_job
    from sharer.platforms.base import DeliveryContext

    c = client(web_app)
    token = runtime.settings.account("wechat-mass").secret("callback_token")
    r = c.get("/wechat/events/wechat-mass", params=_signed(token, echostr="hello-wechat"))
    assert r.status_code == 200 and r.text == "hello-wechat"  # the server-URL handshake
    assert c.get("/wechat/events/wechat-mass", params=_signed("wrong", echostr="x")).status_code == 403
    assert c.get("/wechat/events/wechat-main", params=_signed(token, echostr="x")).status_code == 404
    # a delivery waiting for its next poll of mass send 1000009999
    share = {"id": "sh_evtest", "article": "{}", "title": "t", "url": "https://news.example.com/t"}
    [d] = runtime.store.create_share(share, [{"id": "dl_evtest", "account": "wechat-mass", "platform": "wechat"}],
                                     status="retrying")
    runtime.store.transition(d.id, "retrying", None, "still sending", fields={"not_before": time.time() + 3600})
    ctx = DeliveryContext(d.id, runtime.settings.account("wechat-mass"), runtime.session, redis=runtime.redis,
                          keys=runtime.keys)
    remember_job(ctx, "msg", 1000009999)
    xml = (b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event>"
           b"<MsgID>1000009999</MsgID><Status><![CDATA[send success]]></Status></xml>")
    r = c.post("/wechat/events/wechat-mass", params=_signed(token), content=xml)
    assert r.status_code == 200 and r.text == "success"
    after = runtime.store.get(d.id)
    assert after.not_before <= time.time()
    assert "WeChat reported MASSSENDJOBFINISH for 1000009999 (send success): checking now" in \
        [e["message"] for e in after.events]
    bad = c.post("/wechat/events/wechat-mass", params=_signed(token), content=b"<!DOCTYPE x><xml/>")
    assert bad.status_code == 400
