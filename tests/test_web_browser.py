"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live uvicorn server,
the real worker and the emulators; plus the SSE stream over real HTTP.

Never downloads a browser: it launches /usr/bin/chromium (``make test`` installs it with apt-get).
Saves docs/compose.png and docs/share-detail.png for the README (when missing, or with
SHARER_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import requests
import uvicorn
from conftest import EXAMPLES, ROOT, inject, sandbox_posts
from web_support import PASSWORDS, bearer

from sharer import service
from sharer.loaders import load_article

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTICLE = EXAMPLES / "baic-catl.json"


@pytest.fixture(scope="module")
def live(web_app):
    """The app under uvicorn on a loopback port it binds itself (port 0), in a thread."""
    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=1, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_sse_streams_a_shares_status_changes(live, web_app, runtime, worker, emulators):
    assert requests.get(live + "/api/events", timeout=5).status_code == 401
    article = load_article(str(ARTICLE))
    other = service.share(runtime, article, ["hook-b"], force=True)  # not ours: must not appear
    with requests.get(live + "/api/events", params={"share": "sh_placeholder"}, headers=bearer(web_app, "viewer"),
                      stream=True, timeout=(5, 20)) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:") and next(lines) == "event: hello"
    with requests.get(live + "/api/events", headers=bearer(web_app, "viewer"), stream=True, timeout=(5, 20)) as resp:
        lines = resp.iter_lines(decode_unicode=True)
        while next(lines) != "event: hello":
            pass
        result = service.share(runtime, article, ["hook-a"], force=True)
        seen = []
        deadline = time.monotonic() + 20
        event = None
        for line in lines:
            if line.startswith("event:"):
                event = line[6:].strip()
            if line.startswith("data:") and event == "delivery":
                notice = json.loads(line[5:])
                assert set(notice) == {"delivery", "share", "status", "attempt", "at"}
                if notice["share"] == result.share_id:
                    seen.append(notice["status"])
            if "delivered" in seen or time.monotonic() > deadline:
                break
    assert seen[-2:] == ["sending", "delivered"], seen
    assert other.share_id != result.share_id


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing (make test installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=ARGS, viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris", locale="en-GB")
        yield context
        context.close()


def screenshot(name: str, tmp_path: Path) -> str:
    """docs/NAME when missing or with SHARER_UPDATE_SCREENSHOTS=1 (ids and times differ each run: a
    plain `make test` must not dirty the work tree), else a temporary file."""
    target = ROOT / "docs" / name
    if os.environ.get("SHARER_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        return str(target)
    return str(tmp_path / name)


def test_compose_share_and_watch_it_deliver_live(live, browser_context, runtime, worker, emulators, tmp_path):
    page = browser_context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live + "/compose")
    assert "/login" in page.url
    page.fill("input[name=username]", "editor")
    page.fill("input[name=password]", PASSWORDS["editor"])
    page.click("button[type=submit]")
    page.wait_for_url(live + "/compose")

    page.set_input_files("#load-form input[name=file]", str(ARTICLE))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector("input[name=title][value^='BAIC GROUP']")
    page.check("input[name=accounts][value=wechat-main]")
    page.check("input[name=accounts][value=weibo-main]")

    article = load_article(str(ARTICLE))
    wechat, weibo = service.preview(runtime, article, ["wechat-main", "weibo-main"])
    card = {name: page.locator(f".preview[data-account='{name}']") for name in ("wechat-main", "weibo-main")}
    for post in (wechat, weibo):
        counter = card[post.account].locator(".counter")
        counter.filter(has_text=f"{post.length}/{post.limit} {post.unit}").wait_for()
        assert card[post.account].locator("textarea").input_value() == post.text
    page.wait_for_selector("form#compose[data-state=ready]")

    # over the limit: counted in Weibo's rules, flagged, and the share button is disabled
    card["weibo-main"].locator("details.edit summary").click()  # the text editor under the drawn post
    weibo_box = card["weibo-main"].locator("textarea")
    weibo_box.fill("Too long " * 40 + weibo.text)
    page.wait_for_selector("form#compose[data-state=invalid]")
    assert "over" in card["weibo-main"].locator(".counter").get_attribute("class")
    assert page.locator("#share-btn").is_disabled()
    # a valid edit: the counter follows the same composer delivery uses
    edited = "Breaking: BAIC GROUP and CATL team up on power batteries.\n" + weibo.text.split()[-1]
    weibo_box.fill(edited)
    [expected] = service.preview(runtime, article, ["weibo-main"], {"weibo-main": edited})
    card["weibo-main"].locator(".counter").filter(has_text=f"{expected.length}/{expected.limit}").wait_for()
    page.wait_for_selector("form#compose[data-state=ready]")
    assert page.locator("#share-btn").is_enabled()
    page.screenshot(path=screenshot("compose.png", tmp_path), full_page=True)

    inject(emulators["weibo"], path="/2/statuses/share.json", kind="hold", seconds=2, count=1)  # watch it move
    page.click("#share-btn")
    page.click("#confirm-btn")  # the confirmation step (tested in test_web_dashboard.py)
    page.wait_for_url(f"{live}/shares/sh_*")
    assert page.locator(".delivery[data-account='weibo-main']").get_attribute("data-status") != "delivered"
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#live.on")
    for name in ("wechat-main", "weibo-main"):
        page.wait_for_selector(f".delivery[data-account='{name}'][data-status=delivered]", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place by SSE, not by a reload
    assert "delivered" in page.locator(".delivery[data-account='weibo-main'] .timeline").inner_text()
    page.screenshot(path=screenshot("share-detail.png", tmp_path), full_page=True)

    [posted] = sandbox_posts(emulators["weibo"])
    assert posted["text"] == edited
    weibo_link = page.locator(".delivery[data-account='weibo-main'] a.post-link").get_attribute("href")
    assert weibo_link == posted["url"]  # a weibo.com address: not opened (no internet here)
    wechat_link = page.locator(".delivery[data-account='wechat-main'] a.post-link").get_attribute("href")
    assert wechat_link.startswith(emulators["wechat"].url)
    post_page = browser_context.new_page()
    resp = post_page.goto(wechat_link)
    assert resp.status == 200 and "BAIC GROUP" in post_page.content()
    assert dialogs == []


def test_article_markup_shows_as_text_in_the_browser(live, browser_context, runtime):
    from dataclasses import replace

    title = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    sid = service.share(runtime, replace(load_article(str(ARTICLE)), title=title), ["hook-a"], force=True).share_id
    page = browser_context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live}/shares/{sid}")
    if "/login" in page.url:
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", PASSWORDS["viewer"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{live}/shares/{sid}")
    assert page.locator("h1.share-title").inner_text() == title
    page.goto(f"{live}/shares?q=alert")
    assert title in page.locator("a.share-title").first.inner_text()
    page.wait_for_timeout(300)
    assert dialogs == []
