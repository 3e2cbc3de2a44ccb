"""``sharer share``: create a share (now, at a time, in the next slot) and optionally ``--wait`` for it."""

from __future__ import annotations

import getpass
import math
import os
import sys
import time

import click

from .. import service
from ..cli_output import Progress, plural, render_table, shown_at
from ..errors import InputError
from .articles import SOURCES_HELP, TEXT_HELP, TO_HELP, URL_HELP, _accounts, _load_all, _overrides
from .base import EXIT_FAILED, EXIT_OK, EXIT_WAIT_TIMEOUT, JSON_HELP, _json, _runtime, handle_errors, main


def cli_scope() -> str:
    """Idempotency keys typed at the CLI belong to the OS user (two users never share a key)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar=SOURCES_HELP)
@click.option("--to", "to", required=True, help=TO_HELP)
@click.option("--url", help=URL_HELP)
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT", help=TEXT_HELP)
@click.option("--at", "at", help='Schedule for a time: "2026-11-26 09:00" (in --tz) or ISO 8601 with an offset; '
                                 "at most a minute in the past and at most [log] retention_days (90) ahead.")
@click.option("--tz", help="IANA time zone of --at, e.g. Asia/Shanghai (default: [defaults] timezone).")
@click.option("--next-slot", is_flag=True, help="Take each account's next free posting slot ([accounts.x] slots).")
@click.option("--max-lateness", type=float, metavar="MINUTES",
              help="Minutes (0 or more) a scheduled post may be released late before it needs review "
                   "(default: the account's, else [defaults] max_lateness_minutes).")
@click.option("--idempotency-key", metavar="KEY",
              help="1-200 characters. The same key with the same request returns the same share; with a "
                   "different request it is refused (exit 2). Keys are per OS user.")
@click.option("--force", is_flag=True,
              help="Send to every account even if it already had this article within "
                   "[delivery] duplicate_window_hours.")
@click.option("--force-for", "force_for", metavar="A[,B…]",
              help="Like --force, for these accounts only (the others are still checked).")
@click.option("--wait", is_flag=True,
              help="Follow the deliveries until each is settled: a live table on a terminal, one line per "
                   "event otherwise. Exit 1 if any did not deliver, 3 if --timeout passed first.")
@click.option("--timeout", default=600.0, show_default=True, metavar="SECONDS",
              help="How long --wait waits (more than 0); the deliveries carry on after it.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def share(ctx, sources, to, url, texts, at, tz, next_slot, max_lateness, idempotency_key, force, force_for, wait,
          timeout, as_json):
    """Share an article now, at a time, or in each account's next slot.

    Each FILE|URL is a .json/.md/.html/.txt file or an http(s) URL; more than one is one multi-article
    push (多图文, up to 8) to WeChat accounts, the first leading (other platforms get the first only).
    An account that already had this article (same title, url, summary, body and image) within the
    duplicate window is skipped and reported with the earlier delivery; an account the article cannot
    be composed for is recorded failed (exit 1); the others go out.
    """
    if not (timeout > 0 and math.isfinite(timeout)):
        raise InputError("--timeout", f"must be a number of seconds above 0, got {timeout}")
    rt = _runtime(ctx)
    article = _load_all(sources, url, rt)
    accounts = _accounts(to)
    forced: bool | list[str] = True if force else _accounts(force_for or "")
    result = service.share(rt, article, accounts, _overrides(texts), idempotency_key=idempotency_key,
                           force=forced, at=at, tz=tz, next_slot=next_slot,
                           max_lateness=None if max_lateness is None else max_lateness * 60, scope=cli_scope())
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if result.replayed:
        click.echo(f"--idempotency-key {idempotency_key!r} was used before for this same request: "
                   f"share {result.share_id} (nothing new sent)", err=True)
    out = click.echo if not as_json else (lambda line: click.echo(line, err=True))
    for e in result.duplicates.values():
        d = e.delivery
        where = d.post_url or d.note or d.status
        out(f"{e.account}: already shared in {d.share_id} ({d.id}, {d.status}: {where}); skipped "
            f"(send again with --force-for {e.account})")
    # accounts the article cannot go to are recorded failed at once (the others go ahead): one line each
    refused = [d for d in result.deliveries if d.status == "failed" and d.error_kind == "compose"]
    if not result.replayed:
        for d in refused:
            click.echo(f"{d.id}  {d.account:20} failed: cannot compose: {d.error}", err=True)
    done = EXIT_FAILED if refused else EXIT_OK
    going = [d for d in result.deliveries if d not in refused]
    scheduled = bool(at or next_slot)
    if as_json and not wait:
        _json(result.to_json(accounts))
        sys.exit(done)
    if result.duplicate and not result.replayed:
        if not as_json:
            click.echo(f"nothing new to send: {plural(len(result.duplicates), 'account')} already had this article")
        else:
            _json(result.to_json(accounts))
        return
    if scheduled and not as_json:
        for d in going:
            held = " (waiting for approval)" if d.status == "awaiting_approval" else ""
            click.echo(f"{d.id}  {d.account:20} scheduled for {shown_at(d)}{held}")
        click.echo(f"share {result.share_id}: {plural(len(going), 'delivery')} scheduled "
                   "(list with: sharer schedule list)")
        sys.exit(done)
    if not wait:
        click.echo(f"share {result.share_id}: {plural(len(going), 'delivery')} queued "
                   f"(follow with: sharer status {result.share_id})")
        sys.exit(done)
    sys.exit(_wait(rt, result, accounts, timeout, as_json))


def _wait(rt, result: service.ShareResult, accounts: list[str], timeout: float, as_json: bool) -> int:
    """--wait: report progress, then the final table or JSON; the exit code says how it ended."""
    tty = sys.stdout.isatty() and not as_json
    progress = Progress(tty, sys.stdout if not as_json else sys.stderr)
    started = time.monotonic()
    deliveries = service.wait(rt, result.share_id, timeout=timeout, on_update=progress.update)
    progress.close()
    pending = [d for d in deliveries if not service.is_settled(d)]
    final = service.ShareResult(result.share_id, deliveries, duplicates=result.duplicates)
    if as_json:
        _json(final.to_json(accounts))
    else:
        click.echo(f"share {result.share_id}")
        click.echo(render_table(deliveries))
    if pending:
        states = ", ".join(sorted({d.status for d in pending}))
        click.echo(f"gave up waiting after {time.monotonic() - started:.0f} s: "
                   f"{plural(len(pending), 'delivery')} not settled yet ({states}); "
                   f"they carry on — follow with: sharer status {result.share_id}", err=True)
        return EXIT_WAIT_TIMEOUT
    # waiting for an approver is not a failure: nothing more happens until one decides
    return EXIT_OK if all(d.status in ("delivered", "awaiting_approval") for d in deliveries) else EXIT_FAILED

