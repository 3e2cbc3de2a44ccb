"""LINE Official Account: composition, the client against the emulator, retry-key idempotency, the worker,
the kill -9 proof."""

from __future__ import annotations

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, kill_while_held, offline, publish, run_fault

from sharer import service
from sharer.errors import AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.line import Line, retry_key

UTM = "utm_source=line&utm_medium=social&utm_campaign=sharer"
PATH = "/v2/bot/message/"
ACCOUNTS = """
[accounts.line-push]
platform = "line"
api_base = "{url}"
credentials = { channel_access_token = "sandbox:" }
options = { mode = "push", to = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0", image = false, notification_disabled = true }
"""


def test_a_text_message_then_the_lead_image():
    art = article("baic-catl.json")
    post = offline(Line).compose(art)
    assert post.text == f"{art.title}\n\n{art.summary}\n\n{TXT_URL}?{UTM}"
    assert post.payload == {"messages": [{"type": "text", "text": post.text}, {
        "type": "image", "originalContentUrl": art.image, "previewImageUrl": art.image}]}
    assert (post.limit, post.unit) == (5000, "UTF-16 units")


def test_the_limit_is_utf16_units_and_an_override_over_it_is_refused():
    emoji = "😀" * 2500  # 2 UTF-16 units each: exactly 5000
    line = offline(Line)
    assert line.compose(article("baic-catl.json"), emoji).length == 5000
    with pytest.raises(ComposeError, match="5001"):
        line.compose(article("baic-catl.json"), emoji + "x")
    long = line.compose(article("edge-cases.json", summary="😀 " * 3000))
    assert long.length <= 5000 and "summary trimmed" in long.warnings[0]


def test_options_are_checked():
    with pytest.raises(ValueError, match="to"):
        Line.parse_options({"mode": "push"})
    with pytest.raises(ValueError, match="mode"):
        Line.parse_options({"mode": "multicast"})


def test_the_retry_key_is_a_uuid_derived_from_the_delivery():
    assert retry_key("dl_1") == retry_key("dl_1") != retry_key("dl_2") and len(retry_key("dl_1")) == 36


def test_broadcast_and_push(emulators, runtime):
    emu = emulators["line"]
    receipt, post = publish(runtime, "line-demo", delivery_id="dl_line_b")
    [msg] = sandbox_posts(emu)
    assert msg["mode"] == "broadcast" and msg["messages"] == post.payload["messages"]
    assert msg["retry_key"] == retry_key("dl_line_b") and receipt.post_id == msg["id"] and receipt.url is None
    receipt, post = publish(runtime, "line-push", delivery_id="dl_line_p")
    msg = sandbox_posts(emu)[-1]
    assert (msg["mode"], msg["to"], msg["notification_disabled"]) == ("push", "U4af4980629a0b1c2d3e4f5a6b7c8d9e0", True)
    assert receipt.post_id == msg["sent"][0]["id"] and len(msg["messages"]) == 1


def test_a_repeat_with_the_same_key_gets_409_and_counts_as_sent(emulators, runtime):
    emu = emulators["line"]
    first, _ = publish(runtime, "line-demo", delivery_id="dl_line_same")
    steps: list[str] = []
    again, _ = publish(runtime, "line-demo", delivery_id="dl_line_same", steps=steps)
    assert again.post_id == first.post_id and len(sandbox_posts(emu)) == 1
    assert any("already accepted" in s for s in steps)
    raw = requests.post(f"{emu.url}/v2/bot/message/broadcast", timeout=5, json={"messages": [
        {"type": "text", "text": "x"}]}, headers={"Authorization": "Bearer sandbox-channel_access_token",
                                                 "X-Line-Retry-Key": retry_key("dl_line_same")})
    assert raw.status_code == 409 and raw.headers["x-line-accepted-request-id"] == first.post_id


FAULTS = [
    Fault("a wrong token is auth", "line-demo", {"kind": "expired_token"}, AuthExpired, "issue a new one",
          path=PATH, status=401),
    Fault("400 is refused with its details", "line-demo", None, PermanentError,
          ["messages[0].text", "Length must be between 0 and 5000"], publish={"messages": [
              {"type": "text", "text": "x" * 5001}]}),
    Fault("403 is refused", "line-demo", {"kind": "error", "code": 403}, PermanentError, "not allowed",
          path=PATH, status=403),
    Fault("429 is rate-limited", "line-demo", {"kind": "error", "code": 429}, RateLimited, "Too Many Requests",
          path=PATH, check=lambda e: e.retry_after == 60.0),
    Fault("the monthly quota waits for next month", "line-demo", {"kind": "error", "code": 429, "monthly": True},
          RateLimited, ["monthly limit", "next month"], path=PATH, check=lambda e: e.retry_after > 3600),
    Fault("500 is transient", "line-demo", {"kind": "error", "code": 500}, TransientError, "HTTP 500", path=PATH),
    Fault("502 is safe to resend", "line-demo", {"kind": "status", "status": 502, "body": {}}, TransientError,
          "HTTP 502", path=PATH, exact=True),
    Fault("a dropped answer is safe to resend", "line-demo", {"kind": "drop_after"}, TransientError, "dropped",
          path=PATH, posts=1, exact=True),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_check_credentials(emulators, runtime):
    assert "@sharer" in Line(runtime.settings.account("line-demo")).check_credentials(ctx(runtime, "line-demo"))


def test_worker_resends_a_dropped_broadcast_with_the_same_key_one_message(emulators, runtime, worker):
    emu = emulators["line"]
    inject(emu, path=PATH, kind="drop_after")
    [d] = wait_settled(runtime, service.share(runtime, article("baic-catl-zh.md"), ["line-demo"]).share_id)
    [msg] = sandbox_posts(emu)
    assert d.status == "delivered" and d.post_id == msg["id"] and msg["retry_key"] == retry_key(d.id), d.error
    sends = [r for r in emu.requests if r["path"] == "/v2/bot/message/broadcast"]
    assert len(sends) == 2 and d.attempts == 2  # the second got 409: done, nothing sent twice
    assert any("already accepted" in e["message"] for e in d.events)


def test_a_killed_worker_is_resent_with_the_same_key_one_message_each(emulators):
    ds = kill_while_held(emulators, "line", PATH, "delivered")
    emu = emulators["line"]
    by_key = {p["retry_key"]: p for p in sandbox_posts(emu)}
    for d in ds:
        assert d.post_id == by_key[retry_key(d.id)]["id"]  # the 409's accepted request id: the first send
