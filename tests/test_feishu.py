"""Feishu/Lark custom bot: composition goldens, signatures, the client against the emulator, the worker."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time

import pytest
from conftest import inject, sandbox_posts, wait_settled
from conftest import redis_dump as _redis_dump
from harness import TXT_URL, Fault, article, configure, ctx, faults, offline, run_fault
from harness import publish as _publish

from sharer import service
from sharer.errors import Ambiguous, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.feishu import Feishu, sign
from sharer.text import graphemes

UTM = "utm_source=feishu&utm_medium=social&utm_campaign=sharer"
SECRETS = ("sandbox-hook_token", "sandbox-secret", "not-the-sandbox-secret")
HOOK = "/open-apis/bot/v2/hook/"


def bot(secret: bool = False, **options) -> Feishu:
    return offline(Feishu, credentials={"hook_token": "t", **({"secret": "s"} if secret else {})}, **options)


def body_size(payload: dict) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


# --- composition -----------------------------------------------------------------------------------

# article -> (title, summary line or None, link text, tagged url)
GOLDEN = {
    "baic-catl.json": (
        "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation",
        "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
        "agreement to jointly develop power battery products and explore the NEV market.",
        "Read more", f"{TXT_URL}?{UTM}"),
    "baic-catl-zh.md": (
        "北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品",
        "3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，双方将联合开发动力电池产品，"
        "共同开拓新能源汽车市场。",
        "阅读全文", f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}"),
    "baic-catl-page.html": (
        "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation",
        "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
        "agreement.", "Read more", f"{TXT_URL}?{UTM}"),
    "baic-catl-page.txt": (
        "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation...",
        "On March 13th, BAIC GROUP and Contemporary Amperex Technology Co. Limited (CATL) signed a business "
        "cooperation and advanced technology strategic cooperation agreement.",
        "阅读全文 / Read more", f"{TXT_URL}?{UTM}"),
    "edge-cases.json": (
        article("edge-cases.json").title, article("edge-cases.json").summary, "Read more",
        f"https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&lang=en&{UTM}"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_post_golden_for_every_example(name):
    title, summary, label, url = GOLDEN[name]
    post = bot().compose(article(name))
    assert post.payload == {"msg_type": "post", "content": {"post": {"zh_cn": {"title": title, "content": [
        [{"tag": "text", "text": summary}], [{"tag": "a", "text": label, "href": url}]]}}}}
    assert post.text == summary and post.warnings == ()
    assert post.length == body_size(post.payload) <= post.limit == 20480
    signed = bot(secret=True).compose(article(name))
    assert signed.payload == post.payload and signed.length == post.length + 80  # room for timestamp + sign


def test_locale_option_and_validation():
    post = bot(locale="en_us").compose(article("baic-catl.json"))
    assert list(post.payload["content"]["post"]) == ["en_us"]
    with pytest.raises(ValueError, match="locale"):
        Feishu.parse_options({"locale": "fr_fr"})
    with pytest.raises(ValueError, match="max_body_bytes"):
        Feishu.parse_options({"max_body_bytes": 10})
    assert Feishu.rate_limit == (5, 1.0)


@pytest.mark.parametrize("repeat", [3, 7, 40, 200])
def test_body_over_the_limit_trims_the_summary_grapheme_safe(repeat):
    edge = article("edge-cases.json")
    art = dataclasses.replace(edge, summary=" ".join([edge.summary] * repeat))
    for limit in (1024, 20480):
        post = bot(max_body_bytes=limit).compose(art)
        assert body_size(post.payload) == post.length <= limit
        summary = post.payload["content"]["post"]["zh_cn"]["content"][0][0]["text"]
        if summary != art.summary:
            assert post.warnings == (f"summary trimmed so the message body fits {limit} bytes",)
            cut = summary.removesuffix("…")
            assert summary.endswith("…") and graphemes(art.summary)[: len(graphemes(cut))] == graphemes(cut)
            assert body_size(post.payload) > limit * 0.6  # no more than a nicer (sentence) boundary costs
        assert post.payload["content"]["post"]["zh_cn"]["title"] == edge.title  # the title stays whole


def test_override_is_validated_never_cut():
    art = article("baic-catl-zh.md")
    post = bot().compose(art, text="编辑的话")
    assert post.payload["content"]["post"]["zh_cn"]["content"][0] == [{"tag": "text", "text": "编辑的话"}]
    with pytest.raises(ComposeError, match="Feishu accepts at most 1024"):
        bot(max_body_bytes=1024).compose(art, text="字" * 300)
    with pytest.raises(ComposeError, match="empty"):
        bot().compose(art, text="")


def test_sign_is_hmac_keyed_by_timestamp_and_secret_over_an_empty_message():
    expected = base64.b64encode(hmac.new(b"1700000000\nSEC", b"", hashlib.sha256).digest()).decode()
    assert sign("1700000000", "SEC") == expected


# --- the client against the emulator ---------------------------------------------------------------

def publish(runtime, name: str, art=None, payload=None):
    return _publish(runtime, name, art, payload=payload)[0]


def test_signed_post_is_verified_by_the_emulator(emulators, runtime):
    configure(emulators["feishu"], require_sign=True)
    receipt = publish(runtime, "feishu-signed")
    assert (receipt.post_id, receipt.url) == (None, None) and "no message id" in receipt.note
    [p] = sandbox_posts(emulators["feishu"])
    assert p["signature_valid"] is True and abs(int(p["timestamp"]) - time.time()) < 10
    assert p["content"] == Feishu(runtime.settings.account("feishu-signed")).compose(
        article("baic-catl.json")).payload["content"]


def test_unsigned_bot_posts_without_a_signature(emulators, runtime):
    publish(runtime, "feishu-plain", article("baic-catl-zh.md"))
    [p] = sandbox_posts(emulators["feishu"])
    assert p["signature_valid"] is None and list(p["content"]["post"]) == ["en_us"]
    assert "阅读全文" in p["text"]


def test_signature_failures_are_permanent_19021(emulators, runtime):
    emu = emulators["feishu"]
    with pytest.raises(PermanentError) as info:
        publish(runtime, "feishu-badsecret")
    assert info.value.code == "19021" and "sign match fail" in str(info.value)
    assert "signing secret" in str(info.value) and not any(s in str(info.value) for s in SECRETS)
    configure(emu, require_sign=True)
    with pytest.raises(PermanentError, match="sign match fail"):
        publish(runtime, "feishu-plain")
    configure(emu, clock_offset=3700)  # our clock is more than an hour behind the bot's
    with pytest.raises(PermanentError, match="timestamp is not within one hour"):
        publish(runtime, "feishu-signed")
    assert sandbox_posts(emu) == []


def test_body_codes_map_to_their_classes(emulators, runtime):
    emu = emulators["feishu"]
    configure(emu, keywords=["北汽"])
    with pytest.raises(PermanentError, match="none of the bot's keywords") as info:
        publish(runtime, "feishu-signed")
    assert info.value.code == "19024"
    publish(runtime, "feishu-signed", article("baic-catl-zh.md"))  # has the keyword
    configure(emu, keywords=[], rate_limit=1)
    with pytest.raises(RateLimited) as info:
        publish(runtime, "feishu-signed")
    assert info.value.code == "11232" and info.value.retry_after == 60.0
    configure(emu, rate_limit=100)

    good = bot().compose(article("baic-catl.json")).payload
    bad_tag = json.loads(json.dumps(good))
    bad_tag["content"]["post"]["zh_cn"]["content"][0][0]["tag"] = "marquee"
    huge = json.loads(json.dumps(good))
    huge["content"]["post"]["zh_cn"]["content"][0][0]["text"] = "x" * 21000
    for payload, needle in ((bad_tag, "unknown element"), (huge, "over the limit")):
        with pytest.raises(PermanentError) as info:
            publish(runtime, "feishu-signed", payload=payload)
        assert info.value.code == "9499" and needle in str(info.value)
    assert len(sandbox_posts(emu)) == 1


FAULTS = [
    Fault("IP not allowed", "feishu-signed", dict(kind="error", code=19022), PermanentError, "allow-list",
          path=HOOK, exact=True),
    Fault("token invalid", "feishu-signed", dict(kind="expired_token"), PermanentError,
          "incoming webhook access token invalid", path=HOOK, exact=True),
    Fault("503 is transient", "feishu-signed", dict(kind="status", status=503, body={"code": 0}), TransientError,
          "HTTP 503", path=HOOK, exact=True),
    Fault("200 without a code", "feishu-signed", dict(kind="status", status=200, body="<html/>"), Ambiguous,
          "without an error code", path=HOOK, exact=True),
]


@faults(FAULTS)
def test_transport_and_body_faults(case, emulators, runtime):
    err = run_fault(case, emulators, runtime)
    assert not any(s in str(err) for s in SECRETS)


def test_find_existing_cannot_tell(runtime):
    platform = Feishu(runtime.settings.account("feishu-signed"))
    with pytest.raises(Ambiguous, match="no way to look"):
        platform.find_existing(platform.compose(article("baic-catl.json")), ctx(runtime, "feishu-signed"))


# --- end to end through the worker -----------------------------------------------------------------

def test_share_through_the_worker_and_no_secret_anywhere(emulators, runtime, worker):
    emu = emulators["feishu"]
    configure(emu, require_sign=True)
    inject(emu, path=HOOK, kind="error", code=9499, msg=f"Bad Request {HOOK}sandbox-hook_token")
    ds = {}
    for name in ("feishu-signed", "feishu-badsecret"):  # one at a time: the fault is for the first request
        shared = service.share(runtime, article("baic-catl.json"), [name], force=True)
        [ds[name]] = wait_settled(runtime, shared.share_id)
    assert ds["feishu-signed"].status == "failed" and "hook/***" in ds["feishu-signed"].error
    assert ds["feishu-badsecret"].status == "failed" and "sign match fail" in ds["feishu-badsecret"].error

    ok = service.share(runtime, article("baic-catl-zh.md"),
                       ["feishu-signed"], force=True)
    [d] = wait_settled(runtime, ok.share_id)
    assert d.status == "delivered", d.error
    assert d.post_url is None and d.post_id is None and "no message id" in d.note
    [p] = sandbox_posts(emu)
    assert p["signature_valid"] is True and "北汽集团" in p["text"]

    dump = _redis_dump(runtime) + worker.output()
    for secret in SECRETS:
        assert secret not in dump

