"""Discord webhook: composition, the client against the emulator, the worker, the kill -9 proof."""

from __future__ import annotations

import pytest
import requests
from conftest import sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, kill_while_held, offline, publish, run_fault

from sharer import service
from sharer.errors import Ambiguous, AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.discord import Discord

UTM = "utm_source=discord&utm_medium=social&utm_campaign=sharer"
PATH = "/api/webhooks/"
ACCOUNTS = """
[accounts.discord-plain]
platform = "discord"
api_base = "{url}/api/webhooks/1180000000000000001"
credentials = { token = "sandbox:" }
options = { embed = false, username = "Newsroom" }
"""


def test_content_is_the_template_and_the_embed_links_the_article():
    art = article("baic-catl.json")
    post = offline(Discord).compose(art)
    assert post.text == f"{art.title}\n\n{art.summary}\n\n{TXT_URL}?{UTM}" == post.payload["content"]
    assert post.payload["embeds"] == [{"title": art.title, "url": f"{TXT_URL}?{UTM}", "image": {"url": art.image}}]
    assert post.payload["allowed_mentions"] == {"parse": []}  # "@everyone" in an article pings nobody
    assert (post.limit, post.unit, post.media) == (2000, "characters", (art.image,))


def test_a_long_summary_is_trimmed_to_2000_and_an_override_over_it_refused():
    art = article("edge-cases.json", summary="word " * 600)
    post = offline(Discord).compose(art)
    assert post.length == len(post.payload["content"]) <= 2000 and "summary trimmed" in post.warnings[0]
    with pytest.raises(ComposeError, match="2001"):
        offline(Discord).compose(art, "x" * 2001)
    with pytest.raises(ValueError, match="guild_id"):
        Discord.parse_options({"guild_id": "my-server"})


def test_wait_true_returns_the_message_and_its_link(emulators, runtime):
    emu = emulators["discord"]
    receipt, post = publish(runtime, "discord-demo")
    [msg] = sandbox_posts(emu)
    assert receipt.post_id == msg["id"] and msg["content"] == post.text and msg["embeds"] == post.payload["embeds"]
    assert receipt.url == f"https://discord.com/channels/1170000000000000001/{msg['channel_id']}/{msg['id']}"
    hook = f"{emu.url}/api/webhooks/1180000000000000001/sandbox-token"
    assert requests.get(f"{hook}/messages/{msg['id']}", timeout=5).json()["content"] == post.text
    receipt2, post2 = publish(runtime, "discord-plain", article("baic-catl-zh.md"))
    last = sandbox_posts(emu)[-1]
    assert "embeds" not in post2.payload and last["author"]["username"] == "Newsroom"
    assert receipt2.url is None and "guild_id" in receipt2.note


def test_check_credentials_reads_the_webhook(emulators, runtime):
    assert "channel 1190000000000000001" in Discord(runtime.settings.account("discord-demo")).check_credentials(
        ctx(runtime, "discord-demo"))


FAULTS = [
    Fault("429 waits retry_after from the body", "discord-demo", {"kind": "error", "code": 429, "retry_after": 2.5},
          RateLimited, "rate limited", path=PATH, check=lambda e: e.retry_after == 2.5),
    Fault("a deleted webhook is auth", "discord-demo", {"kind": "expired_token"}, AuthExpired,
          ["Unknown Webhook", "create a new one"], path=PATH, status=404),
    Fault("a wrong token is auth", "discord-demo", {"kind": "error", "code": 50027}, AuthExpired,
          "Invalid Webhook Token", path=PATH, status=401),
    Fault("invalid form body is refused", "discord-demo", {"kind": "error", "code": 50035}, PermanentError,
          "Invalid Form Body", path=PATH, status=400),
    Fault("missing permissions is refused", "discord-demo", {"kind": "error", "code": 50013}, PermanentError,
          "Missing Permissions", path=PATH, status=403),
    Fault("500 is transient", "discord-demo", {"kind": "error", "code": 0}, TransientError, "HTTP 500",
          path=PATH, check=lambda e: not isinstance(e, Ambiguous)),
    Fault("504 is ambiguous", "discord-demo", {"kind": "status", "status": 504, "body": {}}, Ambiguous, "HTTP 504",
          path=PATH),
    Fault("a dropped answer is ambiguous", "discord-demo", {"kind": "drop_after"}, Ambiguous, "dropped", path=PATH,
          posts=1),
    Fault("a long content is refused by Discord's own count", "discord-demo", None, PermanentError,
          ["Invalid Form Body", "content", "2000 or fewer"], publish={"content": "x" * 2001}),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_find_existing_cannot_tell_without_the_message_id(runtime):
    discord = Discord(runtime.settings.account("discord-demo"))
    with pytest.raises(Ambiguous):
        discord.find_existing(discord.compose(article("baic-catl.json")), ctx(runtime, "discord-demo"))


def test_worker_delivers_with_the_message_link(emulators, runtime, worker):
    [d] = wait_settled(runtime, service.share(runtime, article("edge-cases.json"), ["discord-demo"]).share_id)
    [msg] = sandbox_posts(emulators["discord"])
    assert d.status == "delivered" and d.post_id == msg["id"] and d.post_url.endswith(f"/{msg['id']}"), d.error


def test_no_second_message_after_a_killed_worker(emulators):
    kill_while_held(emulators, "discord", PATH, "needs_review")
