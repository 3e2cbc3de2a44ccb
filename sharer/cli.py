"""The ``sharer`` command. Calls ``sharer.service`` only; prints tables or the ``--json`` contract.

Exit codes: 0 success, 1 a delivery failed (with --wait) or an operational error, 2 bad input.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from functools import wraps

import click
import redis

from . import service
from .actor import Actor
from .errors import ArticleError, ComposeError, ConfigError, Forbidden, InputError, NotFound, SharerError
from .store.deliveries import Delivery

BAD_INPUT = (ArticleError, ComposeError, ConfigError, InputError, NotFound, Forbidden)


def handle_errors(fn):
    """Turn our errors into one clear line and the contract's exit code — never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BAD_INPUT as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except redis.exceptions.ConnectionError:
            from .config import load_settings

            try:
                url = load_settings().redis_url
            except SharerError:
                url = "(see config)"
            click.echo(f"error: cannot reach Redis at {_hide_password(url)}", err=True)
            sys.exit(1)
        except SharerError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)

    return wrapper


def _runtime(ctx: click.Context):
    from .runtime import get_runtime

    return get_runtime(ctx.obj.get("config"))


@click.group()
@click.option("--config", "config", envvar="SHARER_CONFIG", type=click.Path(dir_okay=False),
              help="Config file (default: config/sharer.toml or $SHARER_CONFIG).")
@click.version_option(package_name="sharer")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Publish one article to many platforms, and see what happened."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


def _load(source: str, url: str | None):
    from .loaders import load_article

    return load_article(source, url=url)


def _load_all(sources: tuple[str, ...], url: str | None):
    """The lead article (``--url`` applies to it) carrying the others: a multi-article push (WeChat)."""
    import dataclasses

    from .article import MAX_EXTRA_ARTICLES

    if len(sources) > MAX_EXTRA_ARTICLES + 1:
        raise InputError("FILE", f"at most {MAX_EXTRA_ARTICLES + 1} articles in one share (one WeChat push), "
                                 f"got {len(sources)}")
    lead = _load(sources[0], url)
    if len(sources) == 1:
        return lead
    return dataclasses.replace(lead, extra_articles=tuple(_load(s, None) for s in sources[1:]))


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise InputError("--text", f"expected ACCOUNT=TEXT, got {pair!r}")
        out[name.strip()] = text
    return out


def _accounts(to: str) -> list[str]:
    return [a for a in (x.strip() for x in to.split(",")) if a]


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="FILE|URL...")
@click.option("--to", "to", required=True, help="Comma-separated account names.")
@click.option("--url", help="The article's URL (required for .txt articles; overrides others).")
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT", help="Your own text for an account.")
@click.option("--send-to", "send_to", metavar="WXNAME|openid:ID",
              help="WeChat accounts: create the real draft and send it to this follower's phone.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@handle_errors
def preview(ctx, sources, to, url, texts, send_to, as_json):
    """Show each post exactly as it will be sent, with its length against the limit.

    More than one FILE: a multi-article WeChat push (up to 8; other platforms show the first)."""
    from . import wechat_ops

    rt = _runtime(ctx)
    article = _load_all(sources, url)
    accounts = _accounts(to)
    posts = service.preview(rt, article, accounts, _overrides(texts))
    quotas = {p.account: wechat_ops.mass_quota(rt, p.account) for p in posts}
    sent = wechat_ops.send_to_phone(rt, article, accounts, send_to, _overrides(texts)) if send_to is not None else []
    if sent:
        service.audit_preview_sent(rt, Actor.cli(), article, sent)
    if as_json:
        out = [{**p.to_dict(), **({"quota": quotas[p.account].to_json()} if quotas[p.account] else {})}
               for p in posts]
        data: dict = {"posts": out}
        if send_to is not None:
            data["sent"] = [{"account": s.account, "to": s.to, "msg_id": s.msg_id,
                             "draft_media_id": s.draft_media_id, "articles": s.articles} for s in sent]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for p in posts:
        click.secho(f"── {p.account} ({p.platform}) — {p.length}/{p.limit} {p.unit}", bold=True)
        click.echo(p.text)
        for i, extra in enumerate(p.payload.get("more") or [], start=2) if p.platform == "wechat" else ():
            click.echo(f"  + article {i}: {extra['title']}")
        for w in p.warnings:
            click.secho(f"  ! {w}", fg="yellow")
        if quotas[p.account]:
            click.echo(f"  quota: {quotas[p.account].describe()}")
        click.echo()
    for s in sent:
        n = f"{s.articles} articles" if s.articles > 1 else "the article"
        click.echo(f"{s.account}: {n} sent to {s.to}'s phone (draft {s.draft_media_id}, msg_id {s.msg_id})")


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="FILE|URL...")
@click.option("--to", "to", required=True, help="Comma-separated account names.")
@click.option("--url", help="The article's URL (required for .txt articles; overrides others).")
@click.option("--text", "texts", multiple=True, metavar="ACCOUNT=TEXT", help="Your own text for an account.")
@click.option("--at", "at", help='Schedule for a time: "2026-11-26 09:00" (in --tz) or ISO 8601 with offset.')
@click.option("--tz", help="Time zone of --at (default: [defaults] timezone in the config).")
@click.option("--next-slot", is_flag=True, help="Take each account's next free posting slot.")
@click.option("--max-lateness", type=float, help="Minutes a scheduled post may be late before it needs review.")
@click.option("--idempotency-key", help="Repeating a share with the same key returns the same share.")
@click.option("--force", is_flag=True, help="Share again even if this article went to these accounts recently.")
@click.option("--wait", is_flag=True, help="Show progress until every delivery is done; exit 1 if any failed.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits at most.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a stable contract).")
@click.pass_context
@handle_errors
def share(ctx, sources, to, url, texts, at, tz, next_slot, max_lateness, idempotency_key, force, wait, timeout,
          as_json):
    """Share an article (file or http(s) URL) to accounts now, at a time, or in their next slots.

    More than one FILE: one multi-article push (多图文, up to 8) to WeChat accounts, the first article
    leading; other platforms get the first article only."""
    rt = _runtime(ctx)
    article = _load_all(sources, url)
    result = service.share(rt, article, _accounts(to), _overrides(texts), idempotency_key=idempotency_key,
                           force=force, at=at, tz=tz, next_slot=next_slot,
                           max_lateness=None if max_lateness is None else max_lateness * 60)
    # accounts the article cannot go to are recorded failed at once (the others go ahead): one line each
    refused = [d for d in result.deliveries if d.status == "failed" and d.error_kind == "compose"]
    if not as_json:
        for d in refused:
            click.echo(f"{d.id}  {d.account:20} failed: cannot compose: {d.error}", err=True)
    if (at or next_slot) and not as_json:
        for d in result.deliveries:
            if d not in refused:
                held = " (waiting for approval)" if d.status == "awaiting_approval" else ""
                click.echo(f"{d.id}  {d.account:20} scheduled for {_shown(d)}{held}")
        click.echo(f"share {result.share_id} scheduled (list with: sharer schedule list)")
        sys.exit(1 if refused else 0)
    deliveries = result.deliveries
    if result.duplicate and not as_json:
        click.echo(f"already shared recently: returning share {result.share_id} (use --force to share again)",
                   err=True)
    if not wait:
        if as_json:
            _print_json(share_json(result.share_id, deliveries))
        else:
            waiting = sum(1 for d in deliveries if d.status == "awaiting_approval")
            held = f", {waiting} of them waiting for approval" if waiting else ""
            click.echo(f"share {result.share_id}: {len(deliveries) - len(refused)} deliveries queued{held} "
                       f"(follow with: sharer status {result.share_id})")
        sys.exit(1 if refused else 0)
    live = LiveTable(enabled=not as_json and sys.stdout.isatty())
    deliveries = service.wait(rt, result.share_id, timeout=timeout, on_update=live.update)
    live.close()
    if as_json:
        _print_json(share_json(result.share_id, deliveries))
    else:
        click.echo(f"share {result.share_id}")
        click.echo(render_table(deliveries))
    # waiting for an approver is not a failure: nothing more happens until one decides
    sys.exit(0 if all(d.status in ("delivered", "awaiting_approval") for d in deliveries) else 1)


@main.command()
@click.argument("share_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def status(ctx, share_id, as_json):
    """Every delivery of a share, with its status and where it landed."""
    deliveries = service.status(_runtime(ctx), share_id)
    if as_json:
        _print_json(share_json(share_id, deliveries))
    else:
        click.echo(render_table(deliveries, events=True))


@main.command("log")
@click.option("--status", "status_", help="Only deliveries in this status.")
@click.option("--account", help="Only this account's deliveries.")
@click.option("--since", help="Only deliveries created since: ISO 8601 time, or 30m / 12h / 7d ago.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--cursor", help="The next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def log_cmd(ctx, status_, account, since, limit, cursor, as_json):
    """Recent deliveries, newest first."""
    deliveries, next_cursor = service.log(_runtime(ctx), status=status_, account=account,
                                          since=parse_since(since) if since else None, limit=limit,
                                          cursor=cursor)
    if as_json:
        _print_json({"deliveries": [d.to_json() for d in deliveries], "next_cursor": next_cursor})
    else:
        click.echo(render_table(deliveries))
        if next_cursor:
            click.echo(f"more: --cursor {next_cursor}")


@main.command()
@click.argument("delivery_id")
@click.option("--yes", is_flag=True, help="Confirm retrying a needs_review delivery (it may already be out).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def retry(ctx, delivery_id, yes, as_json):
    """Send a failed or needs_review delivery again."""
    rt = _runtime(ctx)
    d = service.delivery(rt, delivery_id)
    confirmed = yes
    if d.status == "needs_review" and not yes and sys.stdin.isatty():
        click.echo(f"{delivery_id} may already be published on {d.account}: {d.error or ''}")
        confirmed = click.confirm("Checked the account and want to send it again?", default=False)
    d = service.retry(rt, delivery_id, confirmed=confirmed)
    if as_json:
        _print_json(d.to_json())
    else:
        click.echo(f"{d.id}: {d.status}")


@main.command()
@click.argument("delivery_id")
@click.option("--url", help="Where the post is (if you found it).")
@click.pass_context
@handle_errors
def posted(ctx, delivery_id, url):
    """Close a needs_review delivery: you checked, and the post is out."""
    d = service.mark_posted(_runtime(ctx), delivery_id, url)
    click.echo(f"{d.id}: {d.status}")


@main.command()
@click.argument("share_or_delivery_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def cancel(ctx, share_or_delivery_id, as_json):
    """Cancel deliveries that have not started sending; says which were already out."""
    result = service.cancel(_runtime(ctx), share_or_delivery_id)
    if as_json:
        _print_json({"cancelled": result.cancelled, "not_cancelled": result.not_cancelled})
        return
    for did in result.cancelled:
        click.echo(f"{did}: cancelled")
    for did, st in result.not_cancelled.items():
        click.echo(f"{did}: not cancelled ({st})")


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


@schedule.command("list")
@click.option("--account", help="Only this account's posts.")
@click.option("--from", "start", help="From this time (ISO 8601 with offset, or \"YYYY-MM-DD HH:MM\" in --tz).")
@click.option("--to", "end", help="Up to this time.")
@click.option("--tz", help="Zone for --from/--to without an offset (default from config).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def schedule_list(ctx, account, start, end, tz, as_json):
    rt = _runtime(ctx)
    bounds = [_instant(rt, v, tz, name) if v else None for v, name in ((start, "--from"), (end, "--to"))]
    items = service.schedule_list(rt, account=account, start=bounds[0], end=bounds[1])
    if as_json:
        _print_json({"deliveries": [d.to_json() for d in items]})
        return
    if not items:
        click.echo("(nothing scheduled)")
    for d in items:
        click.echo(f"{_shown(d):32} {d.share_id}  {d.id}  {d.account}")


@schedule.command("move")
@click.argument("share_id")
@click.option("--at", "at", required=True, help='New time: "2026-11-26 09:00" (in --tz) or ISO 8601 with offset.')
@click.option("--tz", help="Time zone of --at (default from config).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def schedule_move(ctx, share_id, at, tz, as_json):
    ds = service.reschedule(_runtime(ctx), share_id, at, tz)
    if as_json:
        _print_json(share_json(share_id, ds))
        return
    for d in ds:
        click.echo(f"{d.id}  {d.account:20} {d.status:10} {_shown(d) if d.status == 'scheduled' else ''}")


def _instant(rt, value: str, tz: str | None, name: str):
    try:
        return service.parse_when(value, tz, rt.settings)
    except InputError as e:
        if "in the past" in e.problem:  # a listing window may start in the past
            from .timeparse import parse_when as parse_any

            return parse_any(value, tz or rt.settings.timezone, 0.0, name).utc
        raise InputError(name, e.problem) from None


def _shown(d: Delivery) -> str:
    """A scheduled time in the zone it was given in."""
    if d.scheduled_for is None:
        return ""
    from datetime import UTC

    from .timeparse import local_text

    zone = d.timezone or "UTC"
    return f"{local_text(datetime.fromtimestamp(d.scheduled_for, UTC), zone)} {zone}"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--base-port", default=8900, show_default=True, type=int, help="Port of the first emulator.")
@handle_errors
def sandbox(host, base_port):
    """Run every platform's local emulator until Ctrl-C."""
    from .sandbox.run import start_all

    running = start_all(host, base_port)
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
    """List configured accounts (never their secrets)."""
    rt = _runtime(ctx)
    for a in rt.settings.accounts.values():
        creds = ", ".join(sorted(a.credentials)) or "-"
        gated = "   needs approval" if rt.settings.needs_approval(a.name) else ""
        click.echo(f"{a.name:20} {a.platform:10} {a.api_base}   credentials: {creds}{gated}")


@main.command()
@click.pass_context
@handle_errors
def purge(ctx):
    """Delete deliveries older than the configured retention now (beat does it hourly)."""
    n = service.purge(_runtime(ctx), actor=Actor.cli())
    click.echo(f"purged {n} deliveries")


@main.command()
@click.option("--keep", is_flag=True, help="Keep the sandbox and worker running after the demo.")
@click.pass_context
@handle_errors
def demo(ctx, keep):
    """Start the sandbox and a worker, share every example article to the demo accounts, watch."""
    from .demo import run_demo

    sys.exit(run_demo(ctx.obj.get("config"), keep=keep))


# --- output helpers -------------------------------------------------------------------------------

def share_json(share_id: str, deliveries: list[Delivery]) -> dict:
    """The documented ``--json`` shape of share, status and schedule move."""
    return {"share_id": share_id, "deliveries": [d.to_json() for d in deliveries]}


def _print_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def render_table(deliveries: list[Delivery], events: bool = False) -> str:
    if not deliveries:
        return "(no deliveries)"
    rows = [("DELIVERY", "ACCOUNT", "PLATFORM", "STATUS", "TRIES", "WHERE / WHY")]
    for d in deliveries:
        where = f"at {_shown(d)}" if d.status == "scheduled" else (d.post_url or d.note or d.error or "")
        if d.already_posted and d.note:  # nothing new was published: say so, with the earlier post
            where = f"{d.note} (nothing new published)"
        if d.approval and d.status in ("awaiting_approval", "rejected"):
            where = _approval_text(d)
        rows.append((d.id, d.account, d.platform, d.status, str(d.attempts), where))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    if events:
        for d in deliveries:
            lines.append("")
            lines.append(f"{d.id} ({d.account}):")
            for ev in d.events:
                by = f"  ({ev['actor']})" if ev.get("actor") else ""
                lines.append(f"  {ev['at']}  {ev['status']:<12} #{ev['attempt']}  {ev['message']}{by}")
    return "\n".join(lines)


def _approval_text(d: Delivery) -> str:
    a = d.approval
    if a is None:
        return ""
    if d.status == "rejected":
        return f"v{a.version} rejected by {a.decided_by}: {a.reason}"
    due = f", due {_shown(d)}" if d.scheduled_for else ""
    return f"v{a.version} waiting for approval (submitted by {a.submitted_by}{due})"


class LiveTable:
    """Redraws the status table in place on a terminal; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.lines = 0

    def update(self, deliveries: list[Delivery]) -> None:
        if not self.enabled:
            return
        text = render_table(deliveries)
        if self.lines:
            sys.stdout.write(f"\x1b[{self.lines}F\x1b[J")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        self.lines = text.count("\n") + 1

    def close(self) -> None:
        if self.enabled and self.lines:
            sys.stdout.write(f"\x1b[{self.lines}F\x1b[J")
            sys.stdout.flush()


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


def parse_since(value: str) -> float:
    m = _RELATIVE.match(value.strip())
    if m:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return time.time() - float(m.group(1)) * factor
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError("--since", f"expected an ISO 8601 time or a duration like 12h, got {value!r}") from None
    if dt.tzinfo is None:
        raise InputError("--since", "give a time zone offset (e.g. 2026-11-25T09:00+08:00) or Z")
    return dt.astimezone(UTC).timestamp()


def _hide_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


from .web.cli import user_group, web_command  # noqa: E402  (the dashboard's commands: sharer/web/cli.py)

main.add_command(web_command)
main.add_command(user_group)

from .workflow_cli import COMMANDS as _WORKFLOW_COMMANDS  # noqa: E402  (pending, approve, reject, resubmit, audit)

for _command in _WORKFLOW_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
