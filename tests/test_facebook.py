"""Facebook Page: composition, the client against the emulator (Page token from a user token, photos,
506 duplicates, feed lookup), the worker, the kill -9 proof."""

from __future__ import annotations

import pytest
import requests
from conftest import inject, sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, kill_while_held, offline, publish, run_fault

from sharer import service
from sharer.errors import Ambiguous, AuthExpired, Duplicate, PermanentError, RateLimited, TransientError
from sharer.platforms.facebook import Facebook

UTM = "utm_source=facebook&utm_medium=social&utm_campaign=sharer"
PAGE = "1000000000000001"
FEED = f"/{PAGE}/feed"
ACCOUNTS = """
[accounts.facebook-page]
platform = "facebook"
api_base = "{url}"
credentials = { access_token = "sandbox:" }
options = { page_id = "1000000000000001" }
"""


def fb(**options):
    return offline(Facebook, page_id=PAGE, **options)


def test_a_link_post_is_title_and_summary_with_the_link_as_its_card():
    art = article("baic-catl.json")
    post = fb().compose(art)
    assert post.text == f"{art.title}\n\n{art.summary}" == post.payload["message"]
    assert post.payload["link"] == f"{TXT_URL}?{UTM}" and post.payload["photos"] == [] and post.media == ()


def test_a_photo_post_carries_the_link_in_its_caption_and_up_to_n_images():
    emu = "https://img.example.com"
    body = "".join(f'<img src="{emu}/b{i}.png">' for i in range(4))
    art = article("baic-catl.json", image=f"{emu}/lead.jpg", body_html=body)
    post = fb(post_as="photo", images=3).compose(art)
    assert post.text.endswith(f"{TXT_URL}?{UTM}") and post.payload["photos"] == [
        f"{emu}/lead.jpg", f"{emu}/b0.png", f"{emu}/b1.png"]
    assert post.media_offered == (f"{emu}/b2.png", f"{emu}/b3.png")
    assert "posted as a link post" in fb(post_as="photo").compose(article("baic-catl-page.txt")).warnings[0]


def test_options_are_checked():
    for bad, key in (({}, "page_id"), ({"page_id": PAGE, "token": "app"}, "token"),
                     ({"page_id": PAGE, "post_as": "video"}, "post_as"), ({"page_id": PAGE, "images": 11}, "images")):
        with pytest.raises(ValueError, match=key):
            Facebook.parse_options(bad)


def test_the_page_token_is_fetched_once_with_the_user_token_and_shared(emulators, runtime):
    emu = emulators["facebook"]
    runtime.redis.delete(runtime.keys.token("facebook-demo"))
    steps: list[str] = []
    receipt, post = publish(runtime, "facebook-demo", steps=steps)
    publish(runtime, "facebook-demo", article("baic-catl-zh.md"), delivery_id="dl_fb_2")
    first, second = sandbox_posts(emu)
    assert receipt.post_id == first["id"] and receipt.url == f"https://www.facebook.com/{first['id']}"
    assert (first["message"], first["link"]) == (post.text, post.payload["link"]) and second["link"]
    fetches = [r for r in emu.requests if r["method"] == "GET" and r["path"].endswith(f"/{PAGE}")]
    assert len(fetches) == 1 and "Page access token fetched with the user token" in steps
    assert b"EAAPage" in runtime.redis.get(runtime.keys.token("facebook-demo"))


def test_an_expired_page_token_is_fetched_again_once_and_the_post_made(emulators, runtime):
    emu = emulators["facebook"]
    publish(runtime, "facebook-demo")  # a Page token is cached
    inject(emu, path=FEED, kind="expired_token")
    receipt, _ = publish(runtime, "facebook-demo", article("baic-catl-zh.md"), delivery_id="dl_fb_exp")
    assert receipt.post_id == sandbox_posts(emu)[-1]["id"] and len(sandbox_posts(emu)) == 2


def test_several_photos_are_uploaded_unpublished_then_attached_to_one_post(emulators, runtime):
    emu = emulators["facebook"]
    body = "".join(f'<img src="https://news.example.com/b{i}.png">' for i in range(3))
    art = article("baic-catl.json", body_html=body)
    receipt, post = publish(runtime, "facebook-demo-photos", art)
    [fbpost] = sandbox_posts(emu)
    assert len(fbpost["photos"]) == 3 and fbpost["message"] == post.text and receipt.post_id == fbpost["id"]
    one, _ = publish(runtime, "facebook-demo-photos", article("baic-catl-zh.md"), delivery_id="dl_fb_one")
    assert len(sandbox_posts(emu)[-1]["photos"]) == 1 and one.post_id == sandbox_posts(emu)[-1]["id"]


FAULTS = [
    Fault("a Page token that expired is auth", "facebook-page", {"kind": "expired_token"}, AuthExpired,
          ["190", "issue a new one"], path=FEED, code=190),
    Fault("506 is a duplicate", "facebook-page", {"kind": "error", "code": 506}, Duplicate, "Duplicate status",
          path=FEED, code=506),
    Fault("a page rate limit waits as X-Business-Use-Case-Usage says", "facebook-page",
          {"kind": "error", "code": 32, "regain_minutes": 7}, RateLimited, "Page request limit", path=FEED,
          check=lambda e: e.retry_after == 420.0),
    Fault("4 is rate-limited", "facebook-page", {"kind": "error", "code": 4}, RateLimited, "Application request",
          path=FEED),
    Fault("a permission error is refused", "facebook-page", {"kind": "error", "code": 200}, PermanentError,
          "pages_manage_posts", path=FEED, code=200),
    Fault("368 is refused with what to check", "facebook-page", {"kind": "error", "code": 368}, PermanentError,
          "policy", path=FEED),
    Fault("1609005 is refused", "facebook-page", {"kind": "error", "code": 1609005}, PermanentError,
          "could not read the article link", path=FEED),
    Fault("code 2 is transient", "facebook-page", {"kind": "error", "code": 2}, TransientError, "service error",
          path=FEED, check=lambda e: not isinstance(e, Ambiguous)),
    Fault("a dropped answer is ambiguous", "facebook-page", {"kind": "drop_after"}, Ambiguous, "dropped",
          path=FEED, posts=1),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_find_existing_reads_the_feed_since_the_first_send(emulators, runtime):
    platform = Facebook(runtime.settings.account("facebook-page"))
    post = platform.compose(article("baic-catl.json"))
    context = ctx(runtime, "facebook-page", delivery_id="dl_fb_find")
    assert platform.find_existing(post, context) is None  # never sent: no first-send time saved
    receipt = platform.publish(post, context)
    assert platform.find_existing(post, context) == receipt
    other = platform.compose(article("baic-catl-zh.md"))
    assert platform.find_existing(other, ctx(runtime, "facebook-page", delivery_id="dl_x")) is None
    old, _ = publish(runtime, "facebook-page", article("baic-catl-zh.md"), delivery_id="dl_old")
    emu = emulators["facebook"]
    for n in range(101):  # newer posts push it to the second page of the feed: it is read to its end
        requests.post(f"{emu.url}/v21.0/{PAGE}/feed", data={"message": f"filler {n}"}, timeout=5,
                      headers={"Authorization": "Bearer sandbox-access_token"}).raise_for_status()
    assert platform.find_existing(other, ctx(runtime, "facebook-page", delivery_id="dl_old")) is None  # no state
    context_other = ctx(runtime, "facebook-page", delivery_id="dl_y")
    context_other.state["sent_at"] = 1.0
    assert platform.find_existing(other, context_other) == old
    inject(emulators["facebook"], path=FEED, kind="status", status=500, body={"error": {"message": "x", "code": 1}})
    with pytest.raises(TransientError):
        platform.find_existing(post, context)


def test_worker_settles_a_506_duplicate_by_finding_the_earlier_post(emulators, runtime, worker):
    emu = emulators["facebook"]
    earlier, _ = publish(runtime, "facebook-page", article("edge-cases.json"))
    [d] = wait_settled(runtime, service.share(runtime, article("edge-cases.json"), ["facebook-page"]).share_id)
    assert d.status == "delivered" and d.post_id == earlier.post_id, (d.status, d.error)
    assert any("Duplicate status message" in e["message"] for e in d.events) and len(sandbox_posts(emu)) == 1


def test_worker_delivers(emulators, runtime, worker):
    [d] = wait_settled(runtime, service.share(runtime, article("baic-catl-zh.md"), ["facebook-demo"]).share_id)
    assert d.status == "delivered" and d.post_id == sandbox_posts(emulators["facebook"])[0]["id"], d.error


def test_a_killed_worker_leaves_one_post_found_on_the_feed(emulators):
    ds = kill_while_held(emulators, "facebook", FEED, "delivered")
    assert all(any("found on the platform" in e["message"] for e in d.events) for d in ds)
