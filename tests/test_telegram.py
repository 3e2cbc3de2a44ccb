"""Telegram: HTML composition goldens, the Bot API client against the emulator, the real worker end to end."""

from __future__ import annotations

import dataclasses
import re

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from conftest import redis_dump as _redis_dump
from harness import TXT_URL, Fault, article, ctx, faults, offline, publish, run_fault

from sharer import service
from sharer.article import Article
from sharer.errors import Ambiguous, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.base import DeliveryContext
from sharer.platforms.telegram import Telegram, html_problem, visible
from sharer.redact import redact
from sharer.sandbox.telegram import parse_html_text
from sharer.text import count_utf16

UTM = "utm_source=telegram&amp;utm_medium=social&amp;utm_campaign=sharer"
EN_TITLE = "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation"
EN_SUMMARY = ("BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
              "agreement to jointly develop power battery products and explore the NEV market.")
PIC = "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
SECRETS = ("sandbox-bot_token", "not-the-sandbox-secret")
ALLOWED = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote"}


def bot(**options) -> Telegram:
    return offline(Telegram, **{"chat_id": "@sharer_news", **options})


def tags_in(markup: str) -> set[str]:
    return {m.lower() for m in re.findall(r"</?([A-Za-z][\w-]*)", markup)}


# --- composition -----------------------------------------------------------------------------------

GOLDEN = {
    "baic-catl.json": (PIC, f"<b>{EN_TITLE}</b>\n\n{EN_SUMMARY}\n\n{TXT_URL}?{UTM}"),
    "baic-catl-page.html": (PIC, f"<b>{EN_TITLE}</b>\n\nBAIC GROUP and CATL signed a business cooperation and "
                                 f"advanced technology strategic cooperation agreement.\n\n{TXT_URL}?{UTM}"),
    "baic-catl-page.txt": (None, f"<b>{EN_TITLE}...</b>\n\nOn March 13th, BAIC GROUP and Contemporary Amperex "
                                 "Technology Co. Limited (CATL) signed a business cooperation and advanced technology "
                                 f"strategic cooperation agreement.\n\n{TXT_URL}?{UTM}"),
    "baic-catl-zh.md": (PIC, "<b>北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品</b>\n\n"
                             "3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，双方将联合开发动力电池产品，共同开拓新能源汽车市场。\n\n"
                             f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}"),
    "edge-cases.json": (
        "https://news.example.com/images/nev.png",
        "<b>🚗⚡ New NEV platform: 1,000 km range, 10-minute charging — and a very long headline that will not fit "
        "in a single short social post no matter how it is trimmed by a careless formatter</b>\n\n"
        "Family emoji 👨\u200d👩\u200d👧\u200d👦, flags 🇨🇳🇩🇪, combining accents (é as e + \u0301), CJK 新能源 and a "
        "URL https://news.example.com/specs must never be split mid-character when a post is trimmed. "
        "&lt;script&gt;alert('x')&lt;/script&gt; in text is text, not markup.\n\n"
        f"https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&amp;lang=en&amp;{UTM}"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_default_post_golden_for_every_example(name):
    photo, text = GOLDEN[name]
    post = bot().compose(article(name))
    assert post.text == text
    if photo:
        assert post.payload == {"method": "sendPhoto", "chat_id": "@sharer_news", "photo": photo, "caption": text,
                                "parse_mode": "HTML", "disable_notification": False}
        assert post.limit == 1024
    else:
        assert post.payload == {"method": "sendMessage", "chat_id": "@sharer_news", "text": text,
                                "parse_mode": "HTML", "link_preview_options": {"is_disabled": False},
                                "disable_notification": False}
        assert post.limit == 4096
    assert post.length == count_utf16(visible(text)) <= post.limit
    assert html_problem(text) is None and parse_html_text(text) == visible(text)
    assert post.unit == "UTF-16 units" and post.warnings == ()


def test_script_in_the_summary_shows_as_text_and_the_emulator_agrees():
    post = bot(photo=False).compose(article("edge-cases.json"))
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in post.text and "<script" not in post.text
    assert "<script>alert('x')</script> in text is text" in parse_html_text(post.text)
    # the emoji family is 11 UTF-16 units, the flags 8: the length is in UTF-16 units
    assert post.length == count_utf16(parse_html_text(post.text))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_body_keeps_only_allowed_tags_for_every_example(name):
    post = bot(photo=False, include_body=True).compose(article(name))
    assert tags_in(post.text) <= ALLOWED, tags_in(post.text)
    assert html_problem(post.text) is None
    assert post.length == count_utf16(parse_html_text(post.text)) <= 4096
    assert "<img" not in post.text and "onclick=" not in post.text and "document.cookie" not in post.text


def test_body_conversion_golden():
    body = ("<h2>Heading</h2><p>One <strong>bold</strong> &amp; <em>it</em> <span>span</span> "
            "<a href=\"https://e.com/?a=1&amp;b=2\">link \"q\"</a><br>next line <img src=\"https://e.com/x.png\">"
            "</p><ul><li>first</li><li>second <code>x&lt;y</code></li></ul><blockquote><p>quoted</p><p>two</p>"
            "</blockquote><pre>a &lt; b\n  indented</pre><table><tr><td>c1</td><td>c2</td></tr></table>"
            "<p><b>  </b></p><p>Paragraph<sub>2</sub></p>")
    art = Article(title="T & <T>", url="https://e.com/a", summary="Sum \"q\"", body_html=body)
    post = bot(photo=False, include_body=True).compose(art)
    assert post.text == (
        "<b>T &amp; &lt;T&gt;</b>\n\nSum \"q\"\n\nHeading\n\n"
        "One <strong>bold</strong> &amp; <em>it</em> span "
        "<a href=\"https://e.com/?a=1&amp;b=2\">link \"q\"</a>\nnext line\n\n"
        "• first\n• second <code>x&lt;y</code>\n\n<blockquote>quoted\ntwo</blockquote>\n\n"
        "<pre>a &lt; b\n  indented</pre>\n\nc1 c2\n\nParagraph2\n\n"
        "https://e.com/a?utm_source=telegram&amp;utm_medium=social&amp;utm_campaign=sharer")
    assert parse_html_text(post.text).startswith('T & <T>\n\nSum "q"')


def test_caption_with_body_is_trimmed_at_paragraphs_without_cutting_tags():
    art = article("baic-catl.json")
    post = bot(include_body=True).compose(art)
    assert post.payload["method"] == "sendPhoto" and post.limit == 1024
    assert 900 < post.length <= 1024 and post.warnings
    assert html_problem(post.text) is None
    assert post.text.startswith(f"<b>{EN_TITLE}</b>\n\n{EN_SUMMARY}\n\nOn March 13th")
    assert post.text.endswith(f"…\n\n{TXT_URL}?{UTM}")
    last = visible(post.text).split("\n\n")[-2].removesuffix("…")
    assert last and last in art.body_html


def test_long_formatted_body_fits_4096_utf16_units():
    para = "<p><b>Bold &amp; emoji 🎉🎉</b> and text with &lt;angles&gt; " + "word " * 40 + "</p>"
    art = Article(title="Long", url="https://e.com/long", summary="Lead 😀", body_html=para * 40)
    post = bot(photo=False, include_body=True).compose(art)
    shown = parse_html_text(post.text)
    assert post.length == count_utf16(shown) <= 4096 and post.length > 3800
    assert count_utf16(shown) > len(shown)  # astral emoji count twice
    assert html_problem(post.text) is None and post.text.endswith("https://e.com/long?utm_source=telegram"
                                                                   "&amp;utm_medium=social&amp;utm_campaign=sharer")
    assert any("trimmed" in w for w in post.warnings)


def test_overrides_are_validated_never_cut():
    art = article("baic-catl.json")
    ok = bot(photo=False).compose(art, "<b>Hi</b> &amp; bye")
    assert ok.text == "<b>Hi</b> &amp; bye" and ok.length == 8
    with pytest.raises(ComposeError) as e:
        bot(photo=False).compose(art, "<i>" + "x" * 4097 + "</i>")
    assert "4097" in str(e.value) and "4096" in str(e.value)
    with pytest.raises(ComposeError) as e:
        bot(photo=False).compose(art, "😀" * 2049)  # 2049 code points, 4098 UTF-16 units
    assert "4098" in str(e.value)
    with pytest.raises(ComposeError) as e:
        bot().compose(art, "y" * 1025)
    assert "1025" in str(e.value) and "1024" in str(e.value) and "caption" in str(e.value)
    for bad in ("<p>x</p>", "AT&T", "<b>open", "a < b", "<b><i>x</b></i>"):
        with pytest.raises(ComposeError):
            bot(photo=False).compose(art, bad)


def test_options_are_validated():
    for bad in ({}, {"chat_id": "news"}, {"chat_id": 1.5}, {"chat_id": "@sharer_news", "public_username": "a b"}):
        with pytest.raises(ValueError):
            Telegram.parse_options(bad)
    assert Telegram.parse_options({"chat_id": "-100123"}).chat_id == -100123


def test_bot_token_in_a_url_path_is_redacted():
    text = "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage failed"
    assert "AAHdqTcv" not in redact(text) and "/bot***/sendMessage" in redact(text)


# --- client against the emulator ------------------------------------------------------------------

def with_image(emulator, name: str = "baic-catl.json", image: str = "photo.jpg") -> Article:
    return dataclasses.replace(article(name), image=f"{emulator.url}/_sandbox/images/{image}")


def test_send_message_to_a_public_channel(emulators, runtime):
    receipt, post = publish(runtime, "telegram-text")
    [sent] = sandbox_posts(emulators["telegram"])
    assert receipt.post_id == "1" and receipt.url == "https://t.me/sharer_news/1" and receipt.note is None
    assert sent["method"] == "sendMessage" and sent["raw"] == post.text and sent["parse_mode"] == "HTML"
    assert sent["text"] == visible(post.text)
    assert sent["link_preview_options"] == {"is_disabled": True}
    receipt2, _ = publish(runtime, "telegram-text")
    assert receipt2.url == "https://t.me/sharer_news/2"


def test_send_photo_by_url_and_by_upload(emulators, runtime):
    emu = emulators["telegram"]
    receipt, post = publish(runtime, "telegram-channel", with_image(emu))
    assert receipt.url == "https://t.me/sharer_news/1"
    receipt, _ = publish(runtime, "telegram-upload", with_image(emu, image="photo.png"))
    assert receipt.url == "https://t.me/sharer_news/2"
    by_url, upload = sandbox_posts(emu)
    assert by_url["method"] == "sendPhoto" and by_url["photo_source"] == f"{emu.url}/_sandbox/images/photo.jpg"
    assert by_url["caption"] == visible(post.text) and by_url["disable_notification"] is False
    assert upload["photo_source"] == "upload" and upload["disable_notification"] is True


def test_photo_url_follows_the_media_rewrite(emulators, runtime):
    receipt, _ = publish(runtime, "telegram-channel")  # news.example.com → the site emulator
    [sent] = sandbox_posts(emulators["telegram"])
    assert sent["photo_source"] == PIC.replace("https://news.example.com", emulators["site"].url)


def test_private_supergroup_and_public_username_links(emulators, runtime):
    receipt, _ = publish(runtime, "telegram-private")
    assert receipt.url == "https://t.me/c/1000000002/1" and "members only" in receipt.note
    receipt, _ = publish(runtime, "telegram-public-id")
    assert receipt.url == "https://t.me/sharer_news/1" and receipt.note is None


def test_migrated_group_is_followed_once_and_reported(emulators, runtime):
    steps: list[str] = []
    receipt, _ = publish(runtime, "telegram-migrated", steps=steps)
    assert steps == ["group migrated to supergroup -1004000000001; update chat_id in config (was -400000001)"]
    assert "update chat_id" in receipt.note and "-1004000000001" in receipt.note
    assert receipt.url == "https://t.me/c/4000000001/1"
    [sent] = sandbox_posts(emulators["telegram"])
    assert sent["chat_id"] == -1004000000001
    # a chat configured through the control API: a group that became the public channel
    requests.post(emulators["telegram"].url + "/_sandbox/chats", timeout=5,
                  json={"id": -400000002, "type": "group", "title": "G", "migrate_to_chat_id": -1001000000001})
    account = runtime.settings.account("telegram-migrated")
    account = dataclasses.replace(account, options=dataclasses.replace(account.options, chat_id=-400000002))
    platform = Telegram(account)
    receipt = platform.publish(platform.compose(article("baic-catl.json")),
                               DeliveryContext("dl_t2", account, runtime.session, timeout=5))
    assert receipt.url == "https://t.me/sharer_news/1" and "-1001000000001" in receipt.note


def test_429_retry_after_is_honoured(emulators, runtime):
    inject(emulators["telegram"], path="/sendMessage", kind="error", code=429, retry_after=7)
    with pytest.raises(RateLimited) as e:
        publish(runtime, "telegram-text")
    assert e.value.retry_after == 7 and "retry after 7" in str(e.value)
    requests.post(emulators["telegram"].url + "/_sandbox/config", json={"min_interval": 1.5}, timeout=5)
    publish(runtime, "telegram-text")
    with pytest.raises(RateLimited) as e:
        publish(runtime, "telegram-text")
    assert 1 <= e.value.retry_after <= 2
    assert len(sandbox_posts(emulators["telegram"])) == 1


REJECTIONS = [  # the emulator refuses what the real Bot API refuses; none of it is retried
    Fault("text too long", "telegram-text", None, PermanentError, "message is too long",
          publish={"text": "x" * 4097}),
    Fault("a tag Telegram lacks", "telegram-text", None, PermanentError,
          "can't parse entities: Unsupported start tag \"p\"", publish={"text": "<p>para</p>"}),
    Fault("a bare ampersand", "telegram-text", None, PermanentError, "can't parse entities",
          publish={"text": "AT&T"}),
    Fault("unbalanced tags", "telegram-text", None, PermanentError, "can't parse entities",
          publish={"text": "<b>x</i>"}),
    Fault("caption too long", "telegram-channel", None, PermanentError, "message caption is too long",
          publish={"caption": "c" * 1025}),
    Fault("no such chat", "telegram-nochat", None, PermanentError, "chat not found"),
    Fault("not a member", "telegram-not-member", None, PermanentError, "bot is not a member"),
]


@faults(REJECTIONS)
def test_rejections_are_permanent(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_bad_or_revoked_token_is_permanent_and_never_shown(emulators, runtime):
    with pytest.raises(PermanentError) as e:
        publish(runtime, "telegram-badtoken")
    assert "bot token" in str(e.value) and e.value.status == 401
    assert not any(s in str(e.value) for s in SECRETS)
    inject(emulators["telegram"], path="/sendMessage", kind="expired_token")
    with pytest.raises(PermanentError) as e:
        publish(runtime, "telegram-text")
    assert "revoked" in str(e.value) and "sandbox-bot_token" not in str(e.value)


SERVER_FAULTS = [  # the Bot API's own 5xx happen before the message is sent: plainly transient
    Fault("500", "telegram-text", {"kind": "error", "code": 500}, TransientError, path="/sendMessage",
          check=lambda e: not isinstance(e, Ambiguous)),
    Fault("502", "telegram-text", {"kind": "error", "code": 502}, TransientError, path="/sendMessage",
          check=lambda e: not isinstance(e, Ambiguous)),
    Fault("503 status", "telegram-text", {"kind": "status", "status": 503, "body": {"ok": False, "error_code": 503}},
          TransientError, path="/sendMessage", check=lambda e: not isinstance(e, Ambiguous)),
    # it did go out: only reconciliation could tell, and it cannot
    Fault("answer dropped after sending", "telegram-text", {"kind": "drop_after"}, Ambiguous, path="/sendMessage",
          posts=1),
]


@faults(SERVER_FAULTS)
def test_server_errors_are_transient_and_a_dropped_answer_is_ambiguous(case, emulators, runtime):
    err = run_fault(case, emulators, runtime)
    assert "sandbox-bot_token" not in str(err)


def test_find_existing_cannot_tell(runtime):
    platform = Telegram(runtime.settings.account("telegram-channel"))
    post = platform.compose(article("baic-catl.json"))
    with pytest.raises(Ambiguous):
        platform.find_existing(post, ctx(runtime, "telegram-channel"))


def test_get_me_and_get_chat(emulators):
    base = f"{emulators['telegram'].url}/botsandbox-bot_token"
    assert requests.get(base + "/getMe", timeout=5).json()["result"]["is_bot"] is True
    chat = requests.post(base + "/getChat", data={"chat_id": "@sharer_news"}, timeout=5).json()
    assert chat["result"]["id"] == -1001000000001 and chat["result"]["type"] == "channel"
    bad = requests.get(f"{emulators['telegram'].url}/botnope/getMe", timeout=5)
    assert bad.status_code == 401 and bad.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


# --- end to end through the real worker -----------------------------------------------------------

def test_worker_delivers_a_photo_post_and_records_the_link(emulators, runtime, worker):
    result = service.share(runtime, article("baic-catl.json"), ["telegram-channel", "telegram-migrated"])
    by_account = {d.account: d for d in wait_settled(runtime, result.share_id)}
    channel, migrated = by_account["telegram-channel"], by_account["telegram-migrated"]
    assert channel.status == "delivered" and channel.post_url.startswith("https://t.me/sharer_news/")
    assert migrated.status == "delivered" and "update chat_id in config" in migrated.note
    assert any("group migrated to supergroup" in e["message"] for e in migrated.events)
    sent = {p["chat_id"]: p for p in sandbox_posts(emulators["telegram"])}
    assert sent[-1001000000001]["method"] == "sendPhoto" and sent[-1004000000001]["method"] == "sendMessage"


def test_worker_fails_a_bad_token_and_no_secret_is_stored_or_logged(emulators, runtime, worker):
    # one 500 for the good token only (the token is in the path): retried, then delivered
    inject(emulators["telegram"], path="/botsandbox-bot_token/sendMessage", kind="error", code=500)
    accounts = ["telegram-badtoken", "telegram-not-member", "telegram-text"]
    result = service.share(runtime, article("edge-cases.json"), accounts)
    by_account = {d.account: d for d in wait_settled(runtime, result.share_id)}
    assert by_account["telegram-badtoken"].status == "failed"
    assert "bot token" in by_account["telegram-badtoken"].error
    assert by_account["telegram-not-member"].status == "failed"
    assert "Forbidden" in by_account["telegram-not-member"].error
    assert by_account["telegram-text"].status == "delivered"
    dump = _redis_dump(runtime) + worker.output()
    for secret in SECRETS:
        assert secret not in dump



# --- several images: an album (sendMediaGroup) -------------------------------------------------------

def with_body_images(base: str, n: int, name: str = "baic-catl.json") -> Article:
    """The article with a lead image and ``n`` more in its body (one of them twice, one not http)."""
    body = "".join(f'<p>para {i}</p><img src="{base}/_sandbox/images/body{i}.jpg" alt="body {i}">' for i in range(n))
    body += f'<img src="{base}/_sandbox/images/body0.jpg"><img src="data:image/png;base64,AAAA">'
    return article(name, image=f"{base}/_sandbox/images/lead.jpg", body_html=body)


def test_one_image_by_default_and_the_others_are_offered():
    art = with_body_images("https://e.com", 3)
    post = bot().compose(art)
    assert post.payload["method"] == "sendPhoto" and post.payload["photo"] == "https://e.com/_sandbox/images/lead.jpg"
    assert post.media == ("https://e.com/_sandbox/images/lead.jpg",)
    assert post.media_offered == tuple(f"https://e.com/_sandbox/images/body{i}.jpg" for i in range(3))
    assert post.to_dict()["media_offered"] == list(post.media_offered)
    no_photo = bot(photo=False).compose(art)
    assert no_photo.media == () and len(no_photo.media_offered) == 4 and no_photo.payload["method"] == "sendMessage"


def test_an_album_takes_the_lead_then_body_images_caption_on_the_first():
    art = with_body_images("https://e.com", 3)
    post = bot(images=3).compose(art)
    assert post.payload["method"] == "sendMediaGroup" and "photo" not in post.payload and post.limit == 1024
    first, *rest = post.payload["media"]
    assert first == {"type": "photo", "media": "https://e.com/_sandbox/images/lead.jpg", "caption": post.text,
                     "parse_mode": "HTML"}
    assert rest == [{"type": "photo", "media": f"https://e.com/_sandbox/images/body{i}.jpg"} for i in range(2)]
    assert post.media == tuple(m["media"] for m in post.payload["media"])
    assert post.media_offered == ("https://e.com/_sandbox/images/body2.jpg",)
    lone = bot(images=3).compose(article("baic-catl.json"))  # one image only: a plain photo post
    assert lone.payload["method"] == "sendPhoto" and lone.media_offered == ()
    with pytest.raises(ValueError, match="images"):
        Telegram.parse_options({"chat_id": "@sharer_news", "images": 11})


def test_album_by_url_and_by_upload_against_the_emulator(emulators, runtime):
    emu = emulators["telegram"]
    receipt, post = publish(runtime, "telegram-album", with_body_images(emu.url, 4))
    assert receipt.post_id == "1" and receipt.url == "https://t.me/sharer_news/1"
    steps: list[str] = []
    receipt, _ = publish(runtime, "telegram-album-upload", with_body_images(emu.url, 2), steps=steps)
    assert receipt.post_id == "4"  # the first album used message ids 1-3
    by_url, upload = sandbox_posts(emu)
    assert by_url["method"] == "sendMediaGroup" and by_url["photo_source"] == list(post.media)
    assert by_url["caption"] == visible(post.text) and len(by_url["photo_source"]) == 3
    assert upload["photo_source"] == ["upload"] * 3 and len(steps) == 3 and "for upload" in steps[0]


def test_album_rejections_are_permanent(emulators, runtime):
    emu = emulators["telegram"]
    art = with_body_images(emu.url, 2)
    with pytest.raises(PermanentError, match="wrong number of media"):
        publish(runtime, "telegram-album", art, media=[{"type": "photo", "media": f"{emu.url}/_sandbox/images/a.jpg"}])
    with pytest.raises(PermanentError, match="caption is too long"):
        publish(runtime, "telegram-album", art, media=[{"type": "photo", "media": post_media, "caption": "c" * 1025}
                                                       for post_media in (f"{emu.url}/_sandbox/images/a.jpg",) * 2])
    assert sandbox_posts(emu) == []
