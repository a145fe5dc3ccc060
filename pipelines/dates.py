"""Dates pipeline: every post leaves with an aware UTC ``date``, its raw form and where it came from."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from archive.dates import format_date, parse_trusted
from archive.pagemeta import published_dates
from crawler.items import Post

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self

logger = logging.getLogger(__name__)

# Control characters would break the WARC header block; 256 is the normalizer's own input limit.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_RAW_MAX = 256


def candidates(item: Post) -> Iterator[tuple[str, str, str | None]]:
    """(raw date, origin, zone that "GMT" stands for), most trusted first.

    The feed's published date, then its updated date, then what the article page's markup says
    (parsed only when the feed gave nothing usable). ``gmt_is`` fixes the aggregator's mislabelled
    stamps, so it applies to feed dates only: the page is the original site's own markup.
    """
    if item.date_raw:
        yield item.date_raw, "feed", item.gmt_is
    if item.updated_raw and item.updated_raw != item.date_raw:
        yield item.updated_raw, "feed-updated", item.gmt_is
    if page := item.page_text():
        for found in published_dates(page):
            yield found.raw, f"page:{found.origin}", None


class DatesPipeline:
    """Feed entry date → article page metadata → fetch time (``date_source: fetched``).

    Dates that cannot be true (more than a day in the future, before 1990) are logged and passed over.
    """

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def process_item(self, item: Post) -> Post:
        feed_raw = item.date_raw
        for raw, origin, gmt_is in candidates(item):
            parsed = parse_trusted(raw, item.timezone, now=item.fetched_at, gmt_is=gmt_is)
            if parsed.known:
                item.date, item.date_raw, item.date_source = parsed.value, raw, origin
                break
            log = logger.warning if parsed.how.startswith("untrusted") else logger.info
            log("post %s: %s date %r not used (%s)", item.guid, origin, raw, parsed.how)
            self.stats.inc_value(f"postarc/dates/rejected/{parsed.how}")
        else:
            item.date, item.date_source = item.fetched_at.replace(microsecond=0), "fetched"
            item.date_raw = feed_raw or item.updated_raw  # what the feed said, though unusable
        self.stats.inc_value(f"postarc/dates/{item.date_source}")
        return item


def conversion_fields(item: Post) -> dict[str, str]:
    """Named fields for the post's ``conversion`` record: the date, its raw form and its origin.

    WARC 1.1 lets a record carry fields it does not define (readers ignore unknown names), so the
    facts stay on the record they describe instead of in a second, ``metadata`` record.
    """
    fields = {"Postarc-Date-Source": item.date_source or "fetched"}
    if item.date is not None:
        fields["Postarc-Date"] = format_date(item.date)
    if item.date_raw:
        fields["Postarc-Date-Raw"] = _UNSAFE.sub(" ", item.date_raw).strip()[:_RAW_MAX]
    return fields
