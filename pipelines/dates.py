"""Dates pipeline: every post leaves with an aware UTC ``date`` and where it came from."""

from __future__ import annotations

import logging

from archive.dates import parse_trusted
from crawler.items import Post

logger = logging.getLogger(__name__)


class DatesPipeline:
    """Feed entry date (published, then updated), else the fetch time, marked as such."""

    def process_item(self, item: Post) -> Post:
        for raw, origin in ((item.date_raw, "feed"), (item.updated_raw, "feed-updated")):
            if not raw:
                continue
            parsed = parse_trusted(raw, item.timezone, now=item.fetched_at, gmt_is=item.gmt_is)
            if parsed.known:
                item.date, item.date_source = parsed.value, origin
                return item
            logger.info("post %s: date %r not usable (%s)", item.guid, raw, parsed.how)
        item.date, item.date_source = item.fetched_at.replace(microsecond=0), "fetched"
        return item
