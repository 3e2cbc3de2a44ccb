"""Bluesky: composition (graphemes, facets by UTF-8 bytes, card), the shared session, the client against
the PDS emulator, errors, reconciliation, the worker."""

from __future__ import annotations

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, offline, publish, run_fault

from sharer import service
from sharer.errors import AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.bluesky import Bluesky, display_url, facets
from sharer.sandbox.bluesky import DID

UTM = "utm_source=bluesky&utm_medium=social&utm_campaign=sharer"
CREATE = "/xrpc/com.atproto.repo.createRecord"
ACCOUNTS = """
[accounts.bluesky-badpass]
platform = "bluesky"
api_base = "{url}"
credentials = { app_password = "env:SHARER_TEST_WRONG_SECRET" }
options = { handle = "sharer.test" }

[accounts.bluesky-album]
platform = "bluesky"
api_base = "{url}"
credentials = { app_password = "sandbox:" }
options = { handle = "sharer.test", images = 4, hashtags = false }
"""


def sky(**options):
    return offline(Bluesky, handle="sharer.test", **options)


def test_the_link_shows_short_with_a_facet_to_the_full_url_and_a_card():
    art = article("baic-catl-zh.md")
    post = sky().compose(art)
    url = f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}"
    assert post.text == (f"{art.title}\n\n{art.summary}\n\nnews.example.com/zh/2023/0…\n\n"
                         "#北汽集团 #宁德时代 #新能源汽车 #动力电池")
    record = post.payload["record"]
    raw = post.text.encode()
    covered = [raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode() for f in record["facets"]]
    assert covered == ["news.example.com/zh/2023/0…", "#北汽集团", "#宁德时代", "#新能源汽车", "#动力电池"]
    assert record["facets"][0]["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": url}]
    assert record["facets"][1]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "北汽集团"}]
    assert record["embed"]["external"]["uri"] == url and record["langs"] == ["zh"]
    assert post.length == 145 and post.unit == "graphemes"


def test_300_graphemes_with_emoji_and_whole_hashtags_only():
    post = sky().compose(article("edge-cases.json"))
    assert post.length <= 300 and post.text.endswith("\n\n#NEV")  # #BatteryTech did not fit, nor a part of it
    assert any("summary trimmed" in w for w in post.warnings)
    family = "👨\u200d👩\u200d👧\u200d👦"  # one grapheme, 25 bytes: 120 of them are 3,000 bytes
    assert sky().compose(article("baic-catl.json"), family * 120).length == 120
    with pytest.raises(ComposeError, match="bytes"):
        sky().compose(article("baic-catl.json"), family * 121)
    with pytest.raises(ComposeError, match="301"):
        sky().compose(article("baic-catl.json"), "x" * 301)


def test_facets_are_utf8_byte_offsets():
    text = "新能源 https://e.com/a #tag é @x"
    [link, tag] = facets(text, {})
    assert link["index"] == {"byteStart": 10, "byteEnd": 25} and tag["index"] == {"byteStart": 26, "byteEnd": 30}
    assert display_url("https://www.example.com/") == "example.com/"


def test_posts_with_a_thumb_blob_facets_and_a_link(emulators, runtime):
    emu = emulators["bluesky"]
    runtime.redis.delete(runtime.keys.token("bluesky-demo"))
    steps: list[str] = []
    receipt, post = publish(runtime, "bluesky-demo", article("baic-catl-zh.md"), steps=steps)
    [rec] = sandbox_posts(emu)
    assert receipt.post_id == rec["uri"] and rec["uri"].startswith(f"at://{DID}/app.bsky.feed.post/")
    assert receipt.url == f"https://bsky.app/profile/sharer.test/post/{rec['id']}"
    assert rec["text"] == post.text and rec["facet_text"][0] == "news.example.com/zh/2023/0…"
    thumb = rec["value"]["embed"]["external"]["thumb"]
    assert thumb["$type"] == "blob" and thumb["mimeType"] == "image/jpeg" and any("image uploaded" in s for s in steps)
    assert rec["value"]["createdAt"].endswith("Z")


def test_one_session_is_reused_and_an_expired_access_jwt_refreshed_once(emulators, runtime):
    emu = emulators["bluesky"]
    runtime.redis.delete(runtime.keys.token("bluesky-demo"))
    for n in range(3):
        publish(runtime, "bluesky-demo", article("baic-catl-page.txt"), delivery_id=f"dl_bs_{n}")
    inject(emu, path=CREATE, kind="expired_token")
    publish(runtime, "bluesky-demo", article("baic-catl-page.txt"), delivery_id="dl_bs_exp")
    paths = [r["path"].rsplit(".", 1)[-1] for r in emu.requests]
    assert paths.count("createSession") == 1 and paths.count("refreshSession") == 1 and len(sandbox_posts(emu)) == 4
    # a spent refresh JWT (another worker's, or revoked): sign in again
    requests.post(emu.url + "/_sandbox/reset", timeout=5)
    publish(runtime, "bluesky-demo", article("baic-catl-page.txt"), delivery_id="dl_bs_new")
    assert len(sandbox_posts(emu)) == 1


def test_mentions_resolve_to_dids_and_unknown_handles_stay_text(emulators, runtime):
    steps: list[str] = []
    publish(runtime, "bluesky-demo", override="hi @alice.test and @nobody.test", steps=steps)
    [rec] = sandbox_posts(emulators["bluesky"])
    [mention] = [f for f in rec["value"]["facets"] if f["features"][0]["$type"].endswith("#mention")]
    assert mention["features"][0]["did"].startswith("did:plc:alice") and rec["facet_text"] == ["@alice.test"]
    assert any("@nobody.test is not a Bluesky handle" in s for s in steps)


def test_up_to_four_images_as_an_images_embed(emulators, runtime):
    emu = emulators["bluesky"]
    body = "".join(f'<img src="{emu.url}/_sandbox/images/b{i}.png" alt="pic {i}">' for i in range(5))
    art = article("baic-catl.json", image=f"{emu.url}/_sandbox/images/lead.jpg", body_html=body)
    publish(runtime, "bluesky-album", art)
    [rec] = sandbox_posts(emu)
    images = rec["value"]["embed"]["images"]
    assert rec["value"]["embed"]["$type"] == "app.bsky.embed.images" and len(images) == 4
    assert [i["alt"] for i in images] == [art.title, "pic 0", "pic 1", "pic 2"]


FAULTS = [
    Fault("a wrong app password is auth", "bluesky-badpass", None, AuthExpired, "Invalid identifier or password"),
    Fault("InvalidRequest is refused", "bluesky-demo", {"kind": "error", "code": "InvalidRequest",
                                                       "message": "Record/text too long"}, PermanentError,
          "Record/text too long", path=CREATE, code="InvalidRequest"),
    Fault("429 waits ratelimit-reset", "bluesky-demo", {"kind": "error", "code": "RateLimitExceeded", "reset_in": 90},
          RateLimited, "rate limit", path=CREATE, check=lambda e: 80 <= e.retry_after <= 91),
    Fault("UpstreamFailure is transient", "bluesky-demo", {"kind": "error", "code": "InternalServerError"},
          TransientError, "HTTP 500", path=CREATE),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    runtime.redis.delete(runtime.keys.token(case.account))
    run_fault(case, emulators, runtime)


def test_find_existing_reads_the_records_since_the_first_send(emulators, runtime):
    platform = Bluesky(runtime.settings.account("bluesky-demo"))
    post = platform.compose(article("baic-catl.json"))
    context = ctx(runtime, "bluesky-demo", delivery_id="dl_bs_find")
    assert platform.find_existing(post, context) is None
    receipt = platform.publish(post, context)
    assert platform.find_existing(post, context) == receipt
    other = platform.compose(article("baic-catl-zh.md"))
    assert platform.find_existing(other, context) is None


def test_worker_delivers(emulators, runtime, worker):
    [d] = wait_settled(runtime, service.share(runtime, article("edge-cases.json"), ["bluesky-demo"]).share_id)
    [rec] = sandbox_posts(emulators["bluesky"])
    assert d.status == "delivered" and d.post_id == rec["uri"] and d.post_url.startswith("https://bsky.app/"), d.error
    assert TXT_URL not in rec["text"]  # the link is shown short; the facet carries it
