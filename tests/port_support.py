"""Loopback ports for the servers the tests start, without "bind port 0, close it, start the server there".

That pattern races: between the close and the server's bind, the port can be handed to someone else
(the other pytest-xdist worker's emulator or uvicorn, an outgoing connection's local port, another
checkout's test run). So:

* a server that can bind port 0 itself does (uvicorn: ``port=0`` or ``sharer web --port 0``, then the
  bound socket or its "Uvicorn running on" line gives the port);
* for the others (``redis-server --port 0`` means no TCP at all; the worker's ``[metrics] worker_port``
  must be 1-65535), ``reserve_port()`` hands out a port that is
  - below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``): no ``bind(0)`` and no
    outgoing connection on the machine is ever given it, not even while its server is down for a
    restart on the same port;
  - locked (``flock`` on ``/tmp/sharer-test-ports/<port>``) for the rest of this process's life: no
    other test process reserves it; the lock goes with the process, however it ends;
  - free at that moment (a bind check: nothing else on the machine holds it);
* ``closed_port()`` is a port nothing listens on: a socket bound to it, never listening, held for the
  ``with`` block (connections are refused, and no one else can bind the port meanwhile).
"""

from __future__ import annotations

import fcntl
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

LOCKS = Path("/tmp/sharer-test-ports")  # one place for every test process on the machine
LOWEST = 10000  # clear of the usual fixed service ports (Redis 6379, RabbitMQ 5672, sandbox 89xx)
HIGHEST = 20000  # exclusive; test runs before this helper picked cluster ports from 20000-55000

_held: dict[int, IO[str]] = {}


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:  # no SO_REUSEADDR: a port with lingering connections is skipped too
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_port() -> int:
    """A free loopback port outside the ephemeral range, held for this process (see the module doc)."""
    high = min(HIGHEST, _ephemeral_low())
    if high - LOWEST < 1000:
        raise RuntimeError(f"the ephemeral port range starts at {high}: no room below it for test servers")
    LOCKS.mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        port = random.randrange(LOWEST, high)
        if port in _held:
            continue
        try:
            fh = open(LOCKS / str(port), "a")
        except OSError:
            continue
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another test process has it
            fh.close()
            continue
        if not _bindable(port):
            fh.close()
            continue
        _held[port] = fh
        return port
    raise RuntimeError(f"no free port in {LOWEST}-{high - 1}")


def release_port(port: int) -> None:
    """Give a reserved port back (one a server could not bind after all)."""
    fh = _held.pop(port, None)
    if fh is not None:
        fh.close()


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole ``with`` block."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: the kernel answers a connect with RST
        yield s.getsockname()[1]
