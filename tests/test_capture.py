"""``crawler.capture.WarcCapture``, the service every WARC record of a crawl is written through."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scrapy.settings import Settings
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from archive.warc.writer import HttpExchange
from crawler.capture import WarcCapture, warc_files


def _exchange(n: int) -> HttpExchange:
    return HttpExchange(url=f"http://127.0.0.1:9/page-{n}.html", method="GET", request_headers=[("Host", "127.0.0.1:9")],
                        status=200, reason="OK", response_headers=[("Content-Type", "text/html")],
                        body=f"<p>page {n}</p>".encode())


def test_rotate_starts_a_new_file_and_close_indexes_every_file(tmp_path: Path):
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("POSTARC_ARCHIVE_DIR", str(tmp_path))
    ours = {k: v for k, v in settings.copy_to_dict().items() if k.startswith(("WARC_", "POSTARC_"))}
    crawler = get_crawler(settings_dict=ours)
    capture = WarcCapture(warc_files(crawler.settings), crawler)

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
