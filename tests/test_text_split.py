"""split_thread(): every post fits with its numbering, nothing is lost, no atom or grapheme is cut."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_text_counting import mixtures
from test_text_trim import COUNTERS, cjk_text, emoji_text

from sharer.text import (
    Counter,
    count_graphemes,
    count_weibo,
    count_x,
    find_atoms,
    graphemes,
    split_thread,
    thread_label,
)

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
LABEL = re.compile(r" (\d+)/(\d+)\Z")
counters = st.sampled_from(COUNTERS)
any_text = st.one_of(st.text(max_size=400), cjk_text, emoji_text, mixtures())


def bodies(posts: list[str], numbering: bool = True) -> list[str]:
    """The posts without their `` k/n`` suffix, checking the numbering on the way."""
    if not numbering or len(posts) == 1:
        return posts
    result = []
    for k, post in enumerate(posts, 1):
        m = LABEL.search(post)
        assert m and (int(m.group(1)), int(m.group(2))) == (k, len(posts)), post
        result.append(post[: m.start()])
    return result


def offsets(text: str, parts: list[str]) -> list[tuple[int, int]]:
    """Where each part sits in ``text`` (parts are verbatim, in order)."""
    spans, pos = [], 0
    for part in parts:
        start = text.index(part, pos)
        spans.append((start, start + len(part)))
        pos = start + len(part)
    return spans


def check_split(text: str, limit: int, count: Counter, numbering: bool) -> list[str]:
    try:
        posts = split_thread(text, limit, count, numbering)
    except ValueError:
        # Only when a grapheme cluster plus its " k/n" label cannot fit.
        label = thread_label(len(text), len(text)) if numbering else ""
        assert any(count(g + label) > limit for g in graphemes(text))
        raise
    assert all(count(post) <= limit for post in posts)
    parts = bodies(posts, numbering)
    # Nothing but whitespace between or around the parts.
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())
    assert all(p and not graphemes(p)[0].isspace() and not graphemes(p)[-1].isspace() for p in parts)
    spans = offsets(text, parts)
    # Parts end between grapheme clusters, and outside atoms unless an atom alone exceeds a post.
    bounds = set()
    pos = 0
    for g in graphemes(text):
        pos += len(g)
        bounds.add(pos)
    for start, end in spans:
        assert start == 0 or start in bounds
        assert end in bounds
    for a_start, a_end in find_atoms(text):
        if count(text[a_start:a_end] + thread_label(99, 99)) <= limit:
            assert not any(a_start < end < a_end for _, end in spans)
    return posts


@PROPERTY
@given(any_text, st.integers(min_value=8, max_value=160), counters, st.booleans())
def test_split_contract(text: str, limit: int, count: Counter, numbering: bool) -> None:
    try:
        check_split(text, limit, count, numbering)
    except ValueError:
        assume(False)


@PROPERTY
@given(
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10), min_size=1, max_size=120),
    st.lists(st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", ", "]), min_size=120, max_size=120),
    st.integers(min_value=40, max_value=140),
)
def test_split_keeps_words_whole(words: list[str], seps: list[str], limit: int) -> None:
    text = "".join(w + s for w, s in zip(words, seps))
    parts = bodies(check_split(text, limit, count_graphemes, True))
    assert " ".join(parts).split() == text.split()


def test_short_text_is_one_post() -> None:
    assert split_thread("  hello world \n", 280, count_x) == ["hello world"]
    assert split_thread(" \n ", 280) == []


def test_numbering_width_change_is_repacked() -> None:
    text = " ".join(f"w{i:02d}" for i in range(60))  # 10 posts with 1-digit labels would not fit 2-digit ones
    for limit in range(12, 40):
        posts = check_split(text, limit, count_graphemes, True)
        assert all(p.endswith(f"/{len(posts)}") for p in posts)


def test_prefers_paragraphs_then_sentences() -> None:
    text = (
        "The first paragraph is a little longer now.\n\n"
        "Second paragraph is longer and has two sentences. Here is the second.\n\nThird one."
    )
    assert split_thread(text, 80) == [
        "The first paragraph is a little longer now. 1/3",
        "Second paragraph is longer and has two sentences. Here is the second. 2/3",
        "Third one. 3/3",
    ]
    # A paragraph break that would leave most of a post empty is not worth it; a sentence end is.
    text = "Short.\n\nSecond paragraph is longer and has two sentences. Here is the second one."
    assert split_thread(text, 70)[0] == "Short.\n\nSecond paragraph is longer and has two sentences. 1/2"


def test_cjk_thread_for_weibo_and_x() -> None:
    text = "北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品。详情见https://example.com/zh。" * 6
    for count, limit in ((count_weibo, 60), (count_x, 100)):
        posts = check_split(text, limit, count, True)
        assert len(posts) > 1
        assert all("https://example.com/zh" in p or "https" not in p for p in posts)


def test_atom_longer_than_a_post_is_broken_between_graphemes() -> None:
    url = "https://example.com/" + "x" * 40
    posts = split_thread(url, 20, count_graphemes)
    assert "".join(bodies(posts)) == url
    assert all(count_graphemes(p) <= 20 for p in posts)


def test_limit_too_small() -> None:
    with pytest.raises(ValueError):
        split_thread("abc def", 3)
    assert split_thread("abc def", 3, numbering=False) == ["abc", "def"]


def test_split_20000_characters() -> None:
    article = (
        "BAIC GROUP and CATL signed a business cooperation agreement https://news.example.com/en/1 to "
        "develop power battery products 🔋 and explore the NEV market.\n"
        "北汽集团与宁德时代签署深化合作备忘录，携手开发动力电池产品。详情见https://news.example.com/zh/2023。\n"
    ) * 120
    article = article[:20000]
    posts = split_thread(article, 280, count_x)  # its speed: bench/text.py
    assert all(count_x(p) <= 280 for p in posts)
    assert "".join("".join(p.split()) for p in bodies(posts)) == "".join(article.split())
