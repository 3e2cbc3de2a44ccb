"""The editors' web dashboard and HTTP API (FastAPI + server-rendered Jinja2 pages, live by SSE).

A thin layer over ``sharer.service``: it parses web input, checks who may do what, and renders what the
core returns. ``create_app`` builds the ASGI app; ``sharer web`` serves it with uvicorn. Imported lazily:
the CLI registers the ``web``/``user`` commands without loading FastAPI.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
