"""``postarc reextract``: every post rebuilt from the WARC files alone, with the origin gone."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from crawler.demo.server import SiteServer
from crawler.demo.site import build_routes
from crawler.capture import WarcCapture, warc_files
from crawler.middlewares import REPLAY_FLAG, WarcCaptureMiddleware
from crawler.state import ArchiveState
from tests.helpers import postarc, posts_of
from tests.ports import refusing_socket
from tests.replay_helpers import EXTRA_ITEMS, crawl, extra_routes



# Between the two crawls one post changes (run 2 rewrites it as an update) and one is added,
# with an image whose host refuses connections: archived incomplete, to be retried by a crawl
# (posts.incomplete_runs = 1), which a rebuild must leave as it is. Its port stays refused
# until the rebuild's traps listen on that very socket.
_GONE_SOCKET = refusing_socket()
GONE = f"http://127.0.0.1:{_GONE_SOCKET.getsockname()[1]}/gone.png"
SECOND_ITEMS = [
    *[(g, t, d, b + "<p>第二次抓取时正文改了。</p>" if g == "script" else b) for g, t, d, b in EXTRA_ITEMS],
    ("later", "第二次抓取才出现的帖子", "Tue, 02 Jan 2024 08:00:00 GMT",
     f'<p>只在第二次抓取时出现。</p><p><img src="{GONE}"></p>'),
]


def hosts_of(archive: Path) -> set[tuple[str, int]]:
    """(host, port) of every URL the crawl requested (its request records: not the proxied URL
    an image is also recorded under, which nobody fetched)."""
    found = set()
    for warc in (archive / "warc").glob("*.warc.gz"):
        with warc.open("rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type != "request":
                    continue
                url = urlsplit(record.rec_headers.get_header("WARC-Target-URI") or "")
                if url.scheme in ("http", "https"):
                    found.add((url.hostname, url.port or {"http": 80, "https": 443}[url.scheme]))
    return found


def listening_trap(host: str, port: int) -> socket.socket:
    trap = socket.socket()
    trap.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    trap.bind((host, port))
    trap.listen(8)
    trap.setblocking(False)
    return trap


def files_of(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def tables_of(state: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(state)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("posts", "sources", "runs", "payloads")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def crawled_twice(tmp_path_factory: pytest.TempPathFactory):
    """Two crawls of the demo aggregator plus a feed that changes between them; then the origin
    stops and a listening socket takes the port of every host of the crawl (the origin's, and
    the image host that refused), to catch any connection a rebuild would make."""
    tmp = tmp_path_factory.mktemp("reextract")
    archive = tmp / "data"
    with SiteServer() as site:
        site.routes.update(build_routes(site.base))
        site.routes.update(extra_routes(site.base, EXTRA_ITEMS))
        crawl(site, archive, tmp)
        site.routes.update(extra_routes(site.base, SECOND_ITEMS))
        crawl(site, archive, tmp)
        origin = urlsplit(site.base)
    gone = (urlsplit(GONE).hostname, urlsplit(GONE).port)
    hosts = hosts_of(archive) | {gone}
    assert (origin.hostname, origin.port) in hosts and len(hosts) == 2, hosts
    traps = [listening_trap(host, port) for host, port in sorted(hosts - {gone})]
    _GONE_SOCKET.listen(8)
    _GONE_SOCKET.setblocking(False)
    traps.append(_GONE_SOCKET)
    yield archive, tmp / "sources.yaml", traps
    for trap in traps:
        trap.close()


@pytest.fixture(scope="module")
def rebuilt(crawled_twice):
    archive, _sources, traps = crawled_twice
    before = files_of(archive / "posts"), tables_of(archive / "state.sqlite"), files_of(archive / "warc")
    run = postarc("reextract", "--archive", str(archive), timeout=300)
    return archive, before, run, traps


def test_the_archive_under_test_has_what_a_rebuild_must_get_right(crawled_twice):
    archive, _sources, _trap = crawled_twice
    posts = {fm["guid"]: fm for fm, _body in posts_of(archive).values()}
    assert len(posts) == 9
    assert "updated" in posts["script"] and "updated" not in posts["undated"]  # run 2 rewrote one post
    db = sqlite3.connect(archive / "state.sqlite")
    runs = db.execute("SELECT warc_files FROM runs").fetchall()
    assert len(runs) == 2 and all(r[0] != "[]" for r in runs)
    assert db.execute("SELECT guid FROM posts WHERE incomplete_runs > 0").fetchall() == [("later",)]
    db.close()


def test_every_post_and_image_comes_back_byte_for_byte(rebuilt):
    archive, (posts_before, _tables, _warcs), run, _trap = rebuilt
    assert run.returncode == 0, run.stderr[-3000:]
    assert "9 of 9 posts rebuilt from the WARC files: 9 identical, 0 changed, 0 not rebuilt" in run.stderr
    assert "run 1 (feeds" in run.stderr and "run 2 (feeds" in run.stderr  # each post by the run that wrote it
    assert files_of(archive / "posts") == posts_before
    assert "changed:" not in run.stdout


def test_no_network_and_nothing_else_changes(rebuilt):
    archive, (_posts, tables_before, warcs_before), _run, traps = rebuilt
    for trap in traps:
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody knocked on any host of the crawl
    assert tables_of(archive / "state.sqlite") == tables_before  # catalogue, crawl state, run records
    assert files_of(archive / "warc") == warcs_before  # nothing appended to the archive of record


def test_reports_what_changed_and_restores_it(rebuilt):
    archive, (posts_before, _tables, _warcs), _run, _trap = rebuilt
    md = sorted((archive / "posts").rglob("*.md"))
    edited, deleted = md[0], md[1]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nedited by hand\n", encoding="utf-8")
    deleted.unlink()
    run = postarc("reextract", "--archive", str(archive), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"changed: {edited.relative_to(archive)}" in run.stdout
    assert f"changed: {deleted.relative_to(archive)}" in run.stdout
    assert "7 identical, 2 changed, 0 not rebuilt" in run.stderr
    assert files_of(archive / "posts") == posts_before


def test_an_archive_without_run_records_needs_a_sources_file(crawled_twice, tmp_path):
    archive, sources, _trap = crawled_twice
    copy = tmp_path / "data"
    shutil.copytree(archive, copy)
    db = sqlite3.connect(copy / "state.sqlite")
    db.execute("DELETE FROM runs")
    db.commit()
    db.close()
    before = files_of(copy / "posts")
    run = postarc("reextract", "--archive", str(copy), timeout=300)
    assert run.returncode == 3 and "give --sources FILE" in run.stdout
    assert files_of(copy / "posts") == before
    # With the sources file every post is rebuilt from the newest captures; what differs from
    # the per-run rebuild (posts dated by their fetch time) is reported, the rest is identical.
    run = postarc("reextract", "--archive", str(copy), "--sources", str(sources), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "9 of 9 posts rebuilt" in run.stderr and "0 not rebuilt" in run.stderr
    after = files_of(copy / "posts")
    changed = {p for p in before if before[p] != after.get(p)}
    assert {l.split(": ", 1)[1] for l in run.stdout.splitlines() if l.startswith("changed: ")} == {
        f"posts/{p}" for p in changed}


def test_reextract_refuses_what_is_not_an_archive(tmp_path):
    run = postarc("reextract", "--archive", str(tmp_path))
    assert run.returncode == 2 and "not a postarc archive" in run.stderr


def test_capture_middleware_never_writes_a_replayed_response(tmp_path):
    """The hook in WarcCaptureMiddleware: a response served from the archive is not captured again."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("POSTARC_ARCHIVE_DIR", str(tmp_path))
    ours = {k: v for k, v in settings.copy_to_dict().items() if k.startswith(("WARC_", "POSTARC_"))}
    crawler = get_crawler(settings_dict=ours)
    capture, state = WarcCapture(warc_files(crawler.settings), crawler), ArchiveState(crawler.settings)
    mw = WarcCaptureMiddleware(capture, state, crawler.stats, crawler.settings.getint("WARC_REVISIT_MIN_SIZE"))
    request = Request("http://127.0.0.1:9/page.html")
    replayed = HtmlResponse(request.url, body=b"<p>from the archive</p>", flags=[REPLAY_FLAG], request=request)
    assert mw.process_response(request, replayed) is replayed
    assert not (tmp_path / "warc").exists()
    fetched = HtmlResponse(request.url, body=b"<p>from the network</p>", request=request)
    asyncio.run(mw.process_response(request, fetched))  # written on the capture service's writer thread
    asyncio.run(capture.close())
    state.close()
    assert len(list((tmp_path / "warc").glob("*.warc.gz"))) == 1


def test_posts_of_postarc_archive_runs_are_rebuilt_too(tmp_path):
    """One-off URLs (the url spider, a page and a feed) replay with their recorded arguments."""
    archive = tmp_path / "data"
    with SiteServer() as site:
        site.routes.update(build_routes(site.base))
        run = postarc("archive", f"{site.base}/posts/harbour.html", f"{site.base}/atom.xml", "--archive", str(archive))
        assert run.returncode == 0, run.stderr[-3000:]
    before = files_of(archive / "posts")
    run = postarc("reextract", "--archive", str(archive), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "(url, " in run.stderr and "2 of 2 posts rebuilt from the WARC files: 2 identical" in run.stderr
    assert "Scrapy 2" not in run.stderr  # warnings only unless -L says otherwise
    assert files_of(archive / "posts") == before
