"""The WARC files as archive of record: wire fidelity, rotation, revisits, repair, index, verify.

Crawls run the real ``postarc`` in a subprocess against servers on 127.0.0.1: a raw-socket
server (tests.rawhttp) where every response byte is the test's, and ``SiteServer`` for a
larger aggregator crawled twice.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from datetime import datetime, timezone
from html import escape
from io import BytesIO
from pathlib import Path

import brotli
import lxml.html
import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.catalogue import Catalogue
from archive.cdxj import INDEXED_NAME, RecordLines, index_lines, index_path, update_index, warc_paths
from archive.verify import verify_archive
from archive.warc.repair import repair_open_files
from archive.warc.writer import OPEN_SUFFIX, WARC_SUFFIX, HttpExchange, Original, WarcFiles, incompressible
from crawler.demo.server import SiteServer
from tests.helpers import REPO, postarc, warc_records, warcio_check, write_sources
from tests.rawhttp import RawSite, message, ok
from tests.sites import N_POSTS, aggregator_routes

NON_ASCII_TARGET = "/%E6%96%87%E7%AB%A0/%E9%A1%B5%E9%9D%A2.html?q=%E4%B8%AD%E6%96%87"
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\r\n\r\n0\r\n\x00"
GBK_PAGE = "<html><head><meta charset='gbk'><title>中文</title></head><body><p>港区应急局一直在路上</p></body></html>"


def page(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>" \
           f"<p>{'段落文字 paragraph text. ' * 40}</p></article></body></html>".encode()


def wire_routes() -> dict[str, bytes]:
    html = page("encoded")
    return {
        "/gzip.html": message("HTTP/1.1 200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                              gzip.compress(html, mtime=0)),
        "/deflate.html": message("HTTP/1.1 200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "deflate")],
                                 zlib.compress(html)),
        "/br.html": message("HTTP/1.1 200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "br")],
                            brotli.compress(html)),
        "/chunked.html": message("HTTP/1.1 200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                                 gzip.compress(page("chunked"), mtime=0), chunked=True),
        "/gbk.html": ok(GBK_PAGE.encode("gbk"), "text/html; charset=gbk"),
        "/reason.html": message("HTTP/1.1 200 Fine Thanks", [
            ("Set-Cookie", "a=1; Path=/"), ("x-MiXeD-Case", "kept as sent"), ("Set-Cookie", "b=2; Path=/"),
            ("Content-Type", "text/html")], page("reason")),
        "/old.html": message("HTTP/1.0 200 OK", [("Content-Type", "text/html"), ("Connection", "close")],
                             page("HTTP/1.0")),
        "/moved": message("HTTP/1.1 301 Moved Permanently", [("Location", "/target301.html")], b"moved"),
        "/target301.html": ok(page("after 301")),
        "/found": message("HTTP/1.1 302 Found", [("Location", "/target302.html")], b""),
        "/target302.html": ok(page("after 302")),
        "/missing": message("HTTP/1.1 404 Not Found", [("Content-Type", "text/html")], b"<h1>gone</h1>"),
        "/broken": message("HTTP/1.1 500 Internal Server Error", [("Content-Type", "text/html")], b"<h1>oops</h1>"),
        NON_ASCII_TARGET: ok(page("non-ASCII URL")),
        "/img/bin.png": ok(BINARY, "image/png"),
        "/robots.txt": ok(b"User-agent: *\nAllow: /\n", "text/plain"),
    }


def rss(base: str, links: list[str], image: str = "") -> bytes:
    items = "".join(
        f"<item><title>post {i}</title><link>{escape(base + link)}</link><guid>g{i}</guid>"
        f"<description>&lt;p&gt;feed text of post {i}&lt;/p&gt;"
        f"{escape(f'<img src={chr(34)}{base}{image}{chr(34)}>') if image and i == 0 else ''}</description></item>"
        for i, link in enumerate(links))
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>wire</title>{items}' \
           f"</channel></rss>".encode()


def parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return lines[0], [tuple(line.split(": ", 1)) for line in lines[1:]]  # type: ignore[misc]


def b32_sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory):
    """One crawl of the raw site: every page linked from the feed, followed."""
    tmp = tmp_path_factory.mktemp("wire")
    with RawSite() as site:
        site.routes.update(wire_routes())
        links = [t for t in site.routes if t not in ("/robots.txt", "/img/bin.png") and not t.startswith("/target")]
        links = ["/文章/页面.html?q=中文" if t == NON_ASCII_TARGET else t for t in links]
        site.routes["/feed.xml"] = ok(rss(site.base, links, "/img/bin.png"), "application/rss+xml")
        sources = write_sources(tmp, f"sources:\n  - name: wire\n    url: {site.base}/feed.xml\n"
                                     f"    follow_links: true\n")
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))
        records = warc_records(tmp / "data")
        yield tmp / "data", site, run, records


def responses(records) -> dict[str, list[tuple[object, bytes]]]:
    out: dict[str, list] = {}
    for _name, rec, payload in records:
        if rec.rec_type == "response":
            out.setdefault(rec.rec_headers["WARC-Target-URI"], []).append((rec, payload))
    return out


def test_wire_crawl_succeeds_and_files_pass_warcio_check(wire):
    archive, _site, run, _records = wire
    assert run.returncode == 0, run.stderr[-3000:]
    warcio_check(archive)
    assert not list((archive / "warc").glob("*" + OPEN_SUFFIX))


def test_verify_reads_the_br_record_in_a_process_of_its_own(wire):
    """``postarc verify`` decodes content to check it: br too, with no writer in its process."""
    archive, _site, _run, _records = wire
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_payloads_are_stored_exactly_as_sent(wire):
    archive, site, _run, records = wire
    stored = responses(records)
    for target in ("/gzip.html", "/deflate.html", "/br.html", "/gbk.html", "/reason.html", "/old.html",
                   "/img/bin.png", NON_ASCII_TARGET):
        _head, body = site.routes[target].split(b"\r\n\r\n", 1)
        (rec, payload), = stored[site.url(target)]
        assert payload == body, target
        assert rec.rec_headers["WARC-Payload-Digest"] == b32_sha1(body), target
    assert gzip.decompress(stored[site.url("/gzip.html")][0][1]) == page("encoded")
    assert zlib.decompress(stored[site.url("/deflate.html")][0][1]) == page("encoded")
    assert brotli.decompress(stored[site.url("/br.html")][0][1]) == page("encoded")
    assert stored[site.url("/gbk.html")][0][1].decode("gbk") == GBK_PAGE


def test_chunked_body_is_dechunked_without_transfer_encoding(wire):
    _archive, site, _run, records = wire
    (rec, payload), = responses(records)[site.url("/chunked.html")]
    assert payload == gzip.compress(page("chunked"), mtime=0)
    assert rec.http_headers.get_header("Transfer-Encoding") is None
    assert rec.http_headers.get_header("Content-Encoding") == "gzip"


def test_status_line_and_headers_are_the_servers(wire):
    """Protocol, reason phrase, header names' case, order and repeats: as on the wire."""
    _archive, site, _run, records = wire
    stored = responses(records)
    for target, raw in site.routes.items():
        for rec, _payload in stored.get(site.url(target), []):
            status_line, headers = parse_head(raw)
            assert f"{rec.http_headers.protocol} {rec.http_headers.statusline}" == status_line
            assert rec.http_headers.headers == [h for h in headers if h[0] != "Transfer-Encoding"], target
    rec, _ = stored[site.url("/reason.html")][0]
    assert rec.http_headers.statusline == "200 Fine Thanks"
    assert [v for k, v in rec.http_headers.headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    assert stored[site.url("/old.html")][0][0].http_headers.protocol == "HTTP/1.0"


def test_request_records_are_what_the_server_received(wire):
    _archive, site, _run, records = wire
    by_target: dict[str, list] = {}
    for _name, rec, _payload in records:
        if rec.rec_type == "request":
            h = rec.http_headers
            by_target.setdefault(h.statusline.split(" ")[0], []).append(
                (f"{h.protocol} {h.statusline}", h.headers))
    assert set(by_target) >= {"/feed.xml", "/robots.txt", NON_ASCII_TARGET, "/img/bin.png"}
    for target, sent in by_target.items():
        assert sorted(sent) == sorted(parse_head(raw) for raw in site.heads_for(target)), target
    # Cookies set by /reason.html are not sent back: only a source's configured cookie is
    # (COOKIES_ENABLED off; docs/sources.md, "Private feeds").
    assert not any(k == "Cookie" for sent in by_target.values() for _l, headers in sent for k, _v in headers)


def test_every_record_is_tied_to_its_warcinfo_request_and_ip(wire):
    _archive, site, _run, records = wire
    warcinfo = {name: rec.rec_headers["WARC-Record-ID"] for name, rec, _p in records if rec.rec_type == "warcinfo"}
    by_id = {rec.rec_headers["WARC-Record-ID"]: rec for _n, rec, _p in records}
    for name, rec, _payload in records:
        if rec.rec_type != "warcinfo":
            assert rec.rec_headers["WARC-Warcinfo-ID"] == warcinfo[name]
        if rec.rec_type == "request":
            response = by_id[rec.rec_headers["WARC-Concurrent-To"]]
            assert response.rec_type == "response"
            assert response.rec_headers["WARC-Target-URI"] == rec.rec_headers["WARC-Target-URI"]
        if rec.rec_type == "response":
            assert rec.rec_headers["WARC-IP-Address"] == "127.0.0.1"
            assert rec.rec_headers["WARC-Block-Digest"].startswith("sha1:")
        uri = rec.rec_headers.get("WARC-Target-URI") or ""
        assert uri.isascii(), uri
    assert site.url(NON_ASCII_TARGET) in responses(records)


def test_redirects_and_error_responses_are_archived(wire):
    _archive, site, _run, records = wire
    stored = responses(records)
    status = {url: [r.http_headers.statusline for r, _p in recs] for url, recs in stored.items()}
    assert status[site.url("/moved")] == ["301 Moved Permanently"]
    assert status[site.url("/found")] == ["302 Found"]
    assert status[site.url("/target301.html")] == status[site.url("/target302.html")] == ["200 OK"]
    assert status[site.url("/missing")] == ["404 Not Found"]
    assert set(status[site.url("/broken")]) == {"500 Internal Server Error"}  # with Scrapy's retries
    assert stored[site.url("/moved")][0][0].http_headers.get_header("Location") == "/target301.html"


# -- a larger aggregator, crawled twice: rotation, revisits, index, verify ---------------------

def warc_bytes(archive: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in warc_paths(archive)}


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory):
    """The aggregator crawled twice into one archive (small WARC_MAX_SIZE: several files)."""
    tmp = tmp_path_factory.mktemp("twice")
    archive = tmp / "data"
    with SiteServer() as site:
        site.routes.update(aggregator_routes(site.base))
        sources = write_sources(tmp, f"sources:\n  - name: agg\n    url: {site.base}/feed.xml\n"
                                     f"    follow_links: true\n")
        # Small files: several, each indexed as its records are written.
        args = ("crawl", "--sources", str(sources), "--archive", str(archive), "-s", "WARC_MAX_SIZE=150000")
        first = postarc(*args)
        after_first = warc_bytes(archive)
        index_after_first = index_path(archive).read_text(encoding="utf-8")
        second = postarc(*args)
        after_second = warc_bytes(archive)
        # The same feed under another source name: every post is new to the crawl, so every
        # page and image is fetched again, and every payload is one already archived (dedup:
        # within: across, each post would join agg's story after its page, and fetch no image).
        (tmp / "again").mkdir()
        again = write_sources(tmp / "again", "defaults: {dedup: within}\n"
                                             f"sources:\n  - name: agg-again\n    url: {site.base}/feed.xml\n"
                                             f"    follow_links: true\n")
        third = postarc("crawl", "--sources", str(again), "--archive", str(archive))
    yield archive, first, second, after_first, index_after_first, after_second, third


def test_rotation_gives_several_files_each_with_its_warcinfo(twice):
    archive, first, _second, after_first, *_ = twice
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(after_first) >= 3
    warcio_check(archive)
    seen_first = {}
    for name, rec, _payload in warc_records(archive):
        seen_first.setdefault(name, rec)
    assert all(rec.rec_type == "warcinfo" and rec.rec_headers["WARC-Filename"] == name
               for name, rec in seen_first.items())


def test_second_crawl_of_unchanged_site_adds_under_a_quarter(twice):
    _archive, _first, second, after_first, _index, after_second, _third = twice
    assert second.returncode == 0, second.stderr[-3000:]
    first_bytes = sum(after_first.values())
    added = sum(size for name, size in after_second.items() if name not in after_first)
    print(f"\nfirst crawl {first_bytes} bytes, second crawl {added} bytes ({added / first_bytes:.1%})")
    assert added < first_bytes / 4


def test_refetching_every_page_and_image_adds_under_a_quarter(twice):
    archive, _first, _second, after_first, _index, after_second, third = twice
    assert third.returncode == 0, third.stderr[-3000:]
    first_bytes = sum(after_first.values())
    new_files = [name for name in warc_bytes(archive) if name not in after_second]
    added = sum(warc_bytes(archive)[name] for name in new_files)
    records = [(rec, payload) for name, rec, payload in warc_records(archive) if name in new_files]
    fetched = [rec for rec, _p in records if rec.rec_type in ("response", "revisit")]
    revisits = [rec for rec in fetched if rec.rec_type == "revisit"]
    print(f"\nre-fetch crawl: {len(fetched)} fetched, {len(revisits)} revisits, {added} bytes "
          f"({added / first_bytes:.1%} of the first crawl's {first_bytes})")
    assert len(fetched) > N_POSTS * 2  # pages and images again
    assert all(rec.rec_type == "revisit" for rec in fetched
               if int(rec.http_headers.get_header("Content-Length") or 0) >= 256)
    assert added < first_bytes / 4


def test_repeated_payloads_become_revisits_citing_the_first_capture(twice):
    archive, _first, _second, after_first, *_ = twice
    records = warc_records(archive)
    by_id = {rec.rec_headers["WARC-Record-ID"]: rec for _n, rec, _p in records}
    revisits = [(name, rec, payload) for name, rec, payload in records if rec.rec_type == "revisit"]
    second_run = [r for r in revisits if r[0] not in after_first]
    assert second_run, "the second crawl wrote no revisit"
    assert any(name in after_first for name, _r, _p in revisits), "no revisit within one run (logo.png?v=1)"
    for _name, rec, payload in revisits:
        h = rec.rec_headers
        assert h["WARC-Profile"] == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
        original = by_id[h["WARC-Refers-To"]]
        assert original.rec_type == "response"
        assert original.rec_headers["WARC-Payload-Digest"] == h["WARC-Payload-Digest"]
        assert original.rec_headers["WARC-Target-URI"] == h["WARC-Refers-To-Target-URI"]
        assert original.rec_headers["WARC-Date"] == h["WARC-Refers-To-Date"]
        assert rec.http_headers.statusline == "200 OK" and rec.http_headers.get_header("Content-Type")
        assert payload == b""
    # The feed (unchanged, fetched again) is a revisit of the first run's copy.
    assert any(r.rec_headers["WARC-Target-URI"].endswith("/feed.xml") for _n, r, _p in second_run)


def test_index_is_merged_sorted_and_complete(twice):
    archive, _first, _second, _after_first, index_after_first, *_ = twice
    lines = index_path(archive).read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines == sorted(lines) == index_lines(warc_paths(archive))
    assert set(index_after_first.splitlines(keepends=True)) < set(lines)  # the first run's lines kept
    listed = (index_path(archive).parent / INDEXED_NAME).read_text(encoding="utf-8").split()
    assert listed == [p.name for p in warc_paths(archive)]
    assert any('"mime": "warc/revisit"' in line for line in lines)


def test_verify_passes_on_a_good_archive(twice):
    archive = twice[0]
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 0, run.stdout[-3000:]
    assert ": OK" in run.stdout and "posts" in run.stdout


def test_verify_names_each_fault(twice, tmp_path: Path):
    archive = tmp_path / "data"
    shutil.copytree(twice[0], archive)
    warcs = warc_paths(archive)
    # A flipped byte inside a gzip member of one file, a lost index line, a deleted post.
    data = bytearray(warcs[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    warcs[1].write_bytes(bytes(data))
    index = index_path(archive)
    lines = index.read_text(encoding="utf-8").splitlines(keepends=True)
    index.write_text("".join(lines[:3] + lines[4:]), encoding="utf-8")
    next((archive / "posts").rglob("*.md")).unlink()
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 1
    assert warcs[1].name in run.stdout
    assert "index lacks: " + lines[3].rstrip() in run.stdout
    assert "Markdown file" in run.stdout and "is missing" in run.stdout
    assert "problem(s)" in run.stdout


# -- crash safety ---------------------------------------------------------------------------


def exchange(i: int) -> HttpExchange:
    return HttpExchange(url=f"http://127.0.0.1:1/p/{i}", method="GET", request_headers=[("Host", "127.0.0.1:1")],
                        status=200, reason="OK", response_headers=[("Content-Type", "text/plain")],
                        body=os.urandom(2000 + 37 * i), ip_address="127.0.0.1",
                        date=datetime(2024, 1, 1, tzinfo=timezone.utc))


def record_ends(data: bytes) -> list[int]:
    """Where each record (gzip member) of a WARC file ends."""
    it = ArchiveIterator(BytesIO(data))
    ends = []
    for _record in it:
        it.read_to_end()
        ends.append(it.get_record_offset() + it.get_record_length())
    return ends


def test_repair_cuts_a_truncated_last_record_at_any_byte(tmp_path: Path):
    live = tmp_path / "live"
    files = WarcFiles(live, max_size=10**9)
    for i in range(4):
        files.write_exchange(exchange(i))
    open_path = live / (files.current_name + OPEN_SUFFIX)
    # A file still written by a live process is left alone.
    assert repair_open_files(live) == [] and open_path.exists()
    data = open_path.read_bytes()
    files.close()
    ends = record_ends(data)
    assert len(ends) == 9 and ends[-1] == len(data)
    cuts = sorted({1, 10, len(data)} | {end + d for end in ends for d in (-1, 0, 1, 300)})
    for cut in [c for c in cuts if 0 < c <= len(data)]:
        crashed = tmp_path / f"cut{cut}"
        crashed.mkdir()
        (crashed / open_path.name).write_bytes(data[:cut])
        repaired = repair_open_files(crashed)
        kept = [end for end in ends if end <= cut]
        if not kept:  # not even the warcinfo record was complete
            assert repaired == [] and not list(crashed.iterdir())
            continue
        final = crashed / files.files_closed[0]
        assert [r.filename for r in repaired] == [final.name] and not list(crashed.glob("*.open"))
        assert final.stat().st_size == kept[-1] and repaired[0].bytes_cut == cut - kept[-1]
        assert repaired[0].records == len(kept)
        warcio_check_file(final)


def test_repair_leaves_a_new_empty_file_to_its_writer(tmp_path: Path):
    """A writer creates its ``*.open`` file, then locks it: a worker starting meanwhile finds it
    empty and unlocked, and must not take it (the writer's records would go to a removed file)."""
    warc = tmp_path / "warc"
    warc.mkdir()
    opening = warc / f"POSTARC-20240101000000-00000-otherhost-1{WARC_SUFFIX}{OPEN_SUFFIX}"
    opening.touch()
    assert repair_open_files(warc) == [] and opening.exists()
    # Left empty by a writer killed right after creating it: removed once a minute old.
    stale = time.time() - 120
    os.utime(opening, (stale, stale))
    assert repair_open_files(warc) == [] and not opening.exists()


def warcio_check_file(path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "warcio.cli", "check", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_index_update_only_reads_new_files_and_survives_a_lost_file_list(tmp_path: Path):
    archive = tmp_path / "data"
    for batch in range(2):
        files = WarcFiles(archive / "warc")
        for i in range(3):
            files.write_exchange(exchange(batch * 10 + i))
        files.close()
        update = update_index(archive)
        assert update.files == files.files_closed and update.lines == 3
    assert update.total == 6
    (index_path(archive).parent / INDEXED_NAME).unlink()  # as if killed between the two renames
    update_index(archive)
    assert index_path(archive).read_text(encoding="utf-8").splitlines(keepends=True) == index_lines(warc_paths(archive))


def test_a_crawl_killed_with_sigkill_is_repaired_by_the_next(tmp_path: Path):
    archive = tmp_path / "data"
    with RawSite(delay=0.05) as site:
        links = [f"/p/{i}.html" for i in range(60)]
        for link in links:
            site.routes[link] = ok(os.urandom(6000).hex().encode())
        site.routes["/robots.txt"] = ok(b"User-agent: *\n", "text/plain")
        site.routes["/feed.xml"] = ok(rss(site.base, links), "application/rss+xml")
        sources = write_sources(tmp_path, f"sources:\n  - name: slow\n    url: {site.base}/feed.xml\n"
                                          f"    follow_links: true\n")
        args = [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources), "--archive", str(archive)]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                open_files = list((archive / "warc").glob("*" + OPEN_SUFFIX)) if (archive / "warc").is_dir() else []
                if open_files and open_files[0].stat().st_size > 60_000:
                    break
                time.sleep(0.02)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert list((archive / "warc").glob("*" + OPEN_SUFFIX)), "the crawl ended before it was killed"
        site.delay = 0
        run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "repaired" in run.stderr
    assert not list((archive / "warc").glob("*" + OPEN_SUFFIX))
    warcio_check(archive)
    report = verify_archive(archive)
    warc_problems = [p for p in report.problems if "Markdown" not in p]
    assert warc_problems == [], warc_problems


def _exchange(path: str, headers: list[tuple[str, str]], status: int = 200, reason: str = "OK") -> HttpExchange:
    return HttpExchange(url=f"http://127.0.0.1/{path}", method="GET", request_headers=[("Host", "127.0.0.1")],
                        status=status, reason=reason, response_headers=headers, body=path.encode() * 50)


def test_index_lines_made_while_writing_are_cdxj_indexers_own(tmp_path: Path):
    """The lines made from the records in memory are those cdxj-indexer reads from the file; a
    record whose head would read back otherwise sends its file to be read back."""
    lines = RecordLines()
    files = WarcFiles(tmp_path / "warc", max_size=1, lines=lines)  # a file per exchange
    cases = {
        "page.html": [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "450")],
        "no-type": [("Server", "x")],
        "empty-reason": [("Content-Type", "image/png")],
        "twice": [("content-type", "text/plain"), ("Content-Type", "text/html"), ("X-Empty", "")],
        "odd-mime": [("Content-Type", "Text/HTML;q=1 x")],
        "accented": [("Content-Type", "text/html"), ("X-Title", "café")],  # warcio %-encodes it when writing
    }
    plain = []
    for path, headers in cases.items():
        plain.append(files.write_exchange(_exchange(path, headers, reason="" if path == "empty-reason" else "OK"))[0])
    original = files.write_exchange(_exchange("first", [("Content-Type", "text/css")]))[0]
    plain += [original, files.write_exchange(_exchange("again", [("Content-Type", "text/css")]),
                                             Original(original.record_id, original.target_uri, original.date))[0]]
    read_back = [files.write_exchange(_exchange(path, headers))[0] for path, headers in {
        "padded": [("Content-Type", " text/html ")],
        "colon": [("Content-Type:x", "text/html")],
        "folded": [("Content-Type", "text/html\r\n x")],
    }.items()]
    files.close()
    for written in plain:
        made = lines.of(written.filename)
        assert made is not None and len(made) == 1, written.target_uri
        assert sorted(made) == index_lines([tmp_path / "warc" / written.filename]), written.target_uri
    assert '"mime": "warc/revisit"' in lines.of(plain[-1].filename)[0]
    for written in read_back:
        assert lines.of(written.filename) is None, written.target_uri


def test_a_file_whose_record_the_indexer_fails_on_is_read_back_whole(tmp_path: Path, monkeypatch):
    """A record cdxj-indexer cannot index from memory costs no line: its file is read back."""
    from cdxj_indexer.main import CDXJIndexer

    lines = RecordLines()
    files = WarcFiles(tmp_path / "warc", max_size=1, lines=lines)
    fine = files.write_exchange(_exchange("fine", [("Content-Type", "text/html")]))[0]

    def fails(*args: object) -> None:
        raise ValueError("no")

    monkeypatch.setattr(CDXJIndexer, "process_index_entry", fails)
    failed = files.write_exchange(_exchange("failed", [("Content-Type", "text/html")]))[0]
    monkeypatch.undo()
    files.close()
    assert lines.of(fine.filename) is not None and lines.of(failed.filename) is None
    known = {name: made for name in files.files_closed if (made := lines.of(name)) is not None}
    update_index(tmp_path, known)
    assert index_path(tmp_path).read_text(encoding="utf-8").splitlines(keepends=True) == index_lines(
        warc_paths(tmp_path))
    assert '"url": "http://127.0.0.1/failed"' in index_path(tmp_path).read_text(encoding="utf-8")


def test_compressed_bodies_are_stored_and_read_back_whole(tmp_path: Path):
    """Content-encoded bodies and compressed formats go into their gzip member as they are."""
    assert incompressible([("Content-Type", "image/JPEG; q=1")])
    assert incompressible([("content-encoding", "br"), ("Content-Type", "text/html")])
    assert incompressible([("Content-Type", "video/mp4")])
    assert not incompressible([("Content-Type", "text/html"), ("Content-Encoding", "identity")])
    assert not incompressible([("Content-Type", "image/svg+xml")])
    noise = os.urandom(200_000)
    files = WarcFiles(tmp_path / "warc", gzip_level=9)
    for ctype in ("image/png", "application/octet-stream"):
        files.write_exchange(HttpExchange(
            url=f"http://127.0.0.1/{ctype}", method="GET", request_headers=[("Host", "127.0.0.1")], status=200,
            reason="OK", response_headers=[("Content-Type", ctype)], body=noise))
    files.close()
    path = next((tmp_path / "warc").glob("*.warc.gz"))
    with path.open("rb") as f:
        it = ArchiveIterator(f)
        levels = {}
        for record in it:
            if record.rec_type == "response":
                assert record.content_stream().read() == noise
                levels[record.http_headers.get_header("Content-Type")] = it.get_record_offset()
    # The gzip header's XFL byte: 2 when zlib was asked for level 9, 4 for its fastest (0 or 1).
    data = path.read_bytes()
    assert data[levels["image/png"] + 8] == 4 and data[levels["application/octet-stream"] + 8] == 2
    warcio_check(tmp_path)


# Run in a fresh interpreter that imports the replay app and nothing else of postarc, as a
# foreign WSGI host would: prints the status, then the body of /web/ for the br capture.
_REPLAY_ONLY = """
import sys
from wsgiref.util import setup_testing_defaults
from archive.replay.app import ReplayApp
app = ReplayApp(sys.argv[1])
app.start_background_work()
environ = {"PATH_INFO": "/web/2100/" + sys.argv[2], "REQUEST_URI": "/web/2100/" + sys.argv[2]}
setup_testing_defaults(environ)
status = []
body = b"".join(app(environ, lambda s, headers: status.append(s)))
sys.stdout.buffer.write(status[0].encode() + b"\\n" + body)
"""


def test_a_br_record_is_decoded_and_rewritten_by_the_replay_app_alone(tmp_path: Path):
    """The replay app decodes br with no help from the writer's imports (it once had it only
    when archive.warc had been imported, which a foreign WSGI host never does)."""
    url = "http://site.example/br.html"
    html = b'<html><head><title>Brotli page</title></head><body><a href="/next.html">next</a></body></html>'
    files = WarcFiles(tmp_path / "warc")
    files.write_exchange(HttpExchange(
        url=url, method="GET", request_headers=[("Host", "site.example")], status=200, reason="OK",
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "br")], body=brotli.compress(html)))
    files.close()
    Catalogue.of_archive(tmp_path).close()  # state.sqlite: what makes a directory an archive
    run = subprocess.run([sys.executable, "-c", _REPLAY_ONLY, str(tmp_path), url], cwd=REPO,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    status, _, body = run.stdout.partition(b"\n")
    assert status == b"200 OK"
    doc = lxml.html.fromstring(body)
    assert doc.findtext(".//title") == "Brotli page"
    assert [a.get("href") for a in doc.iter("a") if a.text == "next"] == [
        f"/web/{_capture_timestamp(tmp_path)}/http://site.example/next.html"]


def _capture_timestamp(archive: Path) -> str:
    with next((archive / "warc").glob("*.warc.gz")).open("rb") as f:
        record = next(r for r in ArchiveIterator(f) if r.rec_type == "response")
        return re.sub(r"\D", "", record.rec_headers.get_header("WARC-Date"))[:14]
