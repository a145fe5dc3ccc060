"""Disk-full gate: once the disk is full, no post is written.

A post that reaches the Markdown pipeline after the disk filled may have lost its article page
or an image to it (their captures failed), and written now it would count as archived: the next
run would skip it and never fetch them again. Dropped here, it is archived whole by the next run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem, NotConfigured

from crawler.diskfull import DiskFullGuard
from crawler.items import Post

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class DiskFullGatePipeline:
    def __init__(self, guard: DiskFullGuard, crawler: Crawler) -> None:
        self.guard = guard
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        guard = crawler.get_extension(DiskFullGuard)
        if guard is None:
            raise NotConfigured("crawler.diskfull.DiskFullGuard is not in EXTENSIONS")
        return cls(guard, crawler)

    def process_item(self, item: Post) -> Post:
        if self.guard.stopping:
            self.stats.inc_value("postarc/disk_full/posts_left")
            raise DropItem(f"disk full: {item.guid} left for the next run", log_level="DEBUG")
        return item
