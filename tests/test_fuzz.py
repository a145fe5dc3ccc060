"""Fuzzing (hypothesis) of what hostile feeds reach: feed parsing, the front-matter writer, and the
HTML → Markdown path (body choice, cleaning, conversion). Dates are fuzzed in tests/test_dates.py.

Inputs are arbitrary bytes and text, and real documents (the sample aggregator's feeds, the shared
corpus' posts) mutated: cut, spliced, repeated, with tokens that broke parsers before inserted.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from archive.extract import choose_body
from archive.feeds import Feed, FeedError, parse_feed
from archive.frontmatter import read_front_matter, render_post
from archive.markdown import clean_text, inside, post_path, render_body, slugify
from bench.corpus import article_page, load_corpus
from crawler.demo.site import build_routes
from tests.conftest import needs_tool
from tests.helpers import REPO

# feedparser warns on every entry without "updated" (its issue 310 fallback).
pytestmark = pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")
CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))
BASE = "http://agg.example"
ROUTES = build_routes(BASE)
SEED_FEEDS = [ROUTES[p].body for p in ("/rss.xml", "/atom.xml", "/feed.json")]
POSTS = load_corpus(CORPUS) if CORPUS.is_dir() else []
SEED_HTML = [p.html for p in POSTS[:12]] or [ROUTES["/posts/harbour.html"].body.decode()]

# Pieces that broke or strain parsers: character references XML cannot hold, entity
# declarations (billion laughs, external entities), CDATA ends, NULs, BOMs, encodings.
TOKENS = [
    b"&#xD800;", b"&#55296;", b"&#x110000;", b"&#99999999999999999999;", b"&#0;", b"&#x1F600;", b"&amp;",
    b"&bogus;", b"]]>", b"<![CDATA[", b"<!--", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xed\xa0\x80", b"\x80",
    b'<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;", b"&b;",
    b'<?xml version="1.0" encoding="utf-16"?>', b'<?xml version="1.0" encoding="gb2312"?>',
    b'<?xml version="1.0" encoding="nonsense"?>', b"<item>", b"</item>", b"<entry>", b"<title>", b"</title>",
    b"<link>javascript:alert(1)</link>", b"<link>file:///etc/passwd</link>", b"<pubDate>", b"</channel>",
    b"<rss version=\"2.0\">", b'<feed xmlns="http://www.w3.org/2005/Atom">', b"<rdf:RDF>", b'"\\ud800"',
    b'{"version": "https://jsonfeed.org/version/1.1", "items": [', b'"tags": 5', b'"authors": 7', b"null",
    b'"items": {}', b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", b"1e999999", b"\\u0000",
]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed document after a few random cuts, splices, repeats and token insertions."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["token", "bytes", "cut", "repeat", "flip"]))
        if op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "bytes":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 400))]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 200))] * draw(st.integers(2, 5))
        elif data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def valid_text(value: object) -> bool:
    """Storable everywhere: encodes as UTF-8 (no lone surrogates)."""
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_feed(body: bytes, content_type: str | None) -> None:
    try:
        feed = parse_feed(body, BASE + "/feed", content_type)
    except FeedError as exc:
        assert str(exc)
        return
    assert isinstance(feed, Feed)
    assert valid_text(feed.title) and (feed.link is None or valid_text(feed.link))
    for entry in feed.entries:
        for value in (entry.title, entry.link, entry.guid, entry.author, entry.html, entry.published, entry.updated,
                      *entry.tags):
            assert value is None or (isinstance(value, str) and valid_text(value)), (entry, value)
        assert entry.guid


CONTENT_TYPES = st.sampled_from([None, "application/rss+xml", "application/feed+json", "text/html",
                                 "application/xml; charset=gbk", "text/plain; charset=utf-16"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=600), content_type=CONTENT_TYPES)
def test_feed_parsing_of_arbitrary_bytes_raises_only_feed_error(body: bytes, content_type: str | None) -> None:
    check_feed(body, content_type)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated(SEED_FEEDS), content_type=CONTENT_TYPES)
def test_feed_parsing_of_mutated_real_feeds_raises_only_feed_error(body: bytes, content_type: str | None) -> None:
    check_feed(body, content_type)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
ITEM_KEYS = ["id", "url", "external_url", "title", "content_html", "content_text", "summary", "date_published",
             "date_modified", "author", "authors", "tags"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.dictionaries(st.sampled_from(ITEM_KEYS), json_values, max_size=8) | json_values,
                      max_size=4),
       top=st.dictionaries(st.sampled_from(["title", "home_page_url", "items"]), json_values, max_size=2))
def test_json_feed_with_any_values_raises_only_feed_error(items: list, top: dict) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": items, **top}
    check_feed(json.dumps(doc).encode(), "application/feed+json")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=80), html=st.text(max_size=80))
def test_any_text_in_an_xml_feed_comes_out_valid(title: str, html: str) -> None:
    def ref(text: str) -> str:  # every character as a numeric reference, whatever XML allows
        return "".join(f"&#{ord(c)};" for c in text)

    body = (f'<rss version="2.0"><channel><title>{ref(title)}</title><item><title>{ref(title)}</title>'
            f"<description>{ref(html)}</description><guid>{ref(title)}</guid></item></channel></rss>")
    check_feed(body.encode(), "application/rss+xml")


# -- front matter ----------------------------------------------------------------------------------

NOW = datetime(2024, 7, 25, 6, 8, 7, tzinfo=timezone.utc)
hostile_text = st.text() | st.sampled_from([
    "---", "---\ntitle: x\n---", "\n---\n", "...", "- a", "? x", ": y", "&a *a !!python/object:os.system",
    "{[", "'", '"', "#", "@", "`", "|", ">", "%", "\x00", "\ud800", "\u2028", "\u0085", "\ufeff", "\u202e",
    "yes", "no", "null", "~", "1e3", "0x1F", "2024-01-01", "CON", "../../x", "t" * 600,
])


@settings(max_examples=600, deadline=None)
@given(title=hostile_text, guid=hostile_text, link=hostile_text, author=hostile_text,
       categories=st.lists(hostile_text, max_size=3), body=hostile_text)
def test_front_matter_round_trips_any_text(title, guid, link, author, categories, body) -> None:
    """As pipelines.markdown writes it: titles, authors and categories cleaned, the rest as given."""
    fields = {"title": clean_text(title) or "(untitled)", "categories": [clean_text(c) for c in categories],
              "author": clean_text(author), "date": NOW, "link": link, "guid": guid, "archived": NOW}
    text = render_post(fields, body)
    assert valid_text(text.split("\n---\n", 1)[0])  # the writer escapes what UTF-8 cannot hold
    parsed, _rest = read_front_matter(text)
    assert parsed == fields
    assert yaml.safe_load(text[4:text.index("\n---\n") + 1]) == fields
    cleaned = fields["title"]
    assert "\n" not in cleaned and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", cleaned)


@settings(max_examples=600, deadline=None)
@given(title=hostile_text, key=hostile_text)
def test_paths_from_any_title_stay_inside_posts(title: str, key: str) -> None:
    slug = slugify(title, key)
    # Word characters and "-" only, short, and never a bare reserved name (CON, NUL…): a hash ends it.
    assert re.fullmatch(r"[\w-]*-[0-9a-f]{8}", slug) and len(slug.encode()) < 255 - len(".md")
    relative = post_path(NOW, slug) + ".md"
    root = Path("/srv/archive/posts")
    assert inside(root, relative).parent.parent.parent == root


def test_inside_refuses_every_escape() -> None:
    root = Path("/srv/archive/posts")
    for bad in ("../x", "a/../../x", "/etc/passwd", "a/../../posts2/x", ".."):
        with pytest.raises(ValueError):
            inside(root, bad)


def test_inside_follows_the_root_symlink_but_refuses_one_leading_out(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "posts"
    (real / "2024").mkdir(parents=True)
    (tmp_path / "posts").symlink_to(real)  # the root itself may be a link
    (real / "2023").symlink_to(tmp_path)  # a link inside it may not lead out
    assert inside(tmp_path / "posts", "2024/a.md") == real.resolve() / "2024" / "a.md"
    with pytest.raises(ValueError):
        inside(tmp_path / "posts", "2023/a.md")


# -- HTML → Markdown -------------------------------------------------------------------------------

HTML_TOKENS = [t.decode("utf-8", "replace") for t in TOKENS[:16]] + [
    "<p>", "</p>", "<pre>", "</pre>", "<table><tr><td>", "</td></tr></table>", "<img src='", "'>",
    "<img data-original='http://i.example/a.jpg' srcset=', , 9w'>", "<script>alert(1)</script>",
    "<a href='javascript:alert(1)'>x</a>", "<svg onload=alert(1)>", "<math><mi>", "<base href='file:///'>",
    "<" * 50, "<div>" * 300, "</div>" * 50, "<br>" * 40, "<ul><li>" * 30, "\ufffe", "\ud800", "&#xD800;",
    # Text that reads as Markdown or HTML: it must stay text.
    "&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "[x](javascript:alert(1))",
    "[r]: javascript:alert(1)", "&lt;javascript:alert(1)&gt;", "<a href='http://x/a)&lt;script&gt;'>l</a>",
    "<a href='http://x/a) [y](javascript:alert(1)'>t</a>", "<a title='\") [z](javascript:1)' href='/t'>t</a>",
]
# As Hexo's marked renders: raw HTML passed through, every link destination taken.
MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
MARKDOWN.validateLink = lambda url: True
BAD_HREF = re.compile(r"\s*(javascript|vbscript|file|data):", re.IGNORECASE)
BAD_SRC = re.compile(r"\s*(javascript|vbscript|file):", re.IGNORECASE)


OWN_INLINE_HTML = {"<strong>", "</strong>", "<em>", "</em>", "<del>", "</del>", "<br>", "<!-- -->"}
HTML_TAG = re.compile(r"<\s*/?\s*([a-z][a-z0-9-]*)")
# What could run, load or restyle anything (the cleaner removes them; the HTML postarc writes has none).
ACTIVE_TAGS = {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
               "button", "textarea", "select", "base", "meta", "link", "svg", "math", "template", "noscript"}
EVENT_ATTR = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
BAD_ATTR_URL = re.compile(r"\s(?:href|src)\s*=\s*[\"']?\s*(?:javascript|vbscript|data|file):", re.IGNORECASE)


def tokens_of(tokens: list) -> list:
    return [t for token in tokens for t in (token, *tokens_of(token.children or []))]


@st.composite
def mutated_html(draw) -> str:
    text = draw(st.sampled_from(SEED_HTML))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["token", "text", "cut", "repeat"]))
        if op == "token":
            text = text[:at] + draw(st.sampled_from(HTML_TOKENS)) + text[at:]
        elif op == "text":
            text = text[:at] + draw(st.text(max_size=12)) + text[at:]
        elif op == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 2000)):]
        else:
            text = text[:at] + text[at:at + draw(st.integers(1, 300))] * draw(st.integers(2, 4)) + text[at:]
    return text


@needs_tool(f"the shared corpus at {CORPUS} (POSTARC_CORPUS)", POSTS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(feed_html=mutated_html(), page=st.none() | mutated_html(), form=st.sampled_from(["markdown", "html"]),
       base=st.sampled_from([None, "http://news.example/a/1.html", "http://[bad", "javascript:x"]))
def test_html_to_markdown_never_crashes(feed_html: str, page: str | None, form: str, base: str | None) -> None:
    page_html = article_page(POSTS[0], page) if page is not None and POSTS else page
    # The base is the entry's link (anything a feed says); the page's URL is the one fetched.
    body = choose_body(feed_html, base, page_html, "http://news.example/a/1.html")
    assert body.source in ("feed", "page")
    assert all(url.startswith(("http://", "https://")) for url in body.image_urls)
    images = {url: f"x/{n}.png" for n, url in enumerate(body.image_urls)}
    out = render_body(body.html, form, images)
    assert isinstance(out, str) and valid_text(out)
    if form == "html":  # one HTML block, none of it read as Markdown
        assert "<script" not in out.lower() and [t.type for t in MARKDOWN.parse(out)] == ["html_block"], out
        return
    # The Markdown holds no HTML but what postarc writes (emphasis Markdown cannot place, line
    # breaks, tables and code it cannot hold) and no link but to the web, whatever the text said.
    tokens = tokens_of(MARKDOWN.parse(out))
    assert not [t.content for t in tokens if t.type == "html_inline" and t.content not in OWN_INLINE_HTML], out
    for block in (t.content for t in tokens if t.type == "html_block"):
        assert block.lstrip().startswith(("<table", "<pre")), out
        assert not set(HTML_TAG.findall(block.lower())) & ACTIVE_TAGS, block
        assert not EVENT_ATTR.search(block) and not BAD_ATTR_URL.search(block), block
    assert not [t.attrGet("href") for t in tokens if BAD_HREF.match(t.attrGet("href") or "x")], out
    assert not [t.attrGet("src") for t in tokens if BAD_SRC.match(t.attrGet("src") or "x")], out
