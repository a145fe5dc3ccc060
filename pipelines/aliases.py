"""Aliases pipeline: each image also recorded under the URL its post's HTML named.

postarc fetches an image behind a CORS or image proxy (``https://proxy/?https://cdn/x.jpg``)
under its unwrapped URL, but the archived page still asks for the proxied one: a ``revisit``
record under that URL, pointing at the image's first capture, lets pywb, ReplayWeb.page and
``postarc replay`` show the page's image from the archive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.warc.writer import Original
from crawler.capture import WarcCapture, first_capture
from crawler.items import Post
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from crawler.state import ArchiveState


class AliasRecordsPipeline:
    def __init__(self, capture: WarcCapture | None, state: ArchiveState) -> None:
        self.capture = capture  # None when WARC capture is switched off (WARC_ENABLED = False) or in a rebuild
        self.state = state

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.get_extension(WarcCapture), state_of(crawler))

    async def process_item(self, item: Post) -> Post:
        if self.capture is None:
            return item
        for url, named in item.image_named.items():
            fetched = item.image_captures.get(url)
            if fetched is not None:
                written, *head = fetched
                # The image's first capture: this fetch's record may itself be a revisit.
                original = (first_capture(self.state.state, written.payload_digest)
                            or Original(written.record_id, written.target_uri, written.date))
                try:
                    await self.capture.write_alias(named, original, written.payload_digest, tuple(head))
                except Exception as exc:  # the capture said it: the post waits for the next run
                    raise DropItem(f"{item.guid}: image record not written", log_level="DEBUG") from exc
        return item
