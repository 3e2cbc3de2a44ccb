"""The ``sharer`` command. Calls ``sharer.service`` only; prints tables or the ``--json`` contract.

Exit codes: 0 success, 1 a delivery failed (with --wait) or an operational error, 2 bad input,
3 ``--wait`` gave up waiting (the deliveries carry on in the background).
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
import sys
import time
from datetime import UTC, datetime
from functools import wraps

import click
import redis

from . import service
from .actor import Actor
from .cli_output import LiveTable, Progress, cancel_line, plural, render_table, shown_at
from .errors import ArticleError, ComposeError, ConfigError, Forbidden, InputError, NotFound, SharerError
from .store.deliveries import Delivery

__all__ = ["LiveTable", "main", "render_table"]  # demo.py reuses the table
BAD_INPUT = (ArticleError, ComposeError, ConfigError, InputError, NotFound, Forbidden)
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAIT_TIMEOUT = 0, 1, 2, 3

# The service names fields neutrally (the HTTP API uses the same errors); the CLI names the flag typed.
FLAGS = {
    "to": "--to", "text": "--text", "at": "--at", "tz": "--tz", "next_slot": "--next-slot",
    "max_lateness": "--max-lateness", "idempotency_key": "--idempotency-key", "force": "--force-for",
    "limit": "--limit", "status": "--status", "account": "--account", "cursor": "--cursor",
    "since": "--since", "url": "--url", "confirm": "--yes",
}
RECORD_FIELDS = ("delivery", "share")  # errors about a record's state, not a flag: no prefix


def _message(e: SharerError) -> str:
    if isinstance(e, InputError):
        if e.field in RECORD_FIELDS:
            return e.problem
        return f"{FLAGS.get(e.field, e.field)}: {e.problem}"
    return str(e)


def handle_errors(fn):
    """Turn our errors into one clear line and the contract's exit code — never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BAD_INPUT as e:
            click.echo(f"error: {_message(e)}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except redis.exceptions.RedisError as e:
            click.echo(f"error: {_redis_problem(e)}", err=True)
            sys.exit(EXIT_FAILED)
        except SharerError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_FAILED)
        except (KeyboardInterrupt, SystemExit, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:  # a bug: one line (SHARER_DEBUG=1 shows the traceback), never a stack dump
            if os.environ.get("SHARER_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(e).__name__}: {e} (SHARER_DEBUG=1 shows details)", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


class Cli(click.Group):
    """Usage errors (unknown option, missing --to, a bad number) as one ``error:`` line, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        prog_name = prog_name or "sharer"  # also under `python -m sharer.cli`
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "sharer"
            click.echo(f"error: {e.format_message()} (see: {where} --help)", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _redis_problem(e: Exception) -> str:
    from .config import load_settings

    ctx = click.get_current_context(silent=True)
    try:
        url = _hide_password(load_settings((ctx.find_root().obj or {}).get("config") if ctx else None).redis_url)
    except SharerError:
        url = "(see config)"
    if isinstance(e, redis.exceptions.TimeoutError):
        return f"Redis at {url} did not answer in time"
    if isinstance(e, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return f"Redis at {url} refused our credentials"
    if isinstance(e, redis.exceptions.ConnectionError) and "Protocol" not in str(e):
        return f"cannot reach Redis at {url}"
    return f"Redis at {url} did not answer like Redis ({type(e).__name__}); is that the right address?"


def _runtime(ctx: click.Context):
    from .runtime import get_runtime

    return get_runtime(ctx.obj.get("config"))


JSON_HELP = "Print the documented JSON (see README: The JSON contract) instead of text."


@click.group(cls=Cli)
@click.option("--config", "config", envvar="SHARER_CONFIG", type=click.Path(dir_okay=False),
              help="Config file (default: $SHARER_CONFIG, else config/sharer.toml).")
@click.version_option(package_name="sharer", help="Show the version and exit.")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Publish one article to many platforms, and see what happened.

    Exit codes: 0 success; 1 a delivery failed (with --wait) or an operational error (e.g. Redis
    unreachable); 2 bad input (one line naming the flag or config key); 3 --wait gave up waiting.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    if config:  # every child process the CLI starts (demo, web) reads the same file
        os.environ["SHARER_CONFIG"] = config


def _load(source: str, url: str | None, rt=None):
    from .loaders import Limits, load_article

    return load_article(source, url=url, limits=Limits.of(rt.settings) if rt is not None else None)


def _load_all(sources: tuple[str, ...], url: str | None, rt=None):
    """The lead article (``--url`` applies to it) carrying the others: a multi-article push (WeChat)."""
    import dataclasses

    from .article import MAX_EXTRA_ARTICLES

    if len(sources) > MAX_EXTRA_ARTICLES + 1:
        raise InputError("FILE", f"at most {MAX_EXTRA_ARTICLES + 1} articles in one share (one WeChat push), "
                                 f"got {len(sources)}")
    lead = _load(sources[0], url, rt)
    if len(sources) == 1:
        return lead
    return dataclasses.replace(lead, extra_articles=tuple(_load(s, None, rt) for s in sources[1:]))


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise InputError("text", f"expected ACCOUNT=TEXT, got {pair!r}")
        out[name.strip()] = text
    return out


def _accounts(to: str) -> list[str]:
    return [a for a in (x.strip() for x in to.split(",")) if a]


def _json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


TO_HELP = "Account names from the config, comma-separated (e.g. demo-x,demo-weibo)."
URL_HELP = "The article's URL (required for .txt articles; replaces the one in the file)."
TEXT_HELP = "Your own text for one account instead of the composed post; repeatable."


SOURCES_HELP = "FILE|URL..."


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar=SOURCES_HELP)
@click.option("--to", "to", required=True, help=TO_HELP)
@click.option("--url", help=URL_HELP)
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT", help=TEXT_HELP)
@click.option("--send-to", "send_to", metavar="WXNAME|openid:ID",
              help="WeChat accounts: create the real draft and send it to this follower's phone.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def preview(ctx, sources, to, url, texts, send_to, as_json):
    """Show each account's post exactly as it will be sent, counted against its limit.

    Each FILE|URL is a .json/.md/.html/.txt file or an http(s) URL; more than one is a multi-article
    WeChat push (up to 8; other platforms show the first). Every account is shown: an account whose
    post cannot be composed shows its error, and the command then exits 2.
    """
    from . import wechat_ops

    rt = _runtime(ctx)
    article = _load_all(sources, url, rt)
    accounts, overrides = _accounts(to), _overrides(texts)
    stray = sorted(set(overrides) - set(accounts))
    if stray:
        raise InputError("text", f"override for account {stray[0]!r} which is not in --to")
    items = service.preview_each(rt, article, accounts, overrides)
    failed = [i for i in items if i.post is None]
    posts = [i.post for i in items if i.post is not None]
    quotas = {p.account: wechat_ops.mass_quota(rt, p.account) for p in posts}
    sent = []
    if send_to is not None:
        sent = wechat_ops.send_to_phone(rt, article, [p.account for p in posts], send_to, overrides)
    if sent:
        service.audit_preview_sent(rt, Actor.cli(), article, sent)
    if as_json:
        data: dict = {"posts": [{**p.to_dict(), **({"quota": quotas[p.account].to_json()} if quotas[p.account]
                                                    else {})} for p in posts],
                      "errors": [{"account": i.account, "error": i.error} for i in failed]}
        if send_to is not None:
            data["sent"] = [{"account": s.account, "to": s.to, "msg_id": s.msg_id,
                             "draft_media_id": s.draft_media_id, "articles": s.articles} for s in sent]
        _json(data)
    else:
        for i in items:
            if i.post is None:
                click.secho(f"── {i.account} ({i.platform}) — cannot be composed", bold=True)
                click.secho(f"  ✗ {i.error}", fg="red")
                click.echo()
                continue
            p = i.post
            click.secho(f"── {p.account} ({p.platform}) — {p.length}/{p.limit} {p.unit}", bold=True)
            click.echo(p.text)
            for n, extra in enumerate(p.payload.get("more") or [], start=2) if p.platform == "wechat" else ():
                click.echo(f"  + article {n}: {extra['title']}")
            if p.media or p.media_offered:
                for url in p.media:
                    click.echo(f"  [image] {url}")
                if p.media_offered:
                    click.secho(f"  {len(p.media_offered)} more image(s) in the article not attached "
                                "(options.images attaches more where the platform allows)", fg="cyan")
            for w in p.warnings:
                click.secho(f"  ! {w}", fg="yellow")
            if quotas[p.account]:
                click.echo(f"  quota: {quotas[p.account].describe()}")
            click.echo()
        for s in sent:
            what = f"{s.articles} articles" if s.articles > 1 else "the article"
            click.echo(f"{s.account}: {what} sent to {s.to}'s phone (draft {s.draft_media_id}, msg_id {s.msg_id})")
    if failed:
        names = ", ".join(i.account for i in failed)
        click.echo(f"error: {plural(len(failed), 'account')} of {len(items)} cannot be composed: {names}",
                   err=True)
        sys.exit(EXIT_BAD_INPUT)


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


@main.command()
@click.argument("share_or_delivery_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def status(ctx, share_or_delivery_id, as_json):
    """A share's deliveries (sh_…) or one delivery (dl_…), with status, where it landed and every event."""
    rt = _runtime(ctx)
    if share_or_delivery_id.startswith("dl_"):
        d = service.delivery(rt, share_or_delivery_id)
        share_id, deliveries = d.share_id, [d]
    else:
        share_id, deliveries = share_or_delivery_id, service.status(rt, share_or_delivery_id)
    if as_json:
        _json(share_json(share_id, deliveries))
    else:
        click.echo(f"share {share_id}")
        click.echo(render_table(deliveries, events=True))


@main.command("log")
@click.option("--status", "status_", metavar="STATUS",
              help="Only deliveries in this status: queued, scheduled, sending, retrying, delivered, failed, "
                   "cancelled, unknown, needs_review.")
@click.option("--account", help="Only this account's deliveries.")
@click.option("--since", help="Only deliveries created since: ISO 8601 time with an offset, or 30m / 12h / 7d ago.")
@click.option("--limit", default=50, show_default=True, type=int, help="Deliveries per page, 1 to 1000.")
@click.option("--cursor", help="Continue after the previous page (its next_cursor, or the `more:` line).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def log_cmd(ctx, status_, account, since, limit, cursor, as_json):
    """Deliveries, newest first, with the time, share, status and the reason for every status but delivered."""
    rt = _runtime(ctx)
    deliveries, next_cursor = service.log(rt, status=status_, account=account,
                                          since=parse_since(since) if since else None, limit=limit,
                                          cursor=cursor)
    if as_json:
        _json({"deliveries": [d.to_json() for d in deliveries], "next_cursor": next_cursor})
    else:
        click.echo(render_table(deliveries, context_zone=rt.settings.timezone))
        if next_cursor:
            click.echo(f"more: --cursor {next_cursor}")


@main.command()
@click.argument("delivery_id")
@click.option("--yes", is_flag=True,
              help="Confirm retrying a needs_review delivery (it may already be out: check the account first).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def retry(ctx, delivery_id, yes, as_json):
    """Send a failed or needs_review delivery (DELIVERY_ID, dl_…) again.

    A needs_review delivery may already be published, so it asks first (or needs --yes without a terminal).
    """
    rt = _runtime(ctx)
    d = service.delivery(rt, delivery_id)
    confirmed = yes
    if d.status == "needs_review" and not yes:
        reason = d.reason()
        if not sys.stdin.isatty():
            raise InputError("delivery", f"{delivery_id} may already be published on {d.account}"
                                        f"{f' ({reason})' if reason else ''}; check the account, then confirm "
                                        f"with: sharer retry {delivery_id} --yes")
        click.echo(f"{delivery_id} may already be published on {d.account}: {reason}")
        confirmed = click.confirm("Checked the account and want to send it again?", default=False)
        if not confirmed:
            click.echo("not retried", err=True)
            sys.exit(EXIT_FAILED)
    d = service.retry(rt, delivery_id, confirmed=confirmed)
    if as_json:
        _json(d.to_json())
    else:
        click.echo(f"{d.id}: {d.status} again (follow with: sharer status {d.id})")


@main.command()
@click.argument("delivery_id")
@click.option("--url", help="Where the post is, if you found it (an http(s) URL).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def posted(ctx, delivery_id, url, as_json):
    """Close a needs_review delivery (DELIVERY_ID, dl_…): you checked, and the post is out."""
    d = service.mark_posted(_runtime(ctx), delivery_id, url)
    if as_json:
        _json(d.to_json())
    else:
        click.echo(f"{d.id}: {d.status}" + (f" ({d.post_url})" if d.post_url else ""))


@main.command()
@click.argument("share_or_delivery_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def cancel(ctx, share_or_delivery_id, as_json):
    """Cancel what has not started sending (a share sh_… or one delivery dl_…); says what was already out."""
    result = service.cancel(_runtime(ctx), share_or_delivery_id)
    if as_json:
        _json({"cancelled": result.cancelled, "not_cancelled": result.not_cancelled})
        return
    for did in result.cancelled:
        click.echo(f"{did}: cancelled")
    for did, st in result.not_cancelled.items():
        click.echo(cancel_line(did, st))


@main.command()
@click.pass_context
@handle_errors
def sweep(ctx):
    """Re-nudge stuck deliveries and flag overdue ones now (beat does it every minute)."""
    from .sweeper import sweep as run_sweep

    rt = _runtime(ctx)
    report = run_sweep(rt)
    _audit_sweep(rt, report)
    click.echo(f"nudged {len(report.nudged)}, newly overdue {len(report.overdue)}")


def _audit_sweep(rt, report) -> None:
    from .store.audit import AuditAction, AuditEntry

    actor = Actor.cli()
    rt.audit.record(AuditEntry(AuditAction.SWEEP, actor.name, actor.user,
                               f"nudged {len(report.nudged)}, newly overdue {len(report.overdue)}", None, None,
                               {"nudged": report.nudged, "overdue": report.overdue}))


@main.group()
def schedule():
    """Scheduled posts: list them, move them."""


TIME_HELP = 'ISO 8601 with an offset, or "YYYY-MM-DD HH:MM" in --tz'


@schedule.command("list")
@click.option("--account", help="Only this account's posts.")
@click.option("--from", "start", help=f"Only posts due from this time ({TIME_HELP}).")
@click.option("--until", "end", help=f"Only posts due up to this time ({TIME_HELP}).")
@click.option("--to", "old_end", hidden=True, help="Deprecated alias of --until.")
@click.option("--tz", help="IANA zone for --from/--until without an offset (default: [defaults] timezone).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def schedule_list(ctx, account, start, end, old_end, tz, as_json):
    """Scheduled posts by due time, each shown in the zone it was given in."""
    rt = _runtime(ctx)
    if old_end is not None:
        if end is not None:
            raise InputError("--until", "give --until only (--to is its deprecated alias)")
        click.echo("warning: `schedule list --to` is deprecated; use --until", err=True)
        end = old_end
    bounds = [_instant(rt, v, tz, name) if v else None for v, name in ((start, "--from"), (end, "--until"))]
    items = service.schedule_list(rt, account=account, start=bounds[0], end=bounds[1])
    if as_json:
        _json({"deliveries": [d.to_json() for d in items]})
        return
    if not items:
        click.echo("(nothing scheduled)")
    for d in items:
        click.echo(f"{shown_at(d):32} {d.share_id}  {d.id}  {d.account}")


@schedule.command("move")
@click.argument("share_id")
@click.option("--at", "at", required=True, help=f"The new time ({TIME_HELP}); within the scheduling horizon.")
@click.option("--tz", help="IANA time zone of --at (default: [defaults] timezone).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
@handle_errors
def schedule_move(ctx, share_id, at, tz, as_json):
    """Move every still-scheduled delivery of SHARE_ID (sh_…) to a new time."""
    ds = service.reschedule(_runtime(ctx), share_id, at, tz)
    if as_json:
        _json(share_json(share_id, ds))
        return
    for d in ds:
        click.echo(f"{d.id}  {d.account:20} {d.status:10} {shown_at(d) if d.status == 'scheduled' else ''}")


def _instant(rt, value: str, tz: str | None, name: str):
    try:
        return service.parse_when(value, tz, rt.settings)
    except InputError as e:
        if "in the past" in e.problem:  # a listing window may start in the past
            from .timeparse import parse_when as parse_any

            return parse_any(value, tz or rt.settings.timezone, 0.0, name).utc
        raise InputError(name if e.field == "at" else e.field, e.problem) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the emulators listen on.")
@click.option("--base-port", default=8900, show_default=True, type=int,
              help="Port of the first emulator; the others follow (webhook, wechat, weibo, … site = +9).")
@handle_errors
def sandbox(host, base_port):
    """Run every platform's local emulator until Ctrl-C (development only)."""
    from .sandbox.run import start_all

    try:
        running = start_all(host, base_port)
    except OSError as e:
        raise InputError("--base-port", f"cannot listen on {host} from port {base_port}: "
                                        f"{(e.strerror or str(e)).lower()} (is another sandbox running?)") from None
    for pid, emu in running.items():
        click.echo(f"{pid:10} {emu.url}   (posts: {emu.url}/_sandbox/posts)")
    click.echo("sandbox running; Ctrl-C to stop", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for emu in running.values():
            emu.stop()


@main.command()
@click.pass_context
@handle_errors
def accounts(ctx):
    """List configured accounts: name, platform, API base and credential names (never their values)."""
    rt = _runtime(ctx)
    for a in rt.settings.accounts.values():
        creds = ", ".join(sorted(a.credentials)) or "-"
        gated = "   needs approval" if rt.settings.needs_approval(a.name) else ""
        click.echo(f"{a.name:20} {a.platform:10} {a.api_base}   credentials: {creds}{gated}")


@main.command()
@click.pass_context
@handle_errors
def purge(ctx):
    """Delete deliveries older than [log] retention_days now (beat does it hourly)."""
    n = service.purge(_runtime(ctx), actor=Actor.cli())
    click.echo(f"purged {plural(n, 'delivery')}")


@main.command()
@click.option("--keep", is_flag=True, help="Keep the sandbox, worker, beat and dashboard running afterwards.")
@click.pass_context
@handle_errors
def demo(ctx, keep):
    """Start the sandbox, a worker, beat and the dashboard; share every example article; watch."""
    from .demo import run_demo

    sys.exit(run_demo(ctx.obj.get("config"), keep=keep))


# --- output helpers -------------------------------------------------------------------------------

def share_json(share_id: str, deliveries: list[Delivery]) -> dict:
    """The documented ``--json`` shape of status and schedule move."""
    return {"share_id": share_id, "deliveries": [d.to_json() for d in deliveries]}


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


def parse_since(value: str) -> float:
    m = _RELATIVE.match(value.strip())
    if m:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        ago = float(m.group(1)) * factor
        return max(0.0, time.time() - ago) if math.isfinite(ago) else 0.0  # "since forever" at most
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError("--since", f"expected an ISO 8601 time or a duration like 12h, got {value!r}") from None
    if dt.tzinfo is None:
        raise InputError("--since", "give a time zone offset (e.g. 2026-11-25T09:00+08:00) or Z")
    try:
        return max(0.0, dt.astimezone(UTC).timestamp())
    except (OverflowError, OSError, ValueError):
        raise InputError("--since", f"{value!r} is out of range") from None


def _hide_password(url: str) -> str:
    from .connections import safe_url  # also hides a Sentinel URL's sentinel_password

    return safe_url(re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url))


from .web.cli import user_group, web_command  # noqa: E402  (the dashboard's commands: sharer/web/cli.py)

main.add_command(web_command)
main.add_command(user_group)

from .workflow_cli import COMMANDS as _WORKFLOW_COMMANDS  # noqa: E402  (pending, approve, reject, resubmit, audit)

for _command in _WORKFLOW_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
