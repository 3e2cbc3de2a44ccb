"""Slack incoming webhook: composition, the client against the emulator, the worker, the kill -9 proof."""

from __future__ import annotations

import pytest
from conftest import sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, kill_while_held, offline, publish, run_fault

from sharer import service
from sharer.config import Account, Secret
from sharer.errors import Ambiguous, AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.slack import Slack

UTM = "utm_source=slack&utm_medium=social&utm_campaign=sharer"
PATH = "/services/"


def test_section_is_linked_title_then_summary_and_the_image_block():
    post = offline(Slack).compose(article("baic-catl.json"))
    art = article("baic-catl.json")
    assert post.text == f"*<{TXT_URL}?{UTM}|{art.title}>*\n\n{art.summary}"
    assert post.payload["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": post.text}},
        {"type": "image", "image_url": art.image, "alt_text": art.title}]
    assert post.payload["text"] == f"{art.title} {TXT_URL}?{UTM}" and post.media == (art.image,)
    assert (post.limit, post.unit, post.warnings) == (3000, "characters", ())


def test_mrkdwn_is_escaped_and_a_long_summary_is_trimmed_to_3000():
    art = article("edge-cases.json", summary="a < b & c > d " * 400)
    post = offline(Slack, image=False).compose(art)
    assert 2990 <= post.length == len(post.text) <= 3000 and post.text.endswith("…")
    assert "&lt; b &amp; c &gt;" in post.text and "<script>" not in post.text
    assert post.warnings == ("summary trimmed to fit Slack's 3000-character section",)
    assert [b["type"] for b in post.payload["blocks"]] == ["section"]


def test_an_override_over_3000_is_refused_not_cut():
    slack = offline(Slack)
    assert slack.compose(article("baic-catl.json"), "x" * 3000).length == 3000
    with pytest.raises(ComposeError, match="3001"):
        slack.compose(article("baic-catl.json"), "x" * 3001)


def test_posts_to_the_webhook_and_the_emulator_keeps_the_blocks(emulators, runtime):
    receipt, post = publish(runtime, "slack-demo")
    [msg] = sandbox_posts(emulators["slack"])
    assert msg["hook"] == "sandbox-webhook" and msg["blocks"] == post.payload["blocks"]
    assert receipt.post_id is None and receipt.url is None and "no message id" in receipt.note


def test_a_whole_webhook_url_as_the_credential_works(emulators, runtime):
    hook = "T00000000/B00000000/" + "X" * 24
    account = Account("slack-fullurl", "slack", emulators["slack"].url, options=Slack.parse_options({}),
                      credentials={"webhook": Secret(f"https://hooks.slack.com/services/{hook}")})
    slack = Slack(account)
    slack.publish(slack.compose(article("baic-catl-zh.md")), ctx(runtime, "slack-fullurl", account=account))
    [msg] = sandbox_posts(emulators["slack"])
    assert msg["hook"] == hook


FAULTS = [
    Fault("a revoked webhook is auth", "slack-demo", {"kind": "expired_token"}, AuthExpired,
          ["revoked", "no_service"], path=PATH),
    Fault("invalid_token is auth", "slack-demo", {"kind": "error", "code": "invalid_token"}, AuthExpired,
          "invalid_token", path=PATH, status=403, code="invalid_token"),
    *(Fault(f"{code} is refused", "slack-demo", {"kind": "error", "code": code}, PermanentError, code, path=PATH,
            status=status, code=code)
      for code, status in (("invalid_payload", 400), ("channel_not_found", 404), ("channel_is_archived", 410),
                           ("action_prohibited", 403), ("posting_to_general_channel_denied", 403))),
    Fault("429 waits Retry-After", "slack-demo", {"kind": "error", "code": "rate_limited", "retry_after": 7},
          RateLimited, "rate_limited", path=PATH, check=lambda e: e.retry_after == 7.0),
    Fault("500 is transient", "slack-demo", {"kind": "status", "status": 500, "body": "internal error"},
          TransientError, "HTTP 500", path=PATH, check=lambda e: not isinstance(e, Ambiguous)),
    Fault("502 is ambiguous", "slack-demo", {"kind": "status", "status": 502, "body": "bad gateway"}, Ambiguous,
          "HTTP 502", path=PATH),
    Fault("a dropped answer is ambiguous", "slack-demo", {"kind": "drop_after"}, Ambiguous, "dropped", path=PATH,
          posts=1),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_find_existing_cannot_tell():
    slack = offline(Slack)
    with pytest.raises(Ambiguous):
        slack.find_existing(slack.compose(article("baic-catl.json")), None)  # type: ignore[arg-type]


def test_worker_delivers_every_example(emulators, runtime, worker):
    names = ["baic-catl.json", "baic-catl-zh.md", "edge-cases.json"]
    ids = [service.share(runtime, article(n), ["slack-demo"]).share_id for n in names]
    for sid in ids:
        [d] = wait_settled(runtime, sid)
        assert d.status == "delivered" and "no message id" in d.note, (d.status, d.error)
    assert len(sandbox_posts(emulators["slack"])) == 3


def test_no_second_message_after_a_killed_worker(emulators):
    kill_while_held(emulators, "slack", PATH, "needs_review")
