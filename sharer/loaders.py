"""Turn a file or a web page into an ``Article``: ``.json``, ``.md``, ``.html``, ``.txt`` or http(s).

Every failure is an ``ArticleError(source, field, problem)`` naming what to fix; no traceback reaches
the editor. Validation and sanitising stay in ``Article`` itself; this module only gathers the fields.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urljoin

import requests
import yaml
from bs4 import BeautifulSoup, Tag
from bs4.dammit import UnicodeDammit
from markdown_it import MarkdownIt

from .article import Article
from .errors import ArticleError

MAX_BYTES = 5 * 1024 * 1024  # a news page is far smaller; anything bigger is a mistake or an attack
TIMEOUT = (5, 15)  # (connect, read) seconds
MAX_REDIRECTS = 5
HTML_TYPES = ("text/html", "application/xhtml+xml")
FORMATS = ".json, .md, .html, .txt or an http(s) URL"

# Lines and paragraphs of a plain-text copy of a news page that are site furniture, not article text.
# Each pattern is matched (case-insensitively) at the start of a stripped line. The share widget line
# may carry the publication date ("2023/03/13 Share To weixin sina"), but without a time zone it is
# not used: a guessed zone would put the article on the wrong day for some readers.
BOILERPLATE = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s+)?share to\b",  # share widget, "Share to Wechat"...
        r"^suggestions?\s*(&|and)\s*feedbacks?\b",  # feedback form heading
        r"^online message\s*$",  # feedback form button
        r"^if you have any questions,? please leave a message",
        r"^please leave your information and needs here",
    )
]

# Elements that are never article text, and class/id words that mark page furniture.
JUNK_TAGS = ["nav", "header", "footer", "aside", "form", "script", "style", "noscript", "iframe",
             "button", "input", "textarea"]
JUNK_WORDS = re.compile(r"(?<![a-z])(share|sharing|social|feedback|comments?|breadcrumbs?)(?![a-z])")

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*$\r?\n?", re.DOTALL | re.MULTILINE)


def load_article(source: str, *, url: str | None = None, session: requests.Session | None = None) -> Article:
    """Load ``source`` (a path or an http(s) URL); ``url``, when given, becomes the article's url."""
    source = str(source)
    if re.match(r"https?://", source, re.IGNORECASE):
        text, final_url = _fetch_html(source, session)
        return parse_html(text, base_url=final_url, source=source, url=url)
    if re.match(r"[a-z][a-z0-9+.-]*://", source, re.IGNORECASE):
        raise ArticleError(source, "url", "only http(s) URLs can be fetched")
    suffix = Path(source).suffix.lower()
    if suffix not in (".json", ".md", ".markdown", ".html", ".htm", ".txt"):
        shown = f"unknown article format {suffix!r}" if suffix else "no file suffix to tell the format"
        raise ArticleError(source, "(file)", f"{shown} (expected {FORMATS})")
    if suffix == ".txt" and not url:
        raise ArticleError(source, "url", "a .txt article needs --url")
    text = _read_text(Path(source), source)
    if suffix == ".json":
        return _from_json(text, source, url)
    if suffix in (".md", ".markdown"):
        return _from_markdown(text, source, url)
    if suffix in (".html", ".htm"):
        return parse_html(text, source=source, url=url)
    return _from_text(text, source, url)


def fetch_article(url: str, *, session: requests.Session | None = None) -> Article:
    """Download an HTML page and extract its article, resolving links against the final URL."""
    text, final_url = _fetch_html(url, session)
    return parse_html(text, base_url=final_url, source=url)


def _read_text(path: Path, source: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(source, "(file)", f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(source, "(file)", f"is not UTF-8 text (bad byte at offset {exc.start})") from None


def _fetch_html(url: str, session: requests.Session | None) -> tuple[str, str]:
    """GET ``url`` with timeouts, at most 5 redirects and 5 MB; return (text, final URL)."""
    own = session is None
    session = session or requests.Session()
    saved = session.max_redirects
    session.max_redirects = MAX_REDIRECTS
    headers = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "sharer/1 (article loader)"}
    try:
        with session.get(url, timeout=TIMEOUT, allow_redirects=True, stream=True, headers=headers) as resp:
            if resp.status_code >= 400:
                raise ArticleError(url, "url", f"the server answered HTTP {resp.status_code} {resp.reason}")
            ctype = resp.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip().lower() not in HTML_TYPES:
                raise ArticleError(url, "content-type", f"expected an HTML page, got {ctype or 'nothing'!r}")
            if int(resp.headers.get("Content-Length") or 0) > MAX_BYTES:
                raise ArticleError(url, "url", "the page is larger than 5 MB")
            data = bytearray()
            for chunk in resp.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_BYTES:
                    raise ArticleError(url, "url", "the page is larger than 5 MB")
            return _decode(bytes(data), ctype), resp.url
    except requests.TooManyRedirects:
        raise ArticleError(url, "url", f"more than {MAX_REDIRECTS} redirects") from None
    except requests.Timeout:
        raise ArticleError(url, "url", "the server did not answer in time") from None
    except requests.ConnectionError as exc:
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        raise ArticleError(url, "url", f"cannot connect: {reason[1] if reason else 'connection failed'}") from None
    except requests.RequestException as exc:
        raise ArticleError(url, "url", f"cannot fetch: {type(exc).__name__}") from None
    finally:
        session.max_redirects = saved
        if own:
            session.close()


def _decode(data: bytes, content_type: str) -> str:
    """Use the charset the server declared; otherwise sniff (meta charset, BOM, then guess, utf-8)."""
    declared = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    if declared:
        try:
            return data.decode(declared[1], errors="replace")
        except LookupError:
            pass
    text = UnicodeDammit(data, ["utf-8"], is_html=True).unicode_markup
    return text if text is not None else data.decode("utf-8", errors="replace")


def _from_json(text: str, source: str, url: str | None) -> Article:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON: line {exc.lineno} column {exc.colno} ({exc.msg})"
        raise ArticleError(source, "(document)", problem) from None
    if isinstance(data, dict):  # missing title/url: let Article say "is required"
        data = {"title": "", "url": "", **data, **({"url": url} if url else {})}
    return Article.from_dict(data, source)


def _from_markdown(text: str, source: str, url: str | None) -> Article:
    """YAML front matter between ``---`` lines holds the fields; the Markdown below is the body."""
    if not re.match(r"---[ \t]*\r?\n", text):
        raise ArticleError(source, "front matter", "is missing: start the file with a '---' line")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ArticleError(source, "front matter", "is not closed by a '---' line")
    try:
        meta = yaml.safe_load(match[1]) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ArticleError(source, "front matter", f"is not valid YAML: {problem}{where}") from None
    if not isinstance(meta, dict):
        raise ArticleError(source, "front matter", "must be a mapping of 'field: value' lines")
    meta = {str(key): value for key, value in meta.items()}
    for key in ("body", "body_html"):
        if key in meta:
            raise ArticleError(source, key, "belongs below the front matter, not in it")
    published = meta.get("published_at")
    if isinstance(published, date) and not isinstance(published, datetime):
        hint = f"add a time and zone, e.g. {published.isoformat()}T10:00:00+08:00"
        raise ArticleError(source, "published_at", f"must include a time zone offset ({hint})")
    if url:
        meta["url"] = url
    body = _MARKDOWN.render(text[match.end():])
    return Article.from_dict({"title": "", "url": "", **meta, "body_html": body}, source)


def parse_html(text: str, base_url: str | None = None, *, source: str = "<html>",
               url: str | None = None) -> Article:
    """Extract the article from a news page: fields from meta tags, body from the main element."""
    soup = BeautifulSoup(text, "html.parser")
    meta: dict[str, list[str]] = {}
    for tag in soup.find_all("meta", content=True):
        key = str(tag.get("property") or tag.get("name") or "").strip().lower()
        if key:
            meta.setdefault(key, []).append(str(tag["content"]).strip())
    first = {key: values[0] for key, values in meta.items()}.get
    canonical = soup.find("link", rel="canonical", href=True)
    page_url = first("og:url") or (str(canonical["href"]) if canonical else None)
    page_url = urljoin(base_url, page_url) if base_url and page_url else page_url
    base = base_url or page_url or url  # a fetched page's links are relative to where it was fetched
    base_tag = soup.find("base", href=True)
    base = urljoin(base or "", str(base_tag["href"])) if base_tag else base
    h1 = soup.select_one("article h1, main h1, [role=main] h1") or soup.find("h1")
    title = first("og:title") or (h1.get_text(" ", strip=True) if h1 else "")
    if not title and soup.title:
        title = soup.title.get_text(" ", strip=True)
    html_tag = soup.find("html")
    lang = str(html_tag.get("lang") or "") if html_tag else None

    _drop_junk(soup)
    main = _main_element(soup)
    if main is None or not any(p.get_text(strip=True) for p in main.find_all("p")):
        raise ArticleError(source, "body", "no article found in the page")
    for el in main.select("h1, .meta, .date"):
        if el.decomposed:
            continue
        if el.name != "h1" or _same_title(el.get_text(" ", strip=True), title):
            el.decompose()
    for el in main.find_all(["a", "img"]):
        attr = "href" if el.name == "a" else "src"
        if base and el.get(attr):
            el[attr] = urljoin(base, str(el[attr]).strip())
    image = first("og:image")
    return Article(
        title=title,
        url=url or page_url or base_url or "",
        summary=first("og:description") or first("description") or "",
        body_html=main.decode_contents().strip(),
        image=urljoin(base, image) if image and base else image,
        author=first("article:author") or first("author"),
        tags=tuple(meta.get("article:tag", ())),
        published_at=_page_time(first("article:published_time")),
        lang=lang or None,
        source=source,
    )


def _drop_junk(soup: BeautifulSoup) -> None:
    """Remove navigation, widgets and forms, so they can neither be the body nor sit in it."""
    junk = soup.find_all(JUNK_TAGS)
    for el in soup.find_all(True):
        if el.name not in ("html", "body"):
            marks = " ".join(el.get("class") or []) + " " + str(el.get("id") or "")
            if JUNK_WORDS.search(marks.lower()):
                junk.append(el)
    for el in junk:
        if not el.decomposed:
            el.decompose()


def _main_element(soup: BeautifulSoup) -> Tag | None:
    """``<article>``, ``<main>``, ``[role=main]``, else the element with the most paragraph text."""
    for selector in ("article", "main", "[role=main]"):
        found = soup.select_one(selector)
        if found:
            return found
    best, best_len = None, 0
    for el in soup.find_all(["div", "section", "td", "body"]):
        length = sum(len(p.get_text(strip=True)) for p in el.find_all("p", recursive=False))
        if length > best_len:
            best, best_len = el, length
    return best


def _same_title(heading: str, title: str) -> bool:
    """True when a heading repeats the title, allowing for a truncated '...' copy."""
    a, b = (" ".join(s.split()).rstrip(".…").casefold() for s in (heading, title))
    return bool(a) and (b.startswith(a) or a.startswith(b))


def _page_time(value: str | None) -> datetime | None:
    """A page's ISO publication time; one without a zone is dropped (we cannot fix someone's page)."""
    try:
        parsed = datetime.fromisoformat(value.strip()) if value else None
    except ValueError:
        return None
    return parsed if parsed and parsed.utcoffset() is not None else None


def _is_boilerplate(line: str) -> bool:
    return any(pattern.search(line.strip()) for pattern in BOILERPLATE)


def _from_text(text: str, source: str, url: str | None) -> Article:
    """First non-empty line is the title; blank-line separated blocks after it are paragraphs."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise ArticleError(source, "title", "is required (the file is empty)")
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", "\n".join(lines[start + 1:])):
        kept = [line.strip() for line in block.splitlines() if line.strip() and not _is_boilerplate(line)]
        if kept:
            paragraphs.append(" ".join(kept))
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    summary = _first_sentences(paragraphs[0]) if paragraphs else ""
    return Article(title=lines[start], url=url or "", summary=summary, body_html=body, source=source)


def _first_sentences(text: str, limit: int = 200) -> str:
    """Whole sentences up to ``limit`` characters; a cut at a word boundary if the first is longer."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)|[。！？]", text) if m.end() <= limit]
    if ends:
        return text[: ends[-1]]
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
