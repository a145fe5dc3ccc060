"""Markdown pipeline: front matter + body, written atomically to ``posts/<path>.md``."""

from __future__ import annotations

import logging
import posixpath
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import run_in_thread

from archive.dates import format_date
from archive.markdown import atomic_write, inside, remove_stale_temp_files, render_file
from archive.text import NAME_MAX, plain_text
from crawler.items import Post
from crawler.ledger import NEW, UPDATED, ledger_of
from crawler.workers import WorkerPool

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)


class MarkdownPipeline:
    """Renders the post as design.md describes and writes it; the body is built in the pool."""

    def __init__(self, archive_dir: Path, pool: WorkerPool, crawler: Crawler) -> None:
        settings = crawler.settings
        self.posts_dir = archive_dir.resolve() / "posts"
        self.pool = pool
        self.stats = crawler.stats
        self.ledger = ledger_of(crawler)
        self.date_format = settings.get("POSTARC_DATE_FORMAT", "iso")
        self.body_form = settings.get("POSTARC_BODY", "markdown")
        self.image_proxy = settings.get("POSTARC_IMAGE_PROXY", "")
        self.fsync = settings.getbool("POSTARC_FSYNC_FILES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pool = crawler.get_extension(WorkerPool)
        assert pool is not None, "crawler.workers.WorkerPool must be in EXTENSIONS"
        return cls(Path(crawler.settings["POSTARC_ARCHIVE_DIR"]), pool, crawler)

    def open_spider(self) -> None:
        """Clear the temp files of writers killed mid-write (Markdown and images alike)."""
        if self.posts_dir.is_dir() and (removed := remove_stale_temp_files(self.posts_dir)):
            logger.warning("removed %d temp files left by a killed crawl under %s", removed, self.posts_dir)
            self.stats.set_value("postarc/stale_temp_files_removed", removed)

    def image_map(self, item: Post) -> dict[str, str]:
        """Image URL -> what the post links: the local file (relative to the .md) or the URL."""
        proxy = item.image_proxy if item.image_proxy is not None else self.image_proxy
        md_dir = posixpath.dirname(item.path)
        links = {url: proxy + url for url in item.image_urls}
        links.update({url: posixpath.relpath(path, md_dir) for url, path in item.image_paths.items()})
        return links

    @staticmethod
    def enclosures(item: Post) -> list[dict[str, Any]]:
        """Front matter ``enclosures:``; one saved beside the post (``enclosures: local``) also
        names its ``file``, relative to the .md as image links are."""
        md_dir = posixpath.dirname(item.path)
        entries = []
        for enclosure in item.enclosures:
            entry = enclosure.front_matter()
            if path := item.enclosure_files.get(enclosure.url):
                entry["file"] = posixpath.relpath(path, md_dir)
            entries.append(entry)
        return entries

    def fields(self, item: Post, images: dict[str, str]) -> dict[str, Any]:
        first = images.get(item.image_urls[0]) if item.image_urls else None
        now = item.written_at
        date: Any = item.date if self.date_format == "iso" else format_date(item.date, self.date_format)
        return {
            "title": plain_text(item.title) or "(untitled)",
            "categories": [c for c in (plain_text(c, NAME_MAX) for c in item.story_categories or item.categories)
                           if c],
            "headimg": first,
            "author": plain_text(item.author, NAME_MAX),
            "comments": False,
            "date": date,
            "thumbnail": first,
            "link": item.link,
            "guid": item.guid,
            "source": item.feed_url,
            "sources": item.story_sources or None,  # every feed that carried the story (pipelines.stories)
            "enclosures": self.enclosures(item) or None,
            "archived": now,
            "updated": now if item.is_update else None,
            "warc": item.capture.filename if item.capture else None,
            "versions": item.earlier_versions or None,
        }

    async def process_item(self, item: Post) -> Post:
        item.written_at = item.written_at or datetime.now(timezone.utc).replace(microsecond=0)
        images = self.image_map(item)
        text = await self.pool.run(render_file, self.fields(item, images), item.body_html, self.body_form, images)
        target = inside(self.posts_dir, item.path + ".md")
        await run_in_thread(atomic_write, target, text.encode("utf-8"), fsync=self.fsync)  # off the reactor
        item.markdown_file = str(target.relative_to(self.posts_dir))
        item.markdown = text
        self.ledger.inc(item.source, UPDATED if item.is_update else NEW)
        return item
