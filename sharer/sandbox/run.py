"""Start every platform's emulator (``sharer sandbox``), each on the port its spec declares.

The list is read from the platform registry (``PlatformSpec.sandbox``); only the newsroom site's
stand-in, which is no platform, is named here.
"""

from __future__ import annotations

from importlib import import_module

from ..platforms import specs
from .server import Emulator

SITE = ("sharer.sandbox.site:SiteEmulator", 8909)  # the newsroom website's stand-in (images)
BASE_PORT = 8900  # `--base-port` shifts every port by (base - BASE_PORT)


def emulators() -> dict[str, tuple[str, int]]:
    """platform id -> (emulator ``module:Class``, default port), plus ``site``."""
    out = {pid: (spec.sandbox.emulator, spec.sandbox.port) for pid, spec in specs().items()}
    out["site"] = SITE
    return out


EMULATORS: dict[str, tuple[str, int]] = emulators()


def emulator_class(platform_id: str) -> type[Emulator]:
    target, _ = EMULATORS[platform_id]
    module, _, name = target.partition(":")
    cls: type[Emulator] = getattr(import_module(module), name)
    return cls


def start_all(host: str = "127.0.0.1", base_port: int | None = None,
              only: list[str] | None = None) -> dict[str, Emulator]:
    """Start the emulators in threads; ``base_port`` shifts every default port by the same amount."""
    running = {}
    shift = 0 if base_port is None else base_port - BASE_PORT
    for pid, (_, port) in EMULATORS.items():
        if only and pid not in only:
            continue
        running[pid] = emulator_class(pid)(host, port + shift).start()
    return running
