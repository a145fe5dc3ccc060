"""What the ``crawl`` and ``demo`` commands share: run the feeds spider, report per source."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from crawler.sources import SourcesFile
from crawler.spiders.feeds import FeedSpider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler, CrawlerProcessBase

#: Exit codes of ``postarc crawl`` (documented in the README).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SOURCE_FAILED = 0, 1, 2, 3


@dataclass
class SourceReport:
    name: str
    status: str
    entries: int
    new: int
    updated: int
    unchanged: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_feeds(process: CrawlerProcessBase, sources_path: Path, only: str = "") -> Crawler:
    """Crawl the sources with the feeds spider in ``process``; returns the finished crawler."""
    crawler = process.create_crawler(FeedSpider)
    process.crawl(crawler, sources=str(sources_path), only=only)
    process.start()
    return crawler


def source_reports(stats: dict[str, Any], config: SourcesFile, only: str = "") -> list[SourceReport]:
    names = {n for n in only.split(",") if n}
    reports = []
    for source in config.sources:
        if not source.enabled or (names and source.name not in names):
            continue
        key = f"postarc/source/{source.name}/"
        status = stats.get(key + "status", "not run")
        if status == "started":
            status = "failed: crawl ended before the feed was fetched"
        reports.append(SourceReport(
            name=source.name,
            status=status,
            entries=stats.get(key + "entries", 0),
            new=stats.get(key + "new", 0),
            updated=stats.get(key + "updated", 0),
            unchanged=stats.get(key + "unchanged", 0),
            failed=stats.get(key + "page_failed", 0) + stats.get(key + "images_failed", 0),
        ))
    return reports


def print_reports(reports: list[SourceReport], out: TextIO = sys.stderr) -> None:
    width = max([len(r.name) for r in reports] + [6])
    out.write(f"{'source':<{width}}  {'new':>5} {'upd':>5} {'same':>5} {'fail':>5}  status\n")
    for r in reports:
        out.write(f"{r.name:<{width}}  {r.new:>5} {r.updated:>5} {r.unchanged:>5} {r.failed:>5}  {r.status}\n")


def archive_summary(archive_dir: Path) -> dict[str, Any]:
    """Counts of what is on disk: posts, WARC files and their bytes."""
    warcs = sorted((archive_dir / "warc").glob("*.warc.gz"))
    return {
        "archive": str(archive_dir.resolve()),
        "posts": sum(1 for _ in (archive_dir / "posts").rglob("*.md")),
        "warc_files": len(warcs),
        "warc_bytes": sum(p.stat().st_size for p in warcs),
    }
