"""The share pipeline end to end: CLI -> Redis -> Celery worker -> webhook receiver -> delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json

from conftest import EXAMPLES, inject, run_cli, sandbox_posts, wait_settled
from harness import Fault, faults, run_fault

from sharer import service
from sharer.errors import Ambiguous, AuthExpired, PermanentError, RateLimited, TransientError
from sharer.loaders import load_article
from sharer.sandbox.webhook import SANDBOX_SECRET


def test_share_to_two_webhooks_is_delivered_once_each_and_signed(emulators, runtime, worker, base_env):
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a,hook-b", "--wait", "--json"],
                   base_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert set(out) == {"share_id", "deliveries"}
    deliveries = out["deliveries"]
    assert sorted(d["account"] for d in deliveries) == ["hook-a", "hook-b"]
    for d in deliveries:
        assert d["status"] == "delivered"
        assert d["platform"] == "webhook"
        assert d["attempts"] == 1
        assert d["post_id"] and d["post_url"].startswith(emulators["webhook"].url)
        assert [e["status"] for e in d["events"]] == ["queued", "sending", "delivered"]
        for key in ("id", "share_id", "error", "created_at", "updated_at"):
            assert key in d
        assert d["created_at"].endswith("Z")

    posts = sandbox_posts(emulators["webhook"])
    assert len(posts) == 2
    assert sorted(p["path"] for p in posts) == ["/hooks/a", "/hooks/b"]
    for p in posts:
        expected = "sha256=" + hmac.new(SANDBOX_SECRET.encode(), p["raw"].encode(), hashlib.sha256).hexdigest()
        assert p["signature"] == expected
        body = json.loads(p["raw"])
        assert body["title"].startswith("BAIC GROUP and CATL")
        assert "utm_source=webhook" in body["url"]
        assert body["delivery_id"] in {d["id"] for d in deliveries}

    # The post URL each delivery recorded really leads to what the receiver holds.
    import requests

    for d in deliveries:
        got = requests.get(d["post_url"], timeout=5).json()
        assert got["id"] == d["post_id"]

    status = run_cli(["status", out["share_id"], "--json"], base_env)
    assert status.returncode == 0
    # share --json adds duplicate_of (null: sent by this share) to the DELIVERY objects status shows
    assert all(d.pop("duplicate_of") is None for d in deliveries)
    assert json.loads(status.stdout)["deliveries"] == deliveries


def test_receiver_500_is_retried_then_ends_failed_with_its_message(emulators, runtime, worker):
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=500, count=10,
           body={"error": "disk full on receiver"})
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    result = service.share(runtime, article, ["hook-a"])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "failed"
    assert "disk full on receiver" in d.error
    assert "HTTP 500" in d.error
    assert d.attempts == 4  # max_attempts in the test config
    statuses = [e["status"] for e in d.events]
    assert statuses.count("retrying") == 3 and statuses[-1] == "failed"
    assert "gave up after 4 attempts" in d.events[-1]["message"]
    assert sandbox_posts(emulators["webhook"]) == []


def test_wrong_secret_is_rejected_and_recorded_without_the_secret(emulators, runtime, worker):
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    result = service.share(runtime, article, ["hook-bad"])
    [d] = wait_settled(runtime, result.share_id)
    assert d.status == "failed"
    assert "signature does not match" in d.error
    dump = json.dumps(d.to_json())
    assert "not-the-sandbox-secret" not in dump
    assert sandbox_posts(emulators["webhook"]) == []


def test_share_without_wait_returns_at_once_with_queued_deliveries(emulators, runtime, worker, base_env):
    proc = run_cli(["share", str(EXAMPLES / "baic-catl-zh.md"), "--to", "hook-a", "--json"], base_env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["deliveries"][0]["status"] in ("queued", "sending", "delivered")
    [d] = wait_settled(runtime, out["share_id"])
    assert d.status == "delivered"


def test_share_with_wait_exits_1_when_a_delivery_failed(emulators, runtime, worker, base_env):
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=403, body={"error": "forbidden"})
    proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a,hook-b", "--wait"], base_env)
    assert proc.returncode == 1
    assert "delivered" in proc.stdout and "failed" in proc.stdout and "forbidden" in proc.stdout


def test_bad_input_exits_2_with_one_clear_line(base_env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"url": "https://example.com/a"}))
    cases = [
        (["share", str(bad), "--to", "hook-a"], "title"),
        (["share", str(tmp_path / "missing.json"), "--to", "hook-a"], "missing.json"),
        (["share", str(EXAMPLES / "baic-catl.json"), "--to", "nope"], "unknown account 'nope'"),
        (["share", str(EXAMPLES / "baic-catl-page.txt"), "--to", "hook-a"], "--url"),
        (["log", "--status", "sideways"], "unknown status"),
        (["log", "--since", "yesterday-ish"], "--since"),
        (["status", "sh_doesnotexist"], "no share"),
    ]
    for args, needle in cases:
        proc = run_cli(args, base_env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_bad_config_fails_at_start_naming_file_and_key(tmp_path, base_env):
    cfg = tmp_path / "c.toml"
    cases = [
        ('[accounts.x]\nplatform = "myspace"\napi_base = "http://127.0.0.1:1"\n', "accounts.x.platform"),
        ('[accounts.x]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1"\n'
         'credentials = { secret = "env:SHARER_NOT_SET_ANYWHERE" }\n', "SHARER_NOT_SET_ANYWHERE"),
        ('[accounts.x]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1"\ncolour = "red"\n',
         "accounts.x.colour"),
        ('[accounts.x]\nplatform = "webhook"\napi_base = "https://hooks.example.com"\n'
         'credentials = { secret = "sandbox:" }\n', "loopback"),
        ('[accounts.x]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1"\n'
         'credentials = { secret = "hunter2-inline" }\n', "never the secret itself"),
    ]
    for text, needle in cases:
        cfg.write_text(text)
        proc = run_cli(["--config", str(cfg), "accounts"], base_env)
        assert proc.returncode == 2, text
        assert str(cfg) in proc.stderr and needle in proc.stderr, proc.stderr
        assert "hunter2" not in proc.stderr


def test_log_json_filters_and_pages(emulators, runtime, worker, base_env):
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=400, count=3, body={"error": "nope"})
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    ids = []
    for _ in range(3):
        r = service.share(runtime, article, ["hook-a", "hook-b"])
        wait_settled(runtime, r.share_id)
        ids.append(r.share_id)

    proc = run_cli(["log", "--status", "failed", "--account", "hook-b", "--json", "--since", "10m"], base_env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"deliveries", "next_cursor"}
    mine = [d for d in out["deliveries"] if d["share_id"] in ids]
    assert len(mine) == 3 and all(d["status"] == "failed" and d["account"] == "hook-b" for d in mine)

    proc = run_cli(["log", "--account", "hook-a", "--status", "delivered", "--limit", "2", "--json"], base_env)
    page1 = json.loads(proc.stdout)
    assert len(page1["deliveries"]) == 2 and page1["next_cursor"]
    proc = run_cli(["log", "--account", "hook-a", "--status", "delivered", "--limit", "2", "--json",
                    "--cursor", page1["next_cursor"]], base_env)
    page2 = json.loads(proc.stdout)
    seen1 = {d["id"] for d in page1["deliveries"]}
    assert page2["deliveries"] and not seen1 & {d["id"] for d in page2["deliveries"]}
    times = [d["created_at"] for d in page1["deliveries"] + page2["deliveries"]]
    assert times == sorted(times, reverse=True)


def test_retention_purge_removes_old_records_and_their_index_entries(runtime):
    import time

    from sharer.loaders import load_article as la
    from sharer.store.deliveries import DeliveryStore
    from sharer.store.keys import Keys

    store = DeliveryStore(runtime.redis, Keys(runtime.settings.prefix + "-purge"))
    article = la(str(EXAMPLES / "baic-catl.json"))
    store.create_share({"id": "sh_old", "article": article.to_dict(), "delivery_ids": ["dl_old"]},
                       [{"id": "dl_old", "account": "hook-a", "platform": "webhook"}])
    assert store.get("dl_old") is not None
    removed = store.purge(time.time() + 1)
    assert removed >= 1
    assert store.get("dl_old") is None and store.share("sh_old") is None
    assert "dl_old" not in store.ids_in_status("queued")


# --- the webhook client against the receiver, one row per answer (the shared HTTP table) --------------

WEBHOOK_FAULTS = [
    Fault("500 is retried", "hook-a", {"kind": "status", "status": 500, "body": {"error": "boom"}},
          TransientError, "receiver answered HTTP 500: boom", exact=True, status=500),
    Fault("503 is retried", "hook-a", {"kind": "status", "status": 503, "body": "busy"}, TransientError,
          "HTTP 503", exact=True),
    Fault("502 may have been received", "hook-a", {"kind": "status", "status": 502, "body": "bad gateway"},
          Ambiguous, "HTTP 502", exact=True),
    Fault("429 waits for Retry-After", "hook-a",
          {"kind": "status", "status": 429, "body": {"error": "slow down"}, "headers": {"Retry-After": "7"}},
          RateLimited, "slow down", check=lambda e: getattr(e, "retry_after", None) == 7.0),
    Fault("a wrong secret is refused", "hook-bad", None, AuthExpired, "signature does not match", status=401),
    Fault("a redirect is not followed blindly", "hook-a",
          {"kind": "status", "status": 301, "body": "", "headers": {"Location": "http://elsewhere.example/"}},
          PermanentError, "HTTP 301", exact=True),
    Fault("404 is refused", "hook-a", {"kind": "status", "status": 404, "body": {"message": "no such hook"}},
          PermanentError, "no such hook", exact=True),
    Fault("a dropped connection may have been received", "hook-a", {"kind": "drop"}, Ambiguous, "dropped"),
    Fault("dropped after the post was made", "hook-a", {"kind": "drop_after"}, Ambiguous, "dropped", posts=1),
]


@faults(WEBHOOK_FAULTS)
def test_webhook_answers_map_to_their_error_classes(case, emulators, runtime):
    run_fault(case, emulators, runtime)
