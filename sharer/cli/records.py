"""The delivery log and its records: ``status``, ``log``, ``retry``, ``posted``, ``cancel``, ``sweep``, ``purge``."""

from __future__ import annotations

import sys

import click

from .. import service
from ..actor import Actor
from ..cli_output import cancel_line, plural, render_table
from ..errors import InputError
from ..store.deliveries import Delivery
from .base import EXIT_FAILED, JSON_HELP, _json, _runtime, handle_errors, main, parse_since


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
    from ..sweeper import sweep as run_sweep

    rt = _runtime(ctx)
    report = run_sweep(rt)
    _audit_sweep(rt, report)
    click.echo(f"nudged {len(report.nudged)}, newly overdue {len(report.overdue)}")


def _audit_sweep(rt, report) -> None:
    from ..store.audit import AuditAction, AuditEntry

    actor = Actor.cli()
    rt.audit.record(AuditEntry(AuditAction.SWEEP, actor.name, actor.user,
                               f"nudged {len(report.nudged)}, newly overdue {len(report.overdue)}", None, None,
                               {"nudged": report.nudged, "overdue": report.overdue}))


def share_json(share_id: str, deliveries: list[Delivery]) -> dict:
    """The documented ``--json`` shape of status and schedule move."""
    return {"share_id": share_id, "deliveries": [d.to_json() for d in deliveries]}


@main.command()
@click.pass_context
@handle_errors
def purge(ctx):
    """Delete deliveries older than [log] retention_days now (beat does it hourly)."""
    n = service.purge(_runtime(ctx), actor=Actor.cli())
    click.echo(f"purged {plural(n, 'delivery')}")
