"""The ``sharer`` group and what every command shares: the error contract, exit codes, runtime, JSON.

Exit codes: 0 success, 1 a delivery failed (with --wait) or an operational error, 2 bad input,
3 ``--wait`` gave up waiting (the deliveries carry on in the background).
"""

from __future__ import annotations

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

from ..errors import ArticleError, ComposeError, ConfigError, Forbidden, InputError, NotFound, SharerError

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
    from ..config import load_settings

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
    from ..runtime import get_runtime

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



def _json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
    from ..connections import safe_url  # also hides a Sentinel URL's sentinel_password

    return safe_url(re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url))

