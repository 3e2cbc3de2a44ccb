"""The guarded fetcher: nothing internal is reachable by any spelling, redirect or DNS trick.

Real sockets on loopback stand in for "the internal network": each test also checks that the refused
server saw no request at all (refusal happens before connecting). A resolver seam stands in for DNS.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sharer.errors import FetchError
from sharer.fetch import FetchPolicy, fetch, literal_address, refusal

MB = 1024 * 1024


class Recorder(BaseHTTPRequestHandler):
    """Serves a few paths and records every request it receives (path, Host header)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append((self.path, self.headers.get("Host")))
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def reply(self, status, body=b"", ctype="text/html", **headers):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        path = self.path
        if path.startswith("/to?"):
            self.reply(302, Location=path.split("?", 1)[1])
        elif path == "/drip":  # headers at once, then a byte every 0.3 s, forever
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        elif path == "/drip-headers":  # the status line a byte at a time
            for ch in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
                self.wfile.write(bytes([ch]))
                self.wfile.flush()
                time.sleep(0.3)
        elif path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"x" * (2 * MB))
        else:
            self.reply(200, f"page {path} from {self.server.server_address[0]}".encode())


def serve(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer((host, port), Recorder)
    httpd.hits = []
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def internal():
    """The "internal" server: loopback, never allowed by default."""
    httpd = serve()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _clear(internal):
    internal.hits.clear()


def port_of(httpd) -> int:
    return httpd.server_address[1]


def refused(url: str, policy: FetchPolicy = FetchPolicy(), **kw) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, policy, max_bytes=MB, deadline=5, **kw)
    return info.value


# --- every spelling of an internal address is refused before connecting ---------------------------

@pytest.mark.parametrize("host, shown", [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.1", "127.0.0.1 is a loopback address"),
    ("2130706433", "127.0.0.1 is a loopback address"),
    ("0x7f000001", "127.0.0.1 is a loopback address"),
    ("0x7f.1", "127.0.0.1 is a loopback address"),
    ("0177.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.000.000.001", "127.0.0.1 is a loopback address"),
    ("0", "0.0.0.0 is an unspecified address"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("10.1.2.3", "10.1.2.3 is a private address"),
    ("172.16.0.9", "172.16.0.9 is a private address"),
    ("192.168.1.1", "192.168.1.1 is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("100.64.0.1", "100.64.0.1 is a carrier-grade NAT"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("240.0.0.1", "240.0.0.1 is a"),
    ("255.255.255.255", "255.255.255.255 is a"),
    ("192.0.2.1", "192.0.2.1 is a private address"),
    ("[::1]", "::1 is a loopback address"),
    ("[::]", ":: is an unspecified address"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1 is an IPv4-mapped IPv6 address (of 127.0.0.1)"),
    ("[::ffff:7f00:1]", "IPv4-mapped IPv6 address (of 127.0.0.1)"),
    ("[::127.0.0.1]", "is an IPv4-compatible IPv6 address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("[fc00::1]", "fc00::1 is a private address"),
    ("[fd12:3456::1]", "is a private address"),
    ("[fec0::1]", "fec0::1 is a site-local address"),
    ("[ff02::1]", "ff02::1 is a multicast address"),
    ("[2002:7f00:1::]", "a 6to4 address (embedding 127.0.0.1)"),
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "a Teredo address"),
    ("[64:ff9b::7f00:1]", "a NAT64 address"),
    ("[64:ff9b:1::a00:1]", "a NAT64 address"),
])
def test_internal_addresses_in_every_spelling_are_refused(internal, host, shown):
    err = refused(f"http://{host}:{port_of(internal)}/admin.html")
    assert "refused:" in err.problem and shown in err.problem, err.problem
    assert "allow_hosts" in err.problem  # tells the operator how to allow their own host
    assert internal.hits == []


def test_literal_forms_read_like_the_c_library():
    assert str(literal_address("127.1")) == "127.0.0.1"
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f000001")) == "127.0.0.1"
    assert literal_address("news.example.com") is None
    assert refusal(literal_address("8.8.8.8")) is None


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", "only http(s)"),
    ("gopher://127.0.0.1:6379/_INFO", "only http(s)"),
    ("ftp://example.com/a", "only http(s)"),
    ("http://user:secret@example.com/", "user name or password"),
    ("http://[::1/", "not a valid URL"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http:///nohost", "has no host"),
    ("http://1.2.3.4.5/", "not a valid address"),
])
def test_bad_urls_are_refused(url, words):
    assert words in refused(url).problem


def test_names_are_resolved_and_every_answer_checked(internal):
    port = port_of(internal)
    err = refused(f"http://localhost:{port}/")  # the system resolver
    assert "127.0.0.1 is a loopback address" in err.problem or "::1 is a loopback" in err.problem
    # a name answering a public and a private address is refused, whichever comes first
    err = refused(f"http://mixed.test:{port}/", resolver=lambda h, p: ["8.8.8.8", "10.0.0.7"])
    assert "10.0.0.7 is a private address" in err.problem
    err = refused(f"http://internal.test:{port}/", resolver=lambda h, p: ["::ffff:10.0.0.1"])
    assert "IPv4-mapped" in err.problem
    assert internal.hits == []


# --- redirects are vetted at every hop ----------------------------------------------------------

@pytest.mark.parametrize("target", ["http://127.1:{port}/secret", "http://2130706433:{port}/secret",
                                    "http://[::ffff:127.0.0.1]:{port}/secret", "http://localhost:{port}/secret",
                                    "http://10.0.0.1/secret", "http://127.0.0.1:{other}/secret",
                                    "file:///etc/passwd"])
def test_a_redirect_to_an_internal_address_is_refused(internal, target):
    port = port_of(internal)
    policy = FetchPolicy.build(hosts=[f"127.0.0.1:{port}"])  # only this origin is the operator's own
    err = refused(f"http://127.0.0.1:{port}/to?" + target.format(port=port, other=port + 1), policy)
    assert "refused" in err.problem or "only http(s)" in err.problem, err.problem
    assert [path for path, _ in internal.hits] == ["/to?" + target.format(port=port, other=port + 1)]


def test_redirects_are_bounded(internal):
    port = port_of(internal)
    url = f"http://127.0.0.1:{port}/to?/to?/to?/end"
    policy = FetchPolicy(frozenset({f"127.0.0.1:{port}"}), max_redirects=1)
    assert "more than 1 redirects" in refused(url, policy).problem


# --- DNS rebinding: the connection goes to the address that was checked --------------------------

class FlipResolver:
    """Answers ``first`` on the first lookup and ``then`` on every later one (a rebinding DNS server)."""

    def __init__(self, first: str, then: str):
        self.first, self.then, self.calls = first, then, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.first if self.calls == 1 else self.then]


@pytest.fixture
def public_and_internal():
    """Two servers on one port: 127.0.0.2 plays a public host (allowed by network), 127.0.0.1 internal."""
    for _ in range(20):
        public = serve("127.0.0.2")
        try:
            internal = serve("127.0.0.1", port_of(public))
        except OSError:
            public.shutdown()
            public.server_close()
            continue
        yield public, internal
        for s in (public, internal):
            s.shutdown()
            s.server_close()
        return
    pytest.skip("no port free on both 127.0.0.2 and 127.0.0.1")


def test_dns_answer_that_changes_after_the_check_cannot_move_the_connection(public_and_internal):
    public, internal = public_and_internal
    port = port_of(public)
    policy = FetchPolicy.build(networks=["127.0.0.2/32"])
    resolver = FlipResolver("127.0.0.2", "127.0.0.1")
    got = fetch(f"http://rebind.test:{port}/page", policy, max_bytes=MB, deadline=5, resolver=resolver)
    assert got.body == b"page /page from 127.0.0.2" and got.address == "127.0.0.2"
    assert resolver.calls == 1  # resolved once; the connect used the vetted address, not the name again
    assert public.hits == [("/page", f"rebind.test:{port}")]  # the Host header keeps the name
    assert internal.hits == []


def test_dns_answer_that_changes_between_redirect_hops_is_refused(public_and_internal):
    public, internal = public_and_internal
    port = port_of(public)
    policy = FetchPolicy.build(networks=["127.0.0.2/32"])
    resolver = FlipResolver("127.0.0.2", "127.0.0.1")
    err = refused(f"http://rebind.test:{port}/to?/next", policy, resolver=resolver)
    assert "127.0.0.1 is a loopback address" in err.problem
    assert resolver.calls == 2 and internal.hits == [] and [p for p, _ in public.hits] == ["/to?/next"]


# --- allow-lists, deadline, size ------------------------------------------------------------------

def test_allow_listed_host_or_network_works(internal):
    port = port_of(internal)
    for policy in (FetchPolicy.build(hosts=[f"127.0.0.1:{port}"]), FetchPolicy.build(hosts=["127.0.0.1"]),
                   FetchPolicy.build(networks=["127.0.0.0/8"]),
                   FetchPolicy.build(origins=[f"http://127.0.0.1:{port}/mirror/"])):
        got = fetch(f"http://127.0.0.1:{port}/ok", policy, max_bytes=MB, deadline=5)
        assert (got.status, got.body) == (200, b"page /ok from 127.0.0.1")
    # allowing one port of a host does not allow another
    other = FetchPolicy.build(hosts=[f"127.0.0.1:{port + 1}"])
    assert "refused" in refused(f"http://127.0.0.1:{port}/ok", other).problem


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_a_server_dripping_bytes_is_cut_at_the_deadline(internal, path):
    port = port_of(internal)
    policy = FetchPolicy.build(hosts=[f"127.0.0.1:{port}"])
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(f"http://127.0.0.1:{port}{path}", policy, max_bytes=MB, deadline=1.0)
    elapsed = time.monotonic() - started
    assert "deadline" in info.value.problem and info.value.transient
    assert elapsed < 2.0, elapsed  # each byte came well within any per-read timeout


def test_size_cap(internal):
    port = port_of(internal)
    err = refused(f"http://127.0.0.1:{port}/big", FetchPolicy.build(hosts=["127.0.0.1"]))
    assert "larger than 1 MB" in err.problem


def test_closed_port_is_a_transient_connect_error(closed_port):
    err = refused(f"http://127.0.0.1:{closed_port}/", FetchPolicy.build(hosts=["127.0.0.1"]))
    assert err.problem.startswith("cannot connect: connection refused") and err.transient


# --- images (sharer.media): the same guard, and URLs that can never work fail at once ---------------

def media_context(api_base: str = "https://api.example.com", rewrite: dict | None = None):
    import requests

    from sharer.config import Account
    from sharer.platforms.base import DeliveryContext

    account = Account(name="a", platform="webhook", api_base=api_base)
    return DeliveryContext("dl_media", account, requests.Session(), timeout=3, media_rewrite=rewrite or {})


@pytest.mark.parametrize("url, words", [
    ("/images/x.png", "not an absolute http(s) URL"),
    ("images/x.png", "not an absolute http(s) URL"),
    ("data:image/png;base64,AAAA", "not an absolute http(s) URL"),
    ("ftp://example.com/x.png", "not an absolute http(s) URL"),
    ("http://127.0.0.1:6379/x.png", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
])
def test_an_image_that_can_never_be_fetched_is_a_permanent_error_at_once(url, words):
    from sharer.errors import PermanentError
    from sharer.media import fetch_image

    with pytest.raises(PermanentError) as info:
        fetch_image(media_context(), url, max_bytes=MB, allowed=("image/png",))
    assert words in str(info.value) and "MissingSchema" not in str(info.value)


def test_images_from_a_rewrite_target_or_the_accounts_api_are_allowed(internal):
    from sharer.errors import PermanentError
    from sharer.media import fetch_image

    port = port_of(internal)
    ctx = media_context(rewrite={"https://news.example.com/": f"http://127.0.0.1:{port}/mirror/"})
    with pytest.raises(PermanentError) as info:  # reached (the recorder serves text, not an image)
        fetch_image(ctx, "https://news.example.com/a.png", max_bytes=MB, allowed=("image/png",))
    assert "not an image" in str(info.value) and internal.hits[-1][0] == "/mirror/a.png"
    ctx = media_context(api_base=f"http://127.0.0.1:{port}/api")
    with pytest.raises(PermanentError) as info:
        fetch_image(ctx, f"http://127.0.0.1:{port}/files/b.png", max_bytes=MB, allowed=("image/png",))
    assert "not an image" in str(info.value) and internal.hits[-1][0] == "/files/b.png"
