"""Sign-off before publishing, through the real worker, real beat and real Redis, against the emulators."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from approval_support import PUBLIC_URL, hook_posts
from conftest import EXAMPLES, run_cli, sandbox_posts, wait_settled
from test_schedule import Beat

from sharer import service, workflow
from sharer.actor import Actor
from sharer.errors import Forbidden, InputError
from sharer.loaders import load_article

SHANGHAI = ZoneInfo("Asia/Shanghai")
ED, ED2, CHIEF, CHIEF2 = Actor.web("ed"), Actor.web("ed2"), Actor.web("chief"), Actor.web("chief2")


@pytest.fixture
def article():
    return load_article(str(EXAMPLES / "baic-catl.json"))


def _in(seconds: float) -> str:
    """A wall-clock time in Beijing, as an editor there would type it."""
    return (datetime.now(SHANGHAI) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def _by_account(ds):
    return {d.account: d for d in ds}


def _said_in_chinese(events):
    """The timeline as the Chinese dashboard shows it: no sign-off line is left in English."""
    from sharer.web import i18n
    from sharer.web.wording import say

    i18n.use("zh-CN")
    try:
        said = [say(e["message"]) for e in events]
    finally:
        i18n.use("en")
    assert not [s for s in said if re.search(r"approv|reject|resubmit|waiting for|slot|not sent", s)], said
    return said


def _settle(rt, share_id, want, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ds = service.status(rt, share_id)
        if all(d.status in want for d in ds):
            return ds
        time.sleep(0.05)
    return service.status(rt, share_id)


def test_only_the_accounts_that_need_sign_off_wait_and_nothing_unapproved_is_ever_sent(
        art, appr_worker, emulators, article):
    r = service.share(art, article, ["gated-a", "hook-a"], actor=ED)
    ds = _by_account(r.deliveries)
    assert ds["gated-a"].status == "awaiting_approval" and ds["hook-a"].status == "queued"
    assert ds["gated-a"].approval.state == "pending" and ds["gated-a"].approval.version == 1
    assert ds["gated-a"].approval.submitted_by == "ed" and ds["hook-a"].approval is None
    ds = _by_account(wait_settled(art, r.share_id))
    assert ds["hook-a"].status == "delivered" and ds["gated-a"].status == "awaiting_approval"
    # a stray task for the waiting delivery (a bug elsewhere, a replayed message) and the sweeper
    art.queue.enqueue(ds["gated-a"].id, account="gated-a")
    from sharer.sweeper import sweep

    sweep(art, now=time.time() + 7200)
    time.sleep(1.5)
    assert service.delivery(art, ds["gated-a"].id).status == "awaiting_approval"
    assert hook_posts(emulators, "gated-a") == []
    assert [e["actor"] for e in service.delivery(art, ds["gated-a"].id).events] == ["ed"]
    json_out = service.delivery(art, ds["gated-a"].id).to_json()
    assert json_out["approval"]["state"] == "pending" and json_out["events"][0]["actor"] == "ed"
    # the approvers were told: the alert webhook and the Feishu group, with a link to the share
    deadline = time.time() + 30  # notices are Celery tasks; a busy bot answers "too many requests" first
    while time.time() < deadline and not (hook_posts(emulators, "alerts") and sandbox_posts(emulators["feishu"])):
        time.sleep(0.1)
    [alert] = [p["body"] for p in hook_posts(emulators, "alerts") if p["body"]["event"] == "approval.requested"]
    assert alert["share_id"] == r.share_id and alert["accounts"] == ["gated-a"] and alert["actor"] == "ed"
    assert alert["link"] == f"{PUBLIC_URL}/shares/{r.share_id}"
    [card] = sandbox_posts(emulators["feishu"])
    assert "Waiting for approval" in card["text"] and f"{PUBLIC_URL}/shares/{r.share_id}" in json.dumps(card)
    assert [s.id for s in workflow.pending(art)].count(r.share_id) == 1


def test_approved_text_is_exactly_what_the_platform_receives(art, appr_worker, emulators, article):
    r = service.share(art, article, ["gated-a", "gated-b"], actor=ED)
    edited = "中文编辑改过的版本 — approved by the chief https://example.com/a"
    res = workflow.approve(art, r.share_id, actor=CHIEF, texts={"gated-b": edited})
    assert res.edited == ["gated-b"]
    ds = _by_account(wait_settled(art, r.share_id))
    assert {d.status for d in ds.values()} == {"delivered"}
    [post_b] = hook_posts(emulators, "gated-b")
    assert post_b["body"]["text"] == edited
    [post_a] = hook_posts(emulators, "gated-a")
    assert post_a["body"]["text"] == ds["gated-a"].approval.submitted_text  # unedited: as submitted
    b = ds["gated-b"].approval
    assert b.state == "approved" and b.decided_by == "chief" and b.edited and b.version == 1
    assert b.submitted_text != edited  # the page diffs the two
    [entry] = service.audit(art, share_id=r.share_id, action="approve")[0]
    assert entry.actor == "chief" and entry.data["edited"] == ["gated-b"]
    approve_event = [e for e in ds["gated-b"].events if e["status"] == "queued"][0]
    assert approve_event["actor"] == "chief" and "text edited" in approve_event["message"]
    # a text the platform cannot take (empty): refused before anything moves
    r2 = service.share(art, article, ["gated-a"], actor=ED, force=True)
    from sharer.errors import ComposeError

    with pytest.raises(ComposeError):
        workflow.approve(art, r2.share_id, actor=CHIEF, texts={"gated-a": ""})
    assert service.status(art, r2.share_id)[0].status == "awaiting_approval"
    with pytest.raises(InputError, match="not one of this share"):
        workflow.approve(art, r2.share_id, actor=CHIEF, texts={"hook-a": "hello"})


def test_four_eyes_nobody_approves_their_own_share(art, appr_worker, emulators, article, appr_env):
    r = service.share(art, article, ["gated-a"], actor=CHIEF)
    with pytest.raises(Forbidden, match="another approver"):
        workflow.approve(art, r.share_id, actor=CHIEF)
    with pytest.raises(Forbidden):
        workflow.reject(art, r.share_id, "no", actor=Actor.token("chief", "ci"))  # a token acts for its user
    assert service.status(art, r.share_id)[0].status == "awaiting_approval"
    workflow.approve(art, r.share_id, actor=CHIEF2)
    assert wait_settled(art, r.share_id)[0].status == "delivered"
    # the CLI: shared and approved as the same cli:<user>@<host> is refused (exit 2, one line)
    out = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "gated-b", "--force", "--json"], appr_env)
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["share_id"]
    assert json.loads(out.stdout)["deliveries"][0]["approval"]["submitted_by"].startswith("cli:")
    refused = run_cli(["approve", sid], appr_env)
    assert refused.returncode == 2 and "another approver" in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert service.status(art, sid)[0].status == "awaiting_approval"
    listed = run_cli(["pending"], appr_env)
    assert listed.returncode == 0 and sid in listed.stdout and "v1 by cli:" in listed.stdout
    shown = run_cli(["status", sid], appr_env)
    assert "v1 waiting for approval (submitted by cli:" in shown.stdout
    workflow.approve(art, sid, actor=CHIEF)  # someone else may
    assert wait_settled(art, sid)[0].status == "delivered"


def test_approve_races_cancel_and_another_approve_and_ends_consistently(art, appr_worker, emulators, article):
    outcomes = {"approved": 0, "cancelled": 0}
    for _ in range(12):
        r = service.share(art, article, ["gated-a", "gated-b"], actor=ED, force=True)
        barrier = threading.Barrier(3)
        results: dict[str, object] = {}

        def run(name, fn, barrier=barrier, results=results):
            barrier.wait()
            try:
                results[name] = fn()
            except (InputError, Forbidden) as e:
                results[name] = e

        sid = r.share_id
        calls = {"a1": partial(workflow.approve, art, sid, actor=CHIEF),
                 "a2": partial(workflow.approve, art, sid, actor=CHIEF2),
                 "c": partial(service.cancel, art, sid, actor=ED)}
        threads = [threading.Thread(target=run, args=item) for item in calls.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wins = [n for n in ("a1", "a2") if isinstance(results[n], workflow.DecisionResult)]
        assert len(wins) <= 1  # never two approvals of the same version
        ds = _settle(art, r.share_id, {"delivered", "cancelled"})
        for d in ds:
            assert d.status in ("delivered", "cancelled"), d
            sent = [p for p in hook_posts(emulators, d.account) if p["delivery"] == d.id]
            assert len(sent) == (1 if d.status == "delivered" else 0)
            if d.status == "delivered":
                assert d.approval.state == "approved"
                assert d.approval.decided_by == {"a1": "chief", "a2": "chief2"}[wins[0]]
        if wins:
            outcomes["approved"] += 1
            loser = results["a2" if wins[0] == "a1" else "a1"]
            assert isinstance(loser, InputError) and "already approved by" in str(loser)
        else:
            outcomes["cancelled"] += 1
            assert {d.status for d in ds} == {"cancelled"}
            assert all("not waiting" in str(results[n]) for n in ("a1", "a2"))
    assert sum(outcomes.values()) == 12


def test_a_rejected_share_is_revised_resubmitted_and_approved(art, appr_worker, emulators, article):
    r = service.share(art, article, ["gated-a", "hook-b"], actor=ED)
    with pytest.raises(InputError, match="reason"):
        workflow.reject(art, r.share_id, "  ", actor=CHIEF)
    workflow.reject(art, r.share_id, "标题不准确: say 'battery', not 'batteries'", actor=CHIEF)
    ds = _by_account(wait_settled(art, r.share_id))
    d = ds["gated-a"]
    assert d.status == "rejected" and d.approval.reason.startswith("标题不准确")
    assert d.events[-1]["actor"] == "chief" and "rejected by chief" in d.events[-1]["message"]
    assert ds["hook-b"].status == "delivered"  # the account without sign-off was never held
    with pytest.raises(InputError, match="was never approved"):
        service.retry(art, d.id, confirmed=True, actor=ED)
    with pytest.raises(InputError, match="already rejected"):
        workflow.approve(art, r.share_id, actor=CHIEF2)
    revised = "BAIC and CATL: a battery partnership https://example.com/b"
    res = workflow.resubmit(art, r.share_id, actor=ED2, texts={"gated-a": revised}, note="fixed the title")
    d = _by_account(res.deliveries)["gated-a"]
    assert d.status == "awaiting_approval" and d.approval.version == 2 and d.approval.submitted_by == "ed2"
    assert d.approval.reason is None and d.approval.submitted_text == revised
    with pytest.raises(InputError, match="version 2"):
        workflow.approve(art, r.share_id, actor=CHIEF, version=1)  # what chief looked at is stale
    workflow.approve(art, r.share_id, actor=CHIEF, version=2)
    d = _by_account(wait_settled(art, r.share_id))["gated-a"]
    assert d.status == "delivered" and d.approval.version == 2 and d.approval.decided_by == "chief"
    assert [p["body"]["text"] for p in hook_posts(emulators, "gated-a")] == [revised]
    said = _said_in_chinese(d.events)
    assert "已被 chief 驳回：标题不准确: say 'battery', not 'batteries'" in said
    assert "ed2 已重新提交为第 2 版，等待审批: fixed the title" in said and "已由 chief 批准（第 2 版）" in said
    actions = [e.action for e in service.audit(art, share_id=r.share_id)[0]]
    assert actions == ["approve", "resubmit", "reject", "share"]
    # the editors and approvers were told of each step, with the reason
    deadline = time.time() + 30  # notices are Celery tasks; a busy bot answers "too many requests" first
    want = {"approval.requested", "approval.rejected", "approval.approved"}
    while time.time() < deadline:
        notices = [p["body"] for p in hook_posts(emulators, "alerts") if p["body"]["share_id"] == r.share_id]
        cards = [json.dumps(p, ensure_ascii=False) for p in sandbox_posts(emulators["feishu"])]
        rejected_card = any("Rejected: BAIC" in c and "标题不准确" in c for c in cards)
        if want <= {n["event"] for n in notices} and rejected_card and any("Approved: BAIC" in c for c in cards):
            break
        time.sleep(0.1)
    [rejected] = [n for n in notices if n["event"] == "approval.rejected"]
    assert rejected["actor"] == "chief" and rejected["reason"].startswith("标题不准确")
    assert want <= {n["event"] for n in notices}
    assert any("Rejected: BAIC" in t and "标题不准确" in t for t in cards), cards
    assert any("Approved: BAIC" in t for t in cards)


def test_a_scheduled_post_unapproved_at_its_slot_is_not_sent_and_the_approvers_are_told(
        art, appr_worker, emulators, article, appr_env, tmp_path):
    r = service.share(art, article, ["gated-a", "hook-a"], actor=ED, at=_in(2.5), tz="Asia/Shanghai")
    ds = _by_account(r.deliveries)
    assert ds["gated-a"].status == "awaiting_approval" and ds["hook-a"].status == "scheduled"
    label = ds["gated-a"].scheduled_for
    beat = Beat(appr_env, tmp_path)
    try:
        ds = _by_account(_settle(art, r.share_id, {"delivered", "needs_review"}, timeout=30))
    finally:
        beat.stop()
    d = ds["gated-a"]
    assert ds["hook-a"].status == "delivered"
    assert d.status == "needs_review" and d.approval.state == "pending"
    local = datetime.fromtimestamp(label, UTC).astimezone(SHANGHAI)
    assert f"not approved by its {local:%Y-%m-%d %H:%M} Asia/Shanghai slot" in d.events[-1]["message"]
    assert d.events[-1]["actor"] == "scheduler"
    assert hook_posts(emulators, "gated-a") == []
    deadline = time.time() + 30  # notices are Celery tasks; a busy bot answers "too many requests" first
    while time.time() < deadline and not (
            any(p["body"]["event"] == "approval.missed" for p in hook_posts(emulators, "alerts"))
            and any("Not approved in time" in json.dumps(p) for p in sandbox_posts(emulators["feishu"]))):
        time.sleep(0.1)
    assert any(p["body"]["event"] == "approval.missed" for p in hook_posts(emulators, "alerts"))
    assert any("Not approved in time" in json.dumps(p) for p in sandbox_posts(emulators["feishu"]))
    [entry] = service.audit(art, share_id=r.share_id, action="unapproved_at_due")[0]
    assert entry.actor == "scheduler"
    assert r.share_id in [s.id for s in workflow.pending(art)]
    for refused in (lambda: service.retry(art, d.id, confirmed=True, actor=ED),
                    lambda: service.mark_posted(art, d.id, actor=ED)):
        with pytest.raises(InputError, match="never approved"):
            refused()
    # the approver decides: approving now sends it (the slot has passed: said in the event)
    workflow.approve(art, r.share_id, actor=CHIEF)
    d = _by_account(wait_settled(art, r.share_id))["gated-a"]
    assert d.status == "delivered" and len(hook_posts(emulators, "gated-a")) == 1
    assert any("after its slot had passed" in e["message"] for e in d.events)
    said = _said_in_chinese(d.events)
    assert f"到 {local:%Y-%m-%d %H:%M} Asia/Shanghai 的发布时段仍未获批准，未发送" in said
    assert "已由 chief 批准（第 1 版），预定时段已过，现在发送" in said


def test_an_approved_scheduled_post_waits_for_its_time(art, appr_worker, emulators, article, appr_env, tmp_path):
    r = service.share(art, article, ["gated-b"], actor=ED, at=_in(3), tz="Asia/Shanghai")
    [d] = workflow.approve(art, r.share_id, actor=CHIEF).deliveries
    assert d.status == "scheduled" and d.approval.state == "approved"
    beat = Beat(appr_env, tmp_path)
    try:
        time.sleep(1)
        assert hook_posts(emulators, "gated-b") == []  # not before its time
        [d] = _settle(art, r.share_id, {"delivered", "needs_review"}, timeout=30)
    finally:
        beat.stop()
    assert d.status == "delivered" and d.lag_seconds is not None and d.lag_seconds >= 0


def test_the_audit_log_is_retained_like_the_log(art):
    import dataclasses
    import secrets

    from conftest import _delete_prefix

    from sharer.runtime import Runtime
    from sharer.store.audit import AuditAction, AuditEntry

    rt = Runtime(dataclasses.replace(art.settings, prefix=f"sharer-appr-ret-{secrets.token_hex(3)}"))
    try:
        old = int((time.time() - (rt.settings.retention_days + 1) * 86400) * 1000)
        rt.redis.xadd(rt.keys.audit, AuditEntry(AuditAction.CANCEL, "ed", "ed", "long ago").fields(), id=f"{old}-0")
        rt.audit.record(AuditEntry(AuditAction.CANCEL, "ed", "ed", "today"))
        service.purge(rt)
        assert [e.detail for e in service.audit(rt)[0]] == ["today"]
    finally:
        _delete_prefix(rt.redis, rt.settings.prefix)
