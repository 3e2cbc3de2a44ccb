"""The dashboard's languages and wording: complete zh-CN catalog, the language choice (user setting >
Accept-Language > [web] language), localised dates and durations, status words, plain-word errors,
the confirmation step and the "When" trap on the server side, who shared, cancel/reschedule a share."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from conftest import EXAMPLES, ROOT, wait_settled
from test_web_pages import _compose_data
from web_support import client, sign_in

from sharer import service
from sharer.config import load_settings
from sharer.loaders import load_article
from sharer.web import i18n, present
from sharer.web.app import create_app

ARTICLE = EXAMPLES / "baic-catl-zh.md"
PO = ROOT / "sharer" / "web" / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.8"}
WEEKDAYS = "一二三四五六日"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str]:
    """Every msgid in the dashboard's templates and Python, as `make messages` extracts them."""
    method_map = [("sharer/web/**.py", "python"), ("sharer/web/templates/**.html", "jinja2")]
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_the_zh_catalog_translates_every_string():
    with open(PO, "rb") as f:
        catalog = read_po(f)
    ids = extracted()
    assert len(ids) > 250
    for path in (ROOT / "sharer" / "web").glob("*.py"):  # a marker the extractor could miss (nested in a call)
        for literal in re.findall(r'\bN_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', path.read_text()):
            assert literal in ids, f"{path.name}: N_({literal!r}) is not extracted"
    problems = []
    for msgid in sorted(ids):
        m = catalog.get(msgid)
        strings = [] if m is None else ([m.string] if isinstance(m.string, str) else list(m.string))
        if m is None or not all(strings) or not strings or m.fuzzy:
            problems.append(f"untranslated: {msgid!r}")
            continue
        want = set(PLACEHOLDER.findall(msgid if isinstance(m.id, str) else m.id[0]))
        if any(set(PLACEHOLDER.findall(s)) != want for s in strings):
            problems.append(f"placeholders differ: {msgid!r}")
    assert problems == []


def _visible(html: str) -> str:
    html = re.sub(r"(?s)<(script|template|style)\b.*?</\1>", " ", html)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_zh_pages_show_no_catalog_string_in_english(web_app, runtime, worker):
    c = sign_in(web_app, "editor")
    c.headers.update(ZH)
    sid = service.share(runtime, load_article(str(ARTICLE)), ["hook-a"], force=True, shared_by="editor").share_id
    wait_settled(runtime, sid)
    with open(PO, "rb") as f:
        english = [m.id for m in read_po(f) if isinstance(m.id, str) and " " in m.id and m.string != m.id
                   and "%" not in m.id]
    for path in ["/compose", "/shares", f"/shares/{sid}", f"/shares/{sid}/deliveries", "/schedule", "/calendar",
                 "/calendar?view=month", "/accounts", "/settings", "/shares/sh_nope"]:
        r = c.get(path)
        text = _visible(r.text)
        left = [e for e in english if e in text]
        assert left == [], f"{path}: {left}"
        assert re.search(r"[\u4e00-\u9fff]", text), path
    login = client(web_app).get("/login", headers=ZH)
    assert "登录" in login.text and "User name" not in _visible(login.text)


def test_language_comes_from_the_user_then_the_browser_then_the_config(web_app, web_config, runtime):
    c = sign_in(web_app, "linguist")
    assert "撰写分享" in c.get("/compose", headers=ZH).text
    assert "Compose a share" in c.get("/compose", headers=EN).text
    assert "Compose a share" in c.get("/compose").text  # no header: [web] language (absent: en)
    r = c.post("/settings", data={"csrf_token": c.csrf, "language": "zh-CN", "timezone": "Europe/Paris"})
    assert r.status_code == 303
    page = c.get("/compose", headers=EN).text  # the user's own choice wins over the browser's
    assert "撰写分享" in page and 'value="Europe/Paris"' in page and "时间按 Europe/Paris" in page
    r = c.post("/settings", data={"csrf_token": c.csrf, "language": "tlh", "timezone": ""})
    assert r.status_code == 422 and "tlh" in r.text
    r = c.post("/settings", data={"csrf_token": c.csrf, "language": "", "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and "Mars/Olympus" in r.text
    c.post("/settings", data={"csrf_token": c.csrf, "language": "", "timezone": ""})
    assert "Compose a share" in c.get("/compose", headers=EN).text

    cfg = web_config.parent / "sharer-web-zh.toml"
    cfg.write_text(web_config.read_text().replace("[web]\n", '[web]\nlanguage = "zh-CN"\n', 1))
    zh_app = create_app(load_settings(cfg))
    assert zh_app.state.web.web.language == "zh-CN"
    assert "登录" in client(zh_app).get("/login").text  # the shipped default: Chinese first
    assert "Sign in" in client(zh_app).get("/login", headers=EN).text


def test_dates_and_weekdays_are_localised_in_the_readers_zone(web_app, runtime):
    c = sign_in(web_app, "editor")
    tz = ZoneInfo("Asia/Shanghai")
    day = datetime.now(tz).date() + timedelta(days=5)
    res = service.share(runtime, load_article(str(ARTICLE)), ["hook-b"], at=f"{day} 09:00", tz="Asia/Shanghai",
                        force=True)
    zh = c.get(f"/shares/{res.share_id}", headers=ZH).text
    assert f"{day.year}年{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]} 09:00" in zh
    en = c.get(f"/shares/{res.share_id}", headers=EN).text
    assert f"{day.strftime('%a')} {day.day} {day.strftime('%b')} {day.year} 09:00" in en
    assert f"{day}T09:00" in en  # the reschedule input, in the reader's zone
    assert re.search(r"\d+(秒钟|分钟)前", zh)  # created a moment ago
    service.cancel(runtime, res.share_id)


def test_shares_show_status_words_every_count_and_who_shared(web_app, runtime, worker):
    c = sign_in(web_app, "editor")
    r = c.post("/compose", data={**_compose_data(c, accounts=["hook-a"], force="1"), "step": "confirm"})
    sid = r.headers["location"].rsplit("/", 1)[1]
    wait_settled(runtime, sid)
    page = c.get("/shares", headers=ZH).text
    for status in ("queued", "scheduled", "sending", "retrying", "delivered", "failed", "cancelled", "unknown",
                   "needs_review"):
        assert f'href="/shares?status={status}"' in page
    row = page[page.index(f'href="/shares/{sid}"'):]
    assert '<span class="badge st-delivered">已发布</span>' in row[:2000]  # a word, not only a colour
    assert re.search(r'class="shared-by">editor<', page)
    assert "由 editor 分享" in c.get(f"/shares/{sid}", headers=ZH).text


def test_confirmation_is_required_and_a_date_with_now_is_refused(web_app, runtime):
    c = sign_in(web_app, "editor")
    before = service.counts(runtime)
    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    r = c.post("/compose", data=_compose_data(c, accounts=["wechat-main", "hook-a"], when="now", at=tomorrow),
               headers=ZH)
    assert r.status_code == 422 and "选择的是“立即”" in r.text  # the "When" trap, refused by the server
    r = c.post("/compose", data=_compose_data(c, accounts=["wechat-main", "hook-a"], when="at", at=tomorrow,
                                               tz="Asia/Shanghai"), headers=ZH)
    assert r.status_code == 200 and 'id="confirm-btn"' in r.text
    assert "发布（不通知粉丝）" in r.text  # WeChat's mode: publish_mode, default publish
    assert "09:00" in r.text and "Asia/Shanghai" in r.text and "确认：发送到 2 个账号" in r.text
    r = c.post("/compose", data={**_compose_data(c, accounts=["hook-a"], when="at", at=tomorrow), "step": "edit"})
    assert r.status_code == 200 and 'id="compose"' in r.text and f'value="{tomorrow}"' in r.text
    assert service.counts(runtime) == before  # nothing was stored or sent


def test_share_page_reschedules_and_cancels_the_whole_share(web_app, runtime):
    c = sign_in(web_app, "editor")
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=6)
    res = service.share(runtime, load_article(str(ARTICLE)), ["hook-a", "hook-b"], at=f"{day} 08:00",
                        tz="Asia/Shanghai", force=True)
    page = c.get(f"/shares/{res.share_id}").text
    assert 'id="reschedule-form"' in page and "Cancel the whole share" in page and "2 posts have not been sent" in page
    r = c.post(f"/shares/{res.share_id}/reschedule", data={"csrf_token": c.csrf, "at": f"{day}T11:15",
                                                           "tz": "Asia/Shanghai", "back": f"/shares/{res.share_id}"})
    assert r.status_code == 303 and r.headers["location"] == f"/shares/{res.share_id}"
    want = datetime(day.year, day.month, day.day, 11, 15, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert {d.scheduled_for for d in service.status(runtime, res.share_id)} == {want}
    r = c.post(f"/shares/{res.share_id}/cancel", data={"csrf_token": c.csrf})
    assert r.status_code == 303
    assert {d.status for d in service.status(runtime, res.share_id)} == {"cancelled"}


def test_accounts_page_limits_durations_and_plain_errors(web_app, runtime, worker, emulators):
    c = sign_in(web_app, "editor")
    sid = service.share(runtime, load_article(str(ARTICLE)), ["hook-bad"], force=True).share_id
    [failed] = wait_settled(runtime, sid)
    assert failed.status == "failed"
    page = c.get("/accounts", headers=ZH).text
    wechat = page[page.index('data-account="wechat-main"'):]
    wechat = wechat[:wechat.index("</tr>")]
    assert "标题 32 字 · 摘要 128 字 · 正文 20000 字" in wechat  # not just the digest's limit
    assert "有效期" in wechat and not re.search(r"\d{3,} s\b", wechat)  # a human duration, not seconds
    bad = page[page.index('data-account="hook-bad"'):]
    bad = bad[:bad.index("</tr>")]
    assert "<details" in bad and failed.error in unescape(bad)  # the raw message behind a disclosure
    i18n.use("zh-CN")
    try:
        assert present.explain(failed.error, failed.error_kind) in bad  # explained by its kind
    finally:
        i18n.use("en")
    detail = c.get(f"/shares/{sid}", headers=ZH).text
    explained = re.search(r'<p class="error explain">([^<]+)</p>', detail)[1]
    assert re.search(r"[\u4e00-\u9fff]", explained) and failed.error not in explained
    i18n.use("zh-CN")
    try:
        assert explained == present.explain(failed.error, failed.error_kind)
    finally:
        i18n.use("en")


def test_errors_are_explained_in_plain_words():
    i18n.use("zh-CN")
    try:
        said = present.explain("HTTP request failed: MissingSchema", "transient")
        assert "MissingSchema" not in said and "网址" in said
        assert "凭据" in present.explain("HTTP 401: invalid token", "auth")
        assert present.credential_words("access token issued (valid 157679999 s)") == \
            "已获取 access token，有效期 5年"
    finally:
        i18n.use("en")
    assert present.credential_words("access token issued (valid 7200 s)") == \
        "access token issued, valid for 2 hours"


def test_error_pages_speak_the_readers_language(web_app):
    viewer = sign_in(web_app, "viewer")
    r = viewer.get("/compose", headers=ZH)
    assert r.status_code == 403 and "无权操作" in r.text and "只读用户" in r.text
    r = viewer.get("/shares/sh_nope", headers=ZH)
    assert r.status_code == 404 and "找不到编号为 sh_nope 的分享" in r.text
    r = viewer.post("/logout", data={"csrf_token": "wrong"}, headers=ZH)
    assert r.status_code == 403 and "请刷新页面" in r.text
    assert "only editors may do this" in viewer.get("/compose", headers=EN).text


def test_confirmation_shows_an_account_the_article_cannot_go_to(web_app, runtime, worker):
    c = sign_in(web_app, "editor")
    data = _compose_data(c, accounts=["wechat-main", "hook-a"], force="1", body_html="", summary="摘要")
    r = c.post("/compose", data=data, headers=ZH)
    assert r.status_code == 200 and "不会发送" in r.text and "确认：发送到 1 个账号" in r.text
    row = r.text[r.text.index('<tr data-account="wechat-main"'):]
    assert "文章没有正文" in row[:row.index("</tr>")]
    r = c.post("/compose", data={**data, "step": "confirm"})
    assert r.status_code == 303
    ds = {d.account: d for d in wait_settled(runtime, r.headers["location"].split("/")[2].split("?")[0])}
    assert ds["wechat-main"].status == "failed" and ds["wechat-main"].error_kind == "compose"
    assert ds["hook-a"].status == "delivered"


def test_core_lines_are_said_in_the_readers_language():
    from sharer.web.wording import say

    i18n.use("zh-CN")
    try:
        assert say("delivered: https://t.me/sharer_news/1") == "已发布：https://t.me/sharer_news/1"
        assert say("part 2/5 posted: 186") == "第 2/5 条已发：186"
        assert say("article 2: title trimmed to 21 characters / 63 bytes (limit 32 / 64)") == \
            "第 2 篇：标题已截短为 21 字 / 63 字节（上限 32 / 64）"
        assert say("text is 151 Weibo units long; the limit is 140") == "文本长 151 微博字数，上限为 140"
        assert say("something new the core says") == "something new the core says"  # unknown: as written
    finally:
        i18n.use("en")
    assert say("part 2/5 posted: 186") == "part 2/5 posted: 186"
