"""The X emulator's shared wire shapes (problem-JSON, X's invalid-request body) and its sandbox
account, used by ``x.py``, ``x_media.py`` and ``x_reads.py``."""

from __future__ import annotations

from typing import Any

from .server import Response

PUBLIC_HOSTS = ("https://api.twitter.com", "https://api.x.com")
USER = {"id": "1550000000000000001", "name": "Sharer Sandbox", "username": "sharer_sandbox"}
CREDS = {k: f"sandbox-{k}" for k in ("consumer_key", "consumer_secret", "access_token", "access_token_secret",
                                     "client_id", "client_secret", "oauth2_refresh_token")}
INVALID = "https://api.twitter.com/2/problems/invalid-request"


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> Response:
    return Response(status, {"detail": detail, "type": type_, "title": title, "status": status, **extra})


def invalid(message: str, **extra: Any) -> Response:
    """X's 400 for a request that breaks the schema: ``errors`` plus a generic problem."""
    return Response(400, {"errors": [{"message": message, **extra}], "title": "Invalid Request",
                          "detail": "One or more parameters to your request was invalid.", "type": INVALID})


def unauthorized() -> Response:
    return problem(401, "Unauthorized", "Unauthorized")
