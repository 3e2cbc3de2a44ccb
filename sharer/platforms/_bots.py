"""What the three group bots (WeCom, Feishu/Lark, DingTalk) share.

They all take one JSON POST to a webhook whose URL carries the secret, answer HTTP 200 with an error
code in the body, and return no message id or URL. Kept small: byte-limited fields, the link label,
and the one POST that turns transport problems into our error classes and reads the body code
through the bot's own ``ErrorTable``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import Ambiguous
from ..text import count_utf8_bytes, trim
from .base import DeliveryContext
from .http import DEFAULT_TABLE, ErrorTable, json_body, send, short


def fit_bytes(text: str, limit: int, what: str, warnings: list[str]) -> str:
    """``text`` trimmed grapheme-safe to ``limit`` UTF-8 bytes; a warning names ``what`` when cut."""
    result = trim(text, limit, count=count_utf8_bytes)
    if result.trimmed:
        warnings.append(f"{what} trimmed to {limit} bytes (was {count_utf8_bytes(text)})")
    return result.text


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


def post_json(ctx: DeliveryContext, title: str, url: str, body: dict[str, Any], table: ErrorTable,
              code_keys: tuple[str, ...] = ("errcode",), msg_keys: tuple[str, ...] = ("errmsg",)) -> str:
    """POST ``body``; code 0 returns the (redacted) message, any other code raises through ``table``.

    An HTTP error without a body code, and any 5xx, is read by status (the shared table). A 200
    without a readable code is ``Ambiguous``: the bot may well have posted the message.
    """
    resp = send(ctx, "POST", url, data=encode(body), headers={"Content-Type": "application/json; charset=utf-8"})
    data = json_body(resp)
    message = ctx.redact(short(next((str(data[k]) for k in msg_keys if data.get(k)), "")))
    code = _int(next((data[k] for k in code_keys if k in data), None))
    if resp.status_code != 200 and (code in (None, 0) or resp.status_code >= 500):
        detail = message or short(resp.text)
        raise DEFAULT_TABLE.for_response(resp, ctx.redact(f"{title} answered HTTP {resp.status_code}: {detail}"),
                                         code=code)
    if code is None:
        raise Ambiguous(ctx.redact(f"{title} answered HTTP 200 without an error code: {short(resp.text)}"),
                        status=200)
    if code != 0:
        raise table.for_code(code, message)
    return message


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
