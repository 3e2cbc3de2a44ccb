"""This machine's set-up: ``sharer accounts``, the ``sandbox`` emulators and the ``demo``."""

from __future__ import annotations

import sys
import time

import click

from ..errors import InputError
from .base import _runtime, handle_errors, main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the emulators listen on.")
@click.option("--base-port", default=8900, show_default=True, type=int,
              help="Port of the first emulator; the others follow (webhook, wechat, weibo, … site = +9).")
@handle_errors
def sandbox(host, base_port):
    """Run every platform's local emulator until Ctrl-C (development only)."""
    from ..sandbox.run import start_all

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
@click.option("--keep", is_flag=True, help="Keep the sandbox, worker, beat and dashboard running afterwards.")
@click.pass_context
@handle_errors
def demo(ctx, keep):
    """Start the sandbox, a worker, beat and the dashboard; share every example article; watch."""
    from ..demo import run_demo

    sys.exit(run_demo(ctx.obj.get("config"), keep=keep))

