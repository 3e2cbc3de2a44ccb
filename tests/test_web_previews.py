"""The compose page's drawn posts: every platform's card built from the composer's own ``Post`` (the one
delivery sends), through the page endpoint the browser calls, with wire HTML sanitised again."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

from conftest import EXAMPLES
from web_support import article_json, sign_in

from sharer import service
from sharer.loaders import load_article
from sharer.media import rewrite
from sharer.web import previews

ARTICLE = EXAMPLES / "baic-catl-zh.md"
CARDS = {"wechat-main": "wechat", "weibo-main": "weibo", "x-thread": "x", "mastodon-main": "mastodon",
         "telegram-channel": "telegram", "wecom-news": "bot-card", "wecom-markdown": "bot", "dingtalk-signed":
         "bot-card", "dingtalk-markdown": "bot", "feishu-signed": "feishu", "hook-a": "json"}


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def test_every_platform_is_drawn_from_the_post_it_will_send(web_app, runtime):
    c = sign_in(web_app, "editor")
    data = article_json(EXAMPLES / "baic-catl.json")
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    r = c.post("/compose/preview", json={"article": data, "accounts": list(CARDS)},
               headers={"X-CSRF-Token": c.csrf, "Accept-Language": "zh-CN"})
    assert r.status_code == 200, r.text
    got = {p["account"]: p for p in r.json()["posts"]}
    sent = {p.account: p for p in service.preview(runtime, article, list(CARDS))}
    image = rewrite(article.image, runtime.settings.media_rewrite)
    for name, kind in CARDS.items():
        look, post = got[name]["look"], sent[name]
        assert f'class="look {kind}' in look, name
        assert got[name]["text"] == post.text and got[name]["payload"] == post.payload, name
        shown = _text(look)
        if kind in ("weibo", "mastodon", "bot"):
            assert _text(post.text) in shown, name
        if kind in ("wechat", "weibo", "x", "mastodon", "telegram", "bot-card"):
            assert f'src="{image}"' in look, name  # the picture the platform will fetch
    wx = sent["wechat-main"].payload
    assert wx["title"] in _text(got["wechat-main"]["look"]) and wx["digest"] in _text(got["wechat-main"]["look"])
    assert "阅读原文" in got["wechat-main"]["look"]  # the page speaks the reader's language
    for part in sent["x-thread"].payload["parts"]:
        assert _text(part) in _text(got["x-thread"]["look"])
    card = sent["wecom-news"].payload["news"]["articles"][0]
    assert card["title"] in _text(got["wecom-news"]["look"]) and card["description"] in _text(got["wecom-news"]["look"])
    feishu = got["feishu-signed"]["look"]
    assert "fs-link" in feishu and article.title in _text(feishu)
    assert "&#34;msgtype&#34;" not in got["hook-a"]["look"] and '"title"' in unescape(got["hook-a"]["look"])


def test_telegram_html_is_drawn_and_resanitised(web_app, runtime):
    article = replace(load_article(str(ARTICLE)), summary="<b>重磅</b> 合作")
    [post] = service.preview(runtime, article, ["telegram-channel"])
    tg = previews.look(post.to_dict(), {})
    assert "<b>" in tg["html"] or "<strong>" in tg["html"]  # Telegram's HTML as HTML
    hostile = {"platform": "telegram", "payload": {"method": "sendMessage", "text":
               '<b>ok</b><script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">x</a>'
               '<span class="tg-spoiler">s</span><span class="evil">e</span>'}}
    html = previews.look(hostile, {})["html"]
    assert "<b>ok</b>" in html and "<script" not in html and "onerror" not in html and "<img" not in html
    assert "javascript:" not in html and 'class="tg-spoiler"' in html and "evil" not in html


def test_wechat_body_is_resanitised_and_its_cover_crop_drawn(web_app):
    payload = {"title": "标题", "digest": "摘要", "author": "作者", "cover": "https://news.example.com/c.jpg",
               "content": '<p onclick="x()">正文<img src="https://news.example.com/i.jpg"></p><script>bad()</script>'
                          '<iframe src="https://evil"></iframe>',
               "pic_crop_235_1": "0.1_0.2_0.9_0.5406", "content_source_url": "https://news.example.com/a"}
    look = previews.look({"platform": "wechat", "payload": payload}, {"https://news.example.com/": "http://site/"})
    assert look["cover"] == "http://site/c.jpg" and 'src="http://site/i.jpg"' in look["body"]
    assert "onclick" not in look["body"] and "<script" not in look["body"] and "<iframe" not in look["body"]
    x, y, w, h = look["crop"]
    assert (x, y) == (0.1, 0.2) and abs(w - 0.8) < 1e-9 and abs(h - 0.3406) < 1e-9
    assert previews.crop_box("1_0_0.5_1") is None and previews.crop_box(None) is None
    draw = web_app.state.web.templates.env.get_template("_look.html").make_module({}).draw
    html = str(draw(look, "wechat-main"))
    assert '<svg class="wx-cover" viewBox="0.1 0.2' in html and 'href="http://site/c.jpg"' in html


def test_x_draws_every_attached_image_on_the_first_post(web_app, runtime):
    """Up to four images, lead first, on part 1 of the thread only; an address that is not http(s) is dropped."""
    c = sign_in(web_app, "editor")
    data = article_json(EXAMPLES / "baic-catl.json")
    para = "The two sides plan to jointly develop power battery products and explore the NEV market. " * 2
    data["body_html"] = "".join(f"<p>{para} {i}</p><img src='https://news.example.com/images/b{i}.png'>"
                                for i in range(5))
    r = c.post("/compose/preview", json={"article": data, "accounts": ["x-album", "x-main"]},
               headers={"X-CSRF-Token": c.csrf})
    assert r.status_code == 200, r.text
    got = {p["account"]: p for p in r.json()["posts"]}
    rules = runtime.settings.media_rewrite
    album = got["x-album"]
    assert len(album["media"]) == 4 and album["media_offered"] == []
    first, *rest = album["look"].split('<li class="x-post">')[1:]
    assert re.findall(r'<img class="look-img" src="([^"]+)"', first) == [rewrite(u, rules) for u in album["media"]]
    assert 'class="x-media grid"' in first and rest and all("<img" not in part for part in rest)
    single = got["x-main"]["look"]
    assert single.count("<img") == 1 and "x-media grid" not in single
    hostile = {"platform": "x", "payload": {"parts": ["t"], "image": "https://news.example.com/a.png",
                                            "more_images": ["javascript:alert(1)", "https://news.example.com/b.png"]}}
    assert previews.look(hostile, {})["images"] == ["https://news.example.com/a.png", "https://news.example.com/b.png"]
