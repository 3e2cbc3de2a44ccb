"""Issue 10, the generic parts: an account that cannot take an article does not block the others, and
every platform's ``find_existing`` honours the contract (a receipt, None only with proof, or raise).

Real worker, real Redis, the emulators; nothing of ours mocked.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import EXAMPLES, run_cli, sandbox_posts, wait_settled
from web_support import article_json, client

from sharer import service
from sharer.errors import Ambiguous, ComposeError
from sharer.loaders import load_article
from sharer.platforms import get_platform
from sharer.platforms._lookup import Age, age
from sharer.platforms.base import CLOCK_SLACK, DeliveryContext

OFF_DOMAIN = "https://elsewhere.example.org/2023/03/13/baic-catl"  # not on weibo-main's safe domain


def test_an_account_that_cannot_compose_is_failed_and_the_others_are_sent(emulators, runtime, worker, base_env):
    for wait in ([], ["--wait"]):
        proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--url", OFF_DOMAIN, "--to", "hook-a,weibo-main",
                        "--force", *wait], base_env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        [line] = [ln for ln in proc.stderr.splitlines() if "weibo-main" in ln]
        assert "failed: cannot compose:" in line and "safe domains" in line and "Traceback" not in proc.stderr
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--url", OFF_DOMAIN, "--to", "hook-a,weibo-main",
                    "--force", "--wait", "--json"], base_env)
    assert proc.returncode == 1
    got = {d["account"]: d for d in json.loads(proc.stdout)["deliveries"]}
    assert got["hook-a"]["status"] == "delivered"
    weibo = got["weibo-main"]
    assert weibo["status"] == "failed" and weibo["error_kind"] == "compose" and "safe domains" in weibo["error"]
    assert weibo["attempts"] == 0 and weibo["events"][0]["message"].startswith("cannot compose:")
    assert sandbox_posts(emulators["weibo"]) == []
    assert len([p for p in sandbox_posts(emulators["webhook"]) if p["path"] == "/hooks/a"]) >= 2  # 3rd awaited


def test_the_http_api_returns_the_failed_account_in_the_share(emulators, runtime, worker, web_app, editor_token):
    body = {"article": {**article_json(EXAMPLES / "baic-catl.json"), "url": OFF_DOMAIN},
            "accounts": ["hook-a", "weibo-main"], "force": True}
    r = client(web_app).post("/api/shares", json=body, headers=editor_token)
    assert r.status_code == 201, r.text
    got = {d["account"]: d for d in r.json()["deliveries"]}
    assert got["weibo-main"]["status"] == "failed" and got["weibo-main"]["error_kind"] == "compose"
    assert got["hook-a"]["status"] == "queued"
    ds = {d.account: d for d in wait_settled(runtime, r.json()["share_id"])}
    assert ds["hook-a"].status == "delivered" and ds["weibo-main"].status == "failed"


def test_an_editors_text_that_does_not_fit_is_still_bad_input_and_nothing_is_stored(runtime):
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    before = service.counts(runtime)
    with pytest.raises(ComposeError, match="limit is 140"):
        service.share(runtime, article, ["hook-a", "weibo-main"], {"weibo-main": "太长" * 100 + " " + article.url},
                      force=True)
    assert service.counts(runtime) == before


def _ctx(runtime, name: str, **kw) -> DeliveryContext:
    return DeliveryContext(delivery_id="dl_contract", account=runtime.settings.account(name), session=runtime.session,
                           timeout=5, redis=runtime.redis, keys=runtime.keys, window_start=time.time(), **kw)


@pytest.mark.parametrize("name", ["hook-a", "telegram-channel", "wecom-news", "feishu-signed", "dingtalk-signed"])
def test_platforms_that_cannot_look_never_claim_absence(runtime, emulators, name):
    """None would let the worker send again: a platform with no way to look must raise instead."""
    account = runtime.settings.account(name)
    platform = get_platform(account.platform)(account)
    post = platform.compose(load_article(str(EXAMPLES / "baic-catl.json")))
    with pytest.raises(Ambiguous):
        platform.find_existing(post, _ctx(runtime, name))


def test_where_a_matching_post_falls_against_the_window():
    ws = 1_000_000.0
    assert age(ws + 5, ws, False) is Age.OURS and age(ws - 0.5, ws, False) is Age.OURS  # whole-second stamps
    assert age(ws - 60, ws, False) is Age.NEAR and age(None, ws, False) is Age.NEAR  # cannot tell
    assert age(ws - CLOCK_SLACK - 1, ws, False) is Age.EARLIER  # an earlier identical post: not ours
    # after "duplicate" the platform made nothing new: anything not clearly since the window is the earlier post
    assert age(ws + 5, ws, True) is Age.OURS
    assert age(ws - 0.5, ws, True) is Age.EARLIER and age(None, ws, True) is Age.EARLIER
    assert age(ws, None, False) is Age.OURS and age(ws, None, True) is Age.EARLIER
