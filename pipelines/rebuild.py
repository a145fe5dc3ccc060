"""Rebuild pipeline (``postarc reextract``): takes the dedup pipeline's place during a rebuild.

A post is rebuilt by the replayed run that last wrote it (``POSTARC_REBUILD_POSTS``, the
catalogue paths that run is to write), at the path the catalogue gives it, with the time it
was written at; so on an unchanged archive every file comes out byte for byte as the crawl
wrote it. Posts the catalogue does not know are dropped: a rebuild rewrites the archive, it
does not add to it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.catalogue import Catalogue
from archive.runs import TIME_FORMAT
from crawler.items import Post

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class RebuildPipeline:
    def __init__(self, archive_dir: Path, paths: set[str], crawler: Crawler) -> None:
        self.archive_dir = archive_dir
        self.paths = paths
        self.stats = crawler.stats
        self.catalogue: Catalogue | None = None
        self.seen: set[tuple[str, str]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        s = crawler.settings
        return cls(Path(s["POSTARC_ARCHIVE_DIR"]), set(s.getlist("POSTARC_REBUILD_POSTS")), crawler)

    def open_spider(self) -> None:
        self.catalogue = Catalogue.of_archive(self.archive_dir)

    def close_spider(self) -> None:
        if self.catalogue:
            self.catalogue.close()

    def process_item(self, item: Post) -> Post:
        assert self.catalogue is not None
        known = self.catalogue.post(item.source, item.guid)
        if known is None:
            self.stats.inc_value("postarc/rebuild/not_catalogued")
            raise DropItem(f"not in the catalogue: {item.source} {item.guid}", log_level="DEBUG")
        key = (item.source, item.guid)
        if known.path not in self.paths or key in self.seen:
            raise DropItem(f"written by another run: {known.path}", log_level="DEBUG")
        self.seen.add(key)
        written = known.updated or known.archived
        item.path, item.is_update = known.path, known.updated is not None
        # This run wrote the post from this very entry, so the catalogue's hash still describes it.
        item.content_hash = known.content_hash or ""
        # A rebuild is no attempt at fetching: the crawl's count of them stands.
        item.rebuilt, item.incomplete_runs = True, known.incomplete_runs
        item.written_at = datetime.strptime(written, TIME_FORMAT).replace(tzinfo=timezone.utc)
        self.stats.inc_value("postarc/rebuild/posts")
        return item
