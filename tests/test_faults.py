"""One crawl of a hostile aggregator (tests/faults.py): good feeds next to every fault a server or
a feed can throw. It must finish, exit non-zero naming each failure, keep every good post and each
faulty entry's feed text, stay within its size caps and 1.5 GB, write nothing outside the archive,
and leave valid, closed WARC files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archive.text import plain_text
from archive.verify import verify_archive
from tests.conftest import needs_tool
from tests.faults import BOMB_INFLATED, HOSTILE_TITLES, MB, PeakMemory, fault_site
from tests.helpers import REPO, Run, hexo_installed, hexo_load, posts_of, warc_records, warcio_check
from tests.rawhttp import RawSite

MEMORY_LIMIT = 1536 * MB
# Short timeouts keep the stalled server from costing minutes (3 tries × 4 s); the size caps
# stay the defaults (DOWNLOAD_MAXSIZE 50 MB), which is what is being tested.
FAST = ["-s", "DOWNLOAD_TIMEOUT=4", "-s", "POSTARC_RETRY_BACKOFF=0.1"]


def snapshot(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` but those under ``skip``."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if skip != p and skip not in p.parents}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """The crawl, run from a sandbox (its own cwd, HOME and TMPDIR) with its memory sampled."""
    root = tmp_path_factory.mktemp("faults")
    for name in ("cwd", "home", "tmp"):
        (root / name).mkdir()
    archive = root / "data"
    with RawSite() as site:
        expect = fault_site(site)
        (root / "sources.yaml").write_text(expect.sources_yaml(site.base), encoding="utf-8")
        before = snapshot(root, archive)
        env = {**os.environ, "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(root / "sources.yaml"),
             "--archive", str(archive), *FAST],
            cwd=root / "cwd", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with PeakMemory(proc.pid) as memory:
            try:
                stdout, stderr = proc.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                pytest.fail(f"the crawl did not finish: {stderr[-3000:]}")
        yield {"archive": archive, "run": Run(proc.returncode, stdout, stderr), "expect": expect, "site": site,
               "peak": memory.peak, "root": root, "before": before}


def by_guid(archive: Path) -> dict[str, tuple[str, dict, str]]:
    return {fm["guid"]: (rel, fm, body) for rel, (fm, body) in posts_of(archive).items()}


def test_crawl_finishes_and_exits_3_naming_each_failed_source(crawled):
    run, expect = crawled["run"], crawled["expect"]
    assert run.returncode == 3, run.stderr[-3000:]
    for name, reason in expect.failing_sources.items():
        line = next((line for line in run.stderr.splitlines() if line.startswith(f"postarc: source {name} failed")),
                    None)
        assert line is not None and reason.lower() in line.lower(), (name, reason, line)
    failed = {line.split()[2] for line in run.stderr.splitlines() if line.startswith("postarc: source ")}
    assert failed == set(expect.failing_sources)
    table = run.stderr[run.stderr.index("source "):]
    for name, _path, _follow in expect.sources:
        assert re.search(rf"^{re.escape(name)} ", table, re.MULTILINE), name


def test_each_failed_article_page_is_reported_with_its_url(crawled):
    run, expect = crawled["run"], crawled["expect"]
    for url in expect.failing_pages:
        assert f"article {url} failed (" in run.stderr, url
    assert re.search(r"article file:/+etc/passwd failed \(not an http\(s\) URL\)", run.stderr)
    for link in ("http://127.0.0.1:99999/", "mailto:someone@example.org", "javascript:alert(1)"):
        assert f"article {link} failed (unusable link: " in run.stderr, link
    # 100 000 <p>s, <article>, <body>, <html> and the <head> an HTML5 parser adds.
    assert re.search(r"extracting the page \S+/page/dense failed \(PageTooLarge: the page has 100004 elements, "
                     r"more than 30000 \(PAGE_MAX_ELEMENTS\)\); keeping the feed's body", run.stderr)
    assert "Traceback" not in run.stderr
    assert re.search(r"article \S+/page/big-0 failed \(page of 47185965 bytes, more than POSTARC_PAGE_MAXSIZE "
                     r"\(5242880\): archived, not extracted\)", run.stderr)
    row = next(line for line in run.stderr.splitlines() if line.startswith("faulty "))
    assert int(row.split()[5]) >= len(expect.failing_pages) + 5  # the fail column


def test_every_good_post_is_archived(crawled):
    archive, expect = crawled["archive"], crawled["expect"]
    posts = by_guid(archive)
    assert expect.good <= set(posts), expect.good - set(posts)
    for i in range(3):  # with their pages and images
        rel, fm, body = posts[f"good-{i}"]
        assert f"Feed text of good-{i}" in body or f"Page words of good post {i}" in body
        assert fm["headimg"] and ((archive / "posts" / rel).parent / fm["headimg"]).is_file()
    assert "Feed text of flaky-1" in posts["flaky-1"][2] and "Feed text of throttled-1" in posts["throttled-1"][2]


def test_retries_wait_and_are_bounded(crawled):
    site, run = crawled["site"], crawled["run"]
    log = Path(re.search(r"log: (\S+)", run.stderr).group(1)).read_text(encoding="utf-8")
    assert len(site.heads_for("/feeds/flaky.xml")) == 2 and len(site.heads_for("/feeds/throttled.xml")) == 2
    assert re.search(r"retrying \S+/feeds/throttled.xml in 1.0 s \(Retry-After\)", log)
    for path in ("/feed/stall", "/page/stall", "/feed/reset", "/feed/short", "/feed/error"):
        # RETRY_TIMES = 2, then the crawl moves on. Twisted itself asks once more when a reused
        # keep-alive connection breaks before the answer (reset, short).
        assert 3 <= len(site.heads_for(path)) <= 6, path


def test_each_faulty_entry_keeps_its_feed_text(crawled):
    archive, expect = crawled["archive"], crawled["expect"]
    posts = by_guid(archive)
    missing = set(expect.from_feed) - set(posts)
    assert not missing, missing
    for guid in expect.from_feed:
        _rel, fm, body = posts[guid]
        assert f"Feed text of {guid}: the entry" in body, (guid, body[:300])
        assert fm["title"] and "\n" not in fm["title"]


def test_hostile_titles_are_cleaned_and_round_trip(crawled):
    posts = by_guid(crawled["archive"])
    for n, title in enumerate(HOSTILE_TITLES):
        rel, fm, _body = posts[f"title-json-{n}"]
        expected = plain_text(title) or "(untitled)"
        assert fm["title"] == expected, (title, fm["title"])
        name = Path(rel).name
        assert len(name.encode()) < 255 and re.fullmatch(r"[\w-]+\.md", name), name
        assert not re.search(r"[\x00-\x1f\u202a-\u202e\u2066-\u2069]", rel)


@needs_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)", hexo_installed())
def test_hexo_reads_every_hostile_post(crawled, tmp_path: Path):
    archive = crawled["archive"]
    loaded = hexo_load(archive / "posts", tmp_path / "site")
    assert len(loaded) == len(posts_of(archive))
    titles = {post["title"] for post in loaded}
    assert {fm["title"] for fm, _body in posts_of(archive).values()} == titles


def test_sizes_are_capped_and_memory_stays_bounded(crawled):
    run, peak = crawled["run"], crawled["peak"]
    assert 0 < peak < MEMORY_LIMIT, f"peak RSS of the crawl's processes: {peak / MB:.0f} MB"
    # The bomb (1 GB inflated) stopped at DOWNLOAD_MAXSIZE while inflating; 60 MB pages cut off
    # before their end (declared or streamed).
    assert "exceeded DOWNLOAD_MAXSIZE (52428800 B) during decompression" in run.stderr
    assert "Expected to receive 62914560 bytes which is larger than download max size" in run.stderr
    assert re.search(r"Received \d+ bytes which is larger than download max size \(52428800\) in request "
                     r"<GET \S+/feed/huge-stream>", run.stderr)
    payloads = {rec.rec_headers["WARC-Target-URI"].rsplit("/", 1)[-1]: len(payload)
                for _n, rec, payload in warc_records(crawled["archive"]) if rec.rec_type == "response"}
    assert max(payloads.values()) <= 50 * MB and "huge" not in payloads and "huge-stream" not in payloads
    assert payloads["bomb"] < BOMB_INFLATED // 500  # stored as sent: about 1 MB


def test_nothing_is_written_outside_the_archive(crawled):
    root, archive = crawled["root"], crawled["archive"]
    assert snapshot(root, archive) == crawled["before"]
    top = {p.name for p in archive.iterdir()}
    assert top <= {"warc", "indexes", "posts", "logs", "state.sqlite", "state.sqlite-wal", "state.sqlite-shm",
                   ".lock"}, top
    for path in (archive / "posts").rglob("*.*"):
        rel = path.relative_to(archive / "posts")
        assert len(rel.parts) in (3, 4) and rel.parts[0].isdigit() and rel.parts[1].isdigit(), rel
        assert "escape" not in path.name and not path.name.startswith(".postarc-tmp-")


def test_no_local_file_reaches_the_archive(crawled):
    archive = crawled["archive"]
    secret = Path("/etc/passwd").read_bytes()[:40]
    for _name, rec, payload in warc_records(archive):
        assert rec.rec_type == "conversion" or not (rec.rec_headers["WARC-Target-URI"] or "").startswith("file:")
        assert secret not in payload
    for md in (archive / "posts").rglob("*.md"):
        assert secret.decode() not in md.read_text(encoding="utf-8")
    assert "root:x:" not in by_guid(archive)["xxe-1"][2]


def test_warc_files_are_valid_and_closed_and_verify_passes(crawled):
    archive = crawled["archive"]
    warcio_check(archive)
    assert not list((archive / "warc").glob("*.open"))
    report = verify_archive(archive)
    assert report.ok, report.problems
    assert report.posts == len(posts_of(archive))
