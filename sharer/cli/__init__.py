"""The ``sharer`` command. Calls ``sharer.service`` only; prints tables or the ``--json`` contract.

One module per command group, each registering on the ``main`` group from ``base``: ``preview``,
``sending`` (share, --wait), ``records`` (status, log, retry, posted, cancel, sweep, purge),
``scheduling`` (schedule list|move), ``local`` (accounts, sandbox, demo); the dashboard's commands are
in ``sharer/web/cli.py`` and the sign-off workflow's in ``sharer/workflow_cli.py``.
"""

from __future__ import annotations

from ..cli_output import LiveTable, render_table
from ..web.cli import user_group, web_command  # the dashboard: sharer/web/cli.py
from ..workflow_cli import COMMANDS as _WORKFLOW_COMMANDS  # pending, approve, reject, resubmit, audit
from . import local, preview, records, scheduling, sending  # noqa: F401  (they register their commands)
from .articles import _overrides
from .base import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_WAIT_TIMEOUT, handle_errors, main, parse_since
from .records import share_json

main.add_command(web_command)
main.add_command(user_group)
for _command in _WORKFLOW_COMMANDS:
    main.add_command(_command)

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "EXIT_WAIT_TIMEOUT", "LiveTable", "_overrides",
           "handle_errors", "main", "parse_since", "render_table", "share_json"]
