"""Every version of a post: three crawls of a site whose article changed between them (Chinese
and English text), and a page that changes only its visit counter. ``postarc history`` lists the
versions and diffs them; the front matter lists the earlier ones; reextract keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.frontmatter import read_front_matter
from archive.versions import body_text, version_hash
from crawler.demo.server import Resource, SiteServer
from tests.helpers import postarc, posts_of, write_sources

BODIES = [
    "<p>港区应急局一直在路上，检查了十三家企业。</p><p>The inspectors visited thirteen firms.</p>",
    "<p>港区安全局一直在路上，检查了十五家企业。</p><p>The inspectors visited fifteen firms.</p>",
    "<p>港区安全局一直在路上，检查了十五家企业，无事故。</p><p>The inspectors visited fifteen firms today.</p>",
]


def feed(base: str) -> bytes:
    items = "".join(f"<item><title>{title}</title><link>{base}/{slug}.html</link><guid>{slug}</guid>"
                    f"<pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate></item>"
                    for slug, title in (("story", "港区的检查"), ("counter", "Counted page")))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
            f"<link>{base}/</link><description>d</description>{items}</channel></rss>").encode()


def page(title: str, body: str, visits: int) -> Resource:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<header><nav><a href='/'>Home</a></nav></header>"
            f"<article><h1>{title}</h1>{body}</article>"
            f"<footer>Page served at 2026-12-0{visits % 9 + 1}: {visits} visits so far</footer></body></html>")
    return Resource(html.encode())


COUNTED = ("<p>This page says the same thing on every visit, and only its counter moves: "
           "a source like this must not make a version per crawl.</p>")


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("versions")
    archive = tmp / "data"
    with SiteServer() as site:
        sources = write_sources(tmp, f"sources:\n  - name: site\n    url: {site.base}/feed.xml\n"
                                     f"    follow_links: true\n")
        site.routes["/feed.xml"] = Resource(feed(site.base), "application/rss+xml")
        for n, body in enumerate(BODIES):
            site.routes["/story.html"] = page("港区的检查", body, 100 + n)
            site.routes["/counter.html"] = page("Counted page", COUNTED, 500 + n * 7)
            run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
            assert run.returncode == 0, run.stderr[-3000:]
    return archive


def test_the_version_hash_of_a_body_is_the_one_older_catalogues_hold() -> None:
    # Catalogues keep this hash: an archive's next run compares against it, so its value may not move.
    html = '<p>Hello <b>world</b>,\n  again</p><img src="a.png"><p>\u4e2d\u6587</p>'
    assert version_hash(" A  title\n", body_text(html)) == (
        "sha256:54c6a7a675c9e36e0cd63d525ec225a51b65507abe26b0c672091acb408f373c")


def test_three_versions_in_history_front_matter_and_diff(crawled: Path):
    posts = {front["link"].rsplit("/", 1)[1]: (path, front, body) for path, (front, body) in posts_of(crawled).items()}
    path, front, body = posts["story.html"]
    assert "无事故" in body and "today" in body  # the latest is the post
    assert [v["warc_record"] for v in front["versions"]] and len(front["versions"]) == 2
    assert all(v["content_hash"].startswith("sha256:") for v in front["versions"])

    run = postarc("history", "--archive", str(crawled), path)
    assert run.returncode == 0, run.stderr
    assert f"{path}: 3 version(s)" in run.stdout
    # By default the last two; the Chinese change is marked by its characters, not its sentence.
    assert "十五家企业{+，无事故+}" in run.stdout and "fifteen firms{+ today+}." in run.stdout, run.stdout
    run = postarc("history", "--archive", str(crawled), "--from", "1", "--to", "2", front["link"])
    assert run.returncode == 0, run.stderr
    assert "港区[-应急-]{+安全+}局" in run.stdout and "十[-三-]{+五+}家" in run.stdout, run.stdout
    assert "visited [-thirteen-]{+fifteen+} firms" in run.stdout, run.stdout
    run = postarc("history", "--archive", str(crawled), "--show", "1", path)  # the first version, as written
    assert run.returncode == 0, run.stderr
    first, first_body = read_front_matter(run.stdout)
    assert "十三家企业" in first_body and "versions" not in first and first["link"] == front["link"]


def test_a_page_that_changes_only_its_counter_has_one_version(crawled: Path):
    posts = {front["link"].rsplit("/", 1)[1]: (path, front) for path, (front, _body) in posts_of(crawled).items()}
    path, front = posts["counter.html"]
    assert "versions" not in front
    run = postarc("history", "--archive", str(crawled), path)
    assert run.returncode == 0 and f"{path}: 1 version(s)" in run.stdout, run.stdout + run.stderr


def test_reextract_keeps_the_versions(crawled: Path):
    before = posts_of(crawled)
    run = postarc("reextract", "--archive", str(crawled))
    assert run.returncode == 0, run.stderr[-3000:]
    after = posts_of(crawled)
    assert after == before
    story = next(front for front, _body in after.values() if front["link"].endswith("/story.html"))
    assert len(story["versions"]) == 2


def test_history_of_an_unknown_post(crawled: Path):
    run = postarc("history", "--archive", str(crawled), "https://nowhere.example/x")
    assert run.returncode == 1 and "no such post" in run.stderr and "Traceback" not in run.stderr


def test_replay_shows_the_versions_and_marks_the_changes(crawled: Path):
    import urllib.parse

    import lxml.html

    from tests.replay_helpers import start_replay

    path = next(p for p, (front, _b) in posts_of(crawled).items() if front["link"].endswith("/story.html"))
    post = "/posts/" + urllib.parse.quote(path.removesuffix(".md"))
    replay = start_replay(crawled)
    try:
        status, _h, html = replay.get(post)
        assert status == 200
        page = lxml.html.fromstring(html)
        assert len(page.cssselect("section.versions li")) == 3
        assert [e.text_content() for e in page.cssselect(".diff ins")] == ["，无事故", " today"]
        captures = [a.get("href") for a in page.cssselect("section.versions a.capture")]
        assert len(captures) == 3
        for href in captures:  # each version's capture replays, and shows that version's text
            status, _h, body = replay.get(href)
            assert status == 200, href
        assert "十三家" in replay.get(captures[0])[2].decode() and "无事故" in replay.get(captures[2])[2].decode()
        status, _h, html = replay.get(post + "?from=1&to=2")
        page = lxml.html.fromstring(html)
        assert [e.text_content() for e in page.cssselect(".diff del")] == ["应急", "三", "thirteen"]
        assert [e.text_content() for e in page.cssselect(".diff ins")] == ["安全", "五", "fifteen"]
        assert replay.get(post + "?from=1&to=9")[0] == 400
    finally:
        replay.stop()


def test_revisit_fetches_recent_pages_again_conditionally(tmp_path: Path):
    """``revisit: 7d``: an edit the feed does not announce becomes a version; a page not modified
    answers 304 and makes none; a post older than the window is not fetched again."""
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    now = datetime.now(timezone.utc)
    dates = {"recent": now - timedelta(days=1), "old": now - timedelta(days=30)}
    archive = tmp_path / "data"
    with SiteServer() as site:
        items = "".join(f"<item><title>{slug} 帖子</title><link>{site.base}/{slug}.html</link><guid>{slug}</guid>"
                        f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate><description>一直在路上</description></item>"
                        for slug, date in dates.items())
        site.routes["/feed.xml"] = Resource(
            (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
             f"<link>{site.base}/</link><description>d</description>{items}</channel></rss>").encode(),
            "application/rss+xml")
        sources = write_sources(tmp_path, f"sources:\n  - name: site\n    url: {site.base}/feed.xml\n"
                                          f"    follow_links: true\n    revisit: 7d\n")

        def pages(n: int, etag: str) -> None:
            for slug in dates:
                resource = page(f"{slug} 帖子", BODIES[n], 1)
                resource.etag = f'"{slug}-{etag}"'
                site.routes[f"/{slug}.html"] = resource

        # Run 1 archives both; the pages are edited (feed unchanged) before run 2, not before run 3.
        expected_etag = {2: '"recent-a"', 3: '"recent-b"'}
        for run_no, (n, etag) in enumerate(((0, "a"), (1, "b"), (1, "b")), 1):
            pages(n, etag)
            site.log.clear()
            run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
            assert run.returncode == 0, run.stderr[-3000:]
            asked = dict(site.log)
            if run_no > 1:
                assert "/old.html" not in asked  # outside the window: skipped before any request
                assert asked["/recent.html"].get("If-None-Match") == expected_etag[run_no], asked
    posts = {front["link"].rsplit("/", 1)[1]: path for path, (front, _body) in posts_of(archive).items()}
    counts = {}
    for name, path in posts.items():
        run = postarc("history", "--archive", str(archive), path)
        assert run.returncode == 0, run.stderr
        counts[name] = run.stdout.splitlines()[0].split(": ")[1]
    # recent: the edit is a version, the 304 of run 3 none; old: never fetched again.
    assert counts == {"recent.html": "2 version(s)", "old.html": "1 version(s)"}


def test_a_post_archived_before_versions_were_recorded(tmp_path: Path):
    """An archive from a postarc without the versions table: the first change of a post enters
    the version it had (hash unknown, found in the WARC) and the new one; the diff works."""
    import sqlite3

    archive = tmp_path / "data"
    with SiteServer() as site:
        sources = write_sources(tmp_path, f"sources:\n  - name: site\n    url: {site.base}/feed.xml\n"
                                          f"    follow_links: true\n")
        site.routes["/feed.xml"] = Resource(feed(site.base), "application/rss+xml")
        site.routes["/counter.html"] = page("Counted page", COUNTED, 1)
        for n in (0, 1):
            site.routes["/story.html"] = page("港区的检查", BODIES[n], 1)
            run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
            assert run.returncode == 0, run.stderr[-3000:]
            if n == 0:
                with sqlite3.connect(archive / "state.sqlite") as db:
                    db.execute("DROP TABLE versions")
    path = next(p for p, (front, _b) in posts_of(archive).items() if front["link"].endswith("/story.html"))
    run = postarc("history", "--archive", str(archive), path)
    assert run.returncode == 0, run.stderr
    assert f"{path}: 2 version(s)" in run.stdout and "  1  " in run.stdout and "unknown" in run.stdout
    assert "港区[-应急-]{+安全+}局" in run.stdout, run.stdout
