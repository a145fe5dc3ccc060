"""Versions pipeline: is a changed post a new version, and which versions came before it.

After extraction (a version is its title and extracted body, ``archive.versions``): a post
whose feed entry or page bytes changed but whose title and body did not (a visit counter, a
clock in the page) is dropped here, and its new raw hash stored so later runs skip it before
any request. Otherwise the earlier versions go on the post, for the front matter's
``versions:``; the catalogue pipeline records the new one once its Markdown is in the WARC.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.catalogue import Catalogue, VersionRow
from archive.versions import UNKNOWN_HASH, locate, version_hash
from crawler.items import Post
from crawler.ledger import ledger_of
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from archive.state import CrawlState


class VersionPipeline:
    def __init__(self, archive_dir: Path, crawler: Crawler) -> None:
        self.archive_dir = archive_dir
        self.ledger = ledger_of(crawler)
        self.archive_state = state_of(crawler)
        self.catalogue: Catalogue | None = None  # state.sqlite: the versions table

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(Path(crawler.settings["POSTARC_ARCHIVE_DIR"]), crawler)

    @property
    def state(self) -> CrawlState:
        """The crawl state (state.sqlite, or Redis when shared), opened once for the crawl."""
        return self.archive_state.state

    def open_spider(self) -> None:
        self.catalogue = Catalogue.of_archive(self.archive_dir)

    def close_spider(self) -> None:
        if self.catalogue:
            self.catalogue.close()

    def _recorded_before(self, item: Post) -> list[VersionRow]:
        """The version of a post archived by a postarc that kept no versions: entered once, its
        hash unknown (its extracted body was not kept), its capture and Markdown found in its WARC file."""
        assert self.catalogue is not None
        known = self.state.post(item.source, item.guid)
        if known is None or not known.record_id or not known.warc_filename:
            return []
        found = locate(self.archive_dir, known.warc_filename, known.record_id)
        row = VersionRow(source=known.source, guid=known.guid, captured=known.updated or known.archived,
                         content_hash=UNKNOWN_HASH, title=known.title, capture_uri=found.capture_uri,
                         capture_date=found.capture_date, record_id=known.record_id,
                         warc_filename=known.warc_filename,
                         markdown_filename=known.warc_filename if found.markdown_offset is not None else None,
                         markdown_offset=found.markdown_offset)
        self.catalogue.save_version(row)
        return [row]

    def process_item(self, item: Post) -> Post:
        assert self.catalogue is not None
        item.version_hash = version_hash(item.title, item.version_text)
        versions = self.catalogue.versions(item.source, item.guid)
        if not versions and not item.rebuilt:
            versions = self._recorded_before(item)
        latest = versions[-1] if versions else None
        if latest and latest.content_hash == item.version_hash:
            known = self.state.post(item.source, item.guid)
            same_entry = known is not None and known.content_hash == item.content_hash
            if not item.rebuilt and known and (not same_entry or (item.revisit and not item.incomplete_runs)):
                self.state.save_post(dataclasses.replace(
                    known, content_hash=item.content_hash, page_etag=item.page_etag or known.page_etag,
                    page_last_modified=item.page_last_modified or known.page_last_modified))
                self.ledger.inc(item.source, "same_version")
                raise DropItem(f"changed bytes, same title and body: {item.guid}", log_level="DEBUG")
            versions = versions[:-1]  # this version again: rebuilt, or a retry of an incomplete one
        item.earlier_versions = [{"captured": v.captured, "content_hash": v.content_hash, "warc_record": v.record_id}
                                 for v in versions]
        return item
