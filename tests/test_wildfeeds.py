"""Feeds as the wild writes them through the real ``postarc archive`` (issue 16).

The shapes the issue names, one URL each, then a corpus of a few hundred generated feeds
(``bench/wildfeeds.py``: formats × guid habits × titles × bodies × dates × how they are served)
checked for the invariants: posts == feedparser's distinct entries, no traceback, every Markdown
file catalogued and listed once, no tag in a title, every failure in the documented words, and a
second run that writes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.catalogue import Catalogue
from archive.frontmatter import read_front_matter
from bench.wildfeeds import TAG, QuietServer, check, corpus, serve
from crawler.demo.server import Resource
from tests.helpers import postarc
from tests.ports import refusing_port


@pytest.fixture
def server() -> Iterator[QuietServer]:
    with QuietServer() as site:
        yield site


def rss(items: str, head: str = '<?xml version="1.0"?>') -> bytes:
    return f'{head}<rss version="2.0"><channel><title>T</title><link>http://x/</link>{items}</channel></rss>'.encode()


def shapes(base: str, refused: str) -> dict[str, tuple[Resource, int]]:
    """Path -> (resource, posts it must give)."""
    same = "".join(f"<item><title>Item {n}</title><guid>same-guid</guid><description>text {n}</description></item>"
                   for n in range(300))
    home = "".join(f"<item><title>Home {n}</title><link>{base}/</link><description>h {n}</description></item>"
                   for n in range(5))
    cdata = "".join(f"<item><title>C {n}</title><guid>c{n}</guid><description><![CDATA[<html><body><p>cdata body {n}"
                    f"</p></body></html>]]></description></item>" for n in range(3))
    doctype = '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/x.dtd">'
    images = (f"<item><title>Pictures</title><guid>img</guid><description>&lt;p&gt;two pictures&lt;img src='{base}"
              f"/gone.png'&gt;&lt;img src='{refused}/refused.png'&gt;&lt;/p&gt;</description></item>")
    deep = ("<item><title>Deep</title><guid>deep</guid><description>" + "&lt;div&gt;" * 5000
            + "deep text kept" + "&lt;/div&gt;" * 5000 + "</description></item>")
    hostile = ("<item><title>safe&lt;script&gt;location.href='http://evil/'&lt;/script&gt; description</title>"
               "<guid>hostile</guid><description>x</description><pubDate>Sat, 01 Jan 0001 00:00:00 GMT</pubDate></item>")
    json_feed = {"version": "1.0", "title": ["not", "text"], "items": [
        {"id": 1, "title": ["list", "title"], "content_html": ["a", "b"], "author": "Bob"},
        {"id": "2", "title": "Two", "content_text": "plain <b>text</b>", "authors": [{"name": "Ann"}]}]}
    return {
        "/same-guid.xml": (Resource(rss(same), "application/rss+xml"), 300),
        "/home-links.xml": (Resource(rss(home), "application/rss+xml"), 5),
        "/cdata.xml": (Resource(rss(cdata), "application/rss+xml"), 3),
        "/doctype.xml": (Resource(rss(cdata, head=doctype), "text/html"), 3),
        "/rss090.rdf": (Resource(b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
                                 b' xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>t</title>'
                                 b"<link>http://x/</link></channel><item><title>Old RSS</title><link>http://x/a</link>"
                                 b"</item></rdf:RDF>", "text/xml"), 1),
        "/channel.cdf": (Resource(b'<?xml version="1.0"?><CHANNEL HREF="http://x/"><TITLE>t</TITLE>'
                                  b'<ITEM HREF="http://x/a"><TITLE>A CDF item</TITLE><ABSTRACT>abs</ABSTRACT></ITEM>'
                                  b"</CHANNEL>", "application/xml"), 1),
        "/feed.json": (Resource(json.dumps(json_feed).encode(), "application/json"), 2),
        "/images.xml": (Resource(rss(images), "application/rss+xml"), 1),
        "/deep.xml": (Resource(rss(deep), "application/rss+xml"), 1),
        "/hostile.xml": (Resource(rss(hostile), "application/rss+xml"), 1),
    }


def archive_urls(urls: list[str], archive: Path, *extra: str):
    run = postarc("archive", "-", "--json", "--archive", str(archive), "-s", "RETRY_TIMES=0", *extra,
                  stdin="\n".join(urls) + "\n", timeout=600)
    return run, {r["url"]: r for r in map(json.loads, (line for line in run.stdout.splitlines() if line.startswith("{")))}


def test_the_issues_shapes_each_entry_once_as_text_in_plain_words(server: QuietServer, tmp_path: Path):
    refused = f"http://127.0.0.1:{refusing_port()}"
    cases = shapes(server.base, refused)
    for path, (resource, _) in cases.items():
        server.routes[path] = resource
    archive = tmp_path / "data"
    urls = [server.url(p) for p in cases]
    run, results = archive_urls(urls, archive, "--images", "local")

    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-5000:]
    for path, (_, posts) in cases.items():
        result = results[server.url(path)]
        assert (result["status"], result["kind"]) == ("archived", "feed"), (path, result)
        assert len(result["posts"]) == len(set(result["posts"])) == posts, (path, len(result["posts"]))
    # Images that fail say so in one line each, in the failure words.
    assert re.search(r"image \S+/gone\.png failed \(HTTP 404\); the post links it", run.stderr), run.stderr
    assert re.search(r"image \S+/refused\.png failed \(connection refused\); the post links it", run.stderr)

    posts = {}
    for md in (archive / "posts").rglob("*.md"):
        fm, body = read_front_matter(md.read_text(encoding="utf-8"))
        posts[fm["source"].removeprefix(server.base), fm["guid"]] = (md, fm, body)
        assert not TAG.search(fm["title"]) and not TAG.search(fm.get("author", "")), fm
        assert not any(TAG.search(c) for c in fm.get("categories") or []), fm
    assert len(posts) == sum(n for _, n in cases.values())
    _, fm, _ = posts["/hostile.xml", server.url("/hostile")]
    assert fm["title"] == "safe description"
    assert fm["date"].year != 2001  # "0001" is not this century: not believed, the fetch time is used
    assert "deep text kept" in posts["/deep.xml", server.url("/deep")][2]  # nested past any parser, its text stays
    json_titles = sorted(fm["title"] for (path, _), (_, fm, _) in posts.items() if path == "/feed.json")
    assert json_titles == ["(untitled)", "Two"]  # a list title is dropped, never its repr
    assert "plain \\<b>text\\</b>" in posts["/feed.json", "2"][2], posts["/feed.json", "2"][2]

    verify = postarc("verify", "--archive", str(archive))
    assert verify.returncode == 0, verify.stdout[-3000:]

    again, second = archive_urls(urls, archive, "--images", "local")
    assert "Traceback" not in again.stderr
    # Nothing new; only the post whose image was refused (a failure for now) is tried again, in place.
    rewritten = {url: r["posts"] for url, r in second.items() if r["posts"]}
    assert rewritten == {server.url("/images.xml"): results[server.url("/images.xml")]["posts"]}, rewritten
    assert sum(r["unchanged"] for r in second.values()) == len(posts) - 1


def test_verify_names_markdown_the_catalogue_lacks_and_rows_without_markdown(server: QuietServer, tmp_path: Path):
    items = "".join(f"<item><title>P {n}</title><guid>p{n}</guid><description>d</description></item>" for n in range(2))
    server.routes["/f.xml"] = Resource(rss(items), "application/rss+xml")
    archive = tmp_path / "data"
    run, _ = archive_urls([server.url("/f.xml")], archive)
    assert run.returncode == 0, run.stderr
    catalogue = Catalogue.of_archive(archive)
    first, second = [p.path for p in catalogue.posts()]
    catalogue.close()
    (archive / "posts" / f"{first}.md").unlink()
    stray = archive / "posts" / "2020" / "01" / "stray.md"
    stray.parent.mkdir(parents=True)
    stray.write_text("---\ntitle: stray\n---\n", encoding="utf-8")
    verify = postarc("verify", "--archive", str(archive))
    assert verify.returncode == 1
    assert f"Markdown file {archive / 'posts' / first}.md is missing" in verify.stdout
    assert f"{stray}: Markdown file not in the catalogue" in verify.stdout
    assert second not in verify.stdout


def test_a_corpus_of_wild_feeds_keeps_every_invariant(tmp_path: Path):
    with QuietServer() as site:
        cases = corpus(240, seed=7, base=site.base, light=True)
        serve(cases, site)
        outcome = check(cases, site, tmp_path / "data", batches=2)
    assert outcome.feeds == 240 and outcome.failures >= 15
    assert outcome.feeds_checked >= 200 and outcome.posts > 300
    assert outcome.tracebacks == 0
    assert not outcome.problems, outcome.problems[:20]
