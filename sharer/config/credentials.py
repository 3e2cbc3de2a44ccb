"""Secrets: the masked ``Secret`` value and the resolver that turns a config reference into one.

A credential in the config is a reference, never the value: ``env:NAME``, ``file:KEY`` (the
``[secrets] file``) or ``sandbox:`` (the emulators' public credential, loopback ``api_base`` only).
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError

SANDBOX_SECRET_PREFIX = "sandbox-"


class Secret:
    """A credential value whose repr/str never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class CredentialResolver:
    def __init__(self, p: Path, env: dict[str, str], secrets_file: Path | None):
        self.p, self.env, self.secrets_file = p, env, secrets_file
        self._file_values: dict[str, Any] | None = None

    def resolve(self, ref: Any, where: str, api_base: str) -> Secret:
        p = self.p
        if not isinstance(ref, str) or ":" not in ref:
            raise ConfigError(
                f"{p}: {where}: must be a reference like \"env:VAR\", \"file:KEY\" or \"sandbox:\" "
                "(never the secret itself)"
            )
        kind, _, name = ref.partition(":")
        if kind == "env":
            if not name:
                raise ConfigError(f"{p}: {where}: env: reference needs a variable name")
            if not self.env.get(name):
                raise ConfigError(f"{p}: {where}: environment variable {name} is not set")
            return Secret(self.env[name])
        if kind == "file":
            values = self._load_file(where)
            if name not in values or not isinstance(values[name], str):
                raise ConfigError(f"{p}: {where}: key {name!r} not found in secrets file {self.secrets_file}")
            return Secret(values[name])
        if kind == "sandbox":
            if not is_loopback_url(api_base):
                raise ConfigError(f"{p}: {where}: sandbox: credentials only work with a loopback api_base")
            key = where.rsplit(".", 1)[-1]
            return Secret(SANDBOX_SECRET_PREFIX + key)
        raise ConfigError(f"{p}: {where}: unknown reference kind {kind!r} (use env:, file: or sandbox:)")

    def _load_file(self, where: str) -> dict[str, Any]:
        if self._file_values is None:
            if self.secrets_file is None:
                raise ConfigError(f"{self.p}: {where}: file: reference but no [secrets] file is configured")
            try:
                self._file_values = tomllib.loads(self.secrets_file.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{self.p}: secrets.file: cannot read {self.secrets_file}: {e}") from None
        return self._file_values


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
