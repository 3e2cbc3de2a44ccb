"""Log lines as text (default) or one JSON object per line (``[log] format = "json"``).

JSON lines carry the ids of what is being worked on — ``delivery``, ``share``, ``account``,
``platform``, ``actor`` — bound with :func:`bind` for the duration of a task, so a log pipeline can
follow one delivery across workers without parsing messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FIELDS = ("delivery", "share", "account", "platform", "actor")
_bound: ContextVar[dict[str, str] | None] = ContextVar("sharer_log_fields", default=None)


def bind(**fields: str | None) -> None:
    """Add ids to every log line of this task/request (None removes one)."""
    current = dict(_bound.get() or {})
    for k, v in fields.items():
        if v is None:
            current.pop(k, None)
        else:
            current[k] = str(v)
    _bound.set(current)


def current() -> dict[str, str]:
    """A copy of the ids bound for this task/request."""
    return dict(_bound.get() or {})


def bind_shared(fields: dict[str, str]) -> None:
    """Bind ``fields`` itself, not a copy: whoever holds the dict can add an id later (a web request
    learns its actor in a worker thread) and every later line of this task shows it."""
    _bound.set(fields)


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    token = _bound.set(dict(_bound.get() or {}))
    try:
        bind(**fields)
        yield
    finally:
        _bound.reset(token)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <bound ids>, "exc"?}`` on one line (UTF-8, no ASCII escapes)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_bound.get() or {})
        for key in FIELDS:  # logging.info(..., extra={"delivery": ...}) wins over the bound value
            value = getattr(record, key, None)
            if value is not None:
                out[key] = str(value)
        if record.processName and record.processName != "MainProcess":
            out["process"] = record.processName
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_json(logger: logging.Logger | None = None) -> None:
    """Give every handler of ``logger`` (default: the root logger) the JSON formatter."""
    target = logger or logging.getLogger()
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
    for handler in target.handlers:
        handler.setFormatter(JsonFormatter())


def configure(log_format: str, level: int = logging.INFO) -> None:
    """For processes that are not Celery workers (``sharer web``, the CLI)."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    root.setLevel(min(root.level or level, level))
    use_json(root)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        if lg.handlers:
            use_json(lg)
