"""X: weighted-length composition, threads, and the tweepy client against the X emulator and the worker."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import pytest
import requests
from conftest import run_cli, wait_settled
from harness import Fault, article, ctx, faults, inject, platform_for, publish, run_fault, sandbox_posts
from twitter_text import parse_tweet

from sharer import service
from sharer.article import Article
from sharer.errors import Ambiguous, AuthExpired, ComposeError, Duplicate, PermanentError, RateLimited, TransientError
from sharer.platforms._x_api import _Api
from sharer.platforms._x_media import MEDIA_MARGIN
from sharer.platforms.x import X, hashtag, hashtags
from sharer.sandbox.x import USER
from sharer.text import count_x, find_urls

USER_ID = USER["id"]
BAIC = "baic-catl.json"

OAUTH1 = ["x-main", "x-thread", "x-nouser", "x-album"]
OAUTH2 = ["x-oauth2", "x-oauth2c"]


@pytest.fixture(autouse=True)
def _forget_oauth2_tokens(request):
    """The emulator forgets its tokens between tests; so must Redis."""
    if "runtime" in request.fixturenames:
        rt = request.getfixturevalue("runtime")
        for name in OAUTH2:
            rt.redis.delete(rt.keys.token(name))
    yield


EXAMPLE_FILES = ["baic-catl.json", "baic-catl-zh.md", "edge-cases.json", "baic-catl-page.html", "baic-catl-page.txt"]


# --- composition ----------------------------------------------------------------------------------

def test_counter_sanity_against_conformance_vectors():
    # full vectors live in test_text_counting.py; here: the ones composition depends on
    vectors = [("Hi http://test.co", 26), ("中" * 160, 320), ("👨‍👩‍👧‍👦" * 140, 280), ("http://test.co " * 10, 240)]
    for text, n in vectors:
        assert count_x(text) == n == parse_tweet(text).weightedLength


@pytest.mark.parametrize("thread", [False, True])
@pytest.mark.parametrize("name", ["x-main", "x-nouser"])
def test_every_example_post_fits_by_our_counter_and_by_twitter_text(runtime, name, thread):
    for art in map(article, EXAMPLE_FILES):
        post = platform_for(runtime, name).compose(art, thread=thread)
        assert post.text == post.payload["parts"][0]
        assert post.length == max(count_x(p) for p in post.payload["parts"]) <= 280
        for part in post.payload["parts"]:
            assert count_x(part) == parse_tweet(part).weightedLength <= 280, part
            assert parse_tweet(part).valid


def test_hashtags_are_camel_cased_and_cleaned():
    assert hashtag("power battery") == "#PowerBattery"
    assert hashtag("Battery Tech") == "#BatteryTech"
    assert hashtag("北汽集团") == "#北汽集团"
    assert hashtag("C++") == "#C"
    assert hashtag("e-mobility") == "#emobility"
    assert hashtag("++") is None and hashtag("2023") is None and hashtag("   ") is None
    assert hashtags(["BAIC", "baic", "NEV", "power battery"]) == ["#BAIC", "#NEV", "#PowerBattery"]


def test_default_post_is_title_url_hashtags(runtime):
    post = platform_for(runtime, "x-main").compose(article(BAIC))
    url = "https://news.example.com/en/2023/03/13/baic-catl-cooperation?utm_source=x&utm_medium=social&utm_campaign=sharer"
    assert post.payload == {"parts": [post.text], "image": article(BAIC).image}
    assert post.text == ("BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation "
                         f"{url} #BAIC #CATL #NEV #PowerBattery")
    assert post.length == count_x(post.text) == 144 and post.warnings == ()


def test_long_title_is_trimmed_and_hashtags_come_only_while_they_fit(runtime):
    long_cjk = "北汽集团与宁德时代签署深化合作备忘录" * 10
    post = platform_for(runtime, "x-main").compose(article(BAIC, title=long_cjk))
    assert post.length <= 280 and "…" in post.text
    assert "https://news.example.com/en/2023/03/13/baic-catl-cooperation?utm_source=x" in post.text
    assert "#" not in post.text and any("title trimmed" in w for w in post.warnings)
    # room for some hashtags but not all: the first ones are kept, in order
    title = "T" * (280 - 23 - 1 - 1 - len("#BAIC #CATL") - 2)
    post = platform_for(runtime, "x-main").compose(article(BAIC, title=title))
    assert post.text.endswith(" #BAIC #CATL") and post.length <= 280
    assert any("hashtag" in w for w in post.warnings)


def test_override_is_validated_never_cut(runtime):
    x = platform_for(runtime, "x-main")
    with pytest.raises(ComposeError) as e:
        x.compose(article(BAIC), "字" * 141)
    assert "x-main" in str(e.value) and "282" in str(e.value) and "280" in str(e.value)
    post = x.compose(article(BAIC), "Read this: https://example.com/" + "a" * 300)
    assert post.payload["parts"] == [post.text] and post.length == 34
    thread = platform_for(runtime, "x-thread").compose(article(BAIC), "My own words")
    assert thread.payload["parts"] == ["My own words"] and any("thread" in w for w in thread.warnings)


def test_thread_parts_fit_are_numbered_and_keep_urls_whole(runtime):
    links = " ".join(f"see https://news.example.com/{'long-path-' * 8}{i} for part {i}." for i in range(12))
    body = "".join(f"<p>{links} Paragraph {k} ends here.</p>" for k in range(3))
    art = article(BAIC, body_html=body)
    post = platform_for(runtime, "x-thread").compose(art)
    parts = post.payload["parts"]
    n = len(parts)
    assert n > 3
    for k, part in enumerate(parts, 1):
        assert part.endswith(f" {k}/{n}") and count_x(part) <= 280
    assert "https://news.example.com/en/2023/03/13/baic-catl-cooperation" in parts[0]
    assert all("baic-catl-cooperation" not in p for p in parts[1:])
    sent_urls = [p[s:e] for p in parts[1:] for s, e in find_urls(p)]
    wanted = [f"https://news.example.com/{'long-path-' * 8}{i}" for i in range(12)] * 3
    assert sent_urls == wanted  # every link whole, none cut across posts
    # the per-share override switches thread mode either way
    assert len(platform_for(runtime, "x-main").compose(art, thread=True).payload["parts"]) == n
    assert len(platform_for(runtime, "x-thread").compose(art, thread=False).payload["parts"]) == 1


def three_part_article() -> Article:
    para = "The two sides plan to jointly develop power battery products and explore the NEV market. " * 2
    return article(BAIC, body_html=f"<p>{para.strip()}</p><p>{para.strip()}</p>")


# --- the client against the emulator --------------------------------------------------------------

def test_single_post_with_image_oauth1_signed(emulators, runtime):
    x = platform_for(runtime, "x-main")
    post = x.compose(article(BAIC))  # its image is served by the site stand-in via [media] rewrite
    steps: list[str] = []
    receipt = x.publish(post, ctx(runtime, "x-main", steps))
    [p] = sandbox_posts(emulators["x"])
    assert receipt.post_id == p["id"] and receipt.url == f"https://x.com/sharer_sandbox/status/{p['id']}"
    assert p["auth"] == "oauth1" and p["text"] == post.text and p["in_reply_to_tweet_id"] is None
    assert len(p["media_ids"]) == 1 and any("image uploaded" in s for s in steps)
    assert p["weighted_length"] == post.length
    assert "https://t.co/" in p["shown_text"]  # as on X


def test_image_that_is_not_an_image_is_left_out(emulators, runtime):
    x = platform_for(runtime, "x-nouser")
    for name in ("not-an-image.png", "big.png", "anim.gif"):
        requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)
        post = x.compose(article(BAIC, image=f"{emulators['x'].url}/_sandbox/files/{name}"))
        steps: list[str] = []
        receipt = x.publish(post, ctx(runtime, "x-nouser", steps))
        assert receipt.url == f"https://x.com/i/web/status/{receipt.post_id}"
        [p] = sandbox_posts(emulators["x"])
        assert p["media_ids"] == [] and any("image not attached" in s for s in steps), (name, steps)


def test_thread_of_three_is_chained(emulators, runtime):
    x = platform_for(runtime, "x-thread")
    post = x.compose(three_part_article())
    assert len(post.payload["parts"]) == 3
    receipt = x.publish(post, ctx(runtime, "x-thread"))
    posts = sandbox_posts(emulators["x"])
    assert [p["text"] for p in posts] == post.payload["parts"]
    assert posts[0]["in_reply_to_tweet_id"] is None and len(posts[0]["media_ids"]) == 1
    assert [p["in_reply_to_tweet_id"] for p in posts[1:]] == [posts[0]["id"], posts[1]["id"]]
    assert receipt.post_id == posts[0]["id"] and receipt.note == "thread of 3 posts"


def test_thread_broken_at_part_two_resumes_without_reposting(emulators, runtime):
    x = platform_for(runtime, "x-thread")
    post = x.compose(three_part_article())
    saved: list[list[str]] = []

    def on_state(state):  # (the image upload is saved too, before part 1)
        if "parts" not in state:
            return
        saved.append(list(state["parts"]))
        if len(saved) == 1:  # part 1 is out: the next POST /2/tweets fails
            inject(emulators["x"], path="/2/tweets", kind="error", code=503)

    first = ctx(runtime, "x-thread", on_state=on_state)
    with pytest.raises(TransientError) as e:
        x.publish(post, first)
    assert not isinstance(e.value, Ambiguous) and e.value.status == 503
    assert len(first.state["parts"]) == 1 and len(sandbox_posts(emulators["x"])) == 1
    steps: list[str] = []
    retry = ctx(runtime, "x-thread", steps, state=json.loads(json.dumps(first.state)), on_state=on_state)
    receipt = x.publish(post, retry)
    posts = sandbox_posts(emulators["x"])
    assert len(posts) == 3 and [p["text"] for p in posts] == post.payload["parts"]
    assert [p["in_reply_to_tweet_id"] for p in posts] == [None, posts[0]["id"], posts[1]["id"]]
    assert receipt.post_id == posts[0]["id"] and saved[-1] == [p["id"] for p in posts]
    assert any("resuming the thread at part 2/3" in s for s in steps)


def test_ambiguous_thread_part_is_found_and_the_thread_completed(emulators, runtime):
    """Part 2 is made but its answer lost: reconciliation finds it (the reply to part 1), the retry posts part 3."""
    x = platform_for(runtime, "x-thread")
    post = x.compose(three_part_article())

    def on_state(state):
        if len(state.get("parts", [])) == 1:
            inject(emulators["x"], path="/2/tweets", kind="drop_after")

    steps: list[str] = []
    c = ctx(runtime, "x-thread", steps, on_state=on_state)
    with pytest.raises(Ambiguous):
        x.publish(post, c)
    assert len(sandbox_posts(emulators["x"])) == 2 and len(c.state["parts"]) == 1
    assert x.find_existing(post, c) is None  # not complete: not "delivered"...
    assert len(c.state["parts"]) == 2 and any("parts 1-2 of 3 found" in s for s in steps)  # ...but recorded
    receipt = x.publish(post, c)
    posts = sandbox_posts(emulators["x"])
    assert len(posts) == 3 and [p["in_reply_to_tweet_id"] for p in posts] == [None, posts[0]["id"], posts[1]["id"]]
    assert x.find_existing(post, ctx(runtime, "x-thread")) == receipt


def test_rate_limit_becomes_rate_limited_with_reset_time(emulators, runtime):
    requests.post(emulators["x"].url + "/_sandbox/config", json={"post_limit": 1, "window": 600}, timeout=5)
    x = platform_for(runtime, "x-main")
    x.publish(x.compose(article(BAIC)), ctx(runtime, "x-main"))
    with pytest.raises(RateLimited) as e:
        x.publish(x.compose(article(BAIC, title="Another title")), ctx(runtime, "x-main"))
    assert 590 <= e.value.retry_after <= 601 and e.value.status == 429


def test_duplicate_is_duplicate_and_find_existing_finds_it(emulators, runtime):
    x = platform_for(runtime, "x-main")
    post = x.compose(article(BAIC))
    c = ctx(runtime, "x-main")
    assert x.find_existing(post, c) is None
    receipt = x.publish(post, c)
    with pytest.raises(Duplicate):
        x.publish(post, ctx(runtime, "x-main"))
    assert x.find_existing(post, c) == receipt  # matched on entities.urls[].expanded_url, text has t.co


NO_IMAGE = {"art": article(BAIC, image=None)}
TOO_LONG = {"parts": ["a" * 281], "image": None}
FAULTS = [
    Fault("an app outside a Project is refused", "x-main", {"kind": "error", "code": "client-not-enrolled"},
          PermanentError, "HTTP 403", path="/2/tweets", exact=True, status=403, publish=NO_IMAGE),
    Fault("500 is transient", "x-main", {"kind": "error", "code": 500}, TransientError, "HTTP 500",
          path="/2/tweets", exact=True, status=500, publish=NO_IMAGE),
    Fault("a usage cap is a rate limit", "x-main", {"kind": "error", "code": "usage_capped"}, RateLimited,
          "HTTP 429", path="/2/tweets", exact=True, status=429, publish=NO_IMAGE),
    Fault("a dropped answer is ambiguous", "x-main", {"kind": "drop_after"}, Ambiguous, path="/2/tweets",
          exact=True, posts=1, publish=NO_IMAGE),
    Fault("a read timeout is ambiguous", "x-main", {"kind": "timeout", "seconds": 2}, Ambiguous, path="/2/tweets",
          exact=True, publish={**NO_IMAGE, "timeout": 1}),
    Fault("a revoked OAuth 1.0a token means re-authorise", "x-main", {"kind": "expired_token"}, PermanentError,
          ["HTTP 401", "re-authorise account 'x-main'"], path="/2/tweets", exact=True, status=401,
          publish=NO_IMAGE),
    Fault("a text over 280 is refused", "x-main", None, PermanentError, "too long", status=400,
          publish={"payload": TOO_LONG}),
    Fault("an image upload refused with 500 is transient, nothing posted", "x-main", {"kind": "error", "code": 500},
          TransientError, ["HTTP 500", "image upload"], path="/2/media/upload", exact=True, status=500),
]


@faults(FAULTS)
def test_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)


def test_a_refused_connection_is_transient(emulators, runtime):
    refused = dataclasses.replace(runtime.settings.account("x-main"), api_base="http://127.0.0.1:9")
    x = X(refused)
    with pytest.raises(TransientError) as e:
        x.publish(x.compose(article(BAIC, image=None)), ctx(runtime, "x-main", account=refused))
    assert type(e.value) is TransientError


# --- several images (up to 4, on the first post) ----------------------------------------------------

def album(base: str, n: int = 5, name: str = BAIC) -> Article:
    """A lead image and ``n`` body images (each a different picture on the emulator), plus a repeat and a
    data: URI that must not be offered."""
    body = "".join(f'<p>para {i}</p><img src="{base}/_sandbox/images/b{i}.png" alt="picture {i}">' for i in range(n))
    body += f'<img src="{base}/_sandbox/images/b0.png"><img src="data:image/png;base64,AAAA">'
    return article(name, image=f"{base}/_sandbox/images/lead.jpg", body_html=body)


def sha256_of(url: str) -> str:
    return hashlib.sha256(requests.get(url, timeout=5).content).hexdigest()


def uploads(emu) -> int:
    return sum(1 for r in emu.requests if r["path"] == "/2/media/upload")


def test_images_lead_first_then_the_body_up_to_four_and_the_rest_offered(runtime):
    art = album("https://e.com")
    one = platform_for(runtime, "x-main").compose(art)
    assert one.media == ("https://e.com/_sandbox/images/lead.jpg",)
    assert one.media_offered == tuple(f"https://e.com/_sandbox/images/b{i}.png" for i in range(3))
    assert one.payload == {"parts": [one.text], "image": art.image}  # one image: the payload of before
    four = platform_for(runtime, "x-album").compose(art, thread=False)
    assert four.media == (art.image, *(f"https://e.com/_sandbox/images/b{i}.png" for i in range(3)))
    assert four.media_offered == ()  # four is X's most: the fifth is not offered
    assert four.payload["image"] == art.image and four.payload["more_images"] == list(four.media[1:])
    assert four.to_dict()["media"] == list(four.media)
    no_lead = platform_for(runtime, "x-main").compose(article(BAIC, image=None, body_html=art.body_html))
    assert no_lead.media == () and len(no_lead.media_offered) == 4  # images = 1 takes the lead image only
    off = X(dataclasses.replace(runtime.settings.account("x-album"), options=X.parse_options(
        {"images": 4, "attach_image": False}))).compose(art)
    assert off.media == () and off.payload["image"] is None and len(off.media_offered) == 4
    for bad in (0, 5):
        with pytest.raises(ValueError, match="images"):
            X.parse_options({"images": bad})


def test_four_images_go_on_the_first_post_of_a_thread_in_order(emulators, runtime):
    emu = emulators["x"]
    art = album(emu.url, name=BAIC)
    art = dataclasses.replace(art, body_html=three_part_article().body_html + art.body_html)
    steps: list[str] = []
    receipt, post = publish(runtime, "x-album", art, steps=steps)
    posts = sandbox_posts(emu)
    assert len(posts) == len(post.payload["parts"]) >= 2 and receipt.post_id == posts[0]["id"]
    assert [m["sha256"] for m in posts[0]["media"]] == [sha256_of(u) for u in post.media]
    assert len(posts[0]["media_ids"]) == 4 and all(p["media_ids"] == [] for p in posts[1:])
    assert uploads(emu) == 4 and sum("image uploaded" in s for s in steps) == 4


def test_an_image_that_cannot_be_sent_is_left_out_the_others_go(emulators, runtime):
    emu = emulators["x"]
    art = album(emu.url, 2)
    art = dataclasses.replace(art, body_html=art.body_html.replace(
        f"{emu.url}/_sandbox/images/b1.png", f"{emu.url}/_sandbox/files/not-an-image.png", 1))
    x = platform_for(runtime, "x-album")
    post = x.compose(art, thread=False)
    steps: list[str] = []
    x.publish(post, ctx(runtime, "x-album", steps))
    [p] = sandbox_posts(emu)
    assert [m["sha256"] for m in p["media"]] == [sha256_of(post.media[0]), sha256_of(post.media[1])]
    assert sum("image not attached" in s for s in steps) == 1


def test_a_retry_reuses_the_uploads_x_still_holds_and_never_posts_twice(emulators, runtime):
    emu = emulators["x"]
    x = platform_for(runtime, "x-album")
    post = x.compose(album(emu.url), thread=False)
    saves: list[int] = []

    def on_state(state):  # the second upload is saved: the third one fails
        saves.append(len(state.get("media", [])))
        if saves == [1, 2]:
            inject(emu, path="/2/media/upload", kind="error", code=503)

    first = ctx(runtime, "x-album", on_state=on_state)
    with pytest.raises(TransientError):
        x.publish(post, first)
    assert sandbox_posts(emu) == [] and [m["url"] for m in first.state["media"]] == list(post.media[:2])
    kept = [m["id"] for m in first.state["media"]]
    inject(emu, path="/2/tweets", kind="error", code=503)  # all four uploaded, then the post fails
    second = ctx(runtime, "x-album", state=json.loads(json.dumps(first.state)), on_state=on_state)
    with pytest.raises(TransientError):
        x.publish(post, second)
    assert uploads(emu) == 3 + 2 and len(second.state["media"]) == 4  # only the missing two were uploaded
    steps: list[str] = []
    receipt = x.publish(post, ctx(runtime, "x-album", steps, state=json.loads(json.dumps(second.state))))
    [p] = sandbox_posts(emu)
    assert uploads(emu) == 5 and p["media_ids"][:2] == kept and p["id"] == receipt.post_id
    assert [m["sha256"] for m in p["media"]] == [sha256_of(u) for u in post.media]
    assert sum("image ready" in s for s in steps) == 4


def test_an_upload_about_to_expire_is_made_again(emulators, runtime):
    emu = emulators["x"]
    requests.post(emu.url + "/_sandbox/config", json={"media_ttl": MEDIA_MARGIN + 1}, timeout=5)
    x = platform_for(runtime, "x-album")
    post = x.compose(album(emu.url, 1), thread=False)
    inject(emu, path="/2/tweets", kind="error", code=503)
    first = ctx(runtime, "x-album")
    with pytest.raises(TransientError):
        x.publish(post, first)
    time.sleep(1.2)  # X would keep the ids a little longer, but not as long as a retry may wait
    x.publish(post, ctx(runtime, "x-album", state=json.loads(json.dumps(first.state))))
    [p] = sandbox_posts(emu)
    assert uploads(emu) == 4 and not set(p["media_ids"]) & {m["id"] for m in first.state["media"]}


def test_ids_x_dropped_early_are_uploaded_again_once(emulators, runtime):
    """A saved id X refuses (400 "Your media IDs are invalid."): no post was made, so upload again and post."""
    emu = emulators["x"]
    lead = article(BAIC).image
    state = {"media": [{"url": lead, "id": "1860000000000000999", "until": time.time() + 86400}]}
    steps: list[str] = []
    receipt, _ = publish(runtime, "x-main", context=ctx(runtime, "x-main", steps, state=state))
    [p] = sandbox_posts(emu)
    assert p["id"] == receipt.post_id and len(p["media_ids"]) == 1 and p["media_ids"] != ["1860000000000000999"]
    assert uploads(emu) == 1 and any("uploading them again" in s for s in steps)
    tweets = [r for r in emu.requests if r["path"] == "/2/tweets"]
    assert len(tweets) == 2  # the refused one and the post
    fresh = {"media": [{"url": lead, "id": p["media_ids"][0], "until": time.time() + 86400}]}
    inject(emu, path="/2/tweets", kind="error", code=400, message="Your media IDs are invalid.", count=2)
    with pytest.raises(PermanentError, match="media IDs are invalid"):  # refused again: the error, not a loop
        publish(runtime, "x-main", art=article(BAIC, title="Other"), context=ctx(runtime, "x-main", state=fresh))
    assert uploads(emu) == 2 and len(sandbox_posts(emu)) == 1


def test_the_emulator_refuses_media_ids_as_x_does(emulators):
    emu = emulators["x"]
    token = token_answer(emulators, "sandbox-oauth2_refresh_token").json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    picture = requests.get(emu.url + "/_sandbox/images/a.png", timeout=5).content

    def upload() -> str:
        r = requests.post(emu.url + "/2/media/upload", headers=auth, files={"media": ("a.png", picture)}, timeout=5)
        assert r.status_code == 200, r.text
        return str(r.json()["data"]["id"])

    def tweet(ids) -> requests.Response:
        return requests.post(emu.url + "/2/tweets", headers=auth, json={"text": "t", "media": {"media_ids": ids}},
                             timeout=5)

    ids = [upload() for _ in range(5)]
    for sent, message in ((ids, "$.media.media_ids: there must be a maximum of 4 items in the array"),
                          ([], "$.media.media_ids: there must be a minimum of 1 item in the array"),
                          (["1"], "Your media IDs are invalid.")):
        r = tweet(sent)
        assert r.status_code == 400 and r.json()["errors"][0]["message"] == message, r.text
        assert r.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert tweet(ids[:4]).status_code == 201
    requests.post(emu.url + "/_sandbox/config", json={"media_ttl": 0.2}, timeout=5)
    short = upload()
    time.sleep(0.3)
    r = tweet([short])
    assert r.status_code == 400 and r.json()["errors"][0]["parameters"] == {"media.media_ids": [short]}  # expired
    [p] = sandbox_posts(emu)
    assert p["media_ids"] == ids[:4] and [m["type"] for m in p["media"]] == ["image/png"] * 4


def test_preview_lists_the_attached_images_and_counts_the_others(emulators, base_env, tmp_path):
    art = album("https://news.example.com")
    src = tmp_path / "album.json"
    src.write_text(json.dumps({"title": art.title, "url": art.url, "summary": art.summary, "image": art.image,
                               "body_html": art.body_html, "tags": list(art.tags)}))
    out = run_cli(["preview", str(src), "--to", "x-main,x-album"], base_env)
    assert out.returncode == 0, out.stderr
    main, rest = out.stdout.split("── x-album", 1)
    assert main.count("[image] ") == 1 and "3 more image(s) in the article not attached" in main
    assert [line.split("[image] ")[1] for line in rest.splitlines() if "[image] " in line] == [
        art.image, *(f"https://news.example.com/_sandbox/images/b{i}.png" for i in range(3))]
    data = json.loads(run_cli(["preview", str(src), "--to", "x-album", "--json"], base_env).stdout)
    [p] = data["posts"]
    assert p["media"][0] == art.image and len(p["media"]) == 4 and p["media_offered"] == []


def token_answer(emulators, refresh_token: str) -> requests.Response:
    return requests.post(emulators["x"].url + "/2/oauth2/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "sandbox-client_id"})


def test_oauth2_refresh_token_is_stored_before_use_and_rotates(emulators, runtime):
    x = platform_for(runtime, "x-oauth2")
    key = runtime.keys.token("x-oauth2")
    inject(emulators["x"], path="/2/tweets", kind="error", code=503)  # the first post fails after the refresh
    with pytest.raises(TransientError):
        x.publish(x.compose(article(BAIC, image=None)), ctx(runtime, "x-oauth2"))
    first = json.loads(runtime.redis.get(key))
    assert first["refresh_token"] != "sandbox-oauth2_refresh_token"  # stored although the post failed
    assert token_answer(emulators, "sandbox-oauth2_refresh_token").json()["error_description"] == \
        "Value passed for the token was invalid."
    steps: list[str] = []
    receipt = x.publish(x.compose(article(BAIC, image=None)), ctx(runtime, "x-oauth2", steps))  # the cached token works
    assert not any("refreshed" in s for s in steps) and receipt.url.startswith("https://x.com/sharer_sandbox/")
    inject(emulators["x"], path="/2/tweets", kind="expired_token")  # 401 -> refresh once, retry once
    steps = []
    x.publish(x.compose(article(BAIC, title="Second")), ctx(runtime, "x-oauth2", steps))
    second = json.loads(runtime.redis.get(key))
    assert second["refresh_token"] != first["refresh_token"] and any("refreshed" in s for s in steps)
    assert token_answer(emulators, first["refresh_token"]).status_code == 400
    posts = sandbox_posts(emulators["x"])
    assert [p["auth"] for p in posts] == ["oauth2", "oauth2"] and len(posts[1]["media_ids"]) == 1
    inject(emulators["x"], path="/2/tweets", kind="error", code=401, count=2)
    with pytest.raises(AuthExpired):
        x.publish(x.compose(article(BAIC, title="Third", image=None)), ctx(runtime, "x-oauth2"))


def test_oauth2_confidential_client_and_dead_refresh_token(emulators, runtime):
    x = platform_for(runtime, "x-oauth2c")
    receipt = x.publish(x.compose(article(BAIC, image=None)), ctx(runtime, "x-oauth2c"))
    assert receipt.url == f"https://x.com/i/web/status/{receipt.post_id}"
    requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)  # the stored refresh token is now unknown
    runtime.redis.set(runtime.keys.token("x-oauth2c"), json.dumps({"seed": x_seed(runtime), "refresh_token": "dead"}))
    with pytest.raises(PermanentError, match="re-authorise account 'x-oauth2c'"):
        x.publish(x.compose(article(BAIC, image=None)), ctx(runtime, "x-oauth2c"))


def x_seed(runtime) -> str:
    """The generation of the account's token record: a digest of its configured refresh token."""
    from sharer.store.tokens import seed_of

    return seed_of(runtime.settings.account("x-oauth2c").secret("oauth2_refresh_token"))


# --- end to end through the worker ----------------------------------------------------------------

def test_share_to_x_through_the_worker(emulators, runtime, worker):
    art = article(BAIC)
    [d] = wait_settled(runtime, service.share(runtime, art, ["x-main"]).share_id)
    assert d.status == "delivered", d.error
    [p] = sandbox_posts(emulators["x"])
    assert d.post_id == p["id"] and d.post_url == f"https://x.com/sharer_sandbox/status/{p['id']}"
    assert len(p["media_ids"]) == 1 and "utm_source=x" in p["text"]
    # the same share again: X says duplicate; reconciliation finds the first post and says so
    [d2] = wait_settled(runtime, service.share(runtime, art, ["x-main"], force=True).share_id)
    assert d2.status == "delivered" and d2.post_id == p["id"] and len(sandbox_posts(emulators["x"])) == 1
    assert d2.already_posted and d2.note == f"X already had this post: {d.post_url}" and d2.attempts == 1
    assert d2.to_json()["already_posted"] is True and d.to_json()["already_posted"] is False
    assert "nothing new was published" in d2.events[-1]["message"]


def test_four_images_through_the_worker(emulators, runtime, worker):
    emu = emulators["x"]
    art = album(emu.url)
    [d] = wait_settled(runtime, service.share(runtime, art, ["x-album"]).share_id)
    assert d.status == "delivered", d.error
    p, *replies = sandbox_posts(emu)  # a thread (x-album has thread = true): the images go on part 1
    wanted = [art.image, *(f"{emu.url}/_sandbox/images/b{i}.png" for i in range(3))]
    assert d.post_id == p["id"] and [m["sha256"] for m in p["media"]] == [sha256_of(u) for u in wanted]
    assert replies and all(r["media_ids"] == [] for r in replies) and replies[0]["in_reply_to_tweet_id"] == p["id"]


def test_bad_credentials_fail_and_no_secret_reaches_redis(emulators, runtime, worker):
    art = article(BAIC)
    [d] = wait_settled(runtime, service.share(runtime, art, ["x-bad"]).share_id)
    assert d.status == "failed" and "HTTP 401" in d.error and "re-authorise" in d.error
    assert sandbox_posts(emulators["x"]) == []
    # a client-level OAuth 2.0 run with a refresh and faults, recorded like a delivery's steps
    x = platform_for(runtime, "x-oauth2")
    inject(emulators["x"], path="/2/tweets", kind="expired_token")
    steps: list[str] = []
    x.publish(x.compose(art), ctx(runtime, "x-oauth2", steps))
    tokens = json.loads(runtime.redis.get(runtime.keys.token("x-oauth2")))
    forbidden = [f"sandbox-{k}" for k in ("consumer_key", "consumer_secret", "access_token", "access_token_secret",
                                          "client_id", "oauth2_refresh_token")]
    forbidden += ["not-the-sandbox-secret", tokens["access_token"], tokens["refresh_token"]]
    dump = "\n".join(steps)
    for key in runtime.redis.scan_iter(match=f"{runtime.settings.prefix}:*", count=1000):
        if b":token:" in key:
            continue  # the token store itself
        kind = runtime.redis.type(key)
        if kind == b"string":
            dump += str(runtime.redis.get(key))
        elif kind == b"hash":
            dump += str(runtime.redis.hgetall(key))
        elif kind == b"list":
            dump += str(runtime.redis.lrange(key, 0, -1))
        elif kind == b"zset":
            dump += str(runtime.redis.zrange(key, 0, -1))
    assert "x-bad" in dump
    for value in forbidden:
        assert value not in dump, value


def test_rate_limited_then_delivered_by_the_worker(emulators, runtime, worker):
    """429 with a reset 1 s ahead: the worker waits for the reset and delivers."""
    inject(emulators["x"], path="/2/tweets", kind="error", code=429, reset_in=1)
    started = time.time()
    [d] = wait_settled(runtime, service.share(runtime, three_part_article(), ["x-thread"]).share_id)
    assert d.status == "delivered", d.error
    assert time.time() - started >= 0.5
    posts = sandbox_posts(emulators["x"])
    assert len(posts) == 3 and [p["in_reply_to_tweet_id"] for p in posts][1:] == [posts[0]["id"], posts[1]["id"]]


def test_timeline_lookup_pages_back_and_caches_the_user_id(emulators, runtime):
    """Our post under 120 newer ones: found on the second page; GET /2/users/me is asked once per account."""
    emu = emulators["x"]
    requests.post(emu.url + "/_sandbox/config", json={"post_limit": 1000}, timeout=5)
    runtime.redis.delete(runtime.keys.cache("x-main", "x-user-id"))
    x = platform_for(runtime, "x-main")
    post = x.compose(article(BAIC, image=None))
    started = time.time()
    receipt = x.publish(post, ctx(runtime, "x-main"))
    for i in range(120):
        x.publish(x.compose(article(BAIC, title=f"Filler {i}", image=None, url=f"https://news.example.com/f/{i}")),
                  ctx(runtime, "x-main"))
    seen = len(emu.requests)
    assert x.find_existing(post, ctx(runtime, "x-main", window_start=started)) == receipt
    paths = [r["path"] for r in emu.requests[seen:]]
    assert paths.count("/2/users/me") == 1 and paths.count(f"/2/users/{USER_ID}/tweets") == 2
    seen = len(emu.requests)
    assert x.find_existing(post, ctx(runtime, "x-main", window_start=started)) == receipt
    assert [r["path"] for r in emu.requests[seen:]].count("/2/users/me") == 0  # cached


def test_an_older_identical_post_is_the_earlier_one_only_after_a_duplicate_answer(emulators, runtime):
    x = platform_for(runtime, "x-main")
    post = x.compose(article(BAIC, image=None))
    earlier = x.publish(post, ctx(runtime, "x-main"))
    later = time.time() + 3600  # a delivery that began long after it
    assert x.find_existing(post, ctx(runtime, "x-main", window_start=later)) is None
    with pytest.raises(Ambiguous, match="just before the first attempt"):
        x.find_existing(post, ctx(runtime, "x-main", window_start=time.time() + 60))
    dup = x.find_existing(post, ctx(runtime, "x-main", window_start=later, duplicate=True))
    assert dup.already_posted and dup.post_id == earlier.post_id
    assert dup.note == f"X already had this post: {earlier.url}"


def test_timeline_pagination_in_the_emulator(emulators, runtime):
    emu = emulators["x"]
    requests.post(emu.url + "/_sandbox/config", json={"post_limit": 1000}, timeout=5)
    x = platform_for(runtime, "x-nouser")
    for i in range(12):
        x.publish(x.compose(article(BAIC, title=f"Post {i}", image=None)), ctx(runtime, "x-nouser"))
    with _Api(ctx(runtime, "x-nouser")) as api:
        first = api.call("t", lambda c, ua: c.get_users_tweets(USER_ID, max_results=5, user_auth=ua), write=False)
        second = api.call("t", lambda c, ua: c.get_users_tweets(
            USER_ID, max_results=5, pagination_token=first.meta["next_token"], user_auth=ua), write=False)
    ids = [t.id for t in first.data] + [t.id for t in second.data]
    assert len(set(ids)) == 10 and ids == sorted(ids, reverse=True)
    r = requests.post(emu.url + "/_sandbox/config", json={"duplicate_check": False}, timeout=5)
    assert r.json()["duplicate_check"] is False
    post = x.compose(article(BAIC, title="Post 0", image=None))
    x.publish(post, ctx(runtime, "x-nouser"))  # identical text accepted: the switch is off
