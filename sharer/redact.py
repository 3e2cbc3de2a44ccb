"""Keep secrets out of everything a person or a log can see.

Two layers: known secret values are replaced wherever they appear, and anything that looks like a
credential in a URL or header (``access_token=…``, ``key=…``, ``sign=…``, ``Bearer …``) is masked
even when we did not know its value (e.g. a token minted a moment ago).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_PATTERNS = [
    re.compile(r"(?i)((?:access_token|refresh_token|token|secret|appsecret|client_secret|key|sign|signature"
               r"|password|oauth_signature|oauth_token)=)[^&\s\"'<>]+"),
    re.compile(r"(?i)(\"(?:access_token|refresh_token|secret|appsecret|client_secret|sign|password|token)\"\s*:\s*\")"
               r"[^\"]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"),  # Telegram bot token in the URL path
    re.compile(r"(/hook/)[A-Za-z0-9_-]{8,}"),  # Feishu webhook token in the path
]


def redact(text: str | None, secrets: Iterable[str] = ()) -> str:
    if not text:
        return ""
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
