"""``sharer pending | approve | reject | resubmit | audit``: the sign-off workflow and the audit log.

Registered at the end of ``sharer/cli.py``. The CLI acts as ``cli:<os user>@<host>``: four-eyes
compares that with who submitted the share, so approving one's own CLI share is refused too.
"""

from __future__ import annotations

import json

import click

from . import workflow
from .actor import Actor


def _errors(fn):
    from functools import wraps

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from .cli import handle_errors

        return handle_errors(fn)(*args, **kwargs)

    return wrapper


def _rt(ctx: click.Context):
    from .runtime import get_runtime

    return get_runtime((ctx.find_root().obj or {}).get("config"))


def _echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _decision_out(result: workflow.DecisionResult, as_json: bool, verb: str) -> None:
    if as_json:
        _echo_json({"share_id": result.share_id, "deliveries": [d.to_json() for d in result.deliveries]})
        return
    moved = set(result.moved)
    for d in result.deliveries:
        if d.id in moved:
            click.echo(f"{d.id}  {d.account:20} {d.status}")
    click.echo(f"share {result.share_id}: {verb} ({len(moved)} deliveries)"
               + (f"; edited: {', '.join(result.edited)}" if result.edited else ""))


def _texts(pairs: tuple[str, ...]) -> dict[str, str]:
    from .cli import _overrides

    return _overrides(pairs)


@click.command("pending")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@_errors
def pending_command(ctx, as_json):
    """Shares waiting for an approver's sign-off, oldest first."""
    shares = workflow.pending(_rt(ctx))
    if as_json:
        _echo_json({"shares": [s.to_json() for s in shares]})
        return
    if not shares:
        click.echo("(nothing waiting for approval)")
    for s in shares:
        waiting = [d for d in s.deliveries if d.approval and d.approval.state == "pending"]
        first = waiting[0].approval if waiting else None
        accounts = ", ".join(d.account for d in waiting)
        who = f"by {first.submitted_by} " if first else ""
        version = f"v{first.version} " if first else ""
        click.echo(f"{s.id}  {version}{who}→ {accounts}   {s.title}")


@click.command("approve")
@click.argument("share_id")
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT",
              help="Replace an account's text before approving (what is approved is what is sent).")
@click.option("--version", type=int, help="Refuse if the share is no longer at this version.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@_errors
def approve_command(ctx, share_id, texts, version, as_json):
    """Approve a share waiting for sign-off: it is sent now, or at its scheduled time."""
    result = workflow.approve(_rt(ctx), share_id, actor=Actor.cli(), texts=_texts(texts), version=version)
    _decision_out(result, as_json, "approved")


@click.command("reject")
@click.argument("share_id")
@click.option("--reason", required=True, help="Why: the editor sees it and can revise the share.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@_errors
def reject_command(ctx, share_id, reason, as_json):
    """Send a share back to its editor with a reason; nothing is published."""
    _decision_out(workflow.reject(_rt(ctx), share_id, reason, actor=Actor.cli()), as_json, "rejected")


@click.command("resubmit")
@click.argument("share_id")
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT", help="The revised text for an account.")
@click.option("--note", default="", help="A note for the approver.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@_errors
def resubmit_command(ctx, share_id, texts, note, as_json):
    """Revise a rejected share and submit it again for approval (as a new version)."""
    result = workflow.resubmit(_rt(ctx), share_id, actor=Actor.cli(), texts=_texts(texts), note=note)
    _decision_out(result, as_json, "resubmitted")


@click.command("audit")
@click.option("--actor", help="Only what this actor (or the user behind a token) did.")
@click.option("--since", help="ISO 8601 time, or 30m / 12h / 7d ago.")
@click.option("--share", "share_id", help="Only this share's entries.")
@click.option("--action", help="Only this action (share, approve, reject, retry, cancel, sign_in, …).")
@click.option("--limit", default=50, show_default=True, type=int, help="Entries per page (1-1000).")
@click.option("--cursor", help="The next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@_errors
def audit_command(ctx, actor, since, share_id, action, limit, cursor, as_json):
    """Who did what: shares, approvals, rejections, edits, retries, cancels, sign-ins, tokens."""
    from . import service
    from .cli import parse_since

    entries, next_cursor = service.audit(_rt(ctx), actor=actor, since=parse_since(since) if since else None,
                                         share_id=share_id, action=action, limit=limit, cursor=cursor)
    if as_json:
        _echo_json({"entries": [e.to_json() for e in entries], "next_cursor": next_cursor})
        return
    if not entries:
        click.echo("(no entries)")
    for e in entries:
        where = e.share_id or ""
        click.echo(f"{e.at}  {e.actor:28} {e.action:18} {where:24} {e.detail}")
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


COMMANDS = (pending_command, approve_command, reject_command, resubmit_command, audit_command)
