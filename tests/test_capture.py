"""``crawler.capture.WarcCapture``, the service every WARC record of a crawl is written through."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import resource
import signal
from pathlib import Path

import pytest
from scrapy.crawler import Crawler
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from archive.warc.writer import OPEN_SUFFIX, HttpExchange
from crawler.capture import WarcCapture, warc_files


def _exchange(n: int) -> HttpExchange:
    return HttpExchange(url=f"http://127.0.0.1:9/page-{n}.html", method="GET", request_headers=[("Host", "127.0.0.1:9")],
                        status=200, reason="OK", response_headers=[("Content-Type", "text/html")],
                        body=f"<p>page {n}</p>".encode())


def _capture(archive: Path) -> tuple[Crawler, WarcCapture]:
    """A crawler with the project's WARC and postarc settings, and its capture service."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("POSTARC_ARCHIVE_DIR", str(archive))
    ours = {k: v for k, v in settings.copy_to_dict().items() if k.startswith(("WARC_", "POSTARC_"))}
    crawler = get_crawler(settings_dict=ours)
    return crawler, WarcCapture(warc_files(crawler.settings), crawler)


def test_rotate_starts_a_new_file_and_close_indexes_every_file(tmp_path: Path):
    crawler, capture = _capture(tmp_path)

    async def crawl() -> list[str]:
        first, _ = await capture.write_exchange(_exchange(1), None)
        assert capture.current_name == first.filename
        await capture.rotate()
        second, _ = await capture.write_exchange(_exchange(2), None)
        assert capture.current_name == second.filename != first.filename
        await capture.write_conversion("urn:postarc:post:2.md", second.record_id, b"# page 2")
        names = capture.files_written()
        await capture.close()
        return names

    names = asyncio.run(crawl())
    assert len(names) == 2 and sorted(p.name for p in (tmp_path / "warc").iterdir()) == sorted(names)
    kinds = []
    for name in names:
        with (tmp_path / "warc" / name).open("rb") as f:
            kinds.append([r.rec_type for r in ArchiveIterator(f)])
    assert kinds == [["warcinfo", "response", "request"], ["warcinfo", "response", "request", "conversion"]]
    index = (tmp_path / "indexes" / "index.cdxj").read_text().splitlines()
    assert {name for name in names if any(name in line for line in index)} == set(names)
    assert crawler.stats.get_value("postarc/warc/records") == 5



def test_a_record_that_cannot_be_written_is_one_line_and_counted_and_a_full_disk_left_to_its_guard(
        tmp_path: Path, caplog):
    """A record write that fails is one line of the failure vocabulary, no traceback, counted;
    the record is cut back and the next one lands in a file that reads whole. A full disk (a file
    size limit here: EFBIG, as the full-disk test's fallback) is counted too, its line left to
    ``DiskFullGuard`` (which the caller hands the error to)."""
    crawler, capture = _capture(tmp_path)
    warc, away = tmp_path / "warc", tmp_path / "away"

    async def crawl() -> list[str]:
        first, _ = await capture.write_exchange(_exchange(1), None)
        size = (warc / (first.filename + OPEN_SUFFIX)).stat().st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 4096, hard))
        try:
            with pytest.raises(OSError) as full:
                await capture.write_conversion("urn:postarc:post:big.md", first.record_id, random.randbytes(100_000))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)
        assert full.value.errno == errno.EFBIG
        await capture.write_conversion("urn:postarc:post:small.md", first.record_id, b"# page 1")
        await capture.rotate()
        warc.rename(away)  # the next file cannot be made: where the directory was is a file
        warc.write_bytes(b"")
        with pytest.raises(OSError):
            await capture.write_conversion("urn:postarc:post:lost.md", first.record_id, b"# lost")
        warc.unlink()
        away.rename(warc)
        await capture.write_conversion("urn:postarc:post:after.md", first.record_id, b"# after")
        names = capture.files_written()
        await capture.close()
        return names

    with caplog.at_level(logging.INFO, logger="crawler.capture"):
        names = asyncio.run(crawl())
    [error] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert error.getMessage().startswith("conversion record not written for urn:postarc:post:lost.md: [Errno ")
    assert error.exc_info is None and "\n" not in error.getMessage()
    assert crawler.stats.get_value("postarc/warc/records_failed") == 2
    records = []
    for name in names:
        with (warc / name).open("rb") as f:
            records += [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(f)]
    assert [uri for kind, uri in records if kind == "conversion"] == ["urn:postarc:post:small.md",
                                                                      "urn:postarc:post:after.md"]
