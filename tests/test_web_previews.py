"""The compose page's drawn posts: every platform's card built from the composer's own ``Post`` (the one
delivery sends), through the page endpoint the browser calls, with wire HTML sanitised again."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from html.parser import HTMLParser

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


# --- the six platforms drawn from templates/looks/<id>.html ---------------------------------------------------------

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> "Q" & A|B #not_tag *x*'
DRAWN = ["slack-demo", "discord-demo", "discord-plain", "line-demo", "line-push", "facebook-demo",
         "facebook-demo-photos", "linkedin-demo", "bluesky-demo", "bluesky-album"]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def _tags(html: str) -> list[tuple[str, dict[str, str]]]:
    """Every real element and its attributes, as a browser parses them (escaped text is not an element)."""
    parser = _Elements()
    parser.feed(html)
    return parser.found


def _harmless(tag: str, attrs: dict[str, str]) -> bool:
    return not any(k.startswith("on") for k in attrs) and not any(
        attrs.get(k, "").strip().lower().startswith(("javascript:", "data:")) for k in ("href", "src"))


def _drawn(web_app, runtime, lang: str = "en", texts: dict | None = None):
    """The hostile-titled edge-case article previewed to the six platforms' accounts through the page endpoint."""
    c = sign_in(web_app, "editor")
    data = {**article_json(EXAMPLES / "edge-cases.json"), "title": HOSTILE}
    r = c.post("/compose/preview", json={"article": data, "accounts": DRAWN, "texts": texts or {}},
               headers={"X-CSRF-Token": c.csrf, "Accept-Language": lang})
    assert r.status_code == 200, r.text
    got = {p["account"]: p for p in r.json()["posts"]}
    assert all(not got[a]["error"] for a in DRAWN), {a: got[a]["error"] for a in DRAWN}
    rules = runtime.settings.media_rewrite
    return ({a: got[a]["look"] for a in DRAWN}, {a: got[a]["payload"] for a in DRAWN},
            lambda url: rewrite(url, rules))


def test_the_six_are_drawn_as_their_apps_with_the_hostile_title_as_text(web_app, runtime):
    looks, payloads, img = _drawn(web_app, runtime)
    lead, inline = img("https://news.example.com/images/nev.png"), img("https://news.example.com/images/inline.png")
    for name, html in looks.items():
        kind = name.split("-")[0]
        assert f'<div class="look {kind}">' in html, name
        assert HOSTILE in _text(html) or name == "discord-plain", name  # shown, as text
        assert "&lt;script&gt;" in html or name == "discord-plain", name
        for tag, attrs in _tags(html):
            assert tag not in ("script", "iframe", "object", "style"), (name, tag)
            assert _harmless(tag, attrs), (name, tag, attrs)
            if tag == "img":
                assert attrs.get("alt"), (name, attrs)  # every picture says what it is
        srcs = re.findall(r'<img[^>]* src="([^"]+)"', html)
        assert all(s in (lead, inline) for s in srcs), (name, srcs)  # only the article's pictures, rewritten

    slack = looks["slack-demo"]  # a section with the title as a bold link, then the image block
    url = payloads["slack-demo"]["blocks"][0]["text"]["text"].split("|")[0].removeprefix("*<")
    assert re.search(r'<b><a href="' + re.escape(url.replace("&", "&amp;")) + '"[^>]*>', slack)
    assert "Family emoji" in _text(slack) and 'class="app-badge">APP<' in slack and "1 image attached" in slack
    assert f'src="{lead}"' in slack and "Notification text:" in slack

    discord = looks["discord-demo"]  # content, then an embed: colour bar, the title linking to the article
    embed = payloads["discord-demo"]["embeds"][0]
    assert '<svg class="dc-bar"' in discord and f'src="{lead}"' in discord
    assert f'<a href="{embed["url"].replace("&", "&amp;")}" rel="noopener noreferrer">' in discord
    assert " ".join(payloads["discord-demo"]["content"].split()) in _text(discord)
    plain = looks["discord-plain"]  # embed = false, username = "Newsroom": the name shown, no embed, no image
    assert 'class="chat-name">Newsroom<' in plain and "dc-embed" not in plain and "<img" not in plain

    line = looks["line-demo"]  # the text as one bubble, the lead image as the next message
    text = payloads["line-demo"]["messages"][0]["text"]
    assert " ".join(text.split()) in _text(line) and line.index("ln-bubble") < line.index(f'src="{lead}"')
    assert "Broadcast to every friend of the account" in line
    push = looks["line-push"]
    assert "Pushed to U4af4980629a0b1c2d3e4f5a6b7c8d9e0" in push and "without a notification" in push
    assert "<img" not in push and "image attached" not in push

    fb = looks["facebook-demo"]  # a link post: Facebook's own card from the link, no photo attached
    assert "NEWS.EXAMPLE.COM" in fb and "<img" not in fb and "no image attached" in fb
    assert "2 more images in the article, not attached" in fb
    photos = looks["facebook-demo-photos"]  # post_as = photo, images = 3: both of the article's images
    assert re.findall(r'<img src="([^"]+)" alt="photo (\d) of 2">', photos) == [(lead, "1"), (inline, "2")]
    assert "2 images attached" in photos and "fb-link" not in photos

    li = looks["linkedin-demo"]  # commentary unescaped for readers, hashtags marked, the article card
    commentary = payloads["linkedin-demo"]["commentary"]
    assert "\\<script\\>" in commentary and HOSTILE in _text(li)
    assert '<span class="tag">#NEV</span>' in li and '<span class="tag">#not_tag' not in li
    assert f'class="li-thumb" src="{lead}"' in li and "news.example.com" in _text(li)

    sky = looks["bluesky-demo"]  # the short link as a facet link to the full URL, the link card with its thumb
    features = [f for facet in payloads["bluesky-demo"]["record"]["facets"] for f in facet["features"]]
    facet = payloads["bluesky-demo"]["article_url"]
    assert facet in [f.get("uri") for f in features]
    assert '<span class="tag">#not_tag</span>' in sky  # the composer made it a tag facet: the app shows it so
    assert re.search(r'<a href="' + re.escape(facet.replace("&", "&amp;")) + r'"[^>]*>news\.example\.com/', sky)
    assert f'class="bs-thumb" src="{lead}"' in sky and "@sharer.test" in sky
    album = looks["bluesky-album"]  # images = 4: an images embed instead of the card
    shown = [(src, unescape(alt)) for src, alt in re.findall(r'<img src="([^"]+)" alt="([^"]+)">', album)]
    assert shown == [(lead, HOSTILE), (inline, "inline")]  # each image with its alt text, in order
    assert "bs-card" not in album and "2 images attached" in album


def test_the_six_speak_chinese_and_an_editors_mrkdwn_is_drawn_not_obeyed(web_app, runtime):
    texts = {"slack-demo": "*Breaking* _now_ ~old~ `code` <https://news.example.com/a?x=1&y=2|read> "
                           "<javascript:alert(1)|click> <!here> <@U1|ann> <#C1|general> <!date^1^{date}|1 Dec> "
                           "1 &lt; 2"}
    looks, _payloads, _img = _drawn(web_app, runtime, "zh-CN", texts)
    slack = looks["slack-demo"]
    assert "<b>Breaking</b> <i>now</i> <s>old</s> <code>code</code>" in slack
    assert '<a href="https://news.example.com/a?x=1&amp;y=2" rel="noopener noreferrer">read</a>' in slack
    assert 'href="javascript' not in slack and '<a rel="noopener noreferrer">click</a>' in slack  # label, no link
    names = " ".join(f'<span class="mention">{n}</span>' for n in ("@here", "@ann", "#general"))
    assert f"{names} 1 Dec 1 &lt; 2" in slack  # names as Slack shows them, a date by its fallback text
    assert 'class="app-badge">应用<' in slack and "已附 1 张图片" in slack
    assert "群发给该账号的所有好友" in looks["line-demo"] and "公共主页" in looks["facebook-demo"]


def test_a_hostile_payload_cannot_reach_the_page(web_app):
    """Stored posts are data from Redis: whatever they hold, the drawing escapes it and keeps only http(s) links."""
    draw = web_app.state.web.templates.env.get_template("_look.html").make_module({}).draw
    evil = "javascript:alert(1)"
    posts = {
        "discord": {"content": "<b>x</b>", "embeds": [{"title": "<i>t</i>", "url": evil, "color": 0x5865F2,
                    "image": {"url": evil}, "footer": {"text": "<script>f</script>"}}]},
        "line": {"messages": [{"type": "image", "originalContentUrl": evil, "previewImageUrl": "data:x"},
                              {"type": "flex", "altText": "<img src=x onerror=y>"}]},
        "facebook": {"message": "<svg onload=x>", "link": evil, "photos": [evil]},
        "linkedin": {"commentary": "<b>\\#x</b> #ok @[<i>N</i>](urn:li:person:1)", "content": {"article": {
                     "source": evil, "title": "<u>t</u>"}}, "thumbnail_url": evil},
        "bluesky": {"record": {"text": "go <here>", "facets": [
            {"index": {"byteStart": 3, "byteEnd": 9}, "features": [{"$type": "app.bsky.richtext.facet#link",
                                                                   "uri": evil}]},
            {"index": {"byteStart": 0, "byteEnd": 99}, "features": [{"$type": "x"}]}],
            "embed": {"$type": "app.bsky.embed.external", "external": {"uri": evil, "title": "<b>t</b>",
                                                                        "thumb": evil}}}},
        "slack": {"text": "<b>n</b>", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "<h1>"}},
                  {"type": "context", "elements": [{"type": "mrkdwn", "text": "<javascript:x|ctx>"},
                                                   {"type": "image", "image_url": evil, "alt_text": "a"}]},
                  {"type": "image", "image_url": evil, "alt_text": "a"}, {"type": "<script>"}]},
    }
    for platform, payload in posts.items():
        look = previews.look({"platform": platform, "payload": payload, "media": [evil]}, {})
        assert look["template"] == f"looks/{platform}.html"
        html = str(draw(look, "acct<b>"))
        assert "acct&lt;b&gt;" in html or platform == "discord", platform
        for tag, attrs in _tags(html):
            assert tag in {"div", "p", "span", "b", "i", "s", "code", "a", "br", "ol", "li", "svg", "rect", "hr",
                           "img"} and _harmless(tag, attrs), (platform, tag, attrs)
        assert "<img" not in html, platform  # no picture with an address the rules refuse
    dc = str(draw(previews.look({"platform": "discord", "payload": posts["discord"]}, {}), "a"))
    assert 'fill="#5865f2"' in dc and "&lt;i&gt;t&lt;/i&gt;" in dc and '<p class="dc-title">&lt;i&gt;' in dc
    li = str(draw(previews.look({"platform": "linkedin", "payload": posts["linkedin"]}, {}), "a"))
    assert "&lt;b&gt;#x&lt;/b&gt;" in li and '<span class="tag">#ok</span>' in li
    assert '<span class="mention">&lt;i&gt;N&lt;/i&gt;</span>' in li
    sky = str(draw(previews.look({"platform": "bluesky", "payload": posts["bluesky"]}, {}), "a"))
    assert 'go <a rel="noopener noreferrer">&lt;here&gt;</a>' in sky  # the text stays, its javascript: link goes


def test_a_platform_without_a_drawing_shows_its_json_and_ids_are_never_paths():
    assert previews.look({"platform": "webhook", "payload": {"a": 1}}, {})["kind"] == "json"
    for bad in ("../base", "_media", "looks/slack", "Slack", "", None, 3):
        assert previews.layout(bad) is None, bad
    assert previews.layout("bluesky") == "looks/bluesky.html"


def test_mastodon_and_telegram_albums_draw_every_attached_image(web_app):
    """A Mastodon status with four attachments and a Telegram album show all their pictures (the album's
    caption rides on its first photo); an address that is not http(s) is not drawn."""
    draw = web_app.state.web.templates.env.get_template("_look.html").make_module({}).draw
    toot = {"platform": "mastodon", "payload": {
        "status": "Battery news", "visibility": "public",
        "media": {"url": "https://news.example.com/a.png", "description": "the lead <b>image</b>"},
        "more_media": [{"url": f"https://news.example.com/{n}.png", "description": ""} for n in "bc"]
        + [{"url": "javascript:alert(1)", "description": "x"}]}}
    html = str(draw(previews.look(toot, {}), "masto"))
    assert re.findall(r'<img class="look-img" src="([^"]+)"', html) == [
        f"https://news.example.com/{n}.png" for n in "abc"]
    assert 'alt="the lead &lt;b&gt;image&lt;/b&gt;"' in html and "javascript" not in html and "x-media grid" in html
    album = {"platform": "telegram", "payload": {"method": "sendMediaGroup", "chat_id": "@news", "media": [
        {"type": "photo", "media": "https://news.example.com/a.png", "caption": "<b>Title</b> news",
         "parse_mode": "HTML"},
        {"type": "photo", "media": "https://news.example.com/b.png"}]}}
    html = str(draw(previews.look(album, {}), "tg"))
    assert re.findall(r'<img class="look-img" src="([^"]+)"', html) == [
        "https://news.example.com/a.png", "https://news.example.com/b.png"]
    assert "<b>Title</b> news" in html
    photo = {"platform": "telegram", "payload": {"method": "sendPhoto", "photo": "https://news.example.com/a.png",
                                                 "caption": "one"}}
    html = str(draw(previews.look(photo, {}), "tg"))
    assert html.count("<img") == 1 and "x-media grid" not in html and "one" in html
