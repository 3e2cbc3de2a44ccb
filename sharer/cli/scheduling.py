"""``sharer schedule list | move``: scheduled posts by due time, and moving them."""

from __future__ import annotations

import click

from .. import service
from ..cli_output import shown_at
from ..errors import InputError
from .base import JSON_HELP, _json, _runtime, handle_errors, main
from .records import share_json


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
            from ..timeparse import parse_when as parse_any

            return parse_any(value, tz or rt.settings.timezone, 0.0, name).utc
        raise InputError(name if e.field == "at" else e.field, e.problem) from None

