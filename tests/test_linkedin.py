"""LinkedIn: little-format composition, the client against the emulator (versioned headers, x-restli-id,
thumbnail upload, token refresh), errors, reconciliation, the worker."""

from __future__ import annotations

import pytest
from conftest import inject, sandbox_posts, wait_settled
from harness import TXT_URL, Fault, article, ctx, faults, offline, publish, run_fault

from sharer import service
from sharer.errors import AuthExpired, ComposeError, Duplicate, PermanentError, RateLimited, TransientError
from sharer.platforms.linkedin import LinkedIn, escape
from sharer.sandbox.linkedin import little_text

UTM = "utm_source=linkedin&utm_medium=social&utm_campaign=sharer"
ORG = "urn:li:organization:2414183"
ACCOUNTS = """
[accounts.linkedin-refresh]
platform = "linkedin"
api_base = "{url}"
credentials.access_token = "env:SHARER_TEST_WRONG_SECRET"
credentials.refresh_token = "sandbox:"
credentials.client_id = "sandbox:"
credentials.client_secret = "sandbox:"
options = { author = "urn:li:organization:2414183", oauth_base = "", thumbnail = false }

[accounts.linkedin-static]
platform = "linkedin"
api_base = "{url}"
credentials = { access_token = "sandbox:" }
options = { author = "urn:li:organization:2414183", thumbnail = false, hashtags = false }
"""


def li(**options):
    return offline(LinkedIn, author=ORG, **options)


def test_commentary_is_escaped_little_format_with_hashtags_and_an_article_card():
    art = article("baic-catl.json")
    post = li().compose(art)
    assert post.text == f"{art.title}\n\n{art.summary}\n\n#BAIC #CATL #NEV #PowerBattery"
    tags = "#BAIC #CATL #NEV #PowerBattery"
    assert post.payload["commentary"] == f"{escape(art.title)}\n\n{escape(art.summary)}\n\n{tags}"
    assert little_text(post.payload["commentary"]) == post.text  # what LinkedIn shows is what we meant
    assert post.payload["content"] == {"article": {"source": f"{TXT_URL}?{UTM}", "title": art.title,
                                                   "description": art.summary}}
    assert post.payload["author"] == ORG and post.payload["lifecycleState"] == "PUBLISHED"


def test_reserved_characters_never_truncate_the_post():
    art = article("edge-cases.json", summary="C++ (beta) [v2] <fast> *bold* _x_ ~y~ a|b {c} @you \\ #1 rank")
    post = li(hashtags=False).compose(art)
    assert little_text(post.payload["commentary"]) == post.text
    override = li().compose(art, "Read (now) #NEV")
    assert override.payload["commentary"] == "Read \\(now\\) #NEV" and little_text(override.payload["commentary"]) == \
        "Read (now) #NEV"


def test_the_limit_counts_the_escaped_text():
    art = article("baic-catl.json", summary="(x) " * 1000)
    post = li().compose(art)
    assert post.length == len(post.payload["commentary"]) <= 3000 and post.warnings
    with pytest.raises(ComposeError, match="3000"):
        li().compose(art, "(" * 1501)  # 3002 once escaped


def test_options_are_checked():
    for bad, key in (({}, "author"), ({"author": ORG, "version": "2024-11"}, "version"),
                     ({"author": ORG, "visibility": "LOGGED_IN"}, "visibility")):
        with pytest.raises(ValueError, match=key):
            LinkedIn.parse_options(bad)


def test_post_id_comes_from_x_restli_id_and_the_thumbnail_is_uploaded(emulators, runtime):
    emu = emulators["linkedin"]
    steps: list[str] = []
    receipt, post = publish(runtime, "linkedin-demo", steps=steps)
    [share] = sandbox_posts(emu)
    assert receipt.post_id == share["id"] and receipt.url == f"https://www.linkedin.com/feed/update/{share['id']}/"
    assert share["commentary"] == post.text and share["version"] == "202611"
    thumb = share["content"]["article"]["thumbnail"]
    assert thumb.startswith("urn:li:image:") and f"thumbnail uploaded ({thumb})" in steps


def test_an_expired_token_is_refreshed_once_for_all_workers(emulators, runtime):
    emu = emulators["linkedin"]
    runtime.redis.delete(runtime.keys.token("linkedin-refresh"))
    publish(runtime, "linkedin-refresh")
    inject(emu, path="/rest/posts", kind="expired_token")
    publish(runtime, "linkedin-refresh", article("baic-catl-zh.md"), delivery_id="dl_li_2")
    refreshes = [r for r in emu.requests if r["path"] == "/oauth/v2/accessToken"]
    assert len(sandbox_posts(emu)) == 2 and len(refreshes) == 2  # the first use, then after the expiry


FAULTS = [
    Fault("an expired token without refresh is auth", "linkedin-static", {"kind": "expired_token"}, AuthExpired,
          "re-authorise", path="/rest/posts", status=401),
    Fault("403 is refused", "linkedin-static", {"kind": "error", "code": 403}, PermanentError, "w_organization_social",
          path="/rest/posts", status=403),
    Fault("426 names the version option", "linkedin-static", {"kind": "error", "code": 426}, PermanentError,
          "options.version", path="/rest/posts", status=426),
    Fault("422 is refused", "linkedin-static", {"kind": "error", "code": 422}, PermanentError, "/commentary",
          path="/rest/posts", status=422),
    Fault("429 is rate-limited", "linkedin-static", {"kind": "error", "code": 429, "retry_after": 30}, RateLimited,
          "throttle", path="/rest/posts", check=lambda e: e.retry_after == 30.0),
    Fault("500 is transient", "linkedin-static", {"kind": "error", "code": 500}, TransientError, "HTTP 500",
          path="/rest/posts"),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_a_duplicate_names_the_earlier_post_and_find_existing_returns_it(emulators, runtime):
    first, post = publish(runtime, "linkedin-static")
    platform = LinkedIn(runtime.settings.account("linkedin-static"))
    context = ctx(runtime, "linkedin-static", delivery_id="dl_li_dup")
    with pytest.raises(Duplicate, match="duplicate"):
        platform.publish(post, context)
    assert platform.find_existing(post, context) == first


def test_find_existing_reads_the_authors_posts_since_the_first_send(emulators, runtime):
    platform = LinkedIn(runtime.settings.account("linkedin-static"))
    post = platform.compose(article("baic-catl-zh.md"))
    context = ctx(runtime, "linkedin-static", delivery_id="dl_li_find")
    assert platform.find_existing(post, context) is None  # nothing sent
    receipt = platform.publish(post, context)
    assert platform.find_existing(post, context) == receipt
    other = platform.compose(article("baic-catl.json"))
    context.state.pop("duplicate_of", None)
    assert platform.find_existing(other, context) is None


def test_worker_delivers_and_settles_a_duplicate(emulators, runtime, worker):
    [d] = wait_settled(runtime, service.share(runtime, article("edge-cases.json"), ["linkedin-demo"]).share_id)
    assert d.status == "delivered" and d.post_id == sandbox_posts(emulators["linkedin"])[0]["id"], d.error
    [again] = wait_settled(runtime, service.share(runtime, article("edge-cases.json"), ["linkedin-demo"]).share_id)
    assert again.status == "delivered" and again.post_id == d.post_id, again.error  # found, not posted twice
    assert len(sandbox_posts(emulators["linkedin"])) == 1
