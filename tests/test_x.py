"""X: weighted-length composition, threads, and the tweepy client against the X emulator and the worker."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time

import pytest
import requests
from conftest import EXAMPLES, inject, sandbox_posts, wait_settled
from twitter_text import parse_tweet

from sharer import service
from sharer.article import Article
from sharer.errors import Ambiguous, AuthExpired, ComposeError, Duplicate, PermanentError, RateLimited, TransientError
from sharer.loaders import load_article
from sharer.platforms._x_api import _Api
from sharer.platforms.base import DeliveryContext, Post
from sharer.platforms.x import X, hashtag, hashtags
from sharer.sandbox.x import USER
from sharer.text import count_x, find_urls

USER_ID = USER["id"]

OAUTH1 = ["x-main", "x-thread", "x-nouser"]
OAUTH2 = ["x-oauth2", "x-oauth2c"]


@pytest.fixture(autouse=True)
def _forget_oauth2_tokens(request):
    """The emulator forgets its tokens between tests; so must Redis."""
    if "runtime" in request.fixturenames:
        rt = request.getfixturevalue("runtime")
        for name in OAUTH2:
            rt.redis.delete(rt.keys.token(name))
    yield


def examples() -> list[Article]:
    page_url = "https://news.example.com/en/2023/03/13/baic-catl-cooperation"
    return [load_article(str(EXAMPLES / "baic-catl.json")), load_article(str(EXAMPLES / "baic-catl-zh.md")),
            load_article(str(EXAMPLES / "edge-cases.json")),
            load_article(str(EXAMPLES / "baic-catl-page.html"), url=page_url),
            load_article(str(EXAMPLES / "baic-catl-page.txt"), url=page_url)]


def platform(runtime, name: str) -> X:
    return X(runtime.settings.account(name))


def context(runtime, name: str, **kw) -> tuple[DeliveryContext, list[str]]:
    steps: list[str] = []
    ctx = DeliveryContext(delivery_id="dl_x_" + secrets.token_hex(4), account=runtime.settings.account(name),
                          session=runtime.session, timeout=kw.pop("timeout", 5), redis=runtime.redis,
                          keys=runtime.keys, media_rewrite=runtime.settings.media_rewrite, on_step=steps.append, **kw)
    return ctx, steps


def article(**changes) -> Article:
    return dataclasses.replace(load_article(str(EXAMPLES / "baic-catl.json")), **changes)


# --- composition ----------------------------------------------------------------------------------

def test_counter_sanity_against_conformance_vectors():
    # full vectors live in test_text_counting.py; here: the ones composition depends on
    vectors = [("Hi http://test.co", 26), ("中" * 160, 320), ("👨‍👩‍👧‍👦" * 140, 280), ("http://test.co " * 10, 240)]
    for text, n in vectors:
        assert count_x(text) == n == parse_tweet(text).weightedLength


@pytest.mark.parametrize("thread", [False, True])
@pytest.mark.parametrize("name", ["x-main", "x-nouser"])
def test_every_example_post_fits_by_our_counter_and_by_twitter_text(runtime, name, thread):
    for art in examples():
        post = platform(runtime, name).compose(art, thread=thread)
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
    post = platform(runtime, "x-main").compose(article())
    url = "https://news.example.com/en/2023/03/13/baic-catl-cooperation?utm_source=x&utm_medium=social&utm_campaign=sharer"
    assert post.payload == {"parts": [post.text], "image": article().image}
    assert post.text == ("BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation "
                         f"{url} #BAIC #CATL #NEV #PowerBattery")
    assert post.length == count_x(post.text) == 144 and post.warnings == ()


def test_long_title_is_trimmed_and_hashtags_come_only_while_they_fit(runtime):
    long_cjk = "北汽集团与宁德时代签署深化合作备忘录" * 10
    post = platform(runtime, "x-main").compose(article(title=long_cjk))
    assert post.length <= 280 and "…" in post.text
    assert "https://news.example.com/en/2023/03/13/baic-catl-cooperation?utm_source=x" in post.text
    assert "#" not in post.text and any("title trimmed" in w for w in post.warnings)
    # room for some hashtags but not all: the first ones are kept, in order
    title = "T" * (280 - 23 - 1 - 1 - len("#BAIC #CATL") - 2)
    post = platform(runtime, "x-main").compose(article(title=title))
    assert post.text.endswith(" #BAIC #CATL") and post.length <= 280
    assert any("hashtag" in w for w in post.warnings)


def test_override_is_validated_never_cut(runtime):
    x = platform(runtime, "x-main")
    with pytest.raises(ComposeError) as e:
        x.compose(article(), "字" * 141)
    assert "x-main" in str(e.value) and "282" in str(e.value) and "280" in str(e.value)
    post = x.compose(article(), "Read this: https://example.com/" + "a" * 300)
    assert post.payload["parts"] == [post.text] and post.length == 34
    thread = platform(runtime, "x-thread").compose(article(), "My own words")
    assert thread.payload["parts"] == ["My own words"] and any("thread" in w for w in thread.warnings)


def test_thread_parts_fit_are_numbered_and_keep_urls_whole(runtime):
    links = " ".join(f"see https://news.example.com/{'long-path-' * 8}{i} for part {i}." for i in range(12))
    body = "".join(f"<p>{links} Paragraph {k} ends here.</p>" for k in range(3))
    art = article(body_html=body)
    post = platform(runtime, "x-thread").compose(art)
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
    assert len(platform(runtime, "x-main").compose(art, thread=True).payload["parts"]) == n
    assert len(platform(runtime, "x-thread").compose(art, thread=False).payload["parts"]) == 1


def three_part_article() -> Article:
    para = "The two sides plan to jointly develop power battery products and explore the NEV market. " * 2
    return article(body_html=f"<p>{para.strip()}</p><p>{para.strip()}</p>")


# --- the client against the emulator --------------------------------------------------------------

def test_single_post_with_image_oauth1_signed(emulators, runtime):
    x = platform(runtime, "x-main")
    post = x.compose(article())  # its image is served by the site stand-in via [media] rewrite
    ctx, steps = context(runtime, "x-main")
    receipt = x.publish(post, ctx)
    [p] = sandbox_posts(emulators["x"])
    assert receipt.post_id == p["id"] and receipt.url == f"https://x.com/sharer_sandbox/status/{p['id']}"
    assert p["auth"] == "oauth1" and p["text"] == post.text and p["in_reply_to_tweet_id"] is None
    assert len(p["media_ids"]) == 1 and any("image uploaded" in s for s in steps)
    assert p["weighted_length"] == post.length
    assert "https://t.co/" in p["shown_text"]  # as on X


def test_image_that_is_not_an_image_is_left_out(emulators, runtime):
    x = platform(runtime, "x-nouser")
    for name in ("not-an-image.png", "big.png", "anim.gif"):
        requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)
        post = x.compose(article(image=f"{emulators['x'].url}/_sandbox/files/{name}"))
        ctx, steps = context(runtime, "x-nouser")
        receipt = x.publish(post, ctx)
        assert receipt.url == f"https://x.com/i/web/status/{receipt.post_id}"
        [p] = sandbox_posts(emulators["x"])
        assert p["media_ids"] == [] and any("image not attached" in s for s in steps), (name, steps)


def test_thread_of_three_is_chained(emulators, runtime):
    x = platform(runtime, "x-thread")
    post = x.compose(three_part_article())
    assert len(post.payload["parts"]) == 3
    receipt = x.publish(post, context(runtime, "x-thread")[0])
    posts = sandbox_posts(emulators["x"])
    assert [p["text"] for p in posts] == post.payload["parts"]
    assert posts[0]["in_reply_to_tweet_id"] is None and len(posts[0]["media_ids"]) == 1
    assert [p["in_reply_to_tweet_id"] for p in posts[1:]] == [posts[0]["id"], posts[1]["id"]]
    assert receipt.post_id == posts[0]["id"] and receipt.note == "thread of 3 posts"


def test_thread_broken_at_part_two_resumes_without_reposting(emulators, runtime):
    x = platform(runtime, "x-thread")
    post = x.compose(three_part_article())
    saved: list[list[str]] = []

    def on_state(state):
        saved.append(list(state["parts"]))
        if len(saved) == 1:  # part 1 is out: the next POST /2/tweets fails
            inject(emulators["x"], path="/2/tweets", kind="error", code=503)

    ctx, _ = context(runtime, "x-thread", on_state=on_state)
    with pytest.raises(TransientError) as e:
        x.publish(post, ctx)
    assert not isinstance(e.value, Ambiguous) and e.value.status == 503
    assert len(ctx.state["parts"]) == 1 and len(sandbox_posts(emulators["x"])) == 1
    retry, steps = context(runtime, "x-thread", state=json.loads(json.dumps(ctx.state)), on_state=on_state)
    receipt = x.publish(post, retry)
    posts = sandbox_posts(emulators["x"])
    assert len(posts) == 3 and [p["text"] for p in posts] == post.payload["parts"]
    assert [p["in_reply_to_tweet_id"] for p in posts] == [None, posts[0]["id"], posts[1]["id"]]
    assert receipt.post_id == posts[0]["id"] and saved[-1] == [p["id"] for p in posts]
    assert any("resuming the thread at part 2/3" in s for s in steps)


def test_ambiguous_thread_part_is_found_and_the_thread_completed(emulators, runtime):
    """Part 2 is made but its answer lost: reconciliation finds it (the reply to part 1), the retry posts part 3."""
    x = platform(runtime, "x-thread")
    post = x.compose(three_part_article())

    def on_state(state):
        if len(state["parts"]) == 1:
            inject(emulators["x"], path="/2/tweets", kind="drop_after")

    ctx, steps = context(runtime, "x-thread", on_state=on_state)
    with pytest.raises(Ambiguous):
        x.publish(post, ctx)
    assert len(sandbox_posts(emulators["x"])) == 2 and len(ctx.state["parts"]) == 1
    assert x.find_existing(post, ctx) is None  # not complete: not "delivered"...
    assert len(ctx.state["parts"]) == 2 and any("parts 1-2 of 3 found" in s for s in steps)  # ...but recorded
    receipt = x.publish(post, ctx)
    posts = sandbox_posts(emulators["x"])
    assert len(posts) == 3 and [p["in_reply_to_tweet_id"] for p in posts] == [None, posts[0]["id"], posts[1]["id"]]
    assert x.find_existing(post, context(runtime, "x-thread")[0]) == receipt


def test_rate_limit_becomes_rate_limited_with_reset_time(emulators, runtime):
    requests.post(emulators["x"].url + "/_sandbox/config", json={"post_limit": 1, "window": 600}, timeout=5)
    x = platform(runtime, "x-main")
    x.publish(x.compose(article()), context(runtime, "x-main")[0])
    with pytest.raises(RateLimited) as e:
        x.publish(x.compose(article(title="Another title")), context(runtime, "x-main")[0])
    assert 590 <= e.value.retry_after <= 601 and e.value.status == 429


def test_duplicate_is_duplicate_and_find_existing_finds_it(emulators, runtime):
    x = platform(runtime, "x-main")
    post = x.compose(article())
    ctx, _ = context(runtime, "x-main")
    assert x.find_existing(post, ctx) is None
    receipt = x.publish(post, ctx)
    with pytest.raises(Duplicate):
        x.publish(post, context(runtime, "x-main")[0])
    assert x.find_existing(post, ctx) == receipt  # matched on entities.urls[].expanded_url, text has t.co


def test_error_classes(emulators, runtime):
    x = platform(runtime, "x-main")
    post = x.compose(article(image=None))
    cases = [
        (dict(kind="error", code="client-not-enrolled"), PermanentError),
        (dict(kind="error", code=500), TransientError),
        (dict(kind="error", code="usage_capped"), RateLimited),
        (dict(kind="drop_after"), Ambiguous),
        (dict(kind="timeout", seconds=2), Ambiguous),
        (dict(kind="expired_token"), PermanentError),  # OAuth 1.0a revoked: re-authorise
    ]
    for fault, cls in cases:
        requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)
        inject(emulators["x"], path="/2/tweets", **fault)
        with pytest.raises(cls) as e:
            x.publish(post, context(runtime, "x-main", timeout=1)[0])
        assert type(e.value) is cls, (fault, e.value)
    assert "re-authorise account 'x-main'" in str(e.value)
    requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)
    too_long = Post("x", "x-main", "a" * 281, {"parts": ["a" * 281], "image": None}, 281, 280, "weighted characters")
    with pytest.raises(PermanentError, match="too long"):
        x.publish(too_long, context(runtime, "x-main")[0])
    refused = dataclasses.replace(runtime.settings.account("x-main"), api_base="http://127.0.0.1:9")
    ctx = dataclasses.replace(context(runtime, "x-main")[0], account=refused)
    with pytest.raises(TransientError) as e:
        X(refused).publish(post, ctx)
    assert type(e.value) is TransientError


def token_answer(emulators, refresh_token: str) -> requests.Response:
    return requests.post(emulators["x"].url + "/2/oauth2/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "sandbox-client_id"})


def test_oauth2_refresh_token_is_stored_before_use_and_rotates(emulators, runtime):
    x = platform(runtime, "x-oauth2")
    key = runtime.keys.token("x-oauth2")
    inject(emulators["x"], path="/2/tweets", kind="error", code=503)  # the first post fails after the refresh
    with pytest.raises(TransientError):
        x.publish(x.compose(article(image=None)), context(runtime, "x-oauth2")[0])
    first = json.loads(runtime.redis.get(key))
    assert first["refresh_token"] != "sandbox-oauth2_refresh_token"  # stored although the post failed
    assert token_answer(emulators, "sandbox-oauth2_refresh_token").json()["error_description"] == \
        "Value passed for the token was invalid."
    ctx, steps = context(runtime, "x-oauth2")
    receipt = x.publish(x.compose(article(image=None)), ctx)  # the cached access token still works
    assert not any("refreshed" in s for s in steps) and receipt.url.startswith("https://x.com/sharer_sandbox/")
    inject(emulators["x"], path="/2/tweets", kind="expired_token")  # 401 -> refresh once, retry once
    ctx, steps = context(runtime, "x-oauth2")
    x.publish(x.compose(article(title="Second")), ctx)
    second = json.loads(runtime.redis.get(key))
    assert second["refresh_token"] != first["refresh_token"] and any("refreshed" in s for s in steps)
    assert token_answer(emulators, first["refresh_token"]).status_code == 400
    posts = sandbox_posts(emulators["x"])
    assert [p["auth"] for p in posts] == ["oauth2", "oauth2"] and len(posts[1]["media_ids"]) == 1
    inject(emulators["x"], path="/2/tweets", kind="error", code=401, count=2)
    with pytest.raises(AuthExpired):
        x.publish(x.compose(article(title="Third", image=None)), context(runtime, "x-oauth2")[0])


def test_oauth2_confidential_client_and_dead_refresh_token(emulators, runtime):
    x = platform(runtime, "x-oauth2c")
    receipt = x.publish(x.compose(article(image=None)), context(runtime, "x-oauth2c")[0])
    assert receipt.url == f"https://x.com/i/web/status/{receipt.post_id}"
    requests.post(emulators["x"].url + "/_sandbox/reset", timeout=5)  # the stored refresh token is now unknown
    runtime.redis.set(runtime.keys.token("x-oauth2c"), json.dumps({"seed": x_seed(runtime), "refresh_token": "dead"}))
    with pytest.raises(PermanentError, match="re-authorise account 'x-oauth2c'"):
        x.publish(x.compose(article(image=None)), context(runtime, "x-oauth2c")[0])


def x_seed(runtime) -> str:
    """The generation of the account's token record: a digest of its configured refresh token."""
    from sharer.store.tokens import seed_of

    return seed_of(runtime.settings.account("x-oauth2c").secret("oauth2_refresh_token"))


# --- end to end through the worker ----------------------------------------------------------------

def test_share_to_x_through_the_worker(emulators, runtime, worker):
    art = load_article(str(EXAMPLES / "baic-catl.json"))
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


def test_bad_credentials_fail_and_no_secret_reaches_redis(emulators, runtime, worker):
    art = load_article(str(EXAMPLES / "baic-catl.json"))
    [d] = wait_settled(runtime, service.share(runtime, art, ["x-bad"]).share_id)
    assert d.status == "failed" and "HTTP 401" in d.error and "re-authorise" in d.error
    assert sandbox_posts(emulators["x"]) == []
    # a client-level OAuth 2.0 run with a refresh and faults, recorded like a delivery's steps
    x = platform(runtime, "x-oauth2")
    inject(emulators["x"], path="/2/tweets", kind="expired_token")
    ctx, steps = context(runtime, "x-oauth2")
    x.publish(x.compose(art), ctx)
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
    x = platform(runtime, "x-main")
    post = x.compose(article(image=None))
    started = time.time()
    receipt = x.publish(post, context(runtime, "x-main")[0])
    for i in range(120):
        x.publish(x.compose(article(title=f"Filler {i}", image=None, url=f"https://news.example.com/f/{i}")),
                  context(runtime, "x-main")[0])
    ctx, _ = context(runtime, "x-main", window_start=started)
    seen = len(emu.requests)
    assert x.find_existing(post, ctx) == receipt
    paths = [r["path"] for r in emu.requests[seen:]]
    assert paths.count("/2/users/me") == 1 and paths.count(f"/2/users/{USER_ID}/tweets") == 2
    seen = len(emu.requests)
    assert x.find_existing(post, context(runtime, "x-main", window_start=started)[0]) == receipt
    assert [r["path"] for r in emu.requests[seen:]].count("/2/users/me") == 0  # cached


def test_an_older_identical_post_is_the_earlier_one_only_after_a_duplicate_answer(emulators, runtime):
    x = platform(runtime, "x-main")
    post = x.compose(article(image=None))
    earlier = x.publish(post, context(runtime, "x-main")[0])
    later = time.time() + 3600  # a delivery that began long after it
    assert x.find_existing(post, context(runtime, "x-main", window_start=later)[0]) is None
    with pytest.raises(Ambiguous, match="just before the first attempt"):
        x.find_existing(post, context(runtime, "x-main", window_start=time.time() + 60)[0])
    dup = x.find_existing(post, context(runtime, "x-main", window_start=later, duplicate=True)[0])
    assert dup.already_posted and dup.post_id == earlier.post_id
    assert dup.note == f"X already had this post: {earlier.url}"


def test_timeline_pagination_in_the_emulator(emulators, runtime):
    emu = emulators["x"]
    requests.post(emu.url + "/_sandbox/config", json={"post_limit": 1000}, timeout=5)
    x = platform(runtime, "x-nouser")
    for i in range(12):
        x.publish(x.compose(article(title=f"Post {i}", image=None)), context(runtime, "x-nouser")[0])
    ctx, _ = context(runtime, "x-nouser")
    with _Api(ctx) as api:
        first = api.call("t", lambda c, ua: c.get_users_tweets(USER_ID, max_results=5, user_auth=ua), write=False)
        second = api.call("t", lambda c, ua: c.get_users_tweets(
            USER_ID, max_results=5, pagination_token=first.meta["next_token"], user_auth=ua), write=False)
    ids = [t.id for t in first.data] + [t.id for t in second.data]
    assert len(set(ids)) == 10 and ids == sorted(ids, reverse=True)
    r = requests.post(emu.url + "/_sandbox/config", json={"duplicate_check": False}, timeout=5)
    assert r.json()["duplicate_check"] is False
    post = x.compose(article(title="Post 0", image=None))
    x.publish(post, context(runtime, "x-nouser")[0])  # identical text accepted: the switch is off
