"""Meta refresh on article pages (``crawler.metarefresh``): Scrapy's behaviour, read from the
start of the page instead of from the whole page's decoded text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse

from crawler.demo.server import Resource, SiteServer
from crawler.metarefresh import SCAN_BYTES, SCAN_CHARS, head_text
from tests.helpers import postarc, posts_of, write_sources

ARTICLE = ("<p>" + "The article that the refresh leads to, and only it, is the post's body. " * 30 + "</p>"
           "<p>Its last sentence is found on the article page alone.</p>")


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from(["a", " ", "é", "中", "😀", "\ufffd", "<", "\n"]), max_size=60),
       repeat=st.sampled_from([1, 500, 4000, 9000]),
       codec=st.sampled_from(["utf-8", "utf-16", "utf-32", "gb18030", "big5", "cp1252", "iso-2022-jp", "utf-7"]),
       cut=st.integers(0, 3), bom=st.booleans())
def test_head_text_is_the_start_of_the_text(text: str, repeat: int, codec: str, cut: int, bom: bool) -> None:
    """Whatever the encoding, and with the body's end cut inside a character, the start
    decoded alone is the whole text's start (or is taken from it)."""
    body = (text * repeat).encode(codec, "replace")
    body = (b"\xef\xbb\xbf" if bom else b"") + body[:len(body) - cut]
    response = HtmlResponse("http://127.0.0.1/p", body=body, encoding=codec)
    assert head_text(response) == response.text[:SCAN_CHARS]


def test_a_long_page_that_refreshes_leads_to_the_page_it_names(tmp_path: Path) -> None:
    """A feed links a page of more than SCAN_BYTES that refreshes to the article: the post is the
    article's, as with Scrapy's own middleware."""
    with SiteServer() as site:
        filler = "<div>menu 菜单 " * (SCAN_BYTES // 10) + "</div>"
        site.routes["/p/moved.html"] = Resource(
            f'<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/p/article.html">'
            f"</head><body>{filler}</body></html>".encode(), "text/html")
        site.routes["/p/article.html"] = Resource(
            f"<html><head><title>Article</title></head><body><article>{ARTICLE}</article></body></html>".encode(),
            "text/html; charset=utf-8")
        site.routes["/feed.xml"] = Resource(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title><item><title>Moved</title>'
            f"<link>{site.base}/p/moved.html</link><guid>moved</guid><description>The article that the refresh leads to, and only it…</description></item>"
            "</channel></rss>".encode(), "application/rss+xml")
        sources = write_sources(tmp_path, f"sources:\n  - name: f\n    url: {site.base}/feed.xml\n    follow_links: true\n")
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "a"))
    assert run.returncode == 0, run.stderr[-3000:]
    [(_path, (meta, body))] = posts_of(tmp_path / "a").items()
    assert "Its last sentence is found on the article page alone." in body  # not in the feed's excerpt
    assert "menu" not in body
