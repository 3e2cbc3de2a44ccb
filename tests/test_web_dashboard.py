"""Issue 14 in a real browser (Debian's /usr/bin/chromium, never a downloaded one): the dashboard in
Simplified Chinese and English, on a desktop and a 390 px phone.

- compose ``examples/baic-catl-zh.md`` to WeChat, Weibo, X and Telegram; each card shows the title,
  text and image that the emulator then receives; confirm; watch delivery live over SSE;
- schedule one for tomorrow 09:00 Asia/Shanghai, see it in the calendar, reschedule it from there;
- the "When" trap (a date picks "At") and the confirmation step (nothing is sent before it);
- no page scrolls horizontally at 390 px; axe-core (from npm, injected) finds no serious or critical
  violation on any page.

Writes docs/compose-zh.png, docs/share-detail-zh.png, docs/calendar.png and docs/phone.png when they
are missing or with SHARER_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import EXAMPLES, ROOT, sandbox_posts
from test_web_browser import ARGS, CHROMIUM, live  # noqa: F401  (the live uvicorn fixture)
from web_support import PASSWORDS

from sharer import service
from sharer.loaders import load_article
from sharer.media import rewrite

ARTICLE = EXAMPLES / "baic-catl-zh.md"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ACCOUNTS = ["wechat-main", "weibo-main", "x-thread", "telegram-channel"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGES = ["/compose", "/shares", "/schedule", "/calendar", "/calendar?view=month", "/accounts", "/settings",
         "/approvals", "/shares/sh_nope"]
WORDS = {"zh-CN": {"compose": "撰写分享", "delivered": "已发布", "confirm": "确认", "calendar": "日历", "at": "定时"},
         "en": {"compose": "Compose a share", "delivered": "delivered", "confirm": "Confirm", "calendar": "Calendar",
                "at": "At"}}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def playwright():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing (make test installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browsers(playwright):
    """One Chromium per UI language (--lang: its own controls, e.g. the date picker, speak it too)."""
    launched: dict[str, object] = {}

    def get(lang: str):
        if lang not in launched:
            launched[lang] = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                        args=[*ARGS, f"--lang={lang}"])
        return launched[lang]

    yield get
    for b in launched.values():
        b.close()


def new_page(browsers, lang: str, viewport: dict):
    # bypass_csp: only so the test can inject axe.min.js; the page's own CSP is checked in test_web_pages
    context = browsers(lang).new_context(locale=lang, viewport=viewport, timezone_id="Asia/Shanghai", bypass_csp=True,
                                  extra_http_headers={"Accept-Language": f"{lang},{lang.split('-')[0]};q=0.9"})
    page = context.new_page()
    page.set_default_timeout(60_000)  # generous: CI shares two cores with workers and emulators
    return page


def sign_in(page, live_url: str, user: str = "editor", target: str = "/compose") -> None:
    page.goto(live_url + target)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(live_url + target)


def screenshot(name: str, tmp_path: Path) -> str:
    target = ROOT / "docs" / name
    if os.environ.get("SHARER_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        return str(target)
    return str(tmp_path / name)


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    wide = [] if width <= inner else page.evaluate("""(w) => [...document.querySelectorAll("body *")]
        .filter(e => e.getBoundingClientRect().right > w + 1).slice(0, 5)
        .map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))""", inner)
    assert width <= inner, f"{page.url}: {width} px wide in a {inner} px window: {wide}"


def axe_clean(page) -> None:
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing (make test installs it from the npm registry: npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.filter(v => ["serious", "critical"].includes(v.impact))
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + " :: " + n.failureSummary)}));
    }""")
    assert result == [], f"{page.url}: {result}"


def tomorrow_nine() -> datetime:
    day = datetime.now(SHANGHAI).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=SHANGHAI)


BOTH = [("zh-CN", DESKTOP), ("zh-CN", PHONE), ("en", DESKTOP), ("en", PHONE)]
BOTH_IDS = ["zh-desktop", "zh-phone", "en-desktop", "en-phone"]


@pytest.mark.parametrize(("lang", "viewport"), BOTH, ids=BOTH_IDS)
def test_compose_preview_confirm_deliver_and_schedule(live, browsers, runtime, worker, emulators, tmp_path,  # noqa: F811
                                                      lang, viewport):
    words = WORDS[lang]
    page = new_page(browsers, lang, viewport)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live)
    assert page.locator("h1").inner_text() == words["compose"]
    assert page.locator("html").get_attribute("lang") == ("zh-Hans" if lang == "zh-CN" else "en")

    page.set_input_files("#load-form input[name=file]", str(ARTICLE))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector("input[name=title][value^='北汽集团']")
    for name in ACCOUNTS:
        page.check(f"input[name=accounts][value={name}]")
    article = load_article(str(ARTICLE))
    posts = {p.account: p for p in service.preview(runtime, article, ACCOUNTS)}
    rules = runtime.settings.media_rewrite
    image = rewrite(article.image, rules)
    card = {n: page.locator(f"#previews .preview[data-account='{n}']") for n in ACCOUNTS}
    for name, post in posts.items():
        card[name].locator(".counter").filter(has_text=f"{post.length}/{post.limit}").wait_for()
    page.wait_for_selector("form#compose[data-state=ready]")

    # each card is drawn from the composer's Post: what the page shows is what will be sent
    wx = posts["wechat-main"].payload
    assert card["wechat-main"].locator(".wx-title").inner_text() == wx["title"]
    assert card["wechat-main"].locator(".wx-digest").inner_text() == wx["digest"]
    assert card["wechat-main"].locator("img.wx-cover").get_attribute("src") == image
    card["wechat-main"].locator(".wx-article summary").click()
    assert article.author in card["wechat-main"].locator(".wx-meta").inner_text()
    assert "业务合作及先进技术战略合作协议" in card["wechat-main"].locator(".wx-body strong").first.inner_text()
    assert card["weibo-main"].locator(".look-text").inner_text() == posts["weibo-main"].payload["status"]
    assert card["weibo-main"].locator("img").get_attribute("src") == image
    parts = posts["x-thread"].payload["parts"]
    assert card["x-thread"].locator(".x-post .look-text").all_inner_texts() == parts
    tg = card["telegram-channel"].locator(".tg-text")
    assert "<b>" not in tg.inner_text() and tg.locator("b, strong").count() >= 1  # HTML drawn, not shown as tags
    assert card["telegram-channel"].locator("img").get_attribute("src") == image
    for name in ACCOUNTS:  # the pictures load (from the stand-in site, as the platforms will fetch them)
        for img in card[name].locator("img").all():
            assert img.evaluate("el => el.complete && el.naturalWidth > 0"), name

    # editing the text redraws the card live, from the server
    edited = "北汽集团与宁德时代深化合作。\n" + posts["weibo-main"].text.split()[-1]
    card["weibo-main"].locator("details.edit summary").click()
    card["weibo-main"].locator("textarea").fill(edited)
    card["weibo-main"].locator(".look-text").filter(has_text="深化合作。").wait_for()
    page.wait_for_selector("form#compose[data-state=ready]")
    if lang == "zh-CN" and viewport == DESKTOP:
        page.screenshot(path=screenshot("compose-zh.png", tmp_path), full_page=True)
    if lang == "zh-CN" and viewport == PHONE:
        card["wechat-main"].scroll_into_view_if_needed()
        page.screenshot(path=screenshot("phone.png", tmp_path))
    no_horizontal_scroll(page)

    # the confirmation step: nothing is sent before it
    before = service.counts(runtime)
    page.click("#share-btn")
    page.wait_for_selector("#confirm-btn")
    assert service.counts(runtime) == before
    summary = page.locator("#confirm-summary")
    for name in ACCOUNTS:
        assert summary.locator(f"tr[data-account='{name}']").count() == 1
    assert "发布" in summary.locator("tr[data-account='wechat-main'] .mode").inner_text() if lang == "zh-CN" else \
        "publish" in summary.locator("tr[data-account='wechat-main'] .mode").inner_text()
    no_horizontal_scroll(page)
    page.click("#confirm-btn")
    page.wait_for_url(f"{live}/shares/sh_*")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#live.on")
    for name in ACCOUNTS:
        page.wait_for_selector(f".delivery[data-account='{name}'][data-status=delivered]", timeout=40_000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place over SSE
    assert page.locator("#cancel-share").count() == 0  # nothing left to cancel: the action went with it
    assert page.locator("#share-counts").inner_text().split() == [words["delivered"], "4"]
    assert page.locator(".delivery[data-account='weibo-main'] .badge.status").inner_text() == words["delivered"]
    assert page.locator(".shared-by").first.inner_text().find("editor") >= 0
    if lang == "zh-CN" and viewport == DESKTOP:
        page.screenshot(path=screenshot("share-detail-zh.png", tmp_path), full_page=True)
    no_horizontal_scroll(page)

    # what the emulators received is what the cards showed
    [wx_post] = sandbox_posts(emulators["wechat"])
    assert (wx_post["title"], wx_post["digest"], wx_post["author"]) == (wx["title"], wx["digest"], wx["author"])
    [wb_post] = sandbox_posts(emulators["weibo"])
    assert wb_post["text"] == edited
    assert [p["text"] for p in sandbox_posts(emulators["x"])] == parts
    [tg_post] = sandbox_posts(emulators["telegram"])
    assert tg_post["raw"] == posts["telegram-channel"].payload["caption"]

    # schedule one for tomorrow 09:00 Asia/Shanghai; "At" is picked by choosing the date
    at = tomorrow_nine()
    page.goto(live + "/compose")
    page.set_input_files("#load-form input[name=file]", str(ARTICLE))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector("input[name=title][value^='北汽集团']")
    page.check("input[name=accounts][value=weibo-main]")
    page.wait_for_selector("form#compose[data-state=ready]")
    assert page.locator("input[name=when][value=now]").is_checked()
    page.fill("input[name=tz]", "Asia/Shanghai")
    page.fill("#at-input", at.strftime("%Y-%m-%dT%H:%M"))
    assert page.locator("#when-at").is_checked()  # the "When" trap is gone
    said = page.locator("#at-said").inner_text()
    assert "Asia/Shanghai" in said and ("2026" in said or str(at.year) in said)
    page.click("#share-btn")
    page.wait_for_selector("#confirm-btn")
    shown = page.locator("#confirm-when").inner_text()
    assert ("09:00" in shown and "Asia/Shanghai" in shown), shown
    if lang == "zh-CN":
        assert f"{at.year}年{at.month}月{at.day}日" in shown and "周" in shown
    assert page.locator("#reshare-notice").count() == 1  # it went to weibo-main a moment ago
    page.click("#confirm-btn")
    page.wait_for_url(f"{live}/shares/sh_*")
    sid = page.url.rsplit("/", 1)[1]
    [d] = service.status(runtime, sid)
    assert d.status == "scheduled" and d.scheduled_for == at.timestamp()

    page.goto(f"{live}/calendar?date={at.date().isoformat()}")
    entry = page.locator(f".cal-day[data-day='{at.date().isoformat()}'] .cal-entry[data-share='{sid}']")
    assert entry.locator("time").inner_text() == "09:00"
    assert entry.get_attribute("data-status") == "scheduled"
    if lang == "zh-CN" and viewport == DESKTOP:
        page.screenshot(path=screenshot("calendar.png", tmp_path), full_page=True)
    no_horizontal_scroll(page)
    entry.locator("details.cal-resched summary").click()
    entry.locator("input[name=at]").fill(at.strftime("%Y-%m-%dT10:30"))
    entry.locator("button[type=submit]").click()
    page.wait_for_url(f"{live}/calendar?*")
    moved = page.locator(f".cal-entry[data-share='{sid}'] time")
    assert moved.inner_text() == "10:30"
    [d] = service.status(runtime, sid)
    assert d.scheduled_for == at.timestamp() + 90 * 60

    # cancel the whole share from its page, after a confirmation
    page.goto(f"{live}/shares/{sid}")
    page.locator("details.confirm-action summary").first.click()
    page.click("#cancel-share")
    page.wait_for_url(f"{live}/shares/{sid}")
    assert service.status(runtime, sid)[0].status == "cancelled"
    assert dialogs == []
    page.context.close()


def test_the_form_alone_never_sends_and_a_date_with_now_is_refused(live, browsers, runtime):  # noqa: F811
    """Without JavaScript: the "When" trap is refused by the server, and nothing is sent without confirming."""
    context = browsers("zh-CN").new_context(java_script_enabled=False, locale="zh-CN", viewport=PHONE,
                                  extra_http_headers={"Accept-Language": "zh-CN"})
    page = context.new_page()
    sign_in(page, live)
    page.set_input_files("#load-form input[name=file]", str(ARTICLE))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector("input[name=title][value^='北汽集团']")
    page.check("input[name=accounts][value=hook-a]")
    page.fill("#at-input", tomorrow_nine().strftime("%Y-%m-%dT%H:%M"))
    assert page.locator("input[name=when][value=now]").is_checked()  # no script to pick "At"
    before = service.counts(runtime)
    page.click("#share-btn")
    assert "选择的是“立即”" in page.locator(".flash.error").inner_text()
    page.fill("#at-input", "")
    page.click("#share-btn")
    page.wait_for_selector("#confirm-btn")
    assert service.counts(runtime) == before  # the confirmation page sent nothing
    page.click("#back-btn")
    page.wait_for_selector("form#compose")
    assert page.locator("input[name=accounts][value=hook-a]").is_checked()  # back with the form as it was
    assert service.counts(runtime) == before
    context.close()


@pytest.mark.parametrize(("lang", "viewport"), BOTH, ids=BOTH_IDS)
def test_every_page_fits_a_phone_and_passes_axe(live, browsers, runtime, lang, viewport):  # noqa: F811
    share = service.share(runtime, load_article(str(ARTICLE)), ["hook-a", "hook-bad"], force=True,
                          shared_by="editor")
    page = new_page(browsers, lang, viewport)
    sign_in(page, live, target="/shares")
    for path in [*PAGES, f"/shares/{share.share_id}"]:
        page.goto(live + path)
        assert page.locator("html").get_attribute("lang") == ("zh-Hans" if lang == "zh-CN" else "en")
        no_horizontal_scroll(page)
        axe_clean(page)
    page.goto(live + "/shares")
    if viewport == PHONE:  # the header collapses into a menu, opened from the keyboard
        assert not page.locator("#site-menu a[href='/accounts']").is_visible()
        for _ in range(4):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.classList.contains('menu-toggle')"):
                break
        page.keyboard.press("Enter")
        assert page.locator(".menu-toggle").get_attribute("aria-expanded") == "true"
    link = page.locator("#site-menu a[href='/accounts']")
    assert link.is_visible()
    for _ in range(12):  # every menu link is reachable with Tab
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "/accounts":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(live + "/accounts")
    if lang == "zh-CN":  # the compose form: Tab reaches the date input past every account
        page.goto(live + "/compose")
        for _ in range(150):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "at-input":
                break
        assert page.evaluate("document.activeElement.id") == "at-input"
    page.context.close()


NEW_LOOKS = {"slack-demo": "slack", "discord-demo": "discord", "line-demo": "line", "facebook-demo-photos": "facebook",
             "linkedin-demo": "linkedin", "bluesky-album": "bluesky"}


@pytest.mark.parametrize(("lang", "viewport"), BOTH, ids=BOTH_IDS)
def test_the_six_new_previews_fit_a_phone_and_pass_axe(live, browsers, runtime, tmp_path, lang, viewport):  # noqa: F811
    """Slack, Discord, LINE, Facebook, LinkedIn and Bluesky drawn on the compose page and the share page
    (English: the edge-case article, long words and markup in the title; Chinese: the CJK article)."""
    path = ARTICLE if lang == "zh-CN" else EXAMPLES / "edge-cases.json"
    article = load_article(str(path))
    page = new_page(browsers, lang, viewport)
    sign_in(page, live)
    page.set_input_files("#load-form input[name=file]", str(path))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector(f"input[name=title][value^='{article.title[:2]}']")
    for name in NEW_LOOKS:
        page.check(f"input[name=accounts][value={name}]")
    for name, kind in NEW_LOOKS.items():
        page.wait_for_selector(f".preview[data-account='{name}'] .look.{kind}")
    page.wait_for_selector("form#compose[data-state=ready]")
    image = rewrite(article.image, runtime.settings.media_rewrite)
    for name in NEW_LOOKS:
        assert page.locator(f".preview[data-account='{name}'] .look img[src='{image}']").count() >= 1, name
    no_horizontal_scroll(page)
    axe_clean(page)
    if viewport == DESKTOP and lang == "zh-CN":
        page.locator("#previews").screenshot(path=screenshot("previews-zh.png", tmp_path))
    share = service.share(runtime, article, list(NEW_LOOKS), force=True, shared_by="editor")
    page.goto(f"{live}/shares/{share.share_id}")
    for name, kind in NEW_LOOKS.items():
        page.wait_for_selector(f".delivery[data-account='{name}'] .look.{kind}", state="attached")
    no_horizontal_scroll(page)
    axe_clean(page)
    page.context.close()
