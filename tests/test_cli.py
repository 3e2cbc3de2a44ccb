"""The CLI as a user and a script read it: the real `sharer` process against the real worker, Redis and
emulators. Each test asserts the text and the --json a user would look at."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import EXAMPLES, inject, run_cli, sandbox_posts, wait_settled

from sharer import service
from sharer.loaders import load_article


def _article(tmp_path: Path, **fields) -> Path:
    """A fresh article file (unique URL, so no earlier test's share counts as a duplicate)."""
    data = json.loads((EXAMPLES / "baic-catl.json").read_text())
    data.pop("source", None)
    data["url"] = f"https://news.example.com/en/cli-{time.time_ns()}"
    data.update(fields)
    path = tmp_path / f"article-{time.time_ns()}.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


@pytest.fixture(scope="module")
def dup_env(base_env, config_file, tmp_path_factory):
    """The session config with duplicate detection on (the session config switches it off)."""
    path = tmp_path_factory.mktemp("dupcfg") / "sharer.toml"
    path.write_text(config_file.read_text().replace("duplicate_window_hours = 0", "duplicate_window_hours = 1"))
    return {**base_env, "SHARER_CONFIG": str(path)}


def _posts_to(emulators, path: str) -> int:
    return sum(1 for p in sandbox_posts(emulators["webhook"]) if p["path"] == path)


# --- duplicates and idempotency -------------------------------------------------------------------

def test_duplicates_are_per_account_reported_in_text_and_json_and_force_for_overrides(
        emulators, runtime, worker, dup_env, tmp_path):
    src = _article(tmp_path)
    first = run_cli(["share", str(src), "--to", "hook-a", "--wait", "--json"], dup_env)
    assert first.returncode == 0, first.stderr
    [a1] = json.loads(first.stdout)["deliveries"]
    assert a1["status"] == "delivered" and a1["duplicate_of"] is None

    # The same article to hook-a and hook-b: hook-a already had it and is reported, hook-b goes out.
    again = run_cli(["share", str(src), "--to", "hook-a,hook-b", "--wait", "--json"], dup_env)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    by_account = {d["account"]: d for d in out["deliveries"]}
    assert [d["account"] for d in out["deliveries"]] == ["hook-a", "hook-b"]
    dup = by_account["hook-a"]["duplicate_of"]
    assert dup == {"share_id": a1["share_id"], "delivery_id": a1["id"], "status": "delivered",
                   "post_url": a1["post_url"], "created_at": a1["created_at"]}
    assert by_account["hook-b"]["duplicate_of"] is None and by_account["hook-b"]["status"] == "delivered"
    assert by_account["hook-b"]["share_id"] == out["share_id"] != a1["share_id"]
    assert f"hook-a: already shared in {a1['share_id']}" in again.stderr  # --json: the notice on stderr
    assert _posts_to(emulators, "/hooks/a") == 1 and _posts_to(emulators, "/hooks/b") == 1

    # Every account had it: nothing new, said plainly (text mode on stdout), exit 0, nothing posted.
    third = run_cli(["share", str(src), "--to", "hook-a,hook-b"], dup_env)
    assert third.returncode == 0, third.stderr
    assert f"hook-a: already shared in {a1['share_id']} ({a1['id']}, delivered: {a1['post_url']}); skipped" \
        in third.stdout
    assert "hook-b: already shared in" in third.stdout
    assert "nothing new to send: 2 accounts already had this article" in third.stdout

    # --force-for sends to the named account only; the other is still checked.
    forced = run_cli(["share", str(src), "--to", "hook-a,hook-b", "--force-for", "hook-a", "--wait"], dup_env)
    assert forced.returncode == 0, forced.stderr
    assert "hook-b: already shared in" in forced.stdout and "hook-a: already shared" not in forced.stdout
    assert _posts_to(emulators, "/hooks/a") == 2 and _posts_to(emulators, "/hooks/b") == 1

    # A corrected summary is a new article: it goes out again.
    fixed = src.read_text().replace('"summary": "', '"summary": "Corrected: ')
    src.write_text(fixed)
    corrected = run_cli(["share", str(src), "--to", "hook-a", "--wait", "--json"], dup_env)
    assert corrected.returncode == 0, corrected.stderr
    [d] = json.loads(corrected.stdout)["deliveries"]
    assert d["duplicate_of"] is None and d["status"] == "delivered"
    assert _posts_to(emulators, "/hooks/a") == 3


def test_same_idempotency_key_returns_the_share_and_a_different_request_is_refused(runtime, dup_env, tmp_path,
                                                                                  emulators, worker):
    src, other = _article(tmp_path), _article(tmp_path)
    key = f"cms-{time.time_ns()}"
    first = run_cli(["share", str(src), "--to", "hook-a", "--idempotency-key", key, "--json"], dup_env)
    assert first.returncode == 0, first.stderr
    share_id = json.loads(first.stdout)["share_id"]
    again = run_cli(["share", str(src), "--to", "hook-a", "--idempotency-key", key, "--json"], dup_env)
    assert again.returncode == 0 and json.loads(again.stdout)["share_id"] == share_id
    assert f"--idempotency-key '{key}' was used before for this same request: share {share_id}" in again.stderr
    for args in (["share", str(other), "--to", "hook-a"], ["share", str(src), "--to", "hook-a,hook-b"],
                 ["share", str(src), "--to", "hook-a", "--text", "hook-a=my own words"]):
        proc = run_cli([*args, "--idempotency-key", key], dup_env)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr == (f"error: --idempotency-key: already used for share {share_id} with a different "
                               "request (article, accounts, texts or time differ); use a new key\n")
    wait_settled(runtime, share_id)


# --- --wait ---------------------------------------------------------------------------------------

def test_wait_without_a_tty_prints_one_line_per_event_with_the_step_message(emulators, runtime, worker, base_env,
                                                                           tmp_path):
    src = _article(tmp_path)
    proc = run_cli(["share", str(src), "--to", "mastodon-main", "--wait"], base_env, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    [did] = set(re.findall(r"dl_[0-9a-f]+", proc.stdout))
    progress = [ln for ln in lines if re.match(r"^\d{4}-\d\d-\d\dT\S+Z  dl_", ln)]
    assert [ln.split("  ")[3] for ln in progress][:2] == ["queued", "sending"]
    assert progress[-1].split("  ")[3] == "delivered"
    assert any("waiting for the instance to process it" in ln for ln in progress)  # a step, on its own line
    assert all(f"  {did}  mastodon-main  " in ln for ln in progress)
    assert lines[len(progress)].startswith("share sh_")  # then the final table
    assert "delivered" in lines[-1]


def test_wait_that_times_out_exits_3_saying_it_gave_up_while_the_delivery_carries_on(
        emulators, runtime, worker, base_env, tmp_path):
    inject(emulators["webhook"], path="/hooks/a", kind="hold", seconds=4, count=1)
    src = _article(tmp_path)
    proc = run_cli(["share", str(src), "--to", "hook-a", "--wait", "--timeout", "1"], base_env)
    assert proc.returncode == 3, proc.stderr + proc.stdout
    [share_id] = set(re.findall(r"sh_[0-9a-f]+", proc.stdout))
    assert re.search(r"^gave up waiting after 1 s: 1 delivery not settled yet \(sending\); they carry on — "
                     rf"follow with: sharer status {share_id}$", proc.stderr, re.M)
    assert re.search(r"hook-a\s+webhook\s+sending", proc.stdout)
    [d] = wait_settled(runtime, share_id)
    assert d.status == "delivered"

    inject(emulators["webhook"], path="/hooks/b", kind="hold", seconds=3, count=1)
    as_json = run_cli(["share", str(_article(tmp_path)), "--to", "hook-b", "--wait", "--timeout", "0.5",
                       "--json"], base_env)
    assert as_json.returncode == 3 and "gave up waiting" in as_json.stderr
    out = json.loads(as_json.stdout)  # stdout stays pure JSON; the progress lines went to stderr
    assert out["deliveries"][0]["account"] == "hook-b" and " queued " in as_json.stderr
    wait_settled(runtime, out["share_id"])


# --- preview --------------------------------------------------------------------------------------

def test_preview_shows_every_account_and_exits_2_when_one_cannot_be_composed(base_env, tmp_path):
    src = _article(tmp_path)
    args = ["preview", str(src), "--to", "hook-a,x-main,telegram-text", "--text", "x-main=" + "y" * 300]
    proc = run_cli(args, base_env)
    assert proc.returncode == 2
    assert "── hook-a (webhook) — " in proc.stdout and "── telegram-text (telegram) — " in proc.stdout
    assert "── x-main (x) — cannot be composed" in proc.stdout
    assert re.search(r"✗ .*300.*280", proc.stdout)
    assert proc.stderr == "error: 1 account of 3 cannot be composed: x-main\n"

    proc = run_cli([*args, "--json"], base_env)
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert set(out) == {"posts", "errors"}
    assert [p["account"] for p in out["posts"]] == ["hook-a", "telegram-text"]
    [err] = out["errors"]
    assert set(err) == {"account", "error"} and err["account"] == "x-main" and "280" in err["error"]

    ok = run_cli(["preview", str(src), "--to", "hook-a", "--json"], base_env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["errors"] == []


def test_over_long_titles_are_trimmed_on_every_platform_and_an_empty_summary_is_filled(base_env, tmp_path):
    accounts = ["hook-a", "x-main", "mastodon-main", "telegram-text", "telegram-channel", "wecom-news",
                "dingtalk-plain", "feishu-plain", "wechat-main"]
    long_title = _article(tmp_path, title="Long " * 2000)
    proc = run_cli(["preview", str(long_title), "--to", ",".join(accounts), "--json"], base_env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["errors"] == []
    for p in out["posts"]:
        assert p["length"] <= p["limit"], p["account"]
    telegram = next(p for p in out["posts"] if p["account"] == "telegram-text")
    assert "title trimmed to fit 4096 UTF-16 units" in telegram["warnings"]

    no_summary = _article(tmp_path, summary="", body_html="<p>The body opens with this sentence. And a second one.</p>")
    proc = run_cli(["preview", str(no_summary), "--to", "wecom-news,feishu-plain", "--json"], base_env)
    assert proc.returncode == 0, proc.stderr
    for p in json.loads(proc.stdout)["posts"]:
        assert p["text"] == "The body opens with this sentence. And a second one.", p
        assert p["length"] > 0
        assert "the article has no summary: the start of its body is used" in p["warnings"]


# --- log and status -------------------------------------------------------------------------------

def test_log_shows_time_share_and_the_reason_for_every_status_but_delivered(emulators, runtime, worker, base_env,
                                                                           tmp_path):
    from sharer.scheduler import dispatch_due

    art = load_article(str(_article(tmp_path)))
    due = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    late = service.share(runtime, art, ["hook-a"], at=due, force=True)
    dispatch_due(runtime, at=time.time() + 5 * 60 + 30 * 60)  # released 30 min late: needs review
    cancelled = service.share(runtime, art, ["hook-b"], at=due, force=True)
    service.cancel(runtime, cancelled.share_id)
    inject(emulators["webhook"], path="/hooks/b", kind="status", status=400, body={"error": "bad"})
    failed = service.share(runtime, art, ["hook-b"], force=True)
    wait_settled(runtime, failed.share_id)

    proc = run_cli(["log", "--since", "5m", "--limit", "20", "--json"], base_env)
    assert proc.returncode == 0, proc.stderr
    rows = {d["share_id"]: d for d in json.loads(proc.stdout)["deliveries"]}
    review = rows[late.share_id]
    assert review["status"] == "needs_review" and review["error"] is None
    assert review["note"].startswith("missed its ") and "publish now?" in review["note"]
    assert rows[cancelled.share_id]["status"] == "cancelled"
    assert rows[cancelled.share_id]["note"].startswith("cancelled by ")  # names who: the actor
    bad = rows[failed.share_id]
    assert bad["status"] == "failed" and bad["error"] == "receiver answered HTTP 400: bad"  # "HTTP 400" once

    text = run_cli(["log", "--since", "5m", "--limit", "20"], base_env)
    header, *lines = text.stdout.splitlines()
    assert header.split()[:4] == ["TIME", "(Asia/Shanghai)", "SHARE", "DELIVERY"]
    review_line = next(ln for ln in lines if late.share_id in ln)
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+sh_", review_line)
    assert "needs_review" in review_line and "missed its " in review_line
    assert "cancelled by " in next(ln for ln in lines if cancelled.share_id in ln)
    assert "receiver answered HTTP 400: bad" in next(ln for ln in lines if failed.share_id in ln)


def test_status_takes_a_share_id_or_a_delivery_id(runtime, worker, base_env, tmp_path, emulators):
    r = service.share(runtime, load_article(str(_article(tmp_path))), ["hook-a", "hook-b"], force=True)
    wait_settled(runtime, r.share_id)
    one = r.deliveries[1]
    proc = run_cli(["status", one.id, "--json"], base_env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["share_id"] == r.share_id and [d["id"] for d in out["deliveries"]] == [one.id]
    text = run_cli(["status", one.id], base_env)
    assert text.stdout.startswith(f"share {r.share_id}\n") and f"{one.id} (hook-b):" in text.stdout
    whole = run_cli(["status", r.share_id, "--json"], base_env)
    assert len(json.loads(whole.stdout)["deliveries"]) == 2
    missing = run_cli(["status", "dl_nope"], base_env)
    assert missing.returncode == 2 and missing.stderr == "error: no delivery with id 'dl_nope'\n"


def test_rate_limited_tries_are_counted_and_shown_as_such(emulators, runtime, worker, base_env, tmp_path):
    inject(emulators["webhook"], path="/hooks/a", kind="status", status=429, count=1,
           headers={"Retry-After": "1"}, body={"error": "slow down"})
    r = service.share(runtime, load_article(str(_article(tmp_path))), ["hook-a"], force=True)
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "delivered" and d.attempts == 2  # two requests reached the platform
    proc = run_cli(["status", r.share_id], base_env)
    assert re.search(rf"{d.id}\s+hook-a\s+webhook\s+delivered\s+2 \(1 rate-limited\)", proc.stdout)


# --- one vocabulary -------------------------------------------------------------------------------

def test_errors_name_the_flag_the_user_typed_in_one_line(base_env, tmp_path):
    src = str(_article(tmp_path))
    cases = [
        (["log", "--limit", "0"], "error: --limit: must be between 1 and 1000, got 0"),
        (["log", "--limit", "lots"], "error: Invalid value for '--limit': 'lots' is not a valid integer."),
        (["log", "--account", "nope"], "error: --account: unknown account 'nope' (known: "),
        (["share", src, "--to", "nope"], "error: --to: unknown account 'nope' (known: "),
        (["share", src, "--to", "hook-a", "--at", "someday"], "error: --at: cannot read 'someday'"),
        (["share", src, "--to", "hook-a", "--at", "2026-12-30 09:00", "--tz", "Mars/Base"],
         "error: --tz: unknown time zone 'Mars/Base'"),
        (["share", src, "--to", "hook-a", "--at", "2099-01-01 09:00"], "error: --at: more than 90 days ahead"),
        (["share", src, "--to", "hook-a", "--idempotency-key", ""], "error: --idempotency-key: must be 1 to 200"),
        (["share", src, "--to", "hook-a", "--text", "no-equals-sign"], "error: --text: expected ACCOUNT=TEXT"),
        (["share", src, "--to", "hook-a", "--text", "hook-b=hi"], "error: --text: override for account 'hook-b'"),
        (["share", src, "--to", "hook-a", "--next-slot"],
         "error: --next-slot: account 'hook-a' has no posting slots configured ([accounts.hook-a] slots)"),
        (["share", src, "--to", "hook-a", "--max-lateness", "nan", "--at", "2026-12-30 09:00"],
         "error: --max-lateness: must be zero or more minutes"),
        (["share", src, "--to", "hook-a", "--wait", "--timeout", "0"], "error: --timeout: must be a number"),
        (["share", src, "--to", "hook-a", "--force-for", "hook-b"], "error: --force-for: account 'hook-b' is not"),
        (["share", src, "--to", "hook-a", "--bogus"], "error: No such option '--bogus'. (see: sharer share --help)"),
        (["share", src], "error: Missing option '--to'."),
    ]
    for args, start in cases:
        proc = run_cli(args, base_env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(start), (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "sharer.toml" not in proc.stderr  # the user's flag is to blame, not the config file


def test_cancel_retry_posted_and_plurals_speak_plainly(emulators, runtime, worker, base_env, tmp_path):
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    src = str(_article(tmp_path))
    proc = run_cli(["share", src, "--to", "hook-a", "--at", due], base_env)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^share sh_\w+: 1 delivery scheduled \(list with: sharer schedule list\)$", proc.stdout, re.M)
    share_id = re.search(r"share (sh_\w+)", proc.stdout)[1]
    first = run_cli(["cancel", share_id], base_env)
    assert re.fullmatch(r"dl_\w+: cancelled\n", first.stdout)
    again = run_cli(["cancel", share_id], base_env)
    assert again.returncode == 0 and re.fullmatch(r"dl_\w+: already cancelled\n", again.stdout)

    now = run_cli(["share", src, "--to", "hook-b"], base_env)
    assert re.fullmatch(r"share (sh_\w+): 1 delivery queued \(follow with: sharer status \1\)\n", now.stdout)

    inject(emulators["webhook"], path="/hooks/a", kind="drop", count=1)
    r = service.share(runtime, load_article(src), ["hook-a"], force=True)
    [d] = wait_settled(runtime, r.share_id)
    assert d.status == "needs_review"
    proc = run_cli(["retry", d.id], base_env)  # no terminal: it cannot ask, so it names the flag
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {d.id} may already be published on hook-a")
    assert proc.stderr.endswith(f"check the account, then confirm with: sharer retry {d.id} --yes\n")
    posted = run_cli(["posted", d.id, "--url", "https://example.com/found", "--json"], base_env)
    assert posted.returncode == 0, posted.stderr
    out = json.loads(posted.stdout)
    assert out["id"] == d.id and out["status"] == "delivered" and out["post_url"] == "https://example.com/found"
    done = run_cli(["retry", d.id], base_env)
    assert done.returncode == 2 and "is delivered; only failed or needs_review can be retried" in done.stderr


def test_schedule_list_until_with_to_kept_as_a_deprecated_alias(runtime, base_env, tmp_path):
    due = datetime.now(UTC) + timedelta(hours=2)
    r = service.share(runtime, load_article(str(_article(tmp_path))), ["hook-a"], at=due.isoformat(), force=True)
    until = (due + timedelta(minutes=1)).isoformat()
    new = run_cli(["schedule", "list", "--account", "hook-a", "--until", until, "--json"], base_env)
    assert new.returncode == 0, new.stderr and new.stderr == ""
    assert r.deliveries[0].id in {d["id"] for d in json.loads(new.stdout)["deliveries"]}
    old = run_cli(["schedule", "list", "--account", "hook-a", "--to", until, "--json"], base_env)
    assert old.returncode == 0 and json.loads(old.stdout) == json.loads(new.stdout)
    assert old.stderr == "warning: `schedule list --to` is deprecated; use --until\n"
    before = run_cli(["schedule", "list", "--until", (due - timedelta(minutes=1)).isoformat(), "--json"], base_env)
    assert r.deliveries[0].id not in {d["id"] for d in json.loads(before.stdout)["deliveries"]}
    service.cancel(runtime, r.share_id)


def test_scheduling_warns_when_no_dispatcher_has_ticked_for_a_minute(runtime, base_env, tmp_path):
    rt = runtime
    rt.redis.delete(rt.keys.dispatcher_heartbeat)
    due = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    proc = run_cli(["share", str(_article(tmp_path)), "--to", "hook-a", "--at", due, "--json"], base_env)
    assert proc.returncode == 0
    assert proc.stderr == ("warning: no dispatcher has run yet: scheduled posts go out only while "
                           "`celery -A tasks beat` and a worker are running\n")
    service.cancel(rt, json.loads(proc.stdout)["share_id"])
    rt.redis.set(rt.keys.dispatcher_heartbeat, repr(time.time() - 300))
    assert "no dispatcher has run for 5 min" in service.dispatcher_warning(rt)
    rt.redis.set(rt.keys.dispatcher_heartbeat, repr(time.time()))  # a dispatcher ticked just now
    proc = run_cli(["share", str(_article(tmp_path)), "--to", "hook-a", "--at", due], base_env)
    assert proc.returncode == 0 and proc.stderr == ""
    service.cancel(rt, re.search(r"share (sh_\w+)", proc.stdout)[1])


def test_racing_shares_of_one_article_post_it_once(emulators, runtime, worker, dup_env, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    src = _article(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-m", "sharer.cli", "share", str(src), "--to", "hook-a", "--json"],
                              cwd=ROOT, env=dup_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    new_shares = set()
    for code, out, err in results:
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2:  # lost the race while the winner was still writing: told so, nothing stored
            assert "is being sent this article by another share right now" in err
            continue
        [d] = json.loads(out)["deliveries"]
        if d["duplicate_of"] is None:
            new_shares.add(d["share_id"])
    assert len(new_shares) == 1
    wait_settled(runtime, new_shares.pop())
    assert _posts_to(emulators, "/hooks/a") == 1


def test_wait_on_a_terminal_shows_the_latest_step_in_the_live_table(emulators, runtime, worker, base_env, tmp_path):
    """stdout is a real pseudo-terminal here, as when an editor runs the command by hand."""
    import os
    import pty
    import subprocess
    import sys

    import requests
    from conftest import ROOT

    # the instance takes 19 polls (about half a second) to process the image: the table must show that step
    requests.post(emulators["mastodon"].url + "/_sandbox/config", json={"media_polls": 19}, timeout=5)
    src = _article(tmp_path)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sharer.cli", "share", str(src), "--to", "mastodon-main",
                             "--wait"], cwd=ROOT, env=base_env, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(60) == 0, proc.stderr.read()
    os.close(leader)
    screen = b"".join(chunks).decode()
    assert "\x1b[" in screen  # redrawn in place
    assert re.search(r"mastodon-main\s+mastodon\s+sending\s+1\s+image uploaded as media \S+; waiting for the "
                     r"instance to process it", screen)
    assert re.search(r"mastodon-main\s+mastodon\s+delivered\s+1\s+http", screen.rsplit("share sh_", 1)[1])
