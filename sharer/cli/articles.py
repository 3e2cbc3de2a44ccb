"""What ``share`` and ``preview`` both take: the articles (files or URLs), ``--to`` and ``--text``."""

from __future__ import annotations

from ..errors import InputError


def _load(source: str, url: str | None, rt=None):
    from ..loaders import Limits, load_article

    return load_article(source, url=url, limits=Limits.of(rt.settings) if rt is not None else None)


def _load_all(sources: tuple[str, ...], url: str | None, rt=None):
    """The lead article (``--url`` applies to it) carrying the others: a multi-article push (WeChat)."""
    import dataclasses

    from ..article import MAX_EXTRA_ARTICLES

    if len(sources) > MAX_EXTRA_ARTICLES + 1:
        raise InputError("FILE", f"at most {MAX_EXTRA_ARTICLES + 1} articles in one share (one WeChat push), "
                                 f"got {len(sources)}")
    lead = _load(sources[0], url, rt)
    if len(sources) == 1:
        return lead
    return dataclasses.replace(lead, extra_articles=tuple(_load(s, None, rt) for s in sources[1:]))


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise InputError("text", f"expected ACCOUNT=TEXT, got {pair!r}")
        out[name.strip()] = text
    return out


def _accounts(to: str) -> list[str]:
    return [a for a in (x.strip() for x in to.split(",")) if a]


TO_HELP = "Account names from the config, comma-separated (e.g. demo-x,demo-weibo)."
URL_HELP = "The article's URL (required for .txt articles; replaces the one in the file)."
TEXT_HELP = "Your own text for one account instead of the composed post; repeatable."


SOURCES_HELP = "FILE|URL..."
