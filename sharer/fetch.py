"""The one guarded fetcher for URLs a user supplied (article pages, images): no way into our network.

Every hop is vetted before a byte is sent: http(s) only; the host resolved once and *every* address it
resolves to checked (loopback, private, link-local, CGNAT, multicast, reserved, unspecified, IPv4-mapped
or -compatible IPv6, 6to4, Teredo and NAT64 forms are refused, as are numeric tricks like ``127.1`` or
``2130706433``, which are read the way the C library would read them); the connection then goes to the
vetted address itself — never to the name again, so a DNS answer that changes between the check and the
connect (rebinding) cannot move it — and the peer address is checked once more after connecting. For
https the certificate is still checked against the host name (SNI and Host stay the name).
Redirects are followed by hand (each target vetted the same way), at most ``max_redirects``. One
wall-clock deadline covers resolving, connecting, TLS, headers and body: a server that drips a byte
every two seconds is cut off at it, not after each read's timeout. The body is capped in size.

An operator allows their own hosts or networks in ``[fetch] allow_hosts`` / ``allow_networks``; the
origins of ``[media] rewrite`` targets are allowed automatically (the operator's own mirrors).

Why not a library: the maintained candidates wrap ``requests`` adapters whose last releases predate
urllib3 2 (``advocate``) or only check the name's first answer; this is ~200 lines over ``http.client``
and ``ipaddress`` where each check is visible and tested.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urljoin, urlsplit

from .errors import FetchError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_DEADLINE = 20.0
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?", re.IGNORECASE)


@dataclass(frozen=True)
class FetchPolicy:
    """What an operator lets the server fetch beyond the public internet."""

    allow_hosts: frozenset[str] = frozenset()  # "host" or "host:port", lower case
    allow_networks: tuple[Network, ...] = ()
    max_redirects: int = 5

    @classmethod
    def build(cls, hosts: Iterable[str] = (), networks: Iterable[str] = (), origins: Iterable[str] = (),
              max_redirects: int = 5) -> FetchPolicy:
        """From config values; ``origins`` are URLs whose host:port is allowed (e.g. media rewrites)."""
        allowed = {h.strip().lower().rstrip(".") for h in hosts if h.strip()}
        for url in origins:
            parts = urlsplit(url)
            if parts.hostname:
                allowed.add(f"{parts.hostname.lower()}:{parts.port or _default_port(parts.scheme)}")
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        return cls(frozenset(allowed), nets, max_redirects)

    def with_origins(self, urls: Iterable[str]) -> FetchPolicy:
        extra = FetchPolicy.build(origins=urls).allow_hosts
        return FetchPolicy(self.allow_hosts | extra, self.allow_networks, self.max_redirects)

    def host_allowed(self, host: str, port: int) -> bool:
        return host in self.allow_hosts or f"{host}:{port}" in self.allow_hosts

    def network_allowed(self, ip: Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow_networks)


STRICT = FetchPolicy()


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    reason: str
    headers: Message
    body: bytes = b""
    address: str = ""  # the address the body came from

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # the name as in the URL (Host header, SNI, certificate)
    port: int
    path: str
    addresses: tuple[Address, ...] = field(default=())


def refusal(ip: Address) -> str | None:
    """Why ``ip`` must not be fetched from, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"an IPv4-mapped IPv6 address (of {ip.ipv4_mapped})"
        if ip.sixtofour is not None:
            return f"a 6to4 address (embedding {ip.sixtofour})"
        if ip.teredo is not None:
            return f"a Teredo address (embedding {ip.teredo[1]})"
        if any(ip in net for net in NAT64):
            return "a NAT64 address (translated to IPv4)"
        if ip in IPV4_COMPATIBLE and not (ip.is_loopback or ip.is_unspecified):
            return "an IPv4-compatible IPv6 address"
        if ip.is_site_local:
            return "a site-local address"
    elif ip in CGNAT:
        return "a carrier-grade NAT (100.64.0.0/10) address"
    for test, what in ((ip.is_unspecified, "an unspecified address"), (ip.is_loopback, "a loopback address"),
                       (ip.is_link_local, "a link-local address"), (ip.is_multicast, "a multicast address"),
                       (ip.is_private, "a private address"), (ip.is_reserved, "a reserved address")):
        if test:
            return what
    if not ip.is_global:
        return "not a public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def literal_address(host: str) -> Address | None:
    """The address a host written as a number means (``127.1``, ``0x7f000001``, ``[::1]``), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:  # the C library's reading of short, decimal, octal and hex forms, as a resolver would
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise FetchError(host, "the host is not a valid address") from None
    return None


def fetch(url: str, policy: FetchPolicy = STRICT, *, max_bytes: int, deadline: float = DEFAULT_DEADLINE,
          headers: dict[str, str] | None = None, on_headers: Callable[[Fetched], None] | None = None,
          resolver: Resolver = system_resolver) -> Fetched:
    """GET ``url`` under ``policy``; ``on_headers`` may refuse a response before its body is read.

    Raises ``FetchError`` naming the URL and, for refused addresses, the address and why.
    """
    stop_at = time.monotonic() + deadline
    current, seen = url, 0
    while True:
        target = _vet(current, policy, resolver, stop_at)
        resp = _get(target, current, headers or {}, stop_at, max_bytes, on_headers, policy)
        if resp.status in REDIRECTS and resp.headers.get("Location"):
            seen += 1
            if seen > policy.max_redirects:
                raise FetchError(url, f"more than {policy.max_redirects} redirects")
            current = urljoin(current, resp.headers["Location"].strip())
            continue
        return resp


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _vet(url: str, policy: FetchPolicy, resolver: Resolver, stop_at: float) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(url, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(url, "only http(s) URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        raise FetchError(url, "URLs with a user name or password are not fetched")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(url, "has no host")
    if "%" in host:
        raise FetchError(url, "IPv6 zone ids are not fetched")
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        raise FetchError(url, "the host name is not valid") from None
    port = port or _default_port(scheme)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal = literal_address(host)
    if policy.host_allowed(host, port):
        addresses = (literal,) if literal else _resolve(url, host, port, resolver, stop_at)
        return _Target(scheme, host, port, path, addresses)
    addresses = (literal,) if literal else _resolve(url, host, port, resolver, stop_at)
    for ip in addresses:
        _check(url, ip, policy)
    return _Target(scheme, host, port, path, addresses)


def _check(url: str, ip: Address, policy: FetchPolicy) -> None:
    if policy.network_allowed(ip):
        return
    why = refusal(ip)
    if why:
        raise FetchError(url, f"refused: {ip} is {why} (an operator can allow it in [fetch] allow_hosts or "
                              "allow_networks)")


def _resolve(url: str, host: str, port: int, resolver: Resolver, stop_at: float) -> tuple[Address, ...]:
    """Resolve in a helper thread, so a hanging DNS server cannot outlast the deadline."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["answer"] = resolver(host, port)
        except Exception as e:  # noqa: BLE001 - reported below as "cannot resolve"
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True, name="fetch-resolve")
    worker.start()
    worker.join(max(0.0, stop_at - time.monotonic()))
    if worker.is_alive():
        raise FetchError(url, "the host name did not resolve in time", transient=True)
    if "error" in box or not box.get("answer"):
        raise FetchError(url, f"cannot resolve host {host!r}", transient=True)
    answer = box["answer"]
    assert isinstance(answer, list)
    out = []
    for raw in answer:
        try:
            out.append(ipaddress.ip_address(str(raw).split("%")[0]))
        except ValueError:
            raise FetchError(url, f"the resolver answered {raw!r}, not an address") from None
    return tuple(dict.fromkeys(out))


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to a vetted address; the URL's host stays in the Host header."""

    def __init__(self, target: _Target, ip: Address, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.ip), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(_PinnedHTTP):
    def __init__(self, target: _Target, ip: Address, timeout: float):
        super().__init__(target, ip, timeout)
        self.context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)  # SNI + name check


def _get(target: _Target, url: str, headers: dict[str, str], stop_at: float, max_bytes: int,
         on_headers: Callable[[Fetched], None] | None, policy: FetchPolicy) -> Fetched:
    last_error = "connection failed"
    for ip in target.addresses:
        remaining = stop_at - time.monotonic()
        if remaining <= 0:
            break
        conn_cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = conn_cls(target, ip, timeout=min(remaining, 10.0))
        killer = threading.Timer(remaining, _shut, (conn,))
        killer.daemon = True
        killer.start()
        try:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as e:
                last_error = _reason(e)
                continue
            peer = ipaddress.ip_address(conn.sock.getpeername()[0].split("%")[0])
            if peer != ip:  # cannot happen with a pinned connect; checked so it never silently could
                raise FetchError(url, f"refused: connected to {peer}, not the vetted {ip}")
            if not policy.host_allowed(target.host, target.port):
                _check(url, peer, policy)
            return _exchange(conn, target, url, headers, stop_at, max_bytes, on_headers, str(ip))
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            if time.monotonic() >= stop_at:
                raise FetchError(url, "took longer than the fetch deadline", transient=True) from None
            raise FetchError(url, f"the connection failed: {_reason(e)}", transient=True) from None
        finally:
            killer.cancel()
            conn.close()
    if time.monotonic() >= stop_at:
        raise FetchError(url, "took longer than the fetch deadline", transient=True)
    raise FetchError(url, f"cannot connect: {last_error}", transient=True)


def _exchange(conn: _PinnedHTTP, target: _Target, url: str, headers: dict[str, str], stop_at: float,
              max_bytes: int, on_headers: Callable[[Fetched], None] | None, address: str) -> Fetched:
    conn.putrequest("GET", target.path, skip_accept_encoding=True)
    for key, value in {"User-Agent": "sharer/1", "Accept-Encoding": "identity", "Connection": "close",
                       **headers}.items():
        conn.putheader(key, value)
    conn.endheaders()
    resp = conn.getresponse()
    got = Fetched(url, resp.status, resp.reason, resp.msg, address=address)
    if resp.status in REDIRECTS:
        return got
    if on_headers:
        on_headers(got)
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"is larger than {_size(max_bytes)}")
    data = bytearray()
    while True:
        if time.monotonic() >= stop_at:
            raise FetchError(url, "took longer than the fetch deadline", transient=True)
        chunk = resp.read1(64 * 1024) if hasattr(resp, "read1") else resp.read(64 * 1024)
        if not chunk:
            break
        data += chunk
        if len(data) > max_bytes:
            raise FetchError(url, f"is larger than {_size(max_bytes)}")
    if time.monotonic() >= stop_at:
        raise FetchError(url, "took longer than the fetch deadline", transient=True)
    got.body = bytes(data)
    return got


def _shut(conn: _PinnedHTTP) -> None:
    """The deadline passed: cut the socket, whatever call is blocked on it."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not valid ({e.verify_message})"
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower() if e.strerror[:1].isupper() and e.strerror[1:2].islower() else e.strerror
    return type(e).__name__


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n} bytes"
