"""Dedup pipeline: decides which file a post is, and drops posts archived unchanged.

Unchanged posts are normally dropped earlier, before any request, by
``crawler.incremental.SkipUnchangedMiddleware``; this check catches what that cannot see
(one guid twice in a run, a spider run without the middleware).

Posts go through the pipelines concurrently and the catalogue row is written last, so a post met
twice in one run (two URLs redirected to one feed) would not find its first copy there: the
posts and paths of this run are claimed here, in memory, before anything is written.

In a crawl shared by several workers (``REDIS_URL``) the post and its path are claimed here,
atomically in Redis, before anything is written: of two workers holding the same version of a
post, one writes it and the other drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.markdown import post_path, slugify
from archive.policy import is_unchanged, merged_as
from crawler.items import Post, post_hash
from crawler.ledger import UNCHANGED, ledger_of
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from archive.state import CrawlState


class DedupPipeline:
    """A known post keeps its path (so an update rewrites it in place); a new one gets a slug."""

    def __init__(self, archive_dir: Path, crawler: Crawler) -> None:
        self.archive_dir = archive_dir
        self.stats = crawler.stats
        self.retries = crawler.settings.getint("POSTARC_RETRY_INCOMPLETE")
        self.state = state_of(crawler)
        self.ledger = ledger_of(crawler)
        self.seen: set[tuple[str, str]] = set()  # (source, guid) of this run's posts
        self.paths: set[str] = set()  # paths given to this run's new posts

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(Path(crawler.settings["POSTARC_ARCHIVE_DIR"]), crawler)

    @property
    def catalogue(self) -> CrawlState:
        return self.state.state

    def process_item(self, item: Post) -> Post:
        assert item.date is not None
        if (item.source, item.guid) in self.seen:
            self.stats.inc_value("postarc/duplicates_in_run")
            raise DropItem(f"already archived in this run: {item.guid}", log_level="DEBUG")
        self.seen.add((item.source, item.guid))
        item.content_hash = post_hash(item)
        known = self.catalogue.post(item.source, item.guid)
        archived = known or (merged_as(self.catalogue, item.source, item.guid) if item.dedup == "across" else None)
        # A revisited page is compared after extraction (pipelines.versions), not by the entry.
        if not item.revisit and is_unchanged(archived, item.content_hash, self.archive_dir / "posts", self.retries):
            self.ledger.inc(item.source, UNCHANGED)
            raise DropItem(f"unchanged: {item.guid}", log_level="DEBUG")
        if not self.catalogue.claim_post(item.source, item.guid, item.content_hash):
            self.stats.inc_value("postarc/claimed_elsewhere")
            raise DropItem(f"being written by another worker: {item.guid}", log_level="DEBUG")
        if known:
            item.path, item.is_update = known.path, True
            if known.content_hash == item.content_hash:  # a retry of an incomplete post
                item.incomplete_runs = known.incomplete_runs
            return item
        slug = slugify(item.title, f"{item.source}\0{item.guid}")
        item.path = post_path(item.date, slug)
        # The guid-derived hash makes a clash all but impossible; step aside if one happens.
        n = 1
        while item.path in self.paths or not self.catalogue.claim_path(item.path, item.source, item.guid):
            item.path = post_path(item.date, f"{slug}-{n}")
            n += 1
        self.paths.add(item.path)
        return item
