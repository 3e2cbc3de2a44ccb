"""WeCom group robot: composition goldens, the client against the emulator, the real worker end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from conftest import redis_dump as _redis_dump
from harness import TXT_URL, Fault, article, ctx, faults, offline, publish, run_fault

from sharer import service
from sharer.compose import tag_url
from sharer.errors import Ambiguous, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.wecom import WeCom
from sharer.text import count_utf8_bytes, graphemes

UTM = "utm_source=wecom&utm_medium=social&utm_campaign=sharer"
EN_URL = f"{TXT_URL}?{UTM}"
ZH_URL = f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}"
PIC = "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
EN_TITLE = "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation"
ZH_TITLE = "北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品"
EN_SUMMARY = ("BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
              "agreement to jointly develop power battery products and explore the NEV market.")
ZH_SUMMARY = ("3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，"
              "双方将联合开发动力电池产品，共同开拓新能源汽车市场。")
SECRETS = ("sandbox-key", "not-the-sandbox-secret")


def robot(**options) -> WeCom:
    return offline(WeCom, **options)


def is_whole_prefix(cut: str, original: str) -> bool:
    """``cut`` minus its ellipsis is made of whole grapheme clusters of ``original``'s start."""
    body = cut.removesuffix("…")
    g = graphemes(body)
    return original.startswith(body) and graphemes(original)[: len(g)] == g


# --- composition -----------------------------------------------------------------------------------

NEWS_GOLDEN = {
    "baic-catl.json": {"title": EN_TITLE, "description": EN_SUMMARY, "url": EN_URL, "picurl": PIC},
    "baic-catl-zh.md": {"title": ZH_TITLE, "description": ZH_SUMMARY, "url": ZH_URL, "picurl": PIC},
    "baic-catl-page.html": {
        "title": EN_TITLE, "url": EN_URL, "picurl": PIC,
        "description": "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic "
                       "cooperation agreement."},
    "baic-catl-page.txt": {
        "title": EN_TITLE + "...", "url": EN_URL,
        "description": "On March 13th, BAIC GROUP and Contemporary Amperex Technology Co. Limited (CATL) signed a "
                       "business cooperation and advanced technology strategic cooperation agreement."},
    "edge-cases.json": {
        "title": "🚗⚡ New NEV platform: 1,000 km range, 10-minute charging — and a very long headline that will "
                 "not fit in a single short…",
        "description": article("edge-cases.json").summary,
        "url": "https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&lang=en&" + UTM,
        "picurl": "https://news.example.com/images/nev.png"},
}


@pytest.mark.parametrize("name", sorted(NEWS_GOLDEN))
def test_news_card_golden_for_every_example(name):
    post = robot().compose(article(name))
    assert post.payload == {"msgtype": "news", "news": {"articles": [NEWS_GOLDEN[name]]}}
    item = post.payload["news"]["articles"][0]
    assert count_utf8_bytes(item["title"]) <= 128 and count_utf8_bytes(item["description"]) <= 512
    assert post.text == item["description"] and post.length == count_utf8_bytes(post.text)
    assert (post.limit, post.unit) == (512, "bytes")
    expect = ("title trimmed to 128 bytes (was 189)",) if name == "edge-cases.json" else ()
    assert post.warnings == expect


def test_markdown_and_text_goldens():
    md = robot(msgtype="markdown").compose(article("baic-catl-zh.md"))
    assert md.payload == {"msgtype": "markdown", "markdown": {
        "content": f"## {ZH_TITLE}\n\n{ZH_SUMMARY}\n\n[阅读全文]({ZH_URL})"}}
    assert (md.limit, md.length) == (4096, count_utf8_bytes(md.text))
    en = robot(msgtype="markdown").compose(article("baic-catl.json"))
    assert en.text == f"## {EN_TITLE}\n\n{EN_SUMMARY}\n\n[Read more]({EN_URL})"
    txt = robot(msgtype="text").compose(article("baic-catl.json"))
    assert txt.payload == {"msgtype": "text", "text": {"content": f"{EN_TITLE}\n\n{EN_SUMMARY}\n\n{EN_URL}"}}
    assert txt.limit == 2048


@pytest.mark.parametrize("msgtype", ["news", "markdown", "text"])
@pytest.mark.parametrize("name", sorted(NEWS_GOLDEN))
def test_every_example_fits_the_byte_limits(name, msgtype):
    post = robot(msgtype=msgtype).compose(article(name))
    assert count_utf8_bytes(post.text) == post.length <= post.limit
    assert "utm_source=wecom" in json.dumps(post.payload)


@pytest.mark.parametrize("filler", range(0, 12))
def test_long_summaries_are_trimmed_grapheme_safe(filler):
    """Shift the 512-byte cut across the family emoji, the flags and the combining accent."""
    edge = article("edge-cases.json")
    long = dataclasses.replace(edge, summary=("x" * (440 + filler * 3) + " " + edge.summary) * 2)
    for msgtype, limit in (("news", 512), ("markdown", 4096), ("text", 2048)):
        art = long if msgtype == "news" else dataclasses.replace(long, summary=long.summary * 8)
        post = robot(msgtype=msgtype).compose(art)
        assert post.length <= limit
        assert post.warnings, msgtype
        if msgtype == "news":
            desc = post.payload["news"]["articles"][0]["description"]
            assert desc.endswith("…") and is_whole_prefix(desc, art.summary)
        else:  # the summary gave way; title and link stayed whole
            link = tag_url(art.url, robot().account.utm)
            assert post.text.endswith(link if msgtype == "text" else f"({link})")
            assert post.text.startswith(("## " if msgtype == "markdown" else "") + art.title)


def test_cut_inside_the_family_emoji_keeps_it_whole():
    edge = article("edge-cases.json")
    family = "👨‍👩‍👧‍👦"
    for pad in range(495, 512):
        art = dataclasses.replace(edge, summary="a" * pad + family + " tail " * 20)
        desc = robot().compose(art).payload["news"]["articles"][0]["description"]
        assert count_utf8_bytes(desc) <= 512
        assert family in desc or "\u200d" not in desc, pad  # all or nothing of the ZWJ sequence


def test_override_is_validated_never_cut():
    art = article("baic-catl-zh.md")
    post = robot().compose(art, text="编辑写的摘要")
    assert post.payload["news"]["articles"][0]["description"] == "编辑写的摘要" and post.warnings == ()
    ok = "字" * 170  # 510 bytes
    assert robot().compose(art, text=ok).length == 510
    with pytest.raises(ComposeError, match="513 bytes long; the limit is 512"):
        robot().compose(art, text=ok + "ab1")
    with pytest.raises(ComposeError, match="the limit is 2048"):
        robot(msgtype="text").compose(art, text="字" * 683)
    with pytest.raises(ComposeError, match="the limit is 4096"):
        robot(msgtype="markdown").compose(art, text="x" * 4097)
    with pytest.raises(ComposeError, match="empty"):
        robot().compose(art, text="  ")


def test_options_are_checked():
    with pytest.raises(ValueError, match="msgtype"):
        WeCom.parse_options({"msgtype": "image"})
    assert WeCom.rate_limit == (20, 60.0)


# --- the client against the emulator ---------------------------------------------------------------

def test_publish_news_markdown_and_text(emulators, runtime):
    for name in ("wecom-news", "wecom-markdown", "wecom-text"):
        receipt, _ = publish(runtime, name)
        assert receipt.post_id is None and receipt.url is None
        assert "no message id" in receipt.note
    posts = sandbox_posts(emulators["wecom"])
    assert [p["msgtype"] for p in posts] == ["news", "markdown", "text"]
    assert posts[0]["body"] == robot().compose(article("baic-catl.json")).payload
    assert EN_URL in posts[2]["text"]


def test_bad_fields_are_caught_by_the_emulator_as_40058(emulators, runtime):
    good = robot().compose(article("baic-catl.json")).payload
    too_long = json.loads(json.dumps(good))
    too_long["news"]["articles"][0]["title"] = "标" * 43  # 129 bytes
    no_url = json.loads(json.dumps(good))
    del no_url["news"]["articles"][0]["url"]
    nine = {"msgtype": "news", "news": {"articles": good["news"]["articles"] * 9}}
    md = {"msgtype": "markdown", "markdown": {"content": "x" * 4097}}
    for payload, needle in ((too_long, "title exceed max length 128"), (no_url, "url"),
                            (nine, "1 to 8"), (md, "exceed max length 4096")):
        with pytest.raises(PermanentError) as info:
            publish(runtime, "wecom-news", payload=payload)
        assert info.value.code == "40058" and needle in str(info.value)
    assert sandbox_posts(emulators["wecom"]) == []


def test_over_20_a_minute_is_rate_limited_for_60s(emulators, runtime):
    requests.post(emulators["wecom"].url + "/_sandbox/config", json={"rate_limit": 2}, timeout=5).raise_for_status()
    publish(runtime, "wecom-news")
    publish(runtime, "wecom-news")
    with pytest.raises(RateLimited) as info:
        publish(runtime, "wecom-news")
    assert info.value.code == "45009" and info.value.retry_after == 60.0
    assert len(sandbox_posts(emulators["wecom"])) == 2


FAULTS = [  # transport and body failures, each read by the shared HTTP table or WeCom's code table
    Fault("500 is transient", "wecom-news", dict(kind="status", status=500, body={"errmsg": "system busy"}),
          TransientError, "HTTP 500", exact=True),
    Fault("502 may have posted", "wecom-news", dict(kind="status", status=502, body="bad gateway"),
          Ambiguous, "HTTP 502", exact=True),
    Fault("200 without a code may have posted", "wecom-news",
          dict(kind="status", status=200, body="<html>maintenance</html>"), Ambiguous, "without an error code",
          exact=True),
    Fault("an unknown code is permanent", "wecom-news",
          dict(kind="error", code=60020, errmsg="not allow to access from your ip"), PermanentError, "60020",
          exact=True),
    Fault("a dropped connection may have posted", "wecom-news", dict(kind="drop"), Ambiguous, "dropped",
          exact=True),
    Fault("the wrong key is 93000", "wecom-badkey", None, PermanentError, "invalid webhook url", code="93000"),
    Fault("a removed robot is 93000", "wecom-news", dict(kind="expired_token"), PermanentError,
          "invalid webhook url"),
]


@faults(FAULTS)
def test_http_and_body_failures_map_to_their_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_find_existing_cannot_tell(runtime):
    platform = WeCom(runtime.settings.account("wecom-news"))
    with pytest.raises(Ambiguous, match="no way to look"):
        platform.find_existing(platform.compose(article("baic-catl.json")), ctx(runtime, "wecom-news"))


# --- end to end through the worker -----------------------------------------------------------------

def test_share_through_the_worker_and_no_secret_anywhere(emulators, runtime, worker):
    emu = emulators["wecom"]
    inject(emu, path="/cgi-bin/webhook/send", kind="error", code=40058,
           errmsg="bad request for /cgi-bin/webhook/send?key=sandbox-key")
    ds = {}
    for name in ("wecom-news", "wecom-badkey"):  # one at a time: the fault is for the first request
        shared = service.share(runtime, article("baic-catl.json"), [name], force=True)
        [ds[name]] = wait_settled(runtime, shared.share_id)
    assert ds["wecom-news"].status == "failed" and "key=***" in ds["wecom-news"].error
    assert ds["wecom-badkey"].status == "failed" and "invalid webhook url" in ds["wecom-badkey"].error

    ok = service.share(runtime, article("baic-catl-zh.md"),
                       ["wecom-news", "wecom-markdown"], force=True)
    for d in wait_settled(runtime, ok.share_id):
        assert d.status == "delivered", d.error
        assert d.post_url is None and d.post_id is None and "no message id" in d.note
    posts = sandbox_posts(emu)
    assert sorted(p["msgtype"] for p in posts) == ["markdown", "news"]
    assert all(ZH_URL in p["text"] for p in posts)

    dump = _redis_dump(runtime) + worker.output()
    for secret in SECRETS:
        assert secret not in dump

