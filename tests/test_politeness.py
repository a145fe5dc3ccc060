"""Politeness: Retry-After and backoff on retries, robots.txt, a user agent with a contact URL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from scrapy.http import Response
from scrapy.settings import Settings

from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import build_routes
from crawler.politeness import ContactUserAgent, retry_after
from tests.helpers import postarc, posts_of, write_sources


def test_retry_after_takes_seconds_or_an_http_date():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def asked(value: str | None) -> float | None:
        headers = {"Retry-After": value} if value is not None else {}
        return retry_after(Response("http://x/", status=503, headers=headers), now=now)

    assert asked("120") == 120
    assert asked(format_datetime(now + timedelta(seconds=90), usegmt=True)) == 90
    assert asked(format_datetime(now - timedelta(hours=1), usegmt=True)) == 0  # already past
    assert asked("soon") is None and asked(None) is None and asked("-5") is None


def test_retries_wait_as_asked_and_robots_and_user_agent_are_honoured(site: SiteServer, tmp_path: Path):
    routes = build_routes(site.base)
    busy = [("Retry-After", "1")]
    site.routes.update(routes)
    site.routes["/a.json"] = [Resource(b"busy", "text/plain", status=503, headers=busy), routes["/feed.json"]]
    site.routes["/b.xml"] = Resource(b"come back tomorrow", "text/plain", status=429,
                                     headers=[("Retry-After", "3600")])
    site.routes["/c.xml"] = [Resource(b"oops", status=500), Resource(b"oops", status=502), routes["/atom.xml"]]
    site.routes["/private/feed.xml"] = routes["/rss.xml"]  # robots.txt: Disallow: /private/
    sources = write_sources(tmp_path, f"""sources:
  - {{name: a, url: "{site.base}/a.json"}}
  - {{name: b, url: "{site.base}/b.xml"}}
  - {{name: c, url: "{site.base}/c.xml"}}
  - {{name: d, url: "{site.base}/private/feed.xml"}}
""")
    archive = tmp_path / "data"
    run = postarc("crawl", "--only", "a,b,c", "--sources", str(sources), "--archive", str(archive),
                  "-s", "POSTARC_RETRY_BACKOFF=0.1", "-s", "POSTARC_CONTACT_URL=https://example.org/our-crawler")
    assert run.returncode == 3, run.stderr[-3000:]
    requested = [path for path, _h in site.log]
    assert requested.count("/b.xml") == 1  # an hour is past POSTARC_RETRY_AFTER_MAX: next run
    # Each retry is sent only once its wait is over, counted from when the server answered:
    # Retry-After's second after the 503, then the backoff's 0.1 s and 0.2 s after the 500 and 502.
    for path, statuses, waits in (("/a.json", [503, 200], [1.0]), ("/c.xml", [500, 502, 200], [0.1, 0.2])):
        exchanges = [e for e in site.exchanges if e.path == path]
        assert [e.status for e in exchanges] == statuses
        for before, after, wait in zip(exchanges, exchanges[1:], waits):
            assert after.arrived - before.answered >= wait, (path, before, after)
    assert "source b failed: failed: HTTP 429" in run.stderr and "not retrying in this run" in run.stderr
    log = next((archive / "logs").glob("crawl-*.log")).read_text(encoding="utf-8")
    assert f"retrying {site.base}/a.json in 1.0 s (Retry-After)" in log
    assert f"retrying {site.base}/c.xml in 0.1 s (backoff)" in log
    assert f"retrying {site.base}/c.xml in 0.2 s (backoff)" in log
    assert {fm["guid"] for fm, _b in posts_of(archive).values()} == {
        "demo-json-feed-post", "tag:demo,2024:atom-release-notes"}
    agents = {headers["User-Agent"] for _p, headers in site.log}
    assert len(agents) == 1
    agent = agents.pop()
    assert agent.startswith("postarc/") and agent.endswith(" (+https://example.org/our-crawler)")

    # robots.txt is obeyed (Disallow: /private/), and a USER_AGENT of one's own wins.
    seen = len(site.log)
    run = postarc("crawl", "--only", "d", "--sources", str(sources), "--archive", str(archive),
                  "-s", "USER_AGENT=my-archiver/1.0")
    assert run.returncode == 3, run.stderr[-3000:]
    assert "source d failed" in run.stderr and "robots.txt" in run.stderr
    assert [p for p, _h in site.log[seen:]] == ["/robots.txt"]
    assert {headers["User-Agent"] for _p, headers in site.log[seen:]} == {"my-archiver/1.0"}


def test_user_agent_names_a_contact_url_only_when_the_operator_gives_one():
    def agent(**cmdline: str) -> str:
        settings = Settings()
        settings.setmodule("crawler.settings", priority="project")
        settings.setdict(cmdline, priority="cmdline")
        ContactUserAgent().update_settings(settings)
        return settings["USER_AGENT"]

    assert agent().startswith("postarc/") and " " not in agent()
    assert agent(POSTARC_CONTACT_URL="https://example.org/crawl").endswith(" (+https://example.org/crawl)")
