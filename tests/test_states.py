"""The state machine: one table, enforced by the Lua scripts themselves (real Redis)."""

from __future__ import annotations

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
