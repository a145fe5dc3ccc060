"""Several ``postarc crawl --redis`` workers sharing one crawl, against a real ``redis-server``.

Each test starts its own redis-server (Debian's ``redis-server``; ``.ci/run`` installs it) on a
free 127.0.0.1 port with no persistence, and a local aggregator whose pages answer slowly
enough that every worker gets a share of the work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest

from bench.synthetic import noise_png
from crawler.demo.server import Resource, SiteServer
from crawler.lock import ArchiveBusy, ArchiveLock
from tests.conftest import needs_tool, require_tool
from tests.helpers import REPO, posts_of, warc_records, warcio_check, write_sources
from tests.ports import refusing_port, start_server

try:
    import redis
    import scrapy_redis  # noqa: F401  (the workers import it)
except ImportError:  # needs_tool below says so
    redis = None
pytestmark = needs_tool("redis-py and scrapy-redis (the test extra: pip install -e '.[test]')", redis)

FEEDS = 4
PER_FEED = 10
POSTS = FEEDS * PER_FEED


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    require_tool("redis-server (tests/install-tools: apt-get install redis-server)", binary)
    data = tmp_path / "redis"
    data.mkdir()

    def start(port: int) -> subprocess.Popen:  # its --port 0 means no TCP at all
        return subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready(port: int) -> bool:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

    proc, port = start_server(start, ready, "redis-server")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


#: The one post whose article link is dead (connection refused): archived from the feed text.
DEAD = 0


def aggregator(base: str, page_delay: float) -> dict[str, Resource]:
    """FEEDS feeds of PER_FEED posts each; every article page has its own image and a shared logo."""
    dead_base = f"http://127.0.0.1:{refusing_port()}"
    routes = {"/robots.txt": Resource(b"User-agent: *\nAllow: /\n", "text/plain"),
              "/img/logo.png": Resource(noise_png(999, 40, 40), "image/png")}
    for f in range(FEEDS):
        items = []
        for i in range(PER_FEED):
            n = f * PER_FEED + i
            routes[f"/img/{n}.png"] = Resource(noise_png(n, 30, 30), "image/png")
            summary = f"Body text of post {n}, long enough to be the article. "
            body = (f"<p>{summary * 20}</p>"
                    f'<p><img src="{base}/img/{n}.png"></p><p><img src="{base}/img/logo.png"></p>')
            routes[f"/post/{n}.html"] = Resource(
                f"<html><head><title>post {n}</title></head><body><article><h1>post {n}</h1>{body}"
                f"</article></body></html>".encode(), delay=page_delay)
            link = f"{dead_base if n == DEAD else base}/post/{n}.html"
            items.append(f"<item><title>post {n}</title><link>{link}</link><guid isPermaLink='false'>urn:test:{n}</guid>"
                         f"<pubDate>Fri, 29 Apr 2022 {f:02d}:{i:02d}:15 GMT</pubDate>"
                         f"<description>{escape(f'<p>{summary}</p>')}</description></item>")
            # The feed has a summary of the page: the page's body wins, with its images.
        feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>feed {f}</title>{"".join(items)}</channel></rss>'
        routes[f"/feed/{f}.xml"] = Resource(feed.encode(), "application/rss+xml", etag=f'"f{f}"', delay=0.5)
    return routes


def sources_file(tmp_path: Path, base: str) -> Path:
    lines = ["sources:"]
    for f in range(FEEDS):
        lines += [f"  - name: feed-{f}", f"    url: {base}/feed/{f}.xml", "    follow_links: true"]
    return write_sources(tmp_path, "\n".join(lines) + "\n")


def worker(sources: Path, archive: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    """One ``postarc crawl --redis`` process (its log goes to stderr: the test reads who did what)."""
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources), "--archive", str(archive),
         "--redis", url, "-s", "LOG_FILE=", "-s", "POSTARC_EXTRACT_WORKERS=1", "-s", "POSTARC_RETRY_BACKOFF=0.1",
         *extra],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def fetched(site: SiteServer, prefix: str) -> Counter[str]:
    return Counter(path for path, _headers in site.log if path.startswith(prefix))


def article_fetchers(archive: Path) -> Counter[str]:
    """WARC writer (``host-pid`` of the file name) of each article response."""
    who: Counter[str] = Counter()
    for name, rec, _payload in warc_records(archive):
        if rec.rec_type == "response" and "/post/" in rec.rec_headers.get_header("WARC-Target-URI"):
            who[name.split("-", 3)[3].rsplit(".warc.gz", 1)[0]] += 1
    return who


def assert_archived_once(archive: Path, url: str) -> None:
    """Every post once: one Markdown file per guid, the same rows in state.sqlite and Redis."""
    posts = posts_of(archive)
    guids = Counter(fm["guid"] for fm, _body in posts.values())
    assert guids == Counter({f"urn:test:{n}": 1 for n in range(POSTS)})
    with sqlite3.connect(archive / "state.sqlite") as db:
        rows = {(guid, path) for guid, path in db.execute("SELECT guid, path FROM posts")}
    on_disk = {(fm["guid"], path.removesuffix(".md")) for path, (fm, _body) in posts.items()}
    assert rows == on_disk
    client = redis.Redis.from_url(url, decode_responses=True)
    shared = {(json.loads(v)["guid"], json.loads(v)["path"]) for v in client.hvals("postarc:posts").__iter__()}
    client.close()
    assert shared == on_disk
    conversions = Counter(rec.rec_headers.get_header("WARC-Refers-To")
                          for _name, rec, _payload in warc_records(archive) if rec.rec_type == "conversion")
    assert len(conversions) == POSTS and set(conversions.values()) == {1}


def test_two_workers_archive_every_post_once(tmp_path: Path, redis_url: str):
    with SiteServer() as site:
        site.routes.update(aggregator(site.base, page_delay=0.3))
        sources = sources_file(tmp_path, site.base)
        archive = tmp_path / "data"
        workers = [worker(sources, archive, redis_url) for _ in range(2)]
        results = [finish(w) for w in workers]
        for code, err in results:
            assert code == 0, err[-4000:]
        # Each feed and each article fetched once, by one worker or the other.
        assert fetched(site, "/feed/") == Counter({f"/feed/{f}.xml": 1 for f in range(FEEDS)})
        assert fetched(site, "/post/") == Counter({f"/post/{n}.html": 1 for n in range(POSTS) if n != DEAD})
        who = article_fetchers(archive)
        assert len(who) == 2 and sum(who.values()) == POSTS - 1, who
        assert_archived_once(archive, redis_url)
        warcio_check(archive)
        assert not list((archive / "warc").glob("*.open"))
        # The shared logo: each worker's media pipeline fetches it once; a capture whose payload
        # another worker stored first is a revisit citing that worker's record (found in Redis).
        records = [rec for _n, rec, _p in warc_records(archive)]
        ids = {rec.rec_headers.get_header("WARC-Record-ID") for rec in records if rec.rec_type == "response"}
        logos = [rec for rec in records if rec.rec_type in ("response", "revisit")
                 and rec.rec_headers.get_header("WARC-Target-URI").endswith("/img/logo.png")]
        assert len(logos) == 2 and any(rec.rec_type == "response" for rec in logos)
        assert all(rec.rec_headers.get_header("WARC-Refers-To") in ids for rec in logos if rec.rec_type == "revisit")

        # The run is over: the next one fetches the feeds again (conditionally: 304) and nothing
        # else, but for the dead link's feed: a refused connection may work next time, so its
        # validators were not kept (whichever worker archived the post), and it is asked again.
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert not client.exists("postarc:feeds:run") and not client.keys("postarc:feeds:dupefilter:*")
        assert client.zcard("postarc:feeds:requests") == 0 and not client.keys("postarc:feeds:leases:*")
        client.close()
        site.log.clear()
        again = [finish(w) for w in [worker(sources, archive, redis_url) for _ in range(2)]]
        for code, err in again:
            assert code == 0, err[-4000:]
        assert fetched(site, "/feed/") == Counter({f"/feed/{f}.xml": 1 for f in range(FEEDS)})
        unconditional = [p for p, h in site.log if p.startswith("/feed/") and not h.get("If-None-Match")]
        assert unconditional == [f"/feed/{DEAD // PER_FEED}.xml"]
        assert not fetched(site, "/post/")
        assert len(posts_of(archive)) == POSTS


def test_a_killed_worker_loses_nothing(tmp_path: Path, redis_url: str):
    """SIGKILL one worker mid-crawl: the other takes back its leased requests once its heartbeat
    stops; a worker started afterwards repairs the dead one's WARC file."""
    with SiteServer() as site:
        site.routes.update(aggregator(site.base, page_delay=1.0))
        sources = sources_file(tmp_path, site.base)
        archive = tmp_path / "data"
        # The third worker's run is a second run: without POSTARC_RETRY_INCOMPLETE=0 it would
        # archive the dead link's post again (a refused connection may work next time).
        timeout = ("-s", "POSTARC_REDIS_WORKER_TIMEOUT=3", "-s", "POSTARC_RETRY_INCOMPLETE=0")
        victim, survivor = worker(sources, archive, redis_url, *timeout), worker(sources, archive, redis_url, *timeout)
        # Until the victim holds leased requests (articles in flight: each answer takes 1 s) and
        # has written a record (its WARC file is open). Counting the site's hits alone could kill
        # it while the survivor had taken them all; leases alone, before it had written anything.
        client = redis.Redis.from_url(redis_url)
        leases = f"postarc:feeds:leases:{socket.gethostname()}:{victim.pid}"
        for _ in range(1200):
            if (client.hlen(leases) >= 2 and sum(fetched(site, "/post/").values()) >= 6
                    and list((archive / "warc").glob(f"*-{victim.pid}.warc.gz.open"))) or victim.poll() is not None:
                break
            time.sleep(0.05)
        client.close()
        assert victim.poll() is None, "the victim ended before it held any request"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        code, err = finish(survivor)
        assert code == 0, err[-4000:]
        assert "back in the queue" in err
        # The dead worker's open WARC file is repaired by the next worker to start.
        assert list((archive / "warc").glob("*.open"))
        code, err = finish(worker(sources, archive, redis_url, *timeout))
        assert code == 0, err[-4000:]
        assert not list((archive / "warc").glob("*.open"))
        assert_archived_once(archive, redis_url)
        warcio_check(archive)
        # Only what the dead worker held was fetched again.
        assert max(fetched(site, "/post/").values()) <= 2


def test_without_redis_the_archive_stays_locked_against_workers(tmp_path: Path, redis_url: str):
    """A lone crawl holds the archive exclusively; workers share it, and keep a lone crawl out."""
    archive = tmp_path / "data"
    with ArchiveLock(archive), SiteServer() as site:
        site.routes.update(aggregator(site.base, page_delay=0))
        run = finish(worker(sources_file(tmp_path, site.base), archive, redis_url))
    assert run[0] == 4 and "another crawl" in run[1]
    with ArchiveLock(archive, shared=True), ArchiveLock(archive, shared=True), \
            pytest.raises(ArchiveBusy, match="shared crawl"):
        ArchiveLock(archive).acquire()


def test_bad_redis_url_is_refused_before_anything_is_written(tmp_path: Path):
    sources = write_sources(tmp_path, "sources:\n  - name: a\n    url: http://127.0.0.1:9/feed.xml\n")
    code, err = finish(worker(sources, tmp_path / "data", f"redis://127.0.0.1:{refusing_port()}/0"))
    assert code == 1 and "cannot reach Redis" in err
    code, err = finish(worker(sources, tmp_path / "data", "http://example.invalid/"))
    assert code == 1 and "bad Redis URL" in err
    assert not (tmp_path / "data" / "posts").exists()


def test_redis_state_seed_claims_and_payloads(tmp_path: Path, redis_url: str):
    """The Redis crawl state on its own: seeded once from state.sqlite, claims, first captures."""
    from archive.catalogue import Catalogue, PostRow
    from archive.state_redis import RedisState

    record = Catalogue.of_archive(tmp_path)
    record.save_post(PostRow(source="s", guid="old", title="t", path="2022/04/old", archived="2022-04-29T00:00:00Z",
                             content_hash="h0"))
    record.save_source_state("s", url="http://127.0.0.1/feed.xml", etag='"e1"')
    record.save_payload("sha1:AAA", "http://127.0.0.1/a", "2022-04-29T00:00:00Z", "W-1.warc.gz", "<urn:uuid:1>")
    a = RedisState.from_url(redis_url, "t", Catalogue.of_archive(tmp_path), owner="host:1")
    b = RedisState.from_url(redis_url, "t", Catalogue.of_archive(tmp_path), owner="host:2")
    try:
        assert a.seed() and not b.seed()
        assert b.post("s", "old").path == "2022/04/old"
        assert b.source_state("s")["etag"] == '"e1"' and b.payload("sha1:AAA")["record_id"] == "<urn:uuid:1>"

        # One version of a post has one writer while that writer lives; another version is free.
        a.redis.set(a.keys.alive("host:1"), "1")
        assert a.claim_post("s", "new", "h1") and a.claim_post("s", "new", "h1")
        assert not b.claim_post("s", "new", "h1") and b.claim_post("s", "new", "h2")
        a.redis.delete(a.keys.alive("host:1"))  # host:1 stopped: its claim lapses
        assert b.claim_post("s", "new", "h1")

        assert a.claim_path("2022/04/new", "s", "new") and a.claim_path("2022/04/new", "s", "new")
        assert not b.claim_path("2022/04/new", "s", "other") and not b.claim_path("2022/04/old", "s", "other")

        # The first capture of a payload wins; a repair that cut its record forgets it.
        a.save_payload("sha1:BBB", "http://127.0.0.1/b", "2026-01-01T00:00:00Z", "W-2.warc.gz", "<urn:uuid:2>")
        b.save_payload("sha1:BBB", "http://127.0.0.1/b", "2026-01-01T00:00:01Z", "W-3.warc.gz", "<urn:uuid:3>")
        assert b.payload("sha1:BBB")["filename"] == "W-2.warc.gz" == record.payload("sha1:BBB")["filename"]
        assert b.forget_payloads("W-2.warc.gz", keep=set()) == 1
        assert a.payload("sha1:BBB") is None and record.payload("sha1:BBB") is None

        # Writes go through to state.sqlite; an update keeps the first archived time.
        row = PostRow(source="s", guid="old", title="t2", path="2022/04/old", archived="2026-01-01T00:00:00Z",
                      content_hash="h9")
        b.save_post(row)
        assert a.post("s", "old").archived == "2022-04-29T00:00:00Z" == record.post("s", "old").archived
        assert a.post("s", "old").content_hash == "h9" == record.post("s", "old").content_hash
        b.save_source_state("s", last_run="2026-01-01T00:00:00Z")
        assert a.source_state("s")["etag"] == '"e1"' and record.source_state("s")["last_run"] == "2026-01-01T00:00:00Z"
    finally:
        a.close()
        b.close()
        record.close()
