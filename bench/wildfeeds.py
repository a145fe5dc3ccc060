"""Feeds as the wild writes them, made by the hundred, and the invariants ``postarc archive`` must keep.

``python -m bench.wildfeeds [N] [--seed S]`` builds N varied feeds (formats × guid habits ×
titles × bodies × dates × how they are served) and a set of broken URLs, serves them on
127.0.0.1, runs the real ``postarc archive - --json`` over them twice (in a few batches) and
prints one JSON object: how many feeds, posts, failures, and every invariant broken (none is
the bar). ``tests/test_wildfeeds.py`` runs a smaller corpus through the same checks.

The invariants (issue 16's "Done when"):

- a feed that feedparser parses without error gives as many posts as it has distinct entries
  (feedparser's entries, exact repeats counted once);
- no traceback on stderr;
- every Markdown file has its catalogue row and every row its file; each path listed once;
- no tag in any title, author or category;
- every failure reason is one of the documented words (``FAILURE``);
- a second run writes nothing.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser

from archive.frontmatter import read_front_matter
from crawler.demo.server import Resource, SiteServer
from tests.helpers import postarc

#: The failure reasons the docs list (docs: Failure behaviour), as patterns.
FAILURE = re.compile(
    r"^(HTTP \d{3}|connection refused|connection lost|body cut short|timeout|host not found|TLS error|too large"
    r"|bad gzip|redirect loop|redirect to a non-http URL|robots\.txt disallowed|not an http\(s\) URL"
    r"|empty document|not a feed: .+|not HTML or a feed \(.+\)|download failed \(\w+\))$")
TAG = re.compile(r"<[A-Za-z/!?]")
#: Settings of the runs: failures come fast (no retries, short timeout), a bomb stays small.
SETTINGS = ["-s", "RETRY_TIMES=0", "-s", "DOWNLOAD_TIMEOUT=10", "-s", f"DOWNLOAD_MAXSIZE={2 << 20}",
            "-s", "ROBOTSTXT_OBEY=True", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0"]


@dataclass
class Case:
    path: str
    resource: Resource | list[Resource]
    feed: bool  # expected to be archived as a feed (False: expected to fail)
    xml: bytes = b""  # the document, for feedparser's count
    json_items: int | None = None  # JSON Feed: the distinct items expected


# -- pieces ---------------------------------------------------------------------------------

TITLES: list[Callable[[int], str]] = [
    lambda i: f"Plain title {i}",
    lambda i: f"Title with <b>bold</b> and <i>italic</i> {i}",
    lambda i: f"safe<script>location.href='http://evil/{i}'</script> description",
    lambda i: f"<img src=x onerror=alert({i})>img handler",
    lambda i: f"&lt;script&gt;alert({i})&lt;/script&gt; double escaped",
    lambda i: f"AT&amp;T &amp; Johnson &#38; Sons &#x263A; {i}",
    lambda i: f"  lots \n\n of\t\twhitespace   {i}  ",
    lambda i: f"RTL \u202eoverride\u202c and zero\u200bwidth {i}",
    lambda i: "中文标题 " + str(i),
    lambda i: f"<iframe src='http://evil/'></iframe><object data=x></object>{i}",
    lambda i: "",
    lambda i: ("long " * 3000) + str(i),
    lambda i: f"x &lt; y &gt; z {i}",
    lambda i: f"<p onclick=\"steal()\">para</p><embed src=x><applet code=y></applet>{i}",
]

BODIES: list[Callable[[int], str]] = [
    lambda i: f"<p>Body {i} with <a href='http://example.org/{i}'>a link</a>.</p>",
    lambda i: f"<html><body><p>Whole document body {i}</p></body></html>",
    lambda i: f"<!DOCTYPE html><html><head><title>x</title></head><body><p>doc {i}</p></body></html>",
    lambda i: "<div>" * 5000 + f"deep text {i}" + "</div>" * 5000,
    lambda i: "",
    lambda i: f"<p>Para {i}</p>" * 50,
    lambda i: f"<p>with an image that is gone <img src='/missing/{i}.png'></p>",
    lambda i: f"<script>alert({i})</script><p>text after script {i}</p>",
]

DATES = ["Mon, 06 Sep 2021 16:45:00 +0000", "Sat, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
         "2022-04-29T08:12:15+08:00", "not a date", "", "Thu, 01 Jan 1970 00:00:00 GMT", "1 Jan 0099"]

# How an entry's identity is written: (guid, link) from the entry number and the feed's home page.
GUIDS: list[Callable[[int, int, str], tuple[str | None, str | None]]] = [
    lambda f, i, home: (f"urn:feed{f}:entry{i}", f"{home}/post/{i}"),  # the well-formed habit
    lambda f, i, home: ("same-guid", f"{home}/post/{i}"),  # one guid for every entry
    lambda f, i, home: (None, home + "/"),  # no guid, every link the home page
    lambda f, i, home: (None, None),  # neither
    lambda f, i, home: (None, f"{home}/post/{i}"),  # link only
    lambda f, i, home: (f"{home}/post/{i % 3}", f"{home}/post/{i % 3}"),  # three guids taking turns
]


def _x(text: str) -> str:
    """Text in XML character data."""
    return html.escape(text, quote=False)


@dataclass
class EntrySpec:
    title: str
    body: str
    date: str
    guid: str | None
    link: str | None
    author: str = ""
    tags: list[str] = field(default_factory=list)


def rss2(entries: list[EntrySpec], version: str = "2.0") -> bytes:
    items = []
    for e in entries:
        parts = [f"<title>{_x(e.title)}</title>", f"<description>{_x(e.body)}</description>"]
        if e.guid is not None:
            parts.append(f'<guid isPermaLink="false">{_x(e.guid)}</guid>')
        if e.link is not None:
            parts.append(f"<link>{_x(e.link)}</link>")
        if e.date:
            parts.append(f"<pubDate>{_x(e.date)}</pubDate>")
        if e.author:
            parts.append(f"<author>{_x(e.author)}</author>")
        parts += [f"<category>{_x(t)}</category>" for t in e.tags]
        items.append("<item>" + "".join(parts) + "</item>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="{version}"><channel><title>Wild &amp; <b>feed</b>'
            f"</title><link>http://example.org/</link><description>d</description>{''.join(items)}"
            "</channel></rss>").encode()


def rss2_cdata(entries: list[EntrySpec]) -> bytes:
    """Bodies in CDATA (the habit that put ``<html>`` in the first 4 KB)."""
    items = "".join(
        f"<item><title><![CDATA[{e.title}]]></title><description><![CDATA[{e.body.replace(']]>', '')}]]>"
        f"</description>{f'<guid>{_x(e.guid)}</guid>' if e.guid else ''}"
        f"{f'<link>{_x(e.link)}</link>' if e.link else ''}<pubDate>{_x(e.date)}</pubDate></item>"
        for e in entries)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>CDATA feed</title>'
            f"<link>http://example.org/</link>{items}</channel></rss>").encode()


def rss_xhtml_doctype(entries: list[EntrySpec]) -> bytes:
    doctype = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
               '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n')
    return rss2(entries).replace(b"<rss", doctype.encode() + b"<rss", 1)


def rdf(entries: list[EntrySpec], ns: str) -> bytes:
    items = "".join(
        f'<item{f" rdf:about={json.dumps(e.link)}" if e.link and "1.0" in ns else ""}>'
        f"<title>{_x(e.title)}</title><link>{_x(e.link or 'http://example.org/')}</link>"
        f"<description>{_x(e.body)}</description>{f'<dc:date>{_x(e.date)}</dc:date>' if e.date else ''}</item>"
        for e in entries)
    return (f'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns="{ns}" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>RDF feed</title>'
            f"<link>http://example.org/</link><description>d</description></channel>{items}</rdf:RDF>").encode()


def atom(entries: list[EntrySpec], html_titles: bool) -> bytes:
    out = []
    for e in entries:
        title = f'<title type="html">{_x(e.title)}</title>' if html_titles else f"<title>{_x(e.title)}</title>"
        out.append(
            f"<entry>{title}{f'<id>{_x(e.guid)}</id>' if e.guid else ''}"
            f"{f'<link href={json.dumps(e.link)}/>' if e.link else ''}"
            f'<content type="html">{_x(e.body)}</content>{f"<updated>{_x(e.date)}</updated>" if e.date else ""}'
            f"{f'<author><name>{_x(e.author)}</name></author>' if e.author else ''}"
            + "".join(f"<category term={json.dumps(t)}/>" for t in e.tags) + "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>'
            f"<id>urn:x</id><updated>2021-01-01T00:00:00Z</updated>{''.join(out)}</feed>").encode()


def _alternate(link: str | None) -> str:
    return f'<link rel="alternate" href={json.dumps(link)}/>' if link else ""


def atom03(entries: list[EntrySpec]) -> bytes:
    out = "".join(
        f"<entry><title>{_x(e.title)}</title>{f'<id>{_x(e.guid)}</id>' if e.guid else ''}"
        f"{_alternate(e.link)}"
        f'<content type="text/html" mode="escaped">{_x(e.body)}</content><issued>{_x(e.date)}</issued></entry>'
        for e in entries)
    return (f'<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Atom 0.3</title>'
            f"{out}</feed>").encode()


def cdf(entries: list[EntrySpec]) -> bytes:
    items = "".join(
        f'<ITEM HREF={json.dumps(e.link or "http://example.org/")}><TITLE>{_x(e.title)}</TITLE>'
        f"<ABSTRACT>{_x(e.body)}</ABSTRACT></ITEM>" for e in entries)
    return (f'<?xml version="1.0"?><CHANNEL HREF="http://example.org/"><TITLE>CDF</TITLE>{items}'
            "</CHANNEL>").encode()


XML_FORMATS: dict[str, Callable[[list[EntrySpec]], bytes]] = {
    "rss20": rss2,
    "rss091": lambda es: rss2(es, "0.91"),
    "rss092": lambda es: rss2(es, "0.92"),
    "rss20-cdata": rss2_cdata,
    "rss20-xhtml-doctype": rss_xhtml_doctype,
    "rss090": lambda es: rdf(es, "http://my.netscape.com/rdf/simple/0.9/"),
    "rss10": lambda es: rdf(es, "http://purl.org/rss/1.0/"),
    "atom10": lambda es: atom(es, False),
    "atom10-html-titles": lambda es: atom(es, True),
    "atom03": atom03,
    "cdf": cdf,
}

JSON_VERSIONS = ["https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1", "1.0", "1.1",
                 "http://jsonfeed.org/version/1", "https://jsonfeed.org/version/1/"]


def json_feed(entries: list[EntrySpec], rng: random.Random) -> tuple[bytes, int]:
    """A JSON Feed, some fields of the wrong type; and how many distinct items it has."""
    items: list[Any] = []
    odd_of: dict[int, int] = {}  # one oddity per entry: an entry listed twice stays an exact repeat
    for e in entries:
        odd = odd_of.setdefault(id(e), rng.randrange(6))
        item: dict[str, Any] = {"title": e.title, "content_html": e.body}
        if e.guid is not None:
            item["id"] = e.guid if odd != 5 else len(e.guid)  # numbers happen
        if e.link is not None:
            item["url"] = e.link
        if e.date:
            item["date_published"] = e.date
        if e.author:
            item["authors" if odd % 2 else "author"] = [{"name": e.author}] if odd % 2 else {"name": e.author}
        if odd == 0:
            item["title"] = ["list", "title"]
        elif odd == 1:
            item["content_html"] = ["a", "b"]
        elif odd == 2:
            item["tags"] = "one-tag"
        elif odd == 3:
            item["tags"] = [1, {"x": 1}, "ok"]
        items.append(item)
    distinct = len({json.dumps(i, sort_keys=True) for i in items})
    if rng.random() < 0.3:
        items.append("not an object")
    doc = {"version": rng.choice(JSON_VERSIONS), "title": "JSON <i>feed</i>", "items": items}
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode(), distinct


CONTENT_TYPES = {"xml": ["application/rss+xml", "application/atom+xml", "text/xml", "text/html; charset=utf-8",
                         "text/plain", "application/octet-stream", ""],
                 "json": ["application/feed+json", "application/json", "text/plain", ""]}


def entries_for(f: int, rng: random.Random, home: str, light: bool) -> list[EntrySpec]:
    """A feed's entries; ``light``: fewer, and the costly bodies (5 000 levels deep) rarer."""
    count = rng.choice([0, 1, 2, 3] if light else [0, 1, 2, 3, 5, 8, 12, 20])
    bodies = [b for n, b in enumerate(BODIES) if n != 3 or rng.random() < 0.2] if light else BODIES
    guid_habit = rng.choice(GUIDS)
    out = []
    for i in range(count):
        guid, link = guid_habit(f, i, home)
        out.append(EntrySpec(
            title=rng.choice(TITLES)(i), body=rng.choice(bodies)(i), date=rng.choice(DATES), guid=guid, link=link,
            author=rng.choice(["", "Ann <b>Author</b>", "Bob &amp; Co", "x" * 300]),
            tags=rng.sample(["news", "<i>tech</i>", "a &amp; b", "长"], rng.randrange(3))))
    if out and rng.random() < 0.15:  # an entry listed twice, exactly
        out.append(out[0])
    return out


def feed_cases(n: int, rng: random.Random, base: str, light: bool) -> list[Case]:
    cases = []
    formats = list(XML_FORMATS)
    for f in range(n):
        home = f"{base}/site{f}"
        entries = entries_for(f, rng, home, light)
        for e in entries:  # images are fetched from this server (some 404)
            e.body = e.body.replace("src='/missing/", f"src='{base}/missing/")
        path = f"/feed/{f}"
        if f % 7 == 6:
            body, distinct = json_feed(entries, rng)
            res = Resource(body, rng.choice(CONTENT_TYPES["json"]))
            cases.append(Case(path, res, True, json_items=distinct))
            continue
        body = XML_FORMATS[formats[f % len(formats)]](entries)
        if rng.random() < 0.1:
            body = b"\xef\xbb\xbf" + body
        res = Resource(body, rng.choice(CONTENT_TYPES["xml"]), gzip=rng.random() < 0.2, chunked=rng.random() < 0.2)
        cases.append(Case(path, res, True, xml=body))
    return cases


def failure_cases(base: str) -> list[Case]:
    """Every expected failure, once (``FAILURE`` must name each)."""
    bomb = Resource(gzip.compress(b"\0" * (20 << 20)), "application/rss+xml", headers=[("Content-Encoding", "gzip")])
    plain_rss = rss2([EntrySpec("t", "<p>b</p>", DATES[0], "g", None)])
    cases = [
        Case("/fail/404", Resource(b"gone", "text/html", status=404), False),
        Case("/fail/500", Resource(b"down", "text/html", status=500), False),
        Case("/fail/410", Resource(b"gone", "application/rss+xml", status=410), False),
        Case("/fail/loop", Resource(b"", status=302, headers=[("Location", "/fail/loop")]), False),
        Case("/fail/file-redirect", Resource(b"", status=302, headers=[("Location", "file:///etc/passwd")]), False),
        Case("/fail/ftp-redirect", Resource(b"", status=301, headers=[("Location", "ftp://example.org/x")]), False),
        Case("/fail/bad-gzip", Resource(plain_rss, "application/rss+xml", headers=[("Content-Encoding", "gzip")]),
             False),
        Case("/fail/bomb", bomb, False),
        Case("/fail/too-large", Resource(b"<rss>" + b" " * (3 << 20) + b"</rss>", "application/rss+xml"), False),
        Case("/fail/slow", Resource(plain_rss, "application/rss+xml", delay=14), False),
        Case("/fail/png", Resource(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"), False),
        Case("/fail/empty", Resource(b"", "application/rss+xml"), False),
        Case("/fail/garbage-xml", Resource(b'<?xml version="1.0"?><<<>>>&&&<\x00>', "application/rss+xml"), False),
        Case("/fail/json-not-feed", Resource(b'{"hello": "world"}', "application/json"), False),
        Case("/fail/json-array", Resource(b"[1, 2, 3]", "application/json"), False),
        Case("/fail/invalid-json", Resource(b'{"version": "1.1", "items": [', "application/feed+json"), False),
        Case("/private/feed.xml", Resource(plain_rss, "application/rss+xml"), False),
        Case("/fail/text", Resource(b"just some words", "text/plain"), False),
    ]
    return cases


def corpus(n: int, seed: int, base: str, light: bool = False) -> list[Case]:
    """``n`` feeds and every expected failure once; ``light`` for the test suite (fewer entries)."""
    rng = random.Random(seed)
    return feed_cases(n, rng, base, light) + failure_cases(base)


class QuietServer(SiteServer):
    """The corpus's server: a client that hangs up early (a timeout, a too-large body) is expected."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def serve(cases: list[Case], server: SiteServer) -> None:
    server.routes["/robots.txt"] = Resource(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    for case in cases:
        server.routes[case.path] = case.resource


# -- expectations and checks ----------------------------------------------------------------


def distinct_entries(xml: bytes) -> tuple[int, bool]:
    """feedparser's entries, exact repeats once; and whether feedparser parsed it without error."""
    parsed = feedparser.parse(xml, sanitize_html=False)
    keys = {json.dumps([e.get(k) for k in ("id", "title", "link", "summary", "published", "updated")],
                       default=str) for e in parsed.entries}
    return len(keys), not parsed.bozo


@dataclass
class Outcome:
    feeds: int = 0
    feeds_checked: int = 0  # feedparser parsed them without error (or JSON Feeds)
    posts: int = 0
    failures: int = 0
    second_run_written: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"feeds": self.feeds, "feeds_checked": self.feeds_checked, "posts": self.posts,
                "failures": self.failures, "second_run_written": self.second_run_written,
                "tracebacks": self.tracebacks, "problems": len(self.problems), "first_problems": self.problems[:20]}


def run_batches(urls: list[str], archive: Path, batches: int) -> tuple[list[dict], str]:
    """``postarc archive - --json`` over ``urls`` in ``batches`` invocations: the JSON lines, stderr."""
    size = -(-len(urls) // batches)
    lines, stderr = [], ""
    for start in range(0, len(urls), size):
        run = postarc("archive", "-", "--json", "--archive", str(archive), *SETTINGS,
                      stdin="\n".join(urls[start:start + size]) + "\n", timeout=900)
        lines += [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        stderr += run.stderr
    return lines, stderr


def check(cases: list[Case], server: SiteServer, archive: Path, batches: int = 3) -> Outcome:
    out = Outcome()
    urls = [server.url(c.path) for c in cases]
    by_url = {server.url(c.path): c for c in cases}
    results, stderr = run_batches(urls, archive, batches)
    out.tracebacks = stderr.count("Traceback")
    if out.tracebacks:
        out.problems.append("traceback on stderr: " + stderr[stderr.index("Traceback") - 300:][:800])
    seen_paths: list[str] = []
    for r in results:
        case = by_url[r["url"]]
        seen_paths += r["posts"]
        if len(set(r["posts"])) != len(r["posts"]):
            out.problems.append(f"{r['url']}: a path listed twice")
        if not case.feed:
            out.failures += 1
            if r["status"] != "failed" or not r["error"] or not FAILURE.match(r["error"]):
                out.problems.append(f"{r['url']}: expected a failure in the vocabulary, got {r['status']} {r['error']!r}")
            continue
        out.feeds += 1
        if r["status"] != "archived" or r["kind"] != "feed":
            out.problems.append(f"{r['url']}: {r['status']} {r['kind']} {r['error']!r}, expected an archived feed")
            continue
        if case.json_items is not None:
            expected, clean = case.json_items, True
        else:
            expected, clean = distinct_entries(case.xml)
        out.posts += len(r["posts"])
        if clean:
            out.feeds_checked += 1
            if len(r["posts"]) != expected:
                out.problems.append(f"{r['url']}: {len(r['posts'])} posts, {expected} distinct entries")
    if len(results) != len(urls):
        out.problems.append(f"{len(results)} JSON lines for {len(urls)} URLs")
    if len(set(seen_paths)) != len(seen_paths):
        out.problems.append("a path listed under two URLs")
    out.problems += catalogue_problems(archive)
    out.problems += title_problems(archive)
    again, stderr2 = run_batches(urls, archive, batches)
    out.second_run_written = sum(len(r["posts"]) for r in again)
    if out.second_run_written:
        out.problems.append(f"the second run wrote {out.second_run_written} posts: "
                            + ", ".join(r["url"] for r in again if r["posts"])[:300])
    if "Traceback" in stderr2:
        out.tracebacks += stderr2.count("Traceback")
        out.problems.append("traceback on the second run's stderr")
    return out


def catalogue_problems(archive: Path) -> list[str]:
    """Markdown files without a row, rows without a file (read apart from ``postarc verify``)."""
    if not (archive / "state.sqlite").is_file():
        return [f"{archive}: no catalogue (did postarc run?)"]
    db = sqlite3.connect(archive / "state.sqlite")
    rows = {f"{path}.md" for (path,) in db.execute("SELECT path FROM posts")}
    db.close()
    files = {str(p.relative_to(archive / "posts")) for p in (archive / "posts").rglob("*.md")}
    return ([f"{f}: Markdown file without a catalogue row" for f in sorted(files - rows)]
            + [f"{r}: catalogue row without its file" for r in sorted(rows - files)])


def title_problems(archive: Path) -> list[str]:
    problems = []
    for md in (archive / "posts").rglob("*.md"):
        fm, _ = read_front_matter(md.read_text(encoding="utf-8"))
        for name in ("title", "author"):
            if TAG.search(str(fm.get(name, ""))):
                problems.append(f"{md.name}: a tag in its {name}: {str(fm[name])[:100]!r}")
        for category in fm.get("categories") or []:
            if TAG.search(str(category)):
                problems.append(f"{md.name}: a tag in a category: {category!r}")
        if len(str(fm.get("title", ""))) > 200:
            problems.append(f"{md.name}: a title of {len(str(fm['title']))} characters")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=520, help="feeds to make (default 520)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--light", action="store_true", help="fewer entries a feed, rarer 5 000-deep bodies")
    args = parser.parse_args()
    with QuietServer() as server, tempfile.TemporaryDirectory() as tmp:
        cases = corpus(args.n, args.seed, server.base, light=args.light)
        serve(cases, server)
        started = time.monotonic()
        outcome = check(cases, server, Path(tmp) / "archive", args.batches)
        result = {"seed": args.seed, "light": args.light, "urls": len(cases), **outcome.as_json(),
                  "seconds": round(time.monotonic() - started, 1)}
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()
    sys.exit(1 if outcome.problems else 0)


if __name__ == "__main__":
    main()
