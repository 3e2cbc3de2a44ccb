"""What the three group bots (WeCom, Feishu/Lark, DingTalk) share.

They all take one JSON POST to a webhook whose URL carries the secret, answer HTTP 200 with an error
code in the body, and return no message id or URL. Kept small: byte-limited fields, the link label,
and the one POST that turns transport problems into our error classes and hands back (code, message).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import Ambiguous
from ..text import count_utf8_bytes, trim
from .base import DeliveryContext, error_for_status, json_body, send, short


def fit_bytes(text: str, limit: int, what: str, warnings: list[str]) -> str:
    """``text`` trimmed grapheme-safe to ``limit`` UTF-8 bytes; a warning names ``what`` when cut."""
    result = trim(text, limit, count=count_utf8_bytes)
    if result.trimmed:
        warnings.append(f"{what} trimmed to {limit} bytes (was {count_utf8_bytes(text)})")
    return result.text


def fit_summary(size: Callable[[str], int], summary: str, limit: int,
                count: Callable[[str], int] = count_utf8_bytes) -> str:
    """The summary, trimmed grapheme-safe just enough that ``size(summary) <= limit`` ("" if nothing fits).

    ``size`` measures the whole message built around the summary, so the title and the link stay whole.
    """
    excess = size(summary) - limit
    if excess <= 0:
        return summary
    budget = count(summary) - excess
    for _ in range(8):  # escaping or collapsed blank lines shift the overhead a little: converge
        if budget <= 0:
            break
        cut = trim(summary, budget, count=count).text
        excess = size(cut) - limit
        if excess <= 0:
            return cut
        budget -= excess
    return ""


def read_more(lang: str | None) -> str:
    """The link label in the article's language (both when the language is unknown)."""
    if not lang:
        return "阅读全文 / Read more"
    return "阅读全文" if lang.lower().startswith("zh") else "Read more"


def json_size(body: dict[str, Any]) -> int:
    """Bytes of ``body`` as we send it (UTF-8, no ASCII escaping)."""
    return len(encode(body))


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(ctx: DeliveryContext, title: str, url: str, body: dict[str, Any],
              code_keys: tuple[str, ...] = ("errcode",), msg_keys: tuple[str, ...] = ("errmsg",)) -> tuple[int, str]:
    """POST ``body``; return the body's (code, redacted message) for the platform to map.

    An HTTP error without a body code, and any 5xx, is mapped by status here. A 200 without a readable
    code is ``Ambiguous``: the bot may well have posted the message.
    """
    resp = send(ctx, "POST", url, data=encode(body), headers={"Content-Type": "application/json; charset=utf-8"})
    data = json_body(resp)
    message = ctx.redact(short(next((str(data[k]) for k in msg_keys if data.get(k)), "")))
    code = _int(next((data[k] for k in code_keys if k in data), None))
    if resp.status_code != 200 and (code in (None, 0) or resp.status_code >= 500):
        detail = message or short(resp.text)
        raise error_for_status(resp, ctx.redact(f"{title} answered HTTP {resp.status_code}: {detail}"), code=code)
    if code is None:
        raise Ambiguous(ctx.redact(f"{title} answered HTTP 200 without an error code: {short(resp.text)}"),
                        status=200)
    return code, message


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
