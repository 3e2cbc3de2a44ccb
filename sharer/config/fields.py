"""Reading one TOML value with the error that names it: ``FILE: table.key: what is wrong``.

The small checks every part of the config loader shares; pure (no environment, no files).
"""

from __future__ import annotations

import math
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError


def not_one_of(value: object, allowed: tuple[str, ...], *, quoted: bool = False) -> str | None:
    """Why ``value`` is not among ``allowed`` (None when it is), in the one wording config errors use:
    ``must be one of a, b, got 'x'``, or ``quoted``: ``must be "a" or "b", got 'x'`` (an allowed "" is
    the unset default and not shown). Shared by this module and the platforms' option checks."""
    if value in allowed:
        return None
    if not quoted:
        return f"must be one of {', '.join(allowed)}, got {value!r}"
    shown = [f'"{a}"' for a in allowed if a]
    listed = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
    return f"must be {listed}, got {value!r}"


def check_zone(name: str, p: Path, where: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{p}: {where}: unknown time zone {name!r}") from None


def get_table(raw: dict, key: str, p: Path) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{p}: [{key}]: must be a table")
    return value


def no_unknown(table: dict, known: set[str], p: Path, where: str) -> None:
    for key in table:
        if key not in known:
            name = f"{where}.{key}" if where else key
            raise ConfigError(f"{p}: {name}: unknown key (expected one of: {', '.join(sorted(known))})")


def get_str(table: dict, key: str, p: Path, where: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{p}: {where}.{key}: must be a string")
    return value


def get_num(table: dict, key: str, p: Path, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{p}: {where}.{key}: must be a finite, non-negative number")
    return float(value)


def get_str_list(table: dict, key: str, p: Path, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise ConfigError(f"{p}: {where}.{key}: must be a list of non-empty strings")
    return [x.strip() for x in value]
