"""DingTalk custom robot: composition goldens, signatures, the client against the emulator, the worker."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import inject, sandbox_posts, wait_settled
from conftest import redis_dump as _redis_dump
from harness import TXT_URL, Fault, article, configure, ctx, faults, offline, run_fault
from harness import publish as _publish

from sharer import service
from sharer.errors import Ambiguous, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.dingtalk import DingTalk, sign
from sharer.text import count_utf8_bytes, graphemes

UTM = "utm_source=dingtalk&utm_medium=social&utm_campaign=sharer"
PIC = "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
EN_TITLE = "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation"
SECRETS = ("sandbox-access_token", "sandbox-secret", "not-the-sandbox-secret")


def robot(secret: str | None = None, **options) -> DingTalk:
    return offline(DingTalk, credentials={"access_token": "tok", **({"secret": secret} if secret else {})},
                   **options)


# --- composition -----------------------------------------------------------------------------------

LINK_GOLDEN = {
    "baic-catl.json": {
        "title": EN_TITLE, "messageUrl": f"{TXT_URL}?{UTM}", "picUrl": PIC,
        "text": "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
                "agreement to jointly develop power battery products and explore the NEV market."},
    "baic-catl-zh.md": {
        "title": "北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品", "picUrl": PIC,
        "messageUrl": f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}",
        "text": "3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，双方将联合开发动力电池产品，"
                "共同开拓新能源汽车市场。"},
    "baic-catl-page.html": {
        "title": EN_TITLE, "messageUrl": f"{TXT_URL}?{UTM}", "picUrl": PIC,
        "text": "BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
                "agreement."},
    "baic-catl-page.txt": {
        "title": EN_TITLE + "...", "messageUrl": f"{TXT_URL}?{UTM}",
        "text": "On March 13th, BAIC GROUP and Contemporary Amperex Technology Co. Limited (CATL) signed a business "
                "cooperation and advanced technology strategic cooperation agreement."},
    "edge-cases.json": {
        "title": article("edge-cases.json").title, "text": article("edge-cases.json").summary,
        "messageUrl": f"https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&lang=en&{UTM}",
        "picUrl": "https://news.example.com/images/nev.png"},
}


@pytest.mark.parametrize("name", sorted(LINK_GOLDEN))
def test_link_golden_for_every_example(name):
    post = robot().compose(article(name))
    assert post.payload == {"msgtype": "link", "link": LINK_GOLDEN[name]}
    assert post.text == LINK_GOLDEN[name]["text"] and post.warnings == ()
    assert post.length == count_utf8_bytes(post.text) <= post.limit == 4096


@pytest.mark.parametrize("name", sorted(LINK_GOLDEN))
def test_markdown_golden_for_every_example(name):
    link = LINK_GOLDEN[name]
    label = {"baic-catl-zh.md": "阅读全文", "baic-catl-page.txt": "阅读全文 / Read more"}.get(name, "Read more")
    picture = f"![]({link['picUrl']})\n\n" if "picUrl" in link else ""
    post = robot(msgtype="markdown").compose(article(name))
    assert post.payload == {"msgtype": "markdown", "markdown": {
        "title": link["title"],
        "text": f"#### {link['title']}\n\n{link['text']}\n\n{picture}[{label}]({link['messageUrl']})"}}
    assert post.length == count_utf8_bytes(post.text) <= 4096


def test_long_text_is_trimmed_grapheme_safe_and_the_link_survives():
    edge = article("edge-cases.json")
    for pad in range(0, 40, 3):
        art = dataclasses.replace(edge, summary="y" * pad + " " + " ".join([edge.summary] * 20))
        post = robot(max_text_bytes=1000).compose(art)
        text = post.payload["link"]["text"]
        assert count_utf8_bytes(text) <= 1000 and text.endswith("…")
        cut = text.removesuffix("…")
        assert graphemes(art.summary)[: len(graphemes(cut))] == graphemes(cut)
        assert post.warnings and "link text trimmed to 1000 bytes" in post.warnings[0]
        md = robot(msgtype="markdown", max_text_bytes=1000).compose(art)
        assert md.length <= 1000 and md.text.endswith(f"&{UTM})") and md.text.startswith("#### " + edge.title)


def test_empty_summary_falls_back_to_the_title_and_overrides_are_checked():
    art = dataclasses.replace(article("baic-catl.json"), summary="")
    assert robot().compose(art).payload["link"]["text"] == EN_TITLE
    post = robot().compose(article("baic-catl.json"), text="编辑的话")
    assert post.payload["link"]["text"] == "编辑的话"
    with pytest.raises(ComposeError, match="4097 bytes long; the limit is 4096"):
        robot().compose(art, text="x" * 4097)
    with pytest.raises(ValueError, match="msgtype"):
        DingTalk.parse_options({"msgtype": "feedCard"})
    assert DingTalk.rate_limit == (20, 60.0)


def test_signed_url_carries_ms_timestamp_and_url_encoded_sign():
    url = robot(secret="SECxyz")._url()
    query = parse_qs(urlsplit(url).query)  # decodes exactly as the robot would
    ms = query["timestamp"][0]
    assert abs(int(ms) - time.time() * 1000) < 5000
    expected = base64.b64encode(hmac.new(b"SECxyz", f"{ms}\nSECxyz".encode(), hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected] and sign(int(ms), "SECxyz") == expected
    assert "+" not in urlsplit(url).query and "/" not in urlsplit(url).query  # sign was URL-encoded


# --- the client against the emulator ---------------------------------------------------------------

def publish(runtime, name: str, art=None, payload=None, steps=None):
    return _publish(runtime, name, art, payload=payload, steps=steps)[0]


def test_signed_link_and_markdown_are_verified_by_the_emulator(emulators, runtime):
    configure(emulators["dingtalk"], require_sign=True)
    for name in ("dingtalk-signed", "dingtalk-markdown"):
        receipt = publish(runtime, name)
        assert (receipt.post_id, receipt.url) == (None, None) and "no message id" in receipt.note
    posts = sandbox_posts(emulators["dingtalk"])
    assert [p["msgtype"] for p in posts] == ["link", "markdown"]
    assert all(p["signature_valid"] is True for p in posts)
    assert posts[0]["body"] == robot().compose(article("baic-catl.json")).payload


def test_unsigned_robot_and_wrong_secret(emulators, runtime):
    emu = emulators["dingtalk"]
    publish(runtime, "dingtalk-plain")
    assert sandbox_posts(emu)[0]["signature_valid"] is None
    with pytest.raises(PermanentError) as info:
        publish(runtime, "dingtalk-badsecret")
    assert info.value.code == "310000" and "sign not match" in str(info.value)
    assert "check the signing secret" in str(info.value) and not any(s in str(info.value) for s in SECRETS)
    configure(emu, require_sign=True)
    with pytest.raises(PermanentError, match="invalid timestamp"):
        publish(runtime, "dingtalk-plain")  # signing required, none sent
    assert len(sandbox_posts(emu)) == 1


def test_invalid_timestamp_once_is_retried_with_a_fresh_timestamp(emulators, runtime):
    emu = emulators["dingtalk"]
    inject(emu, path="/robot/send", kind="error", code=310000, errmsg="invalid timestamp")
    steps: list[str] = []
    before = int(time.time() * 1000)
    receipt = publish(runtime, "dingtalk-signed", steps=steps)
    assert receipt.note and steps == ["DingTalk rejected the timestamp; retrying once with a fresh one"]
    first, second = (int(a["timestamp"]) for a in emu.attempts)
    assert before <= first <= second
    [p] = sandbox_posts(emu)
    assert p["signature_valid"] is True and int(p["timestamp"]) == second


def test_invalid_timestamp_twice_is_permanent(emulators, runtime):
    emu = emulators["dingtalk"]
    configure(emu, clock_offset=7200)  # our clock is two hours behind the robot's
    with pytest.raises(PermanentError, match="check this server's clock") as info:
        publish(runtime, "dingtalk-signed")
    assert "invalid timestamp" in str(info.value) and len(emu.attempts) == 2
    inject(emu, path="/robot/send", kind="error", code=310000, errmsg="invalid timestamp")
    with pytest.raises(PermanentError):  # unsigned: nothing a fresh timestamp could fix
        publish(runtime, "dingtalk-plain")
    assert len(emu.attempts) == 3 and sandbox_posts(emu) == []


def test_body_codes_map_to_their_classes(emulators, runtime):
    emu = emulators["dingtalk"]
    configure(emu, keywords=["新能源"])
    with pytest.raises(PermanentError, match="keywords not in content"):
        publish(runtime, "dingtalk-signed")
    publish(runtime, "dingtalk-signed", article("baic-catl-zh.md"))
    configure(emu, keywords=[], rate_limit=1)
    for _ in range(2):  # over the limit, then still throttled
        with pytest.raises(RateLimited) as info:
            publish(runtime, "dingtalk-signed")
        assert info.value.code == "130101" and info.value.retry_after == 600.0
    configure(emu, rate_limit=100)
    emu.throttled_until.clear()

    no_url = {"msgtype": "link", "link": {"title": "t", "text": "x"}}
    with pytest.raises(PermanentError, match="messageUrl") as info:
        publish(runtime, "dingtalk-signed", payload=no_url)
    assert info.value.code == "40035"
    assert len(sandbox_posts(emu)) == 1


FAULTS = [
    Fault("IP not in the allow-list", "dingtalk-signed",
          dict(kind="error", code=310000, errmsg="ip 10.1.2.3 not in whitelist"), PermanentError, "allow-list",
          path="/robot/send", exact=True),
    Fault("token does not exist", "dingtalk-signed", dict(kind="expired_token"), PermanentError,
          "token is not exist", path="/robot/send", exact=True),
    Fault("500 is transient", "dingtalk-signed", dict(kind="status", status=500, body="oops"), TransientError,
          "HTTP 500", path="/robot/send", exact=True),
    Fault("200 without a code", "dingtalk-signed", dict(kind="status", status=200, body={"ok": True}), Ambiguous,
          "without an error code", path="/robot/send", exact=True),
    Fault("dropped connection", "dingtalk-signed", dict(kind="drop"), Ambiguous, "dropped", path="/robot/send",
          exact=True),
]


@faults(FAULTS)
def test_transport_and_body_faults(case, emulators, runtime):
    err = run_fault(case, emulators, runtime)
    assert not any(s in str(err) for s in SECRETS)


def test_find_existing_cannot_tell(runtime):
    platform = DingTalk(runtime.settings.account("dingtalk-signed"))
    with pytest.raises(Ambiguous, match="no way to look"):
        platform.find_existing(platform.compose(article("baic-catl.json")), ctx(runtime, "dingtalk-signed"))


# --- end to end through the worker -----------------------------------------------------------------

def test_share_through_the_worker_and_no_secret_anywhere(emulators, runtime, worker):
    emu = emulators["dingtalk"]
    configure(emu, require_sign=True)
    inject(emu, path="/robot/send", kind="error", code=300001,
           errmsg="token is not exist: /robot/send?access_token=sandbox-access_token&sign=abc")
    ds = {}
    for name in ("dingtalk-signed", "dingtalk-badsecret"):  # one at a time: the fault is for the first request
        shared = service.share(runtime, article("baic-catl.json"), [name], force=True)
        [ds[name]] = wait_settled(runtime, shared.share_id)
    assert ds["dingtalk-signed"].status == "failed" and "access_token=***" in ds["dingtalk-signed"].error
    assert ds["dingtalk-badsecret"].status == "failed" and "sign not match" in ds["dingtalk-badsecret"].error

    inject(emu, path="/robot/send", kind="error", code=310000, errmsg="invalid timestamp")
    ok = service.share(runtime, article("baic-catl-zh.md"),
                       ["dingtalk-signed", "dingtalk-markdown"], force=True)
    for d in wait_settled(runtime, ok.share_id):
        assert d.status == "delivered", d.error
        assert d.post_url is None and d.post_id is None and "no message id" in d.note
    assert any("fresh one" in e.get("message", "") for d in wait_settled(runtime, ok.share_id) for e in d.events)
    posts = sandbox_posts(emu)
    assert sorted(p["msgtype"] for p in posts) == ["link", "markdown"]
    assert all(p["signature_valid"] is True for p in posts)

    dump = _redis_dump(runtime) + worker.output()
    for secret in SECRETS:
        assert secret not in dump
    assert json.dumps(posts)  # what the group saw is plain JSON

