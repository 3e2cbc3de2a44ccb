"""``sharer web`` (serve the dashboard with uvicorn) and ``sharer user add|list|token|revoke-token``.

Registered at the end of ``sharer/cli.py``. Heavy imports (FastAPI, uvicorn) happen inside the commands,
so other commands stay fast. ``user add`` prints TOML to paste: config files are never rewritten.
"""

from __future__ import annotations

import sys
from functools import wraps

import click

from ..errors import InputError, NotFound


def _errors(fn):
    """The CLI's error contract (one line, exit 1/2), imported late: sharer.cli imports this module."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from ..cli import handle_errors

        return handle_errors(fn)(*args, **kwargs)

    return wrapper


def _config(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("config")


@click.command("web")
@click.option("--host", help="Address to bind (default: [web] host, else 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: [web] port, else 8080).")
@click.pass_context
@_errors
def web_command(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the editors' dashboard and the HTTP API (/openapi.json)."""
    import uvicorn

    from ..config import load_settings
    from .app import create_app

    settings = load_settings(_config(ctx))
    app = create_app(settings, host=host, port=port)
    web = app.state.web.web
    _check_port_free(web.host, web.port, "--port" if port is not None else f"{web.path}: web.port")
    shown = f"[{web.host}]" if ":" in web.host else web.host
    click.echo(f"sharer web: http://{shown}:{web.port}/  (API schema: /openapi.json)", err=True)
    json_logs = settings.log_format == "json"
    if json_logs:  # uvicorn's own loggers then propagate to the root logger's JSON handler
        from ..logs import configure

        configure("json")
    uvicorn.Server(server_config(app, web.host, web.port, json_logs=json_logs)).run()


def server_config(app, host: str, port: int, log_level: str = "info", json_logs: bool = False):
    """How `sharer web` runs uvicorn. Its own proxy-header handling is off (it would believe
    X-Forwarded-For from loopback by default): the app does it, only for [web] trusted_proxies. Access
    lines name the signed-in actor and mask credentials in the path (``sharer.web.requestlog``)."""
    import uvicorn

    from .requestlog import install, text_log_config

    if json_logs:  # uvicorn's loggers propagate to the root's JSON handler; the filter goes on the logger
        install()
    return uvicorn.Config(app, host=host, port=port, proxy_headers=False, timeout_graceful_shutdown=3,
                          log_level=log_level, log_config=None if json_logs else text_log_config())


def _check_port_free(host: str, port: int, field: str) -> None:
    """A busy port is bad input named in one line, not uvicorn's start-up error."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InputError(field, f"cannot resolve host {host!r}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            raise InputError(field, f"cannot listen on {host}:{port}: {(e.strerror or str(e)).lower()}") from None


@click.group("user")
def user_group() -> None:
    """Dashboard users (in the config) and their API tokens (in Redis)."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "editor", "approver", "admin"]), required=True,
              help="viewer: read only; editor: share, retry, cancel; approver: also approve/reject; "
                   "admin: also API tokens.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (no prompt).")
@_errors
def add(name: str, role: str, password_stdin: bool) -> None:
    """Hash a password for NAME and print the [users.NAME] lines to paste into the config."""
    from .settings import USER_NAME
    from .users import hash_password

    if not USER_NAME.match(name):
        raise InputError("NAME", "letters, digits, '_', '.', '-' (at most 64), starting with a letter or digit")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < 10:
        raise InputError("password", "use at least 10 characters")
    click.echo(f"[users.{name}]\nrole = \"{role}\"\npassword_hash = \"{hash_password(password)}\"")
    click.echo("# paste these lines into your config file (sharer never rewrites it), then restart `sharer web`",
               err=True)


@user_group.command("list")
@click.pass_context
@_errors
def list_users(ctx: click.Context) -> None:
    """Users from the config, and every API token (ids only: tokens are shown once, at creation)."""
    from ..runtime import get_runtime
    from .settings import demo_users, parse_users
    from .users import Tokens

    rt = get_runtime(_config(ctx))
    users = parse_users(rt.settings)
    demo = set(demo_users(users.values()))
    for u in users.values():
        click.echo(f"{u.name:20} {u.role:8} {'(demo user: loopback only)' if u.name in demo else ''}".rstrip())
    tokens = Tokens(rt.redis, rt.keys.root).list()
    if tokens:
        click.echo("\nTOKEN ID      USER                 NAME             CREATED                   LAST USED")
    for t in tokens:
        gone = "" if t.user in users else "  (user no longer in the config: refused)"
        click.echo(f"{t.id:13} {t.user:20} {t.label or '-':16} {t.created_at:25} {t.last_used or '-'}{gone}")


@user_group.command("token")
@click.argument("name")
@click.option("--name", "label", help="A name for the token (e.g. ci-bot), shown in the audit log.")
@click.pass_context
@_errors
def token(ctx: click.Context, name: str, label: str | None) -> None:
    """Create an API token for NAME (printed once; store it like a password)."""
    from ..runtime import get_runtime
    from .settings import parse_users
    from .users import Tokens

    rt = get_runtime(_config(ctx))
    if name not in parse_users(rt.settings):
        raise InputError("NAME", f"no user {name!r} in {rt.settings.path} (add one with: sharer user add)")
    token_id, value = Tokens(rt.redis, rt.keys.root).create(name, label)
    _audit(rt, "token_create", f"created token {label or token_id} for {name}",
           {"token_id": token_id, "for": name, "name": label})
    click.echo(value)
    click.echo(f"# token {token_id} for {name}: send it as 'Authorization: Bearer <token>'; "
               f"revoke with: sharer user revoke-token {token_id}", err=True)


@user_group.command("revoke-token")
@click.argument("token_id")
@click.pass_context
@_errors
def revoke_token(ctx: click.Context, token_id: str) -> None:
    """Revoke an API token at once."""
    from ..runtime import get_runtime
    from .users import Tokens

    rt = get_runtime(_config(ctx))
    tokens = Tokens(rt.redis, rt.keys.root)
    info = tokens.get(token_id)
    if info is None or not tokens.revoke(token_id):
        raise NotFound(f"no token with id {token_id!r}")
    _audit(rt, "token_revoke", f"revoked token {info.label or token_id} for {info.user}",
           {"token_id": token_id, "for": info.user, "name": info.label})
    click.echo(f"token {token_id} revoked")


def _audit(rt, action: str, detail: str, data: dict) -> None:
    from ..actor import Actor
    from ..store.audit import AuditAction, AuditEntry

    actor = Actor.cli()
    rt.audit.record(AuditEntry(AuditAction(action), actor.name, actor.user, detail, None, None, data))
