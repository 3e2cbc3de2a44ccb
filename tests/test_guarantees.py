"""Delivery guarantees with a real worker, real Redis and the emulators: retries, rate limits,
reconciliation after ambiguous failures, duplicates, editor actions, the sweeper."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from conftest import EXAMPLES, inject, run_cli, sandbox_posts, wait_settled

from sharer import service
from sharer.clock import parse_iso
from sharer.errors import InputError
from sharer.loaders import load_article
from sharer.runtime import Runtime
from sharer.sweeper import sweep


@pytest.fixture
def article():
    return load_article(str(EXAMPLES / "baic-catl.json"))


def event_times(d, status):
    return [parse_iso(e["at"]).timestamp() for e in d.events if e["status"] == status]


def test_503_three_times_then_200_is_delivered_on_attempt_4_with_backoff(emulators, runtime, worker, article):
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=503, count=3, body={"error": "busy"})
    r = service.share(runtime, article, ["hook-a"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered" and d.attempts == 4
    assert [e["status"] for e in d.events].count("retrying") == 3
    assert len(sandbox_posts(emulators["webhook"])) == 1
    sends = event_times(d, "sending")
    assert all(b > a for a, b in zip(sends, sends[1:]))


def test_429_with_retry_after_is_not_retried_before_the_reset(emulators, runtime, worker, article):
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=429, count=1,
           headers={"Retry-After": "3"}, body={"error": "slow down"})
    t0 = time.time()
    r = service.share(runtime, article, ["hook-a"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered"
    [limited_at] = event_times(d, "retrying")
    second_send = event_times(d, "sending")[1]
    assert second_send - limited_at >= 2.9
    assert second_send - t0 >= 2.9
    posts = sandbox_posts(emulators["webhook"])
    assert len(posts) == 1


def test_dropped_connection_after_accept_is_reconciled_not_resent(emulators, runtime, worker, article):
    """The webhook receiver de-duplicates nothing and offers no lookup: we must not guess."""
    inject(emulators["webhook"], path="/hooks/a", kind="drop_after", count=1)
    r = service.share(runtime, article, ["hook-a"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "needs_review"
    assert "unknown" in [e["status"] for e in d.events]
    assert len(sandbox_posts(emulators["webhook"])) == 1  # the one the receiver accepted; never a second

    # An editor checks, finds the post and closes it; or asks for a resend explicitly.
    with pytest.raises(InputError):
        service.retry(runtime, d.id)  # needs confirmation
    done = service.mark_posted(runtime, d.id, url="https://example.com/found")
    assert done.status == "delivered" and done.post_url == "https://example.com/found"


def test_needs_review_retry_with_confirmation_sends_again(emulators, runtime, worker, article, base_env):
    inject(emulators["webhook"], path="/hooks/b", kind="drop", count=1)  # not handled: refused mid-way
    r = service.share(runtime, article, ["hook-b"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "needs_review"
    proc = run_cli(["log", "--status", "needs_review", "--json"], base_env)
    assert d.id in {x["id"] for x in json.loads(proc.stdout)["deliveries"]}
    proc = run_cli(["retry", d.id], base_env)
    assert proc.returncode == 2 and "confirm" in proc.stderr
    proc = run_cli(["retry", d.id, "--yes"], base_env)
    assert proc.returncode == 0, proc.stderr
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered"
    assert len(sandbox_posts(emulators["webhook"])) == 1


def test_cancel_only_what_has_not_started(emulators, runtime, article):
    # No worker consumes this queue-less runtime's messages: use a fresh share and cancel at once.
    rt = Runtime(dataclasses.replace(runtime.settings, queue=runtime.settings.queue + "-idle"))
    r = service.share(rt, article, ["hook-a", "hook-b"])
    first = r.deliveries[0].id
    rt.store.claim(first, 30)  # a worker has it now
    result = service.cancel(rt, r.share_id)
    assert result.cancelled == [r.deliveries[1].id]
    assert result.not_cancelled == {first: "sending"}
    assert rt.store.get(r.deliveries[1].id).status == "cancelled"


def test_same_article_again_returns_the_existing_share_unless_forced(emulators, runtime, article):
    rt = Runtime(dataclasses.replace(runtime.settings, queue=runtime.settings.queue + "-idle",
                                     duplicate_window=3600))
    unique = dataclasses.replace(article, url=article.url + f"?t={time.time()}")
    first = service.share(rt, unique, ["hook-a"])
    again = service.share(rt, unique, ["hook-a"])
    assert again.duplicate and again.share_id == first.share_id
    forced = service.share(rt, unique, ["hook-a"], force=True)
    assert not forced.duplicate and forced.share_id != first.share_id
    k1 = service.share(rt, unique, ["hook-b"], idempotency_key="cms-42", force=True)
    k2 = service.share(rt, unique, ["hook-b"], idempotency_key="cms-42", force=True)
    assert k2.share_id == k1.share_id


def test_sweeper_renudges_a_queued_delivery_whose_message_was_lost(emulators, runtime, worker, article):
    # Create the records without any message (as if the broker lost it).
    rt = Runtime(dataclasses.replace(runtime.settings, queue=runtime.settings.queue + "-lost"))
    r = service.share(rt, article, ["hook-a"])
    did = r.deliveries[0].id
    assert runtime.store.get(did).status == "queued"
    report = sweep(runtime, now=time.time() + 120)  # 2 minutes later, on the real queue
    assert did in report.nudged
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered"


def test_expired_lease_goes_to_unknown_never_straight_back_to_sending(runtime, article):
    rt = Runtime(dataclasses.replace(runtime.settings, queue=runtime.settings.queue + "-idle"))
    r = service.share(rt, article, ["hook-a"])
    did = r.deliveries[0].id
    assert rt.store.claim(did, 0.01).ok  # a worker takes it and dies
    time.sleep(0.05)
    again = rt.store.claim(did, 30)
    assert again.outcome == "expired"
    assert rt.store.get(did).status == "unknown"
    assert rt.store.claim(did, 30).outcome == "skip"


def test_stale_worker_cannot_overwrite_with_an_old_token(runtime, article):
    rt = Runtime(dataclasses.replace(runtime.settings, queue=runtime.settings.queue + "-idle"))
    r = service.share(rt, article, ["hook-a"])
    did = r.deliveries[0].id
    first = rt.store.claim(did, 30)
    rt.store.transition(did, "sending", "retrying", "transient", token=first.token)
    second = rt.store.claim(did, 30)
    assert second.token == first.token + 1
    stale = rt.store.transition(did, "sending", "delivered", "late answer", token=first.token)
    assert stale.outcome == "stale"
    assert rt.store.get(did).status == "sending"


def test_alert_webhook_gets_a_signed_notice_of_a_failure(emulators, runtime, worker, article):
    from sharer.alerts import send_alert
    from sharer.config import Secret
    from sharer.sandbox.webhook import SANDBOX_SECRET

    inject(emulators["webhook"], path="/hooks/a", kind="status", status=422, body={"error": "rejected"})
    r = service.share(runtime, article, ["hook-a"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "failed"
    rt = Runtime(dataclasses.replace(runtime.settings, alert_webhook=emulators["webhook"].url + "/alerts",
                                     alert_secret=Secret(SANDBOX_SECRET)))
    assert send_alert(rt, d.id)
    [notice] = [p for p in sandbox_posts(emulators["webhook"]) if p["path"] == "/alerts"]
    body = notice["body"]
    assert body["event"] == "delivery.failed" and body["delivery_id"] == d.id
    assert "rejected" in body["error"] and body["account"] == "hook-a"


def test_an_account_can_have_its_own_alert_webhook(emulators, runtime, worker, article):
    from sharer.alerts import send_alert
    from sharer.config import Secret
    from sharer.sandbox.webhook import SANDBOX_SECRET

    r = service.share(runtime, article, ["hook-b"])
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered"
    account = dataclasses.replace(runtime.settings.account("hook-b"),
                                  alert_webhook=emulators["webhook"].url + "/alerts/hook-b",
                                  alert_secret=Secret(SANDBOX_SECRET))
    rt = Runtime(dataclasses.replace(runtime.settings, accounts={**runtime.settings.accounts, "hook-b": account}))
    assert rt.settings.alerts_configured
    assert not send_alert(rt, d.id, "global")  # no [alerts] webhook: nothing sent there
    assert send_alert(rt, d.id, "account")
    [notice] = [p for p in sandbox_posts(emulators["webhook"]) if p["path"] == "/alerts/hook-b"]
    assert notice["body"]["event"] == "delivery.delivered" and notice["body"]["post_url"] == d.post_url


def test_alert_config_errors_name_the_key(tmp_path, base_env):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[accounts.x]\nplatform = "webhook"\napi_base = "http://127.0.0.1:1"\n'
                   'credentials = { secret = "sandbox:" }\nalerts = { webhook = "ftp://nope" }\n')
    proc = run_cli(["--config", str(cfg), "accounts"], base_env)
    assert proc.returncode == 2 and "accounts.x.alerts.webhook" in proc.stderr
