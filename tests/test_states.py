"""The state machine: one table, enforced by the Lua scripts themselves (real Redis)."""

from __future__ import annotations

import pytest

from sharer.store.deliveries import ClaimOutcome, Outcome, Status
from sharer.store.states import MOVE_PRELUDE, TRANSITIONS, allowed


def _record(rt, status: str) -> str:
    from sharer.service import new_id

    did = new_id("dl")
    rt.store.create_share({"id": new_id("sh"), "article": {}, "title": "t", "url": "https://e.com/",
                           "delivery_ids": [did]},
                          [{"id": did, "account": "hook-a", "platform": "webhook", "status": status}])
    return did


def test_every_status_has_a_row_and_the_lua_table_is_generated_from_it():
    assert set(TRANSITIONS) == set(Status)
    for cur, targets in TRANSITIONS.items():
        assert f'["{cur}"]' in MOVE_PRELUDE
        for t in targets:
            assert allowed(cur, t)
    assert not allowed("delivered", "queued") and allowed("queued", "queued")


def test_a_move_the_table_forbids_is_refused_by_the_script_and_nothing_is_written(runtime):
    did = _record(runtime, "queued")
    assert runtime.store.transition(did, "queued", "delivered", "skip the worker").outcome is Outcome.ILLEGAL
    d = runtime.store.get(did)
    assert d.status is Status.QUEUED and len(d.events) == 1
    ok = runtime.store.transition(did, "queued", "cancelled", "no", actor="alice")
    assert ok.ok and ok.attempts == 0
    d = runtime.store.get(did)
    assert d.status == "cancelled" and d.events[-1]["actor"] == "alice"
    res = runtime.store.transition(did, "queued", "cancelled", "again")
    assert res.outcome is Outcome.CONFLICT and res.status is Status.CANCELLED


def test_claim_outcomes_are_typed(runtime):
    did = _record(runtime, "queued")
    claim = runtime.store.claim(did, 30)
    assert claim.outcome is ClaimOutcome.OK and claim.token == 1 and claim.record.status is Status.SENDING
    busy = runtime.store.claim(did, 30)
    assert busy.outcome is ClaimOutcome.BUSY and busy.lease_until > 0
    waiting = _record(runtime, "awaiting_approval")
    runtime.store.transition(waiting, "awaiting_approval", None, "", fields={"approval_state": "pending"})
    assert runtime.store.claim(waiting, 30).outcome is ClaimOutcome.UNAPPROVED
    skip = runtime.store.claim(_record(runtime, "cancelled"), 30)
    assert skip.outcome is ClaimOutcome.SKIP and skip.status is Status.CANCELLED


def _settings(extra: str, tmp_path):
    from sharer.config import load_settings

    p = tmp_path / "c.toml"
    p.write_text('[accounts.bot]\nplatform = "feishu"\napi_base = "http://127.0.0.1:9/"\n'
                 'credentials = { hook_token = "sandbox:" }\n'
                 '[accounts.hook]\nplatform = "webhook"\napi_base = "http://127.0.0.1:9/h"\n'
                 'credentials = { secret = "sandbox:" }\n' + extra)
    return load_settings(p, env={})


@pytest.mark.parametrize("extra, where", [
    ('[workflow]\nnotify = "hook"\n', "workflow.notify"),
    ('[workflow]\nnotify = "nobody"\n', "workflow.notify"),
    ('[workflow]\nrequires_approval = "yes"\n', "workflow.requires_approval"),
    ('[workflow]\nfour_eyes = true\n', "workflow.four_eyes"),
    ('[web]\npublic_url = "ftp://x"\n', "web.public_url"),
])
def test_bad_workflow_settings_name_the_key(extra, where, tmp_path):
    from sharer.errors import ConfigError

    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        _settings(extra, tmp_path)


def test_which_accounts_need_sign_off(tmp_path):
    s = _settings('[workflow]\nrequires_approval = true\nnotify = "bot"\n', tmp_path)
    assert s.needs_approval("hook") and s.workflow.notify == "bot" and not s.workflow.allow_self_approval
    s = _settings("", tmp_path)
    assert not s.needs_approval("hook")


def test_roles_keep_editor_and_viewer_and_add_approver_and_admin():
    from sharer.roles import Permission as P
    from sharer.roles import can

    assert can("viewer", P.READ) and not can("viewer", P.SHARE)
    assert can("editor", P.SHARE) and not can("editor", P.APPROVE) and not can("editor", P.AUDIT)
    assert can("approver", P.APPROVE) and can("approver", P.AUDIT) and not can("approver", P.ADMIN)
    assert all(can("admin", p) for p in P) and not can("owner", P.READ)
