"""Loaders: every example loads, boilerplate is dropped, and every bad article names its field."""

from __future__ import annotations

import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sharer.errors import ArticleError
from sharer.fetch import FetchPolicy
from sharer.loaders import MAX_BYTES, Limits, fetch_article, is_byline, load_article, parse_html

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAGE = EXAMPLES / "baic-catl-page.html"
TXT_URL = "https://news.example.com/en/2023/03/13/baic-catl-cooperation"


def load_error(source, **kwargs) -> ArticleError:
    with pytest.raises(ArticleError) as info:
        load_article(str(source), **kwargs)
    return info.value


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --- every example loads -------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_every_example_loads(path):
    article = load_article(str(path), url=TXT_URL if path.suffix == ".txt" else None)
    assert article.title and article.url.startswith("https://")
    assert "<p>" in article.body_html
    assert article.source == str(path)


def test_json_example():
    article = load_article(str(EXAMPLES / "baic-catl.json"))
    assert article.tags == ("BAIC", "CATL", "NEV", "power battery")
    assert article.published_at.utcoffset().total_seconds() == 8 * 3600


def test_edge_cases_body_is_sanitised():
    article = load_article(str(EXAMPLES / "edge-cases.json"))
    assert "<script" not in article.body_html and "document.cookie" not in article.body_html
    assert "onclick=" not in article.body_html and "evil()" not in article.body_html
    assert "Attributes like onclick must be stripped." in article.body_html


def test_markdown_example():
    article = load_article(str(EXAMPLES / "baic-catl-zh.md"))
    assert article.title.startswith("北汽集团与宁德时代")
    assert article.lang == "zh" and article.tags[0] == "北汽集团"
    assert isinstance(article.published_at, datetime) and article.published_at.tzinfo is not None
    assert "<strong>业务合作及先进技术战略合作协议</strong>" in article.body_html
    assert '<a href="https://news.example.com/zh/">北汽集团官网</a>' in article.body_html
    assert '<img src="https://news.example.com/images/2023/03/13/signing-ceremony.jpg"' in article.body_html


def test_markdown_tables_and_strikethrough(tmp_path):
    path = write(tmp_path, "a.md", "---\ntitle: T\nurl: https://x.example/a\n---\n"
                 "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ new\n")
    body = load_article(str(path)).body_html
    assert "<table>" in body and "<td>1</td>" in body and "<s>old</s>" in body


# --- HTML pages ----------------------------------------------------------------------------------


def test_html_page_fields():
    article = load_article(str(PAGE))
    assert article.title == "BAIC GROUP and CATL established in-depth cooperation and signed Memorandum of Cooperation"
    assert article.url == "https://news.example.com/en/2023/03/13/baic-catl-cooperation"
    assert article.image == "https://news.example.com/images/2023/03/13/signing-ceremony.jpg"
    assert article.summary.startswith("BAIC GROUP and CATL signed")
    assert article.published_at == datetime.fromisoformat("2023-03-13T10:00:00+08:00")
    assert article.published_at.tzinfo is not None
    assert article.lang == "en"


def test_html_body_drops_page_furniture():
    body = load_article(str(PAGE)).body_html
    for junk in ("Share To", "Share to", "Online message", "Copyright", "Suggestions", "Home", "<h1",
                 ">2023/03/13<", "Please leave your information"):
        assert junk not in body, junk
    assert body.count("<p>") == 4
    assert body.index("On March 13th") < body.index("traced back to 2010")
    assert 'src="https://news.example.com/images/2023/03/13/signing-ceremony.jpg"' in body


def test_html_resolves_relative_links_and_fallbacks():
    page = """<html><head><title>Fallback title - Site</title>
    <link rel="canonical" href="https://site.example/news/1"></head><body>
    <div class="social-links"><p>Follow us on every network we have ever heard of, please.</p></div>
    <div id="content"><p>Real text with <a href="../about">a link</a> and <img src="pic.png">.</p>
    <p>More real text.</p></div><div class="comments"><p>First! A long comment nobody needs.</p>
    <p>Another long comment that is longer than the article text itself, sadly.</p></div></body></html>"""
    article = parse_html(page, source="page")
    assert article.title == "Fallback title - Site"
    assert article.url == "https://site.example/news/1"
    assert 'href="https://site.example/about"' in article.body_html
    assert 'src="https://site.example/news/pic.png"' in article.body_html
    assert "Follow us" not in article.body_html and "comment" not in article.body_html


def test_html_title_from_h1_role_main_and_naive_time_dropped():
    page = """<html lang="de"><head><meta property="article:published_time" content="2023-03-13T10:00">
    <meta name="author" content="Jane"><meta property="article:tag" content="A">
    <meta property="article:tag" content="B"></head><body><div role="main"><h1>Heading Title</h1>
    <p>Body text.</p></div></body></html>"""
    article = parse_html(page, source="page", url="https://x.example/a")
    assert article.title == "Heading Title" and "<h1" not in article.body_html
    assert article.published_at is None  # no zone on someone else's page: dropped, not guessed
    assert (article.author, article.tags, article.lang) == ("Jane", ("A", "B"), "de")


def test_url_option_overrides_every_format(tmp_path):
    override = "https://override.example/story"
    for name in ("baic-catl.json", "baic-catl-zh.md", "baic-catl-page.html", "baic-catl-page.txt"):
        assert load_article(str(EXAMPLES / name), url=override).url == override


# --- plain text ----------------------------------------------------------------------------------


def test_txt_drops_boilerplate_and_keeps_paragraphs():
    article = load_article(str(EXAMPLES / "baic-catl-page.txt"), url=TXT_URL)
    assert article.title.startswith("BAIC GROUP and CATL established in-depth cooperation")
    paragraphs = [p.removesuffix("</p>") for p in article.body_html.split("<p>")[1:]]
    assert len(paragraphs) == 6  # the six real paragraphs of the article, as in baic-catl.json
    assert paragraphs[0].startswith("On March 13th")
    assert paragraphs[-1].strip().startswith("The cooperation between BAIC GROUP and CATL")
    for junk in ("Share To", "Share to", "weixin", "Online message", "Suggestions", "leave a message",
                 "Please leave your information"):
        assert junk not in article.body_html, junk
    assert article.published_at is None  # "2023/03/13" has no time zone: not guessed
    assert article.summary.startswith("On March 13th") and article.summary.endswith("agreement.")
    assert len(article.summary) <= 200


def test_txt_escapes_and_trims_summary(tmp_path):
    long = "A sentence about <b>things</b> & stuff. " * 12
    path = write(tmp_path, "a.txt", f"\n\nTitle line\n{long}\nsecond line\n\nLast para.\n")
    article = load_article(str(path), url="https://x.example/a")
    assert article.title == "Title line"
    assert "&lt;b&gt;things&lt;/b&gt; &amp; stuff." in article.body_html
    assert article.body_html.count("<p>") == 2
    assert article.summary.endswith("stuff.") and len(article.summary) <= 200


# --- bad articles name the field -----------------------------------------------------------------


@pytest.mark.parametrize("name, text, field, words", [
    ("no-title.json", '{"url": "https://x.example/a"}', "title", "required"),
    ("no-url.md", "---\ntitle: T\n---\nbody", "url", "required"),
    ("no-title.md", "---\nurl: https://x.example/a\n---\nbody", "title", "required"),
    ("bad-url.json", '{"title": "T", "url": "ftp://x"}', "url", "http(s)"),
    ("bad.json", '{"title": "T",,}', "(document)", "is not valid JSON: line 1 column"),
    ("naive.json", '{"title": "T", "url": "https://x.example/a", "published_at": "2023-03-13T10:00:00"}',
     "published_at", "time zone"),
    ("naive.md", "---\ntitle: T\nurl: https://x.example/a\npublished_at: 2023-03-13 10:00:00\n---\nx",
     "published_at", "time zone"),
    ("date-only.md", "---\ntitle: T\nurl: https://x.example/a\npublished_at: 2023-03-13\n---\nx",
     "published_at", "time zone"),
    ("no-front.md", "# Just markdown\n", "front matter", "missing"),
    ("open-front.md", "---\ntitle: T\n\nbody\n", "front matter", "not closed"),
    ("bad-yaml.md", "---\ntitle: [T\n---\nx", "front matter", "YAML"),
    ("no-article.html", "<html><body><nav><p>Home</p></nav><footer><p>Copyright</p></footer></body></html>",
     "body", "no article found in the page"),
    ("format.xyz", "whatever", "(file)", "unknown article format '.xyz' (expected .json, .md, .html, .txt"),
    ("latin1.json", b'{"title": "Caf\xe9"}', "(file)", "UTF-8"),
])
def test_bad_article_names_the_field(tmp_path, name, text, field, words):
    error = load_error(write(tmp_path, name, text))
    assert error.field == field and words in error.problem, str(error)
    assert str(error).startswith(str(tmp_path / name))


def test_bad_url_and_unreadable_sources(tmp_path):
    assert load_error("ftp://x").field == "url"
    missing = load_error(tmp_path / "missing.json")
    assert (missing.field, missing.problem) == ("(file)", "cannot read: No such file or directory")
    (tmp_path / "dir.json").mkdir()
    assert load_error(tmp_path / "dir.json").field == "(file)"


def test_txt_without_url():
    error = load_error(EXAMPLES / "baic-catl-page.txt")
    assert (error.field, error.problem) == ("url", "a .txt article needs --url")


# --- fetching over HTTP (a local server, no network) ---------------------------------------------


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def send(self, status, ctype, body=b"", **headers):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a big body, as it should
            pass

    def route(self):
        if self.path == "/en/story":
            self.send(200, "text/html; charset=utf-8", PAGE.read_bytes())
        elif self.path == "/relative":
            body = (b"<html><head><title>R</title></head><body><main><p>Hi <img src='/images/x.png'></p>"
                    b"</main></body></html>")
            self.send(200, "application/xhtml+xml", body)
        elif self.path == "/moved":
            self.send(302, "text/html", Location="/relative")
        elif self.path == "/loop":
            self.send(302, "text/html", Location="/loop")
        elif self.path == "/json":
            self.send(200, "application/json", b"{}")
        elif self.path == "/big":  # no Content-Length: the cap must hold while streaming
            self.send(200, "text/html", b"<p>" + b"x" * (MAX_BYTES + 1024))
        elif self.path == "/big-declared":
            self.send(200, "text/html", b"", **{"Content-Length": str(MAX_BYTES + 1)})
        else:
            self.send(404, "text/html", b"not here")


LOCAL = Limits(policy=FetchPolicy.build(hosts=["127.0.0.1"]))  # the test server is "the operator's own"


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_example_page(server):
    article = load_article(f"{server}/en/story", limits=LOCAL)
    assert article.title.startswith("BAIC GROUP and CATL")
    assert article.url == "https://news.example.com/en/2023/03/13/baic-catl-cooperation"
    assert "Share To" not in article.body_html and "Copyright" not in article.body_html
    assert article.published_at.tzinfo is not None


def test_fetch_follows_redirect_and_resolves_against_final_url(server):
    article = fetch_article(f"{server}/moved", limits=LOCAL)
    assert article.url == f"{server}/relative"
    assert f'src="{server}/images/x.png"' in article.body_html


@pytest.mark.parametrize("path, field, words", [
    ("/json", "content-type", "application/json"),
    ("/missing", "url", "HTTP 404"),
    ("/big", "url", "larger than 5 MB"),
    ("/big-declared", "url", "larger than 5 MB"),
    ("/loop", "url", "more than 5 redirects"),
])
def test_fetch_errors(server, path, field, words):
    error = load_error(f"{server}{path}", limits=LOCAL)
    assert error.field == field and words in error.problem, str(error)


def test_fetching_an_internal_address_is_refused_by_default(server):
    port = server.rsplit(":", 1)[1]
    for url in (f"{server}/en/story", f"http://127.1:{port}/en/story", f"http://2130706433:{port}/en/story",
                f"http://localhost:{port}/en/story"):
        error = load_error(url)
        assert error.field == "url" and "refused:" in error.problem and "loopback" in error.problem, str(error)


def test_fetch_connection_refused_is_a_clear_error(closed_port):
    error = load_error(f"http://127.0.0.1:{closed_port}/", limits=LOCAL)
    assert error.field == "url" and error.problem.startswith("cannot connect:")
    assert "Traceback" not in str(error) and "HTTPConnectionPool" not in str(error)


# --- bounds: size, nesting ------------------------------------------------------------------------


def test_a_file_over_the_cap_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, "huge.json", b'{"title": "T", "url": "https://x.example/a", "body": "' + b"x" * 4096 + b'"}')
    error = load_error(path, limits=Limits(max_bytes=2048))
    assert error.field == "(file)" and "larger than" in error.problem and "[articles] max_bytes" in error.problem
    big = write(tmp_path, "big.html", b"<p>" + b"x" * (MAX_BYTES + 10))
    assert "larger than 5 MB" in load_error(big).problem


@pytest.mark.parametrize("name, text, field", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "(document)"),
    ("deep-obj.json", '{"a":' * 100_000 + "1" + "}" * 100_000, "(document)"),
    ("deep-body.json", '{"title": "T", "url": "https://x.example/a", "body_html": "' + "<b>" * 100_000 + '"}',
     "body_html"),
    ("deep.html", "<html><body><article><p>x</p>" + "<div>" * 100_000 + "</article></body></html>", "(page)"),
])
def test_deep_nesting_is_refused_quickly(tmp_path, name, text, field):
    import time

    started = time.monotonic()
    error = load_error(write(tmp_path, name, text))
    assert error.field == field and "nested" in error.problem, str(error)
    assert time.monotonic() - started < 3


def test_ordinary_nesting_and_unclosed_paragraphs_still_load():
    body = "<div>" * 20 + "<p>one<p>two<ul><li>a<li>b</ul>" + "</div>" * 20 + "<p>" * 500
    page = f"<html><body><article><h1>T</h1>{body}</article></body></html>"
    assert "one" in parse_html(page, source="p", url="https://x.example/a").body_html


# --- bylines --------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["By Jane Doe · 27 May 2026 · 4 min read", "5 min read", "By Jane Doe",
                                  "Published 27 May 2026", "May 27, 2026 | 3 minute read", "2026-05-27 10:00",
                                  "作者：张三 · 2026年5月27日 · 4 分钟阅读"])
def test_byline_lines(line):
    assert is_byline(line)


@pytest.mark.parametrize("line", ["By 2030 the company will build a million cars.", "By Tuesday the deal was done.",
                                  "The minister spoke for 5 min read from notes, then left early today.",
                                  "On March 13th, BAIC GROUP and CATL signed"])
def test_sentences_are_not_bylines(line):
    assert not is_byline(line)


def test_html_loader_drops_the_byline_at_the_top():
    page = """<html><head><meta property="og:title" content="Story"></head><body><article><h1>Story</h1>
    <p class="lead">By Jane Doe · 27 May 2026 · 4 min read</p><p>The real first paragraph.</p>
    <p>By 2030 the plant will be finished.</p></article></body></html>"""
    body = parse_html(page, source="p", url="https://x.example/a").body_html
    assert "Jane Doe" not in body and "min read" not in body
    assert body.index("The real first paragraph.") < body.index("By 2030 the plant")
