"""Incremental runs against a local aggregator: 304s, no refetch, updates in place, resume, lock.

Every run is the real ``postarc crawl`` in its own process; ``SiteServer.log`` shows exactly
which requests each run made.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from archive.catalogue import SCHEMA, Catalogue
from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import POSTS, _rss, build_routes, sources_yaml
from crawler.lock import ArchiveLock
from crawler.runner import log_file
from tests.helpers import REPO, postarc, posts_of, warc_records, write_sources

FEEDS = {"/rss.xml", "/atom.xml", "/feed.json"}


def files_state(archive: Path) -> dict[str, tuple[int, bytes]]:
    """Every Markdown file: (mtime in ns, bytes)."""
    return {str(p.relative_to(archive)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((archive / "posts").rglob("*.md"))}


def crawl(sources: Path, archive: Path, *extra: str):
    return postarc("crawl", "--sources", str(sources), "--archive", str(archive), *extra)


def guid_of(text: bytes) -> str:
    return next(line.split(": ", 1)[1] for line in text.decode().splitlines() if line.startswith("guid: "))


def responses_in(archive: Path, warc_name_part: str) -> dict[str, int]:
    """Target URI -> HTTP status of the response records in the WARC files of one run (by pid)."""
    return {rec.rec_headers["WARC-Target-URI"]: int(rec.http_headers.get_statuscode())
            for name, rec, _p in warc_records(archive) if rec.rec_type == "response" and warc_name_part in name}


def test_unchanged_feeds_cost_only_conditional_requests_and_a_changed_post_is_rewritten(
        site: SiteServer, tmp_path: Path):
    routes = build_routes(site.base)
    routes["/rss.xml"].etag = '"rss-v1"'
    routes["/atom.xml"].last_modified = "Sat, 02 Mar 2024 01:30:00 GMT"
    routes["/feed.json"].etag = 'W/"json-v1"'
    site.routes.update(routes)
    sources = write_sources(tmp_path, sources_yaml(site.base))
    archive = tmp_path / "data"

    first = crawl(sources, archive)
    assert first.returncode == 0, first.stderr[-3000:]
    before = files_state(archive)
    assert len(before) == 5

    # Second run: nothing changed. Only robots.txt and conditional feed requests; 304s.
    seen = len(site.log)
    second = crawl(sources, archive)
    assert second.returncode == 0, second.stderr[-3000:]
    requests = site.log[seen:]
    assert sorted(path for path, _h in requests) == ["/atom.xml", "/feed.json", "/robots.txt", "/rss.xml"]
    sent = {path: headers for path, headers in requests}
    assert sent["/rss.xml"]["If-None-Match"] == '"rss-v1"'
    assert sent["/feed.json"]["If-None-Match"] == 'W/"json-v1"'
    assert sent["/atom.xml"]["If-Modified-Since"] == "Sat, 02 Mar 2024 01:30:00 GMT"
    assert second.stderr.count("not modified") == 3
    assert files_state(archive) == before  # not rewritten: same bytes, same mtime
    # The 304s are in the WARC, as responses, with the conditional request beside them.
    pid_part = second.stderr.split("crawl-")[1].split(".log")[0].rsplit("-", 1)[1]
    statuses = responses_in(archive, f"-{pid_part}.warc.gz")
    assert {uri.rsplit("/", 1)[1]: s for uri, s in statuses.items() if uri.endswith(tuple(FEEDS))} == {
        "rss.xml": 304, "atom.xml": 304, "feed.json": 304}

    # One post changes (same guid, new text) and one drops out of the feed.
    slug, title, author, date, body = POSTS[0]
    changed = [(slug, title, author, date, body.replace("不曾停歇的监管脚步", "更新：不曾停歇的监管脚步")), POSTS[1]]
    site.routes["/rss.xml"] = Resource(_rss(site.base, changed), "application/rss+xml; charset=utf-8",
                                       chunked=True, etag='"rss-v2"')
    seen = len(site.log)
    third = crawl(sources, archive)
    assert third.returncode == 0, third.stderr[-3000:]
    paths = sorted(path for path, _h in site.log[seen:])
    # The changed post's page and image are fetched again; the unchanged one's are not.
    assert paths == ["/atom.xml", "/feed.json", "/img/harbour.png", "/posts/harbour.html", "/robots.txt", "/rss.xml"]
    after = files_state(archive)
    assert set(after) == set(before)  # the post that left the feed is kept
    rewritten = [rel for rel in before if after[rel] != before[rel]]
    assert len(rewritten) == 1
    text = after[rewritten[0]][1].decode()
    assert guid_of(after[rewritten[0]][1]) == "demo-harbour"
    assert "\nupdated: " in text and "更新：不曾停歇的监管脚步" in text
    # Old and new versions of the article are both in the WARC.
    pages = [rec for _n, rec, _p in warc_records(archive)
             if rec.rec_type in ("response", "revisit") and rec.rec_headers["WARC-Target-URI"].endswith("/rss.xml")]
    assert len(pages) == 3  # 200, 304, 200
    db = sqlite3.connect(archive / "state.sqlite")
    assert db.execute("SELECT etag FROM sources WHERE name='demo-hot'").fetchone() == ('"rss-v2"',)
    assert db.execute("SELECT updated IS NOT NULL FROM posts WHERE guid='demo-harbour'").fetchone() == (1,)
    assert "demo-hot        0     1     1" in third.stderr  # new, updated, unchanged


def test_without_validators_unchanged_posts_are_not_fetched_again(demo_site: SiteServer, demo_sources: Path,
                                                                  tmp_path: Path):
    archive = tmp_path / "data"
    assert crawl(demo_sources, archive).returncode == 0
    before = files_state(archive)
    seen = len(demo_site.log)
    run = crawl(demo_sources, archive)
    assert run.returncode == 0, run.stderr[-3000:]
    # The feeds come back whole (200), but no article page and no image is requested.
    assert sorted(p for p, _h in demo_site.log[seen:]) == ["/atom.xml", "/feed.json", "/robots.txt", "/rss.xml"]
    assert files_state(archive) == before
    assert "demo-hot        0     0     3" in run.stderr


def busy_then(resource: Resource, times: int = 1) -> list[Resource]:
    """``times`` answers of 503, then ``resource`` for good (``SiteServer`` takes a list in turn)."""
    return [*[Resource(b"busy", "text/plain", status=503) for _ in range(times)], resource]


def incomplete_runs(archive: Path) -> dict[str, int]:
    with sqlite3.connect(archive / "state.sqlite") as db:
        return dict(db.execute("SELECT guid, incomplete_runs FROM posts"))


def test_a_post_that_lost_its_page_or_an_image_for_now_is_fetched_again_until_whole(site: SiteServer,
                                                                                   tmp_path: Path):
    routes = build_routes(site.base)
    routes["/rss.xml"].etag = '"rss-v1"'
    site.routes.update(routes)
    # A 503 for one article page and for another post's image, in the first run only; the
    # dead link (404) stays dead.
    site.routes["/posts/harbour.html"] = busy_then(routes["/posts/harbour.html"])
    site.routes["/img/terminal.png"] = busy_then(routes["/img/terminal.png"])
    sources = write_sources(tmp_path, sources_yaml(site.base))
    archive = tmp_path / "data"
    once = ("-s", "RETRY_TIMES=0")

    first = crawl(sources, archive, *once)
    assert first.returncode == 0, first.stderr[-3000:]
    assert incomplete_runs(archive) == {"demo-harbour": 1, "demo-rust-release": 1, "demo-dead-link": 0,
                                        "tag:demo,2024:atom-release-notes": 0, "demo-json-feed-post": 0}
    with sqlite3.connect(archive / "state.sqlite") as db:
        assert db.execute("SELECT etag FROM sources WHERE name='demo-hot'").fetchone() == (None,)
    assert ("postarc: 2 post(s) of source demo-hot lack a page or an image that failed for now; "
            "the next run fetches them again") in first.stderr

    # The feed comes back whole (no validator was stored), and just what was missing is fetched.
    seen = len(site.log)
    second = crawl(sources, archive, *once)
    assert second.returncode == 0, second.stderr[-3000:]
    requests = site.log[seen:]
    assert "If-None-Match" not in dict(requests)["/rss.xml"]
    assert sorted(path for path, _h in requests) == [
        "/atom.xml", "/feed.json", "/img/harbour.png", "/img/terminal.png", "/posts/harbour.html",
        "/posts/rust-release.html", "/robots.txt", "/rss.xml"]
    assert set(incomplete_runs(archive).values()) == {0}
    assert "the next run fetches them again" not in second.stderr
    assert "demo-hot        0     2     1" in second.stderr  # new, updated, unchanged
    rust = next(p for p in (archive / "posts").rglob("*.md") if guid_of(p.read_bytes()) == "demo-rust-release")
    assert [f.suffix for f in rust.with_suffix("").iterdir()] == [".png"]

    # Whole now: the validators are stored, and the next run is all 304s.
    seen = len(site.log)
    third = crawl(sources, archive, *once)
    assert third.returncode == 0, third.stderr[-3000:]
    assert sorted(path for path, _h in site.log[seen:]) == ["/atom.xml", "/feed.json", "/robots.txt", "/rss.xml"]
    assert dict(site.log[seen:])["/rss.xml"]["If-None-Match"] == '"rss-v1"'


def test_a_post_is_retried_only_so_many_runs(site: SiteServer, tmp_path: Path):
    routes = build_routes(site.base)
    routes["/rss.xml"].etag = '"rss-v1"'
    site.routes.update(routes)
    site.routes["/img/terminal.png"] = busy_then(routes["/img/terminal.png"], times=10)
    sources = write_sources(tmp_path, sources_yaml(site.base))
    archive = tmp_path / "data"
    args = ("-s", "RETRY_TIMES=0", "-s", "POSTARC_RETRY_INCOMPLETE=2")

    for _ in range(4):
        run = crawl(sources, archive, *args)
        assert run.returncode == 0, run.stderr[-3000:]
    # Archived once and retried twice; then left as it is, and the feed answers 304.
    assert [path for path, _h in site.log].count("/img/terminal.png") == 3
    assert [path for path, _h in site.log].count("/posts/rust-release.html") == 3
    assert incomplete_runs(archive)["demo-rust-release"] == 3
    assert "If-None-Match" in dict(site.log[-4:]).get("/rss.xml", {})


def test_an_interrupted_crawl_is_resumed_without_refetching_what_finished(site: SiteServer, tmp_path: Path):
    routes = build_routes(site.base)
    routes["/rss.xml"].etag = '"v1"'
    pages = ["/posts/harbour.html", "/posts/rust-release.html"]  # the RSS feed's live articles
    for path in pages:  # each is slow the first time it is asked for
        routes[path] = [Resource(routes[path].body, gzip=True, delay=3), routes[path]]
    site.routes.update(routes)
    sources = write_sources(tmp_path, f"sources:\n  - name: hot\n    url: {site.base}/rss.xml\n"
                                      f"    follow_links: true\n")
    archive = tmp_path / "data"
    # One request at a time, so SIGTERM finds one article in flight and the rest still in the
    # scheduler (a graceful stop finishes what the downloader holds, and drops the queue).
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources), "--archive", str(archive),
           "-s", "CONCURRENT_REQUESTS=1", "-s", "AUTOTHROTTLE_ENABLED=0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p in pages for p, _h in site.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err[-3000:]  # interrupted: the next run resumes
    assert "interrupted" in err
    assert not list((archive / "warc").glob("*.open"))
    done = {fm["link"].split(site.base)[1] for fm, _b in posts_of(archive).values()} & set(pages)
    assert done and done != set(pages)
    fetched_first = [p for p, _h in site.log if p in pages]

    seen = len(site.log)
    resumed = crawl(sources, archive)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = [(p, h) for p, h in site.log[seen:]]
    feed_request = next(h for p, h in again if p == "/rss.xml")
    assert "If-None-Match" not in feed_request  # the interrupted run stored no validators
    assert sorted(p for p, _h in again if p in pages) == sorted(set(pages) - done)
    assert not set(fetched_first) & {p for p, _h in again if p in pages and p in done}
    assert {fm["guid"] for fm, _b in posts_of(archive).values()} == {
        "demo-harbour", "demo-rust-release", "demo-dead-link"}

    # And now the feed is validated: the run after that is a single 304.
    seen = len(site.log)
    assert crawl(sources, archive).returncode == 0
    assert [p for p, _h in site.log[seen:]] == ["/robots.txt", "/rss.xml"]


def test_only_due_sources_run(demo_site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"""\
rsshub: {demo_site.base}
sources:
  - {{name: hourly, url: "rsshub://feed.json", every: 1h}}
  - {{name: yearly, url: "{demo_site.base}/atom.xml", schedule: "0 3 1 1 *"}}
  - {{name: always, url: "{demo_site.base}/rss.xml"}}
""")
    archive = tmp_path / "data"

    def feeds_requested(*extra: str) -> list[str]:
        seen = len(demo_site.log)
        run = crawl(sources, archive, *extra)
        assert run.returncode == 0, run.stderr[-3000:]
        return sorted(p for p, _h in demo_site.log[seen:] if p in FEEDS)

    assert feeds_requested() == ["/atom.xml", "/feed.json", "/rss.xml"]  # never run: all due
    assert feeds_requested() == ["/rss.xml"]  # the timed ones just ran
    assert feeds_requested("--only", "hourly") == ["/feed.json"]
    assert feeds_requested("--all") == ["/atom.xml", "/feed.json", "/rss.xml"]
    db = sqlite3.connect(archive / "state.sqlite")
    assert {name for (name,) in db.execute("SELECT name FROM sources WHERE last_status='ok'")} == {
        "hourly", "yearly", "always"}


def test_nothing_due_exits_zero_without_crawling(demo_site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"sources:\n  - {{name: a, url: '{demo_site.base}/feed.json', every: 1d}}\n")
    assert crawl(sources, tmp_path / "data").returncode == 0
    seen = len(demo_site.log)
    run = crawl(sources, tmp_path / "data")
    assert run.returncode == 0 and "no source is due" in run.stderr
    assert demo_site.log[seen:] == []


def test_unknown_or_disabled_only_names_are_refused(tmp_path: Path):
    sources = write_sources(tmp_path, "sources:\n  - {name: a, url: 'http://127.0.0.1:9/f'}\n"
                                      "  - {name: b, url: 'http://127.0.0.1:9/g', enabled: false}\n")
    run = crawl(sources, tmp_path / "data", "--only", "a,zzz")
    assert run.returncode == 2 and "no source named zzz" in run.stderr
    run = crawl(sources, tmp_path / "data", "--only", "b")
    assert run.returncode == 2 and "source b is disabled" in run.stderr


def test_a_crawl_never_overlaps_another_on_the_same_archive(demo_site: SiteServer, demo_sources: Path,
                                                            tmp_path: Path):
    archive = tmp_path / "data"
    with ArchiveLock(archive):  # as a running crawl holds it
        run = crawl(demo_sources, archive)
    assert run.returncode == 4
    assert "another crawl" in run.stderr and "nothing done" in run.stderr
    assert not [p for p, _h in demo_site.log]
    # A lock file left by a dead crawl holds no lock: flock died with its process.
    (archive / ".lock").write_text("999999999\n")
    run = crawl(demo_sources, archive)
    assert run.returncode == 0, run.stderr[-3000:]


def test_logs_go_to_the_archive_and_only_warnings_to_stderr(demo_site: SiteServer, demo_sources: Path,
                                                           tmp_path: Path):
    archive = tmp_path / "data"
    run = crawl(demo_sources, archive)
    assert run.returncode == 0
    logs = list((archive / "logs").glob("crawl-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text(encoding="utf-8")
    assert "Spider opened" in text and "Spider closed (finished)" in text
    assert "Spider opened" not in run.stderr
    assert "WARNING: article" in run.stderr and "/gone/dead-link" in run.stderr  # the dead link
    assert f"log: {logs[0]}" in run.stderr


def test_progress_line_on_a_terminal(demo_site: SiteServer, tmp_path: Path):
    import os
    import pty

    demo_site.routes["/feed.json"].delay = 1.5  # long enough for a redraw or two
    sources = write_sources(tmp_path, f"sources:\n  - {{name: zhihu, url: '{demo_site.base}/feed.json'}}\n")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources),
                             "--archive", str(tmp_path / "data")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(60) == 0
    os.close(primary)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\r\x1b[Kfeeds 0/1  new 0  updated 0  unchanged 0" in screen
    assert "zhihu" in screen  # the table follows the progress line


def test_old_logs_are_pruned(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for day in range(1, 6):
        (logs / f"crawl-2026010{day}T000000Z-1.log").write_text("x")
    new = log_file(tmp_path, keep=3)
    assert new.parent == logs and new.name.startswith("crawl-") and not new.exists()
    assert sorted(p.name for p in logs.iterdir()) == ["crawl-20260104T000000Z-1.log", "crawl-20260105T000000Z-1.log"]
    log_file(tmp_path, keep=0)  # 0 keeps everything
    assert len(list(logs.iterdir())) == 2


def test_a_catalogue_from_before_the_retry_count_is_brought_up_to_date(tmp_path: Path):
    """``posts.incomplete_runs`` came later: an older ``state.sqlite`` gains it, its posts as whole."""
    old_schema = SCHEMA.replace("    incomplete_runs INTEGER NOT NULL DEFAULT 0,\n", "")
    assert old_schema != SCHEMA
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.executescript(old_schema)
        db.execute("INSERT INTO posts (source, guid, title, path, archived) VALUES ('s', 'g', 't', 'p', 'now')")
    db.close()
    catalogue = Catalogue(tmp_path / "state.sqlite")
    try:
        row = catalogue.post("s", "g")
        assert row is not None and row.incomplete_runs == 0
        row.incomplete_runs = 2
        catalogue.save_post(row)
        assert catalogue.post("s", "g").incomplete_runs == 2
    finally:
        catalogue.close()
