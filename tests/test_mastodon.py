"""Mastodon: composition goldens, the client against the emulator, the real worker end to end."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from conftest import redis_dump as _redis_dump
from harness import TXT_URL, Fault, article, configure, ctx, faults, offline, run_fault
from harness import publish as _publish

from sharer import service
from sharer.article import Article
from sharer.errors import Ambiguous, AuthExpired, ComposeError, PermanentError, RateLimited, TransientError
from sharer.platforms.mastodon import Mastodon, count_status, hashtag
from sharer.sandbox.mastodon import status_length
from sharer.text import graphemes

UTM = "utm_source=mastodon&utm_medium=social&utm_campaign=sharer"
EN_TITLE = "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation"
EN_SUMMARY = ("BAIC GROUP and CATL signed a business cooperation and advanced technology strategic cooperation "
              "agreement to jointly develop power battery products and explore the NEV market.")
PIC = "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
EDGE_TITLE = ("🚗⚡ New NEV platform: 1,000 km range, 10-minute charging — and a very long headline that will not "
              "fit in a single short social post no matter how it is trimmed by a careless formatter")
SECRETS = ("sandbox-access_token", "not-the-sandbox-secret")


def masto(**options) -> Mastodon:
    return offline(Mastodon, **options)


# --- composition -----------------------------------------------------------------------------------

GOLDEN = {
    "baic-catl.json": (f"{EN_TITLE}\n\n{EN_SUMMARY}\n\n{TXT_URL}?{UTM}\n\n#BAIC #CATL #NEV #PowerBattery", 323, PIC),
    "baic-catl-page.html": (f"{EN_TITLE}\n\nBAIC GROUP and CATL signed a business cooperation and advanced technology "
                            f"strategic cooperation agreement.\n\n{TXT_URL}?{UTM}", 222, PIC),
    "baic-catl-page.txt": (f"{EN_TITLE}...\n\nOn March 13th, BAIC GROUP and Contemporary Amperex Technology Co. "
                           "Limited (CATL) signed a business cooperation and advanced technology strategic cooperation "
                           f"agreement.\n\n{TXT_URL}?{UTM}", 286, None),
    "baic-catl-zh.md": ("北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品\n\n"
                        "3月13日，北汽集团与宁德时代签署业务合作及先进技术战略合作协议，双方将联合开发动力电池产品，共同开拓新能源汽车市场。\n\n"
                        f"https://news.example.com/zh/2023/03/13/baic-catl-cooperation?{UTM}\n\n"
                        "#北汽集团 #宁德时代 #新能源汽车 #动力电池", 141, PIC),
    "edge-cases.json": (
        f"{EDGE_TITLE}\n\nFamily emoji 👨\u200d👩\u200d👧\u200d👦, flags 🇨🇳🇩🇪, combining accents (é as e + \u0301), "
        "CJK 新能源 and a URL https://news.example.com/specs must never be split mid-character when a post is "
        "trimmed. <script>alert('x')</script> in text is text, not markup.\n\n"
        f"https://news.example.com/en/2026/11/01/nev-platform?ref=homepage&lang=en&{UTM}\n\n#NEV #BatteryTech #北汽",
        445, "https://news.example.com/images/nev.png"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_default_status_golden_for_every_example(name):
    text, length, image = GOLDEN[name]
    art = article(name)
    post = masto().compose(art)
    assert post.text == text and post.length == length <= 500
    assert (post.limit, post.unit, post.warnings) == (500, "characters", ())
    assert post.payload["status"] == text and post.payload["visibility"] == "public"
    assert post.payload.get("language") == art.lang
    assert post.payload["media"] == ({"url": image, "description": art.title} if image else None)
    assert status_length(text, 23) == length  # the emulator's independent count agrees


def test_counting_rules_graphemes_urls_and_remote_mentions():
    assert count_status("👨\u200d👩\u200d👧\u200d👦 e\u0301 🇨🇳") == 5
    assert count_status("see https://example.com/" + "a" * 200) == 4 + 23
    assert count_status("hi @alice@example.social") == len("hi @alice")
    assert count_status("mail bob@example.com") == len("mail bob@example.com")
    assert count_status("x https://e.com/" + "p" * 50, url_weight=30) == 2 + 30
    assert [hashtag(t) for t in ("power battery", "C++", "北汽", "NEV", "e-mobility", "2024")] == [
        "#PowerBattery", None, "#北汽", "#NEV", "#EMobility", None]


def test_hashtags_only_while_they_fit_and_summary_trimmed_grapheme_safe():
    art = article("edge-cases.json")
    some = masto(max_characters=441).compose(art)
    assert some.text.endswith("\n\n#NEV #BatteryTech") and some.length == 441
    assert any("#北汽" in w for w in some.warnings)
    short = masto(max_characters=300).compose(art)
    assert short.length <= 300 and "#" not in short.text.split("\n\n")[-1]
    title, summary, url = short.text.split("\n\n")
    assert title == EDGE_TITLE and url.startswith("https://news.example.com/en/2026/11/01/nev-platform?ref=")
    body = summary.removesuffix("…")
    assert summary.endswith("…") and graphemes(art.summary)[: len(graphemes(body))] == graphemes(body)
    assert "summary trimmed" in short.warnings[0]


def test_override_exactly_at_the_limit_is_accepted_and_one_more_is_refused(emulators, runtime):
    family = "👨\u200d👩\u200d👧\u200d👦"
    text = family * 469 + " https://news.example.com/" + "x" * 100 + " @alice@example.social"
    assert count_status(text) == 500 and status_length(text, 23) == 500
    platform = Mastodon(runtime.settings.account("mastodon-unlisted"))
    post = platform.compose(article("baic-catl.json"), text)
    receipt = platform.publish(post, ctx(runtime, "mastodon-unlisted"))
    assert receipt.post_id
    with pytest.raises(ComposeError) as e:
        platform.compose(article("baic-catl.json"), family + text)
    assert "501" in str(e.value) and "500" in str(e.value)


def test_options_are_validated():
    for bad in ({"visibility": "friends"}, {"max_characters": 0}, {"max_characters": 12.5}, {"nope": 1}):
        with pytest.raises(ValueError):
            Mastodon.parse_options(bad)


# --- client against the emulator ------------------------------------------------------------------

def publish(runtime, name: str, art: Article | None = None, *, steps: list | None = None,
            delivery_id: str = "dl_mastodon_test"):
    return _publish(runtime, name, art, steps=steps, delivery_id=delivery_id, default="baic-catl-page.txt")


def calls(emulator, fragment: str) -> list[dict]:
    reqs = requests.get(emulator.url + "/_sandbox/requests", timeout=5).json()["requests"]
    return [r for r in reqs if fragment in f"{r['method']} {r['path']}"]


@pytest.fixture
def fresh_cache(runtime):
    for name in ("mastodon-main", "mastodon-unlisted", "mastodon-big", "mastodon-slowmedia"):
        runtime.redis.delete(runtime.keys.cache(name, "instance"))


def test_happy_path_status_url_visibility_language(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    receipt, post = publish(runtime, "mastodon-unlisted", article("baic-catl.json"))
    [status] = sandbox_posts(emu)
    assert receipt.post_id == status["id"] and receipt.url == f"{emu.url}/@sharer/{status['id']}"
    assert status["text"] == post.text and "#" not in post.text
    assert (status["visibility"], status["language"], status["media_ids"]) == ("unlisted", "de", [])
    assert status["idempotency_key"] == "dl_mastodon_test"
    page = requests.get(receipt.url, timeout=5).json()
    assert page["id"] == receipt.post_id and f"{TXT_URL}?{UTM}".replace("&", "&amp;") in page["content"]


def test_a_retry_after_a_dropped_connection_makes_one_status(emulators, runtime):
    emu = emulators["mastodon"]
    inject(emu, path="/api/v1/statuses", kind="drop_after")
    with pytest.raises(TransientError) as e:
        publish(runtime, "mastodon-main", delivery_id="dl_drop")
    assert not isinstance(e.value, Ambiguous)  # safe to retry: the Idempotency-Key de-duplicates
    receipt, _ = publish(runtime, "mastodon-main", delivery_id="dl_drop")
    [status] = sandbox_posts(emu)
    assert receipt.post_id == status["id"] and len(calls(emu, "POST /api/v1/statuses")) == 2
    other, _ = publish(runtime, "mastodon-main", delivery_id="dl_other")
    assert other.post_id != receipt.post_id and len(sandbox_posts(emu)) == 2


def test_image_upload_202_then_poll(emulators, runtime):
    emu = emulators["mastodon"]
    art = dataclasses.replace(article("baic-catl.json"), image=f"{emu.url}/_sandbox/images/photo.png")
    steps: list[str] = []
    receipt, post = publish(runtime, "mastodon-main", art, steps=steps)
    [status] = sandbox_posts(emu)
    [upload] = calls(emu, "POST /api/v2/media")
    polls = calls(emu, "GET /api/v1/media/")
    assert len(polls) == 3  # 206, 206, then 200
    [media_id] = status["media_ids"]
    assert polls[0]["path"] == f"/api/v1/media/{media_id}"
    assert any("waiting for the instance to process it" in s for s in steps)
    assert f"image ready (media {media_id})" in steps
    page = requests.get(receipt.url, timeout=5).json()
    assert page["media_attachments"][0]["description"] == EN_TITLE
    assert page["media_attachments"][0]["url"].endswith("/original.png")


def test_media_still_processing_is_transient_and_a_non_image_is_permanent(emulators, runtime):
    emu = emulators["mastodon"]
    configure(emu, media_polls=5)
    art = dataclasses.replace(article("baic-catl.json"), image=f"{emu.url}/_sandbox/images/photo.jpg")
    with pytest.raises(TransientError) as e:
        publish(runtime, "mastodon-slowmedia", art)
    assert "still processing after 2 checks" in str(e.value)
    bad = dataclasses.replace(art, image=f"{emu.url}/api/v2/instance")
    with pytest.raises(PermanentError) as e:
        publish(runtime, "mastodon-slowmedia", bad)
    assert "/api/v2/instance" in str(e.value) and "image" in str(e.value)  # wording is sharer.media's
    assert sandbox_posts(emu) == []


def test_instance_limit_is_cached_in_redis(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    publish(runtime, "mastodon-main")
    publish(runtime, "mastodon-main", delivery_id="dl_second")
    assert len(calls(emu, "GET /api/v2/instance")) == 1
    cached = runtime.redis.get(runtime.keys.cache("mastodon-main", "instance"))
    assert b'"max_characters": 500' in cached and 0 < runtime.redis.ttl(
        runtime.keys.cache("mastodon-main", "instance")) <= 86400


def test_instance_limit_lower_than_the_composed_status_is_a_clear_permanent_error(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    configure(emu, max_characters=300)
    with pytest.raises(PermanentError) as e:
        publish(runtime, "mastodon-main", article("edge-cases.json"))
    assert "445 characters" in str(e.value) and "options.max_characters = 300" in str(e.value)
    assert calls(emu, "POST /api/v1/statuses") == []
    configure(emu, max_characters=1000)  # an instance with a bigger limit, configured to match
    runtime.redis.delete(runtime.keys.cache("mastodon-big", "instance"))
    long_summary = dataclasses.replace(article("baic-catl.json"), summary=EN_SUMMARY * 4)
    receipt, post = publish(runtime, "mastodon-big", long_summary)
    assert 500 < post.length <= 1000 and receipt.post_id


def test_rate_limit_reset_is_read_as_iso_8601(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    reset = datetime.fromtimestamp(time.time() + 42, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    inject(emu, path="/api/v1/statuses", kind="status", status=429, body={"error": "Too many requests"},
           headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    with pytest.raises(RateLimited) as e:
        publish(runtime, "mastodon-main")
    assert 39 <= e.value.retry_after <= 42 and "Too many requests" in str(e.value)
    configure(emu, rate_limit=2, rate_window=120)
    remaining = []
    for _ in range(2):
        resp = requests.get(emu.url + "/api/v1/accounts/verify_credentials", timeout=5,
                            headers={"Authorization": "Bearer sandbox-access_token"})
        assert resp.status_code == 200 and resp.headers["X-RateLimit-Reset"].endswith("Z")
        remaining.append(resp.headers["X-RateLimit-Remaining"])
    assert remaining == ["1", "0"]
    with pytest.raises(RateLimited) as e:
        publish(runtime, "mastodon-main")  # the token's 3rd call in the window
    assert 100 <= e.value.retry_after <= 120


TXT = {"default": "baic-catl-page.txt"}  # no image: the status POST is the first write
FAULTS = [
    Fault("a wrong token is auth", "mastodon-badtoken", None, AuthExpired, "The access token is invalid", publish=TXT),
    Fault("a revoked token is auth", "mastodon-main", {"kind": "expired_token"}, AuthExpired,
          "re-authorise the app", path="/api/v1/statuses", publish=TXT),
    *(Fault(f"{code} is refused", "mastodon-main", {"kind": "error", "code": code}, PermanentError, needle,
            path="/api/v1/statuses", status=code, publish=TXT)
      for code, needle in ((403, "This action is not allowed"), (404, "Record not found"),
                           (422, "Text character limit of 500 exceeded"))),
    # retry is safe with the Idempotency-Key, even after a gateway error
    *(Fault(f"{code} is transient", "mastodon-main", {"kind": "error", "code": code}, TransientError,
            path="/api/v1/statuses", check=lambda e: not isinstance(e, Ambiguous), publish=TXT)
      for code in (500, 502, 503, 504)),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime, fresh_cache):
    err = run_fault(case, emulators, runtime)
    assert not any(s in str(err) for s in SECRETS)


def test_find_existing_matches_the_tagged_url(emulators, runtime, fresh_cache):
    platform = Mastodon(runtime.settings.account("mastodon-main"))
    receipt, post = publish(runtime, "mastodon-main", article("baic-catl-page.txt"))
    found = platform.find_existing(post, ctx(runtime, "mastodon-main"))
    assert found == dataclasses.replace(receipt, note=None)
    other = platform.compose(article("baic-catl-zh.md"))
    assert platform.find_existing(other, ctx(runtime, "mastodon-main")) is None
    no_link = platform.compose(article("baic-catl-zh.md"), "just words, no link")
    with pytest.raises(Ambiguous):
        platform.find_existing(no_link, ctx(runtime, "mastodon-main"))


# --- end to end through the real worker -----------------------------------------------------------

def test_worker_delivers_with_image_and_retries_a_dropped_post_once(emulators, runtime, worker, fresh_cache):
    emu = emulators["mastodon"]
    inject(emu, path="/api/v1/statuses", kind="drop_after")
    result = service.share(runtime, article("edge-cases.json"), ["mastodon-main"])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "delivered" and d.post_url.startswith(f"{emu.url}/@sharer/"), (d.status, d.error)
    [status] = sandbox_posts(emu)  # one status although the POST was made twice
    assert d.post_id == status["id"] and status["idempotency_key"] == d.id and len(status["media_ids"]) == 1
    assert len(calls(emu, "POST /api/v1/statuses")) == 2 and len(calls(emu, "POST /api/v2/media")) == 1
    assert any("image ready" in e["message"] for e in d.events)


def test_worker_fails_a_rejected_status_and_no_secret_is_stored_or_logged(emulators, runtime, worker):
    inject(emulators["mastodon"], path="/api/v1/statuses", kind="error", code=422,
           message="Validation failed: Text character limit of 500 exceeded")
    # one account at a time: the one-shot fault must meet mastodon-main's request, not the bad token's
    first = service.share(runtime, article("baic-catl-page.txt"), ["mastodon-main"])
    by_account = {d.account: d for d in wait_settled(runtime, first.share_id)}
    second = service.share(runtime, article("baic-catl-page.txt"), ["mastodon-badtoken"])
    by_account.update({d.account: d for d in wait_settled(runtime, second.share_id)})
    assert by_account["mastodon-main"].status == "failed"
    assert "Text character limit of 500 exceeded" in by_account["mastodon-main"].error
    assert by_account["mastodon-badtoken"].status == "failed"
    assert "re-authorise" in by_account["mastodon-badtoken"].error
    dump = _redis_dump(runtime) + worker.output()
    for secret in SECRETS:
        assert secret not in dump



# --- several images ----------------------------------------------------------------------------------

def test_up_to_four_images_lead_first_with_their_alt_text(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    body = "".join(f'<p>p{i}</p><img src="{emu.url}/_sandbox/images/b{i}.png" alt="picture {i}">' for i in range(5))
    art = article("baic-catl.json", image=f"{emu.url}/_sandbox/images/lead.jpg", body_html=body)
    one = masto().compose(art)
    assert one.media == (art.image,) and len(one.media_offered) == 3 and "more_media" not in one.payload
    post = Mastodon(runtime.settings.account("mastodon-album")).compose(art)
    assert post.media == (art.image, *(f"{emu.url}/_sandbox/images/b{i}.png" for i in range(3)))
    assert post.media_offered == ()  # four is Mastodon's most: the fifth is not offered
    assert post.payload["media"] == {"url": art.image, "description": art.title}
    assert [m["description"] for m in post.payload["more_media"]] == ["picture 0", "picture 1", "picture 2"]
    receipt, _ = publish(runtime, "mastodon-album", art)
    [status] = sandbox_posts(emu)
    assert status["id"] == receipt.post_id and len(status["media_ids"]) == 4
    assert len(calls(emu, "POST /api/v2/media")) == 4
    with pytest.raises(ValueError, match="images"):
        Mastodon.parse_options({"images": 5})


def test_a_retry_does_not_upload_the_images_again(emulators, runtime, fresh_cache):
    emu = emulators["mastodon"]
    body = "".join(f'<img src="{emu.url}/_sandbox/images/b{i}.png">' for i in range(2))
    art = article("baic-catl.json", image=f"{emu.url}/_sandbox/images/lead.jpg", body_html=body)
    inject(emu, path="/api/v1/statuses", kind="status", status=503, body={"error": "busy"})
    platform = Mastodon(runtime.settings.account("mastodon-album"))
    post = platform.compose(art)
    context = ctx(runtime, "mastodon-album")
    with pytest.raises(TransientError):
        platform.publish(post, context)
    assert {k for k in context.state if k.startswith("media_id")} == {"media_id", "media_id_1", "media_id_2"}
    platform.publish(post, context)  # the worker's retry keeps ctx.state
    assert len(calls(emu, "POST /api/v2/media")) == 3 and len(sandbox_posts(emu)[0]["media_ids"]) == 3
