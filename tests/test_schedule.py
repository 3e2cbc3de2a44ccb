"""Scheduled posting with real beat and worker processes: on time, exactly once, in the editor's zone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import EXAMPLES, ROOT, run_cli, sandbox_posts, wait_settled

from sharer import service
from sharer.errors import InputError
from sharer.loaders import load_article
from sharer.scheduler import Dispatcher, dispatch_due


class Beat:
    """A `celery -A tasks beat` subprocess with its own schedule file."""

    def __init__(self, env, tmp_path, name="beat"):
        self.log = tmp_path / f"{name}.log"
        self.fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "beat", "-s", str(tmp_path / f"{name}.db"), "-l", "INFO"],
            cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        self.fh.close()


@pytest.fixture
def article():
    return load_article(str(EXAMPLES / "baic-catl.json"))


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_scheduled_share_goes_out_on_time_with_its_lag_recorded(emulators, runtime, worker, base_env, article,
                                                                 tmp_path):
    beat = Beat(base_env, tmp_path)
    try:
        r = service.share(runtime, article, ["hook-a"], at=_in(3))
        [d] = r.deliveries
        assert d.status == "scheduled" and d.scheduled_for is not None
        assert [i.id for i in service.schedule_list(runtime, account="hook-a")].count(d.id) == 1
        [d] = wait_settled(runtime, r.share_id, timeout=30)
    finally:
        beat.stop()
    assert d.status == "delivered"
    sent = [e for e in d.events if e["status"] == "queued"][-1]
    released_at = datetime.fromisoformat(sent["at"].replace("Z", "+00:00")).timestamp()
    assert released_at >= d.scheduled_for - 0.01  # never early
    assert 0 <= d.lag_seconds < 2.5  # beat's dispatcher thread wakes for it (its backstop tick is 15 s)
    assert [p["delivery"] for p in sandbox_posts(emulators["webhook"])] == [d.id]


def test_the_same_local_time_means_the_same_instant_whatever_the_machine_zone(base_env, runtime):
    day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=2)).strftime("%Y-%m-%d")
    instants = []
    for machine_tz in ("UTC", "America/New_York"):
        env = {**base_env, "TZ": machine_tz}
        proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-b", "--at", f"{day} 09:00",
                        "--tz", "Asia/Shanghai", "--json", "--force"], env)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        [d] = out["deliveries"]
        instants.append(d["scheduled_for"])
        assert d["timezone"] == "Asia/Shanghai" and d["status"] == "scheduled"
        service.cancel(runtime, out["share_id"])
    expected = datetime.fromisoformat(f"{day}T09:00:00+08:00").astimezone(UTC)
    assert instants[0] == instants[1]
    assert instants[0].startswith(expected.strftime("%Y-%m-%dT%H:%M:%S"))


def test_bad_times_are_clear_errors_and_store_nothing(base_env, runtime):
    before = runtime.store.count_by_status()["scheduled"]
    cases = [
        (["--at", "2020-01-01 09:00"], "in the past"),
        (["--at", "2027-03-14 02:30", "--tz", "America/New_York"], "does not exist"),
        (["--at", "2027-11-07 01:30", "--tz", "America/New_York"], "happens twice"),
        (["--at", "next tuesday-ish"], "cannot read"),
        (["--at", "2027-01-01 09:00", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["--next-slot"], "no posting slots"),
    ]
    for extra, needle in cases:
        proc = run_cli(["share", str(EXAMPLES / "baic-catl.json"), "--to", "hook-a", "--force", *extra], base_env)
        assert proc.returncode == 2, (extra, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert runtime.store.count_by_status()["scheduled"] == before


def test_next_slot_fills_the_next_slots_in_order_respecting_spacing(runtime, article):
    shares = [service.share(runtime, article, ["hook-slots"], next_slot=True, force=True) for _ in range(5)]
    try:
        got = [s.deliveries[0].scheduled_for for s in shares]
        assert got == sorted(got) and len(set(got)) == 5
        tz = ZoneInfo("Asia/Shanghai")
        local = [datetime.fromtimestamp(t, tz) for t in got]
        # 12:30 is within 240 minutes of 09:00, so with spacing the account posts at 09:00 and 18:00
        assert {d.strftime("%H:%M") for d in local} <= {"09:00", "18:00"}
        for a, b in zip(got, got[1:]):
            assert b - a >= 240 * 60
        account = runtime.settings.account("hook-slots")
        expected = [t for t in account.slots.upcoming("Asia/Shanghai", time.time() + 60, 20)]
        free, last = [], None
        for t in expected:
            if last is None or t - last >= 240 * 60:
                free.append(t)
                last = t
        assert got == free[:5]
    finally:
        for s in shares:
            service.cancel(runtime, s.share_id)


def test_spacing_blocks_a_second_post_at_nearly_the_same_time(runtime, article):
    first = service.share(runtime, article, ["hook-slots"], next_slot=True, force=True)
    try:
        when = datetime.fromtimestamp(first.deliveries[0].scheduled_for + 600, UTC).isoformat()
        with pytest.raises(InputError, match="minimum spacing"):
            service.share(runtime, article, ["hook-slots"], at=when, force=True)
    finally:
        service.cancel(runtime, first.share_id)


def test_reschedule_bumps_the_version_and_a_stale_task_exits(runtime, article):
    r = service.share(runtime, article, ["hook-b"], at=_in(3600), force=True)
    did = r.deliveries[0].id
    [moved] = service.reschedule(runtime, r.share_id, _in(7200))
    assert moved.version == 1 and moved.scheduled_for > r.deliveries[0].scheduled_for
    # release it by force (as if due), then a task carrying version 0 must not send it
    runtime.redis.zadd(runtime.keys.schedule, {did: time.time() - 1})
    rel = [x for x in runtime.schedule.dispatch() if x.delivery_id == did]
    assert rel and rel[0].version == 1
    assert runtime.store.claim(did, 30, version=0).outcome == "stale"
    assert runtime.store.get(did).status == "queued"
    service.cancel(runtime, did)


def test_late_beyond_max_lateness_needs_review_and_is_not_posted(emulators, runtime, worker, article):
    r = service.share(runtime, article, ["hook-a"], at=_in(1), max_lateness=60, force=True)
    did = r.deliveries[0].id
    due = r.deliveries[0].scheduled_for
    report = dispatch_due(runtime, at=due + 600)  # the scheduler was down for ten minutes
    assert did in {x.delivery_id for x in report.missed}
    d = runtime.store.get(did)
    assert d.status == "needs_review" and "missed its" in d.events[-1]["message"]
    assert "publish now?" in d.events[-1]["message"]
    time.sleep(1)
    assert sandbox_posts(emulators["webhook"]) == []


def test_beat_down_across_the_due_time_then_back_within_lateness_posts_with_lag(emulators, runtime, worker,
                                                                                base_env, article, tmp_path):
    r = service.share(runtime, article, ["hook-a"], at=_in(1), max_lateness=30, force=True)
    time.sleep(4)  # no beat running: the post is due and waiting
    beat = Beat(base_env, tmp_path)
    try:
        [d] = wait_settled(runtime, r.share_id, timeout=30)
    finally:
        beat.stop()
    assert d.status == "delivered" and d.lag_seconds >= 3
    assert len(sandbox_posts(emulators["webhook"])) == 1


def test_cancel_racing_the_dispatcher_is_never_both_cancelled_and_delivered(emulators, runtime, worker, article):
    shares = [service.share(runtime, article, ["hook-b"], at=_in(1.5), force=True) for _ in range(20)]
    stop = threading.Event()

    def dispatcher():
        while not stop.is_set():
            dispatch_due(runtime)
            time.sleep(0.01)

    t = threading.Thread(target=dispatcher)
    t.start()
    time.sleep(1.45)
    results = [service.cancel(runtime, s.share_id) for s in shares]
    time.sleep(0.5)
    stop.set()
    t.join()
    for s in shares:
        wait_settled(runtime, s.share_id, timeout=30)
    posted = {p["delivery"] for p in sandbox_posts(emulators["webhook"])}
    for s, res in zip(shares, results):
        d = runtime.store.get(s.deliveries[0].id)
        assert d.status in ("cancelled", "delivered")
        assert (d.status == "cancelled") == (d.id in res.cancelled)
        assert (d.id in posted) == (d.status == "delivered")


def test_a_thousand_posts_due_together_with_two_beats_and_two_dispatchers_go_out_exactly_once(
        emulators, runtime, worker, base_env, article, tmp_path):
    n = 1000
    due = time.time() + 6
    ids = []
    for i in range(n):
        at = datetime.fromtimestamp(due + (i % 30) * 0.1, UTC).isoformat()
        ids.append(service.share(runtime, article, ["hook-b"], at=at, force=True).deliveries[0].id)
    beats = [Beat(base_env, tmp_path, f"beat{i}") for i in range(2)]
    stop = threading.Event()

    def dispatcher():
        while not stop.is_set():
            dispatch_due(runtime)
            time.sleep(0.2)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # this test's own records: earlier tests' deliveries share the prefix
            got = [d for d in runtime.store.get_many(ids, with_events=False) if d.status == "delivered"]
            if len(got) == n:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for b in beats:
            b.stop()
    records = runtime.store.get_many(ids, with_events=False)
    assert [d.status for d in records].count("delivered") == n
    posts = [p["delivery"] for p in sandbox_posts(emulators["webhook"])]
    assert len(posts) == n and set(posts) == set(ids)
    assert max(d.lag_seconds for d in records) < 60


def test_the_dispatcher_sleeps_until_the_next_due_entry_and_a_new_earlier_one_wakes_it(runtime, article):
    far = service.share(runtime, article, ["hook-b"], at=_in(3600), force=True)
    disp = Dispatcher(runtime, max_sleep=120.0)  # without the wake-ups it would sleep two minutes
    thread = disp.start()
    try:
        time.sleep(0.5)  # asleep now, waiting for the far entry
        soon = [service.share(runtime, article, ["hook-b"], at=_in(1 + i * 0.3), force=True) for i in range(3)]
        deadline = time.time() + 20
        while time.time() < deadline:
            ds = [runtime.store.get(s.deliveries[0].id, with_events=False) for s in soon]
            if all(d.status != "scheduled" for d in ds):
                break
            time.sleep(0.1)
        # a post moved earlier wakes it too
        moved = service.share(runtime, article, ["hook-b"], at=_in(600), force=True)
        time.sleep(0.3)
        service.reschedule(runtime, moved.share_id, _in(1))
        deadline = time.time() + 20
        while time.time() < deadline and runtime.store.get(moved.deliveries[0].id).status == "scheduled":
            time.sleep(0.1)
        ds.append(runtime.store.get(moved.deliveries[0].id, with_events=False))
    finally:
        disp.stop.set()
        runtime.schedule.wake()
        thread.join(10)
    assert not thread.is_alive()
    for d in ds:
        assert d.status != "scheduled" and d.lag_seconds is not None
        assert 0 <= d.lag_seconds < 1.5, d.lag_seconds  # not the 120 s it would have slept
    assert runtime.store.get(far.deliveries[0].id).status == "scheduled"
    for s in [far, *soon, moved]:
        service.cancel(runtime, s.share_id)
