"""Feeds as the wild writes them (issue 16), read without a crawl: detection by parsing, entry
identity, JSON Feed leniency, plain-text titles, dates kept as written, the failure words."""

from __future__ import annotations

import errno
import json
import re
import zlib
from gzip import BadGzipFile

import pytest
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, ResponseDataLossError
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionLost, ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.python.failure import Failure

from archive.dates import normalize_date, parse_trusted
from archive.feeds import FeedError, parse_feed
from archive.text import NAME_MAX, TITLE_MAX, plain_text, visible_text
from crawler.failures import describe

URL = "http://127.0.0.1/feed"
TAG = re.compile(r"<[A-Za-z/!?]")


def rss(items: str, head: str = '<?xml version="1.0"?>', version: str = "2.0") -> bytes:
    return f'{head}<rss version="{version}"><channel><title>T</title><link>http://x/</link>{items}</channel></rss>'.encode()


# -- 1. a feed is known by parsing ------------------------------------------------------------

FEEDS = {
    "cdata-html-body": rss("<item><title>a</title><guid>1</guid><description><![CDATA[<html><body><p>x</p>"
                           "</body></html>]]></description></item>" * 1),
    "xhtml-doctype": rss("<item><title>a</title><guid>1</guid></item><item><title>b</title><guid>2</guid></item>",
                         head='<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
                              '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">'),
    "html-in-first-4k": rss("<item><title>&lt;html&gt; talk</title><guid>1</guid><description>&lt;html&gt;&lt;body&gt;"
                            "hi&lt;/body&gt;&lt;/html&gt;</description></item>"),
    "rss090": b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
              b'xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>t</title><link>http://x/</link>'
              b"</channel><item><title>a</title><link>http://x/a</link></item></rdf:RDF>",
    "rss091": rss("<item><title>a</title><link>http://x/a</link></item>", version="0.91"),
    "rss092": rss("<item><title>a</title><link>http://x/a</link></item>", version="0.92"),
    "cdf": b'<?xml version="1.0"?><CHANNEL HREF="http://x/"><TITLE>t</TITLE><ITEM HREF="http://x/a">'
           b"<TITLE>a</TITLE><ABSTRACT>abs</ABSTRACT></ITEM></CHANNEL>",
    "atom03": b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>t</title><entry><title>a</title>'
              b"<id>x</id></entry></feed>",
    "json-1.0-string": json.dumps({"version": "1.0", "items": [{"id": "1", "title": "a"}]}).encode(),
    "json-1.1-string": json.dumps({"version": "1.1", "items": [{"id": "1", "title": "a"}]}).encode(),
}
EXPECTED = {"xhtml-doctype": 2}


@pytest.mark.parametrize("name", FEEDS)
@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/html", None])
def test_a_feed_is_what_a_feed_format_reads(name: str, content_type: str | None):
    feed = parse_feed(FEEDS[name], URL, content_type)
    assert len(feed.entries) == EXPECTED.get(name, 1), feed


@pytest.mark.parametrize("page", [
    b"<!doctype html><html><head><title>x</title></head><body><p>hi</p><item>no</item></body></html>",
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
    b"<body><p>hi</p></body></html>",
    b"just words",
])
def test_a_page_is_no_feed(page: bytes):
    with pytest.raises(FeedError) as caught:
        parse_feed(page, URL, "text/html")
    assert caught.value.not_feed


def test_an_empty_feed_is_still_a_feed():
    assert parse_feed(rss(""), URL).entries == []
    for content_type in ("application/xml", "application/octet-stream", None):
        cdf = b'<?xml version="1.0"?><CHANNEL HREF="http://x/"><TITLE>t</TITLE></CHANNEL>'
        assert parse_feed(cdf, URL, content_type).entries == []


# -- 2. entry identity ------------------------------------------------------------------------


def item(title: str, guid: str | None = None, link: str | None = None, body: str = "b") -> str:
    return (f"<item><title>{title}</title><description>{body}</description>"
            + (f"<guid>{guid}</guid>" if guid else "") + (f"<link>{link}</link>" if link else "") + "</item>")


def guids(body: bytes) -> list[str]:
    return [e.guid for e in parse_feed(body, URL).entries]


def test_one_guid_for_many_entries_gives_distinct_stable_identities():
    body = rss("".join(item(f"Item {n}", guid="urn:same-guid") for n in range(300)))
    first = guids(body)
    assert len(first) == 300 == len(set(first))
    assert first[0] == "urn:same-guid"  # the first keeps it: an edit of it updates its post
    assert first == guids(body)  # the same next run: nothing new


def test_entries_without_guid_all_linking_home_are_distinct():
    ids = guids(rss("".join(item(f"Item {n}", link="http://x/") for n in range(5))))
    assert len(set(ids)) == 5 and ids[0] == "http://x/"


def test_without_guid_or_link_the_identity_is_a_hash_of_title_and_content():
    ids = guids(rss(item("a") + item("b") + item("a", body="other")))
    assert len(set(ids)) == 3 and all(i.startswith("urn:sha1:") for i in ids)


def test_an_entry_listed_twice_exactly_is_archived_once():
    feed = parse_feed(rss(item("a", guid="urn:g") * 3 + item("b", guid="urn:h")), URL)
    assert [e.guid for e in feed.entries] == ["urn:g", "urn:h"] and feed.duplicates == 2
    assert any("repeated an earlier one exactly" in p for p in feed.problems)


# -- 3. titles, authors and categories as text ----------------------------------------------

@pytest.mark.parametrize("raw, text", [
    ("a <b>bold</b> move", "a bold move"),
    ("safe<script>location.href='x'</script> description", "safe description"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;after", "after"),
    ("&amp;lt;img src=x onerror=alert(1)&amp;gt;gone", "gone"),
    ("<iframe src=x></iframe><object data=y></object><embed src=z><applet code=w></applet>t", "t"),
    ("<p onclick=\"x()\">para</p>", "para"),
    ("AT&amp;T &#38; Sons &#x263A;", "AT&T & Sons ☺"),
    ("  lots \n\n of\t\twhitespace  ", "lots of whitespace"),
    ("x < y > z", "x < y > z"),
    ("RTL \u202eoverride\u202c zero\u200bwidth \x00nul", "RTL override zerowidth nul"),
    ("中文 <em>标题</em>", "中文 标题"),
])
def test_plain_text(raw: str, text: str):
    assert plain_text(raw) == text


def test_titles_are_capped_with_an_ellipsis():
    long = plain_text("word " * 200_000)
    assert len(long) == TITLE_MAX and long.endswith("…")
    assert len(plain_text("n" * 1000, NAME_MAX)) == NAME_MAX


def test_feed_fields_come_out_as_text():
    body = rss('<item><title>safe&lt;script&gt;alert(1)&lt;/script&gt; t</title><guid>1</guid>'
               "<author>Ann &lt;b&gt;A&lt;/b&gt;</author><category>&lt;i&gt;tech&lt;/i&gt;</category>"
               "<description>b</description></item>")
    entry = parse_feed(body, URL).entries[0]
    assert (entry.title, entry.author, entry.tags) == ("safe t", "Ann A", ["tech"])


# -- 5. JSON Feed read leniently --------------------------------------------------------------

@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1", "1.0",
                                     "1.1", "1", 1.1, "http://jsonfeed.org/version/1/"])
def test_json_feed_versions_as_written(version):
    feed = parse_feed(json.dumps({"version": version, "items": [{"id": "1"}]}).encode(), URL, "application/json")
    assert len(feed.entries) == 1


def test_json_feed_wrong_types_are_coerced_or_dropped_never_a_repr():
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": ["list"], "items": [
        {"id": 7, "title": ["list", "title"], "content_html": ["a", "b"], "tags": "one", "author": {"name": "Old"}},
        {"id": "b", "title": {"x": 1}, "content_text": "<b>text</b>", "authors": [{"name": "New"}, {"name": "2"}],
         "tags": [1, {"x": 1}, "ok"], "url": ["http://x/"]},
        "not an item",
        {"id": "c", "authors": ["Bare name"], "date_published": 20240101},
    ]}
    feed = parse_feed(json.dumps(doc).encode(), URL, "application/feed+json")
    a, b, c = feed.entries
    assert (a.guid, a.title, a.html, a.tags, a.author) == ("7", "", "", ["one"], "Old")
    assert (b.title, b.html, b.tags, b.author, b.link) == ("", "<p>&lt;b&gt;text&lt;/b&gt;</p>", ["1", "ok"], "New", None)
    assert c.author == "Bare name" and c.published == "20240101"
    for entry in feed.entries:
        for value in (entry.title, entry.html, entry.author or "", *entry.tags):
            assert "[" not in value and "{" not in value, value
    assert any("title is a JSON array" in p for p in feed.problems)
    assert any("not an object" in p for p in feed.problems)


def test_json_that_is_no_feed():
    for body in (b'{"hello": 1}', b"[1, 2]"):
        with pytest.raises(FeedError) as caught:
            parse_feed(body, URL, "application/json")
        assert caught.value.not_feed


# -- 5. dates before 1990 or far ahead: the year as written, then not believed -----------------

@pytest.mark.parametrize("raw, year", [("Sat, 01 Jan 0001 00:00:00 GMT", 1), ("Sat, 01 Jan 0001", 1),
                                       ("1 Jan 0099", 99), ("Fri, 31 Dec 9999 23:59:59 GMT", 9999),
                                       ("Sat, 01 Jan 2000 00:00:00 +0000", 2000)])
def test_years_kept_as_written(raw: str, year: int):
    assert normalize_date(raw).value.year == year
    assert parse_trusted(raw).known == (year == 2000)


# -- 6. nothing emptied silently ---------------------------------------------------------------

def test_visible_text_reads_any_depth():
    assert visible_text("<div>" * 5000 + "deep &amp; text" + "</div>" * 5000) == "deep & text"
    assert visible_text("<p>a<script>x()</script>b<style>p{}</style></p>") == "a b"


# -- 4. one line per failure, in the vocabulary -------------------------------------------------

def http_error(status: int, location: str | None = None) -> HttpError:
    headers = {"Location": location} if location else {}
    return HttpError(Response("http://x/", status=status, headers=headers, request=Request("http://x/")))


@pytest.mark.parametrize("error, words", [
    (http_error(404), "HTTP 404"),
    (http_error(302, "file:///etc/passwd"), "redirect to a non-http URL"),
    (http_error(301, "ftp://x/"), "redirect to a non-http URL"),
    (http_error(302), "HTTP 302"),
    (IgnoreRequest("max redirections reached"), "redirect loop"),
    (IgnoreRequest("Ignored response <200 x> because its body (1 B compressed, 9 B decompressed so far) exceeded "
                   "DOWNLOAD_MAXSIZE (5 B) during decompression."), "too large"),
    (DownloadCancelledError("Received 9 bytes which is larger than download max size (5) in request x."),
     "too large"),
    (DownloadCancelledError(""), "too large"),  # a body with no Content-Length past the cap: a bare cancel
    (IgnoreRequest("Forbidden by robots.txt"), "robots.txt disallowed"),
    (BadGzipFile("Not a gzipped file (b'<?')"), "bad gzip"),
    (zlib.error("Error -3 while decompressing data"), "bad gzip"),
    (ConnectionRefusedError(), "connection refused"),
    (TimeoutError(), "timeout"),
    (DNSLookupError(), "host not found"),
    (ConnectionLost(), "connection lost"),
    (ResponseDataLossError(), "body cut short"),
    (OSError(errno.ENOSPC, "No space left on device"), "disk full"),  # writing its WARC records
    (KeyError("odd"), "download failed (KeyError)"),
])
def test_failures_in_words(error: Exception, words: str):
    assert describe(Failure(error)) == words
