"""The per-source ledger: what happened to each source of a crawl, counted where it happens.

Components that know something about a source (the spider: entries, the feed's status; the
pipelines: new, updated, unchanged, failed pages and images; ``SourceState``: bytes) tell the
ledger; the run summary, the progress line and ``SourceState`` read it back. Every entry is
mirrored into Scrapy's stats as ``postarc/source/<name>/<what>``, so the stats dump in the log
and a Scrapyd job's stats show the same figures; nothing parses those keys back.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self

#: A source's feed history, as far as it was read (``crawler.spiders.feeds``, RFC 5005).
BACKFILL = "backfill"
#: Counts read by the summary table (``crawler.runner.SourceReport``) and the progress line.
ENTRIES, NEW, UPDATED, UNCHANGED, BYTES = "entries", "new", "updated", "unchanged", "bytes"
PAGE_FAILED, IMAGES_FAILED, RETRY_NEXT = "page_failed", "images_failed", "retry_next"
ENCLOSURES_FAILED = "enclosures_failed"
MERGED = "merged"  # entries merged into another feed's post (dedup: across)


def stats_key(source: str, what: str) -> str:
    """The stats key a ledger entry is mirrored to."""
    return f"postarc/source/{source}/{what}"


class SourceLedger:
    """Extension: per-source counts and status, mirrored into the crawl's stats."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self._status: dict[str, str] = {}
        self._counts: dict[str, Counter[str]] = {}
        self._values: dict[str, dict[str, str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def inc(self, source: str, what: str, count: int = 1) -> None:
        self._counts.setdefault(source, Counter())[what] += count
        self.stats.inc_value(stats_key(source, what), count)

    def set_status(self, source: str, status: str) -> None:
        """The source's outcome so far (``crawler.protocol``: started, ok, not modified, failed: …)."""
        self._status[source] = status
        self.stats.set_value(stats_key(source, "status"), status)

    def record(self, source: str, what: str, value: str) -> None:
        """A value the crawl keeps about the source (its feed history read so far, ``backfill``)."""
        self._values.setdefault(source, {})[what] = value
        self.stats.set_value(stats_key(source, what), value)

    def recorded(self, source: str, what: str) -> str | None:
        return self._values.get(source, {}).get(what)

    def count(self, source: str, what: str) -> int:
        return self._counts.get(source, Counter())[what]

    def status(self, source: str) -> str | None:
        return self._status.get(source)

    def statuses(self) -> dict[str, str]:
        """Every source the crawl started, with its status, in the order they started."""
        return dict(self._status)

    def total(self, what: str) -> int:
        """``what`` summed over all sources."""
        return sum(counts[what] for counts in self._counts.values())


def ledger_of(crawler: Crawler) -> SourceLedger:
    """The crawl's ``SourceLedger`` extension."""
    ledger = crawler.get_extension(SourceLedger)
    if ledger is None:
        raise NotConfigured("crawler.ledger.SourceLedger is not in EXTENSIONS")
    return ledger
