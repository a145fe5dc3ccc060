"""Catalogue pipeline: ties each post to its capture, in the WARC and in ``state.sqlite``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.catalogue import Catalogue, PostRow, VersionRow
from archive.warc.writer import Written
from crawler.capture import WarcCapture
from crawler.items import Post
from crawler.state import state_of
from pipelines.dates import conversion_fields

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from crawler.state import ArchiveState


def conversion_target(item: Post) -> str:
    """The conversion record's own URI: the post's Markdown file, as a URN.

    Not the article's URL: replay tools (pywb's ``wb-manager add``) index conversion records too,
    and one stamped in the same second as its capture would be replayed in place of the page.
    The capture it came from is cited by ``WARC-Refers-To`` (and its URL by
    ``WARC-Refers-To-Target-URI``).
    """
    return f"urn:postarc:post:{item.path}.md"


class CataloguePipeline:
    """Writes a ``conversion`` record (the Markdown, ``WARC-Refers-To`` its capture) and the row."""

    def __init__(self, archive_dir: Path, state: ArchiveState, capture: WarcCapture | None) -> None:
        self.archive_dir = archive_dir
        self.state = state  # the crawl state: state.sqlite, or Redis (and it) when shared
        self.versions: Catalogue | None = None  # state.sqlite: the versions table
        self.capture = capture  # None when WARC capture is switched off (WARC_ENABLED = False)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(Path(crawler.settings["POSTARC_ARCHIVE_DIR"]), state_of(crawler), crawler.get_extension(WarcCapture))

    def open_spider(self) -> None:
        self.versions = Catalogue.of_archive(self.archive_dir)

    def close_spider(self) -> None:
        if self.versions:
            self.versions.close()

    async def process_item(self, item: Post) -> Post:
        assert self.versions is not None
        markdown: Written | None = None
        if self.capture and item.capture:
            target = conversion_target(item)
            # Written on the WARC writer's thread; the row follows once the record is in.
            extra = {"WARC-Refers-To-Target-URI": item.capture.target_uri, **conversion_fields(item)}
            try:
                markdown = await self.capture.write_conversion(target, item.capture.record_id,
                                                               item.markdown.encode("utf-8"), extra=extra)
            except Exception as exc:  # the capture said it: no row, so the next run archives the post again
                raise DropItem(f"{item.guid}: conversion record not written", log_level="DEBUG") from exc
        # A page or image that failed for now: counted, so that the next runs retry a few times.
        if not item.rebuilt:
            item.incomplete_runs = item.incomplete_runs + 1 if item.missing else 0
        # The instant the Markdown pipeline wrote into the front matter, so the two agree.
        now = (item.written_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.state.state.save_post(PostRow(
            source=item.source,
            guid=item.guid,
            title=item.title,
            path=item.path,
            archived=now,
            link=item.link,
            date=item.date.strftime("%Y-%m-%dT%H:%M:%SZ") if item.date else None,
            date_raw=item.date_raw,
            date_source=item.date_source,
            content_hash=item.content_hash,
            body_source=item.body_source,
            categories=item.story_categories or item.categories,  # as the front matter has them
            warc_filename=item.capture.filename if item.capture else None,
            record_id=item.capture.record_id if item.capture else None,
            updated=now if item.is_update else None,
            incomplete_runs=item.incomplete_runs,
            page_etag=item.page_etag,
            page_last_modified=item.page_last_modified,
        ))
        if not item.rebuilt:  # a rebuild rewrites the versions it has, it adds none
            self.versions.save_version(VersionRow(
                source=item.source, guid=item.guid, captured=now, content_hash=item.version_hash,
                title=item.title, capture_uri=item.capture.target_uri if item.capture else None,
                capture_date=item.capture.date if item.capture else None,
                record_id=item.capture.record_id if item.capture else None,
                warc_filename=item.capture.filename if item.capture else None,
                markdown_filename=markdown.filename if markdown else None,
                markdown_offset=markdown.offset if markdown else None,
            ))
        item.markdown = ""  # written and recorded; free it
        return item
