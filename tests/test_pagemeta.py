"""archive.pagemeta: what an article page says about itself, without a crawl."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.pagemeta import PageDate, page_metadata, published_dates


def doc(head: str = "", body: str = "<p>text</p>") -> str:
    return f"<!doctype html><html><head><title>Title - Site</title>{head}</head><body>{body}</body></html>"


def test_dates_in_trust_order_with_raw_strings():
    html = doc(
        '<meta property="article:published_time" content="2022-04-29T08:12:15+08:00">'
        '<script type="application/ld+json">'
        + json.dumps([{"@graph": [{"@type": "WebPage"}, {"@type": "NewsArticle", "datePublished": "2022-04-29 08:12"}]}])
        + "</script>",
        '<aside><time datetime="2001-01-01">old</time></aside><article><time datetime="2022-04-29">x</time></article>',
    )
    found = published_dates(html)
    assert found[:3] == [PageDate("2022-04-29T08:12:15+08:00", "article:published_time"),
                         PageDate("2022-04-29 08:12", "json-ld"),
                         PageDate("2022-04-29", "time")]  # the article's <time>, not the sidebar's
    assert [d.origin for d in found[3:]] == ["htmldate"]


def test_broken_json_ld_still_gives_its_date():
    html = doc('<script type="application/ld+json">{"datePublished": "2021-01-02T03:04:05Z",,}</script>')
    assert published_dates(html)[0] == PageDate("2021-01-02T03:04:05Z", "json-ld")


def test_time_marked_pubdate_wins_over_the_first_time():
    html = doc(body='<time datetime="2001-01-01">a</time><p>x</p><time pubdate datetime="2022-04-29T08:12">b</time>')
    assert published_dates(html)[0] == PageDate("2022-04-29T08:12", "time")


def test_page_without_dates_has_no_candidates_from_text_guessing():
    # htmldate's text search would read "2024" in a copyright line as 1 January 2024.
    assert published_dates(doc(body="<p>Some words.</p><footer>© 2024 Example</footer>")) == []


def test_title_author_description():
    meta = page_metadata(doc('<meta name="author" content="张三"><meta name="description" content="摘要">',
                             "<article><h1>真正的标题</h1><p>正文</p></article>"), "http://127.0.0.1/a")
    assert meta.author == "张三"  # a one-word CJK name is a name
    assert meta.description == "摘要"
    assert meta.title in {"真正的标题", "Title"}


def test_og_title_wins_and_json_ld_author():
    html = doc('<meta property="og:title" content="OG title"><script type="application/ld+json">'
               '{"@context": "https://schema.org", "@type": "Article", "author": {"@type": "Person", "name": "Jane Doe"}}</script>')
    meta = page_metadata(html, "http://127.0.0.1/b")
    assert (meta.title, meta.author) == ("OG title", "Jane Doe")


@pytest.mark.parametrize("junk", ["", "garbage", "<p>fragment</p>", "\x00\x01", b"\xff\xfe\x00<html>", "<" * 1000])
def test_junk_gives_empty_metadata(junk):
    meta = page_metadata(junk)
    assert meta.dates == [] or all(isinstance(d, PageDate) for d in meta.dates)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    page_metadata(doc(text, text))
    published_dates(text)


def test_site_banner_h1_is_no_title():
    """trafilatura takes a lone <h1> for the title; on blogs it is often the site's banner."""
    html = ("<!doctype html><html><head><title>Get your code covered | Code | Nicolas</title></head><body>"
            "<header><h1>Hi, I'm Nicolas.</h1></header><div><h2>Get your code covered</h2>"
            "<p>So finally you are testing your frontend code.</p></div></body></html>")
    assert page_metadata(html, "http://127.0.0.1/c").title == "Get your code covered | Code | Nicolas"
