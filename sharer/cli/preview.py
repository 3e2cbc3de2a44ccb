"""``sharer preview``: every account's post exactly as it will be sent (and WeChat's phone preview)."""

from __future__ import annotations

import sys

import click

from .. import service
from ..actor import Actor
from ..cli_output import plural
from ..errors import InputError
from .articles import SOURCES_HELP, TEXT_HELP, TO_HELP, URL_HELP, _accounts, _load_all, _overrides
from .base import EXIT_BAD_INPUT, JSON_HELP, _json, _runtime, handle_errors, main


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
    from .. import wechat_ops

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

